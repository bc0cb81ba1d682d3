"""``segments train groups`` and ``segments train upgrade``: train, then log to MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from segments.cli.common import (
    ExperimentOption,
    PanelOption,
    handles_errors,
    money,
    out,
    print_frame,
    print_run,
    train_app,
)
from segments.core.config.experiment import load_config
from segments.core.data.months import parse_month_option
from segments.core.upgrade.metrics import REPORTED


@train_app.command("groups")
@handles_errors
def train_groups_cmd(
    panel: PanelOption,
    config: ExperimentOption = None,
    as_of: Annotated[
        str | None, typer.Option(help="As-of month YYYY-MM (default: the panel's last month).")
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Known labels per customer (e.g. the "
            "synthetic truth.parquet) to report the "
            "adjusted Rand index against; never used "
            "to fit."
        ),
    ] = None,
    reference_column: Annotated[
        str, typer.Option(help="The label column of --reference.")
    ] = "persona",
    previous: Annotated[
        str | None,
        typer.Option(
            help="A previous groups model URI "
            "(models:/... or runs:/.../groups_model): "
            "matching groups keep its ids."
        ),
    ] = None,
) -> None:
    """Fit strategic groups: features, k on evidence, profiles, names; log to MLflow."""
    from segments.jobs.log_training import log_groups
    from segments.jobs.train import train_groups

    as_of = parse_month_option(as_of) if as_of else None
    cfg = load_config(config)
    ref = _read_reference(reference, reference_column) if reference is not None else None
    prev_model = _load_previous(previous) if previous is not None else None  # before the panel
    result = train_groups(panel, cfg, as_of=as_of, reference=ref, previous=prev_model)
    log_groups(result)
    _print_groups(result, reference_column)
    print_run(result, cfg)


@train_app.command("upgrade")
@handles_errors
def train_upgrade_cmd(
    panel: PanelOption,
    config: ExperimentOption = None,
) -> None:
    """Train the upgrade model; evaluate it out of time against the rule of thumb."""
    from segments.jobs.log_training import log_upgrade
    from segments.jobs.train_upgrade import train_upgrade

    cfg = load_config(config)
    cfg.tracking.id_key()  # the key samples need, checked before any work
    result = log_upgrade(train_upgrade(panel, cfg))
    up = cfg.upgrade
    split = result.split
    out.print(
        f"upgrade model: P(reach the next tier within {up.horizon} months), label "
        f"'{up.label}', population '{up.population}'"
    )
    out.print(
        f"  as-of months: train {split['train'][0]}..{split['train'][-1]} "
        f"({len(split['train'])}), validation {', '.join(split['valid'])}, "
        f"test (out of time) {', '.join(split['test'])}"
    )
    counts = result.label_counts
    _print_sample(
        result.fit_sample,
        "training rows",
        "upgrade.fit_size",
        "every validation and test row is scored",
    )
    labelled = int(counts["positives"].sum() + counts["negatives"].sum())
    out.print(
        f"  labelled customer-months: {labelled:,}"
        f" ({int(counts['positives'].sum()):,} upgrades), censored "
        f"{int(counts['censored'].sum()):,}"
    )
    _print_choice(result)
    rows = [m for m in REPORTED if m not in ("n", "positives")]
    for segment in ["all", *sorted(s for s in result.metrics["segment"].unique() if s != "all")]:
        comp = result.comparison(segment).reindex(rows)
        print_frame(
            comp,
            f"Out-of-time test: {segment} (n = "
            f"{int(result.comparison(segment).loc['n'].iloc[0]):,})",
            lambda v: f"{v:.3f}",
        )
    auc = result.comparison().loc["roc_auc"]
    cut = (1 - auc["model"]) / (1 - auc["rule_of_thumb"])
    out.print(
        f"  model vs rule of thumb: ROC-AUC {auc['model']:.3f} vs "
        f"{auc['rule_of_thumb']:.3f} (+{auc['model'] - auc['rule_of_thumb']:.3f}; ranking "
        f"error cut by {1 - cut:.0%})"
    )
    top = ", ".join(result.shap_importance.head(8).index)
    out.print(f"  top features (mean |SHAP| on the test months): {top}")
    first = result.call_list.head(1)
    if len(first) and first["reason_1_text"].notna().any():
        r = first.iloc[0]
        out.print(
            f"  first on the call list: {r['customer_id']} (p = {r['p_upgrade']:.2f}); "
            f"{r['reason_1_text']} / {r['reason_1_text_zh']}",
            markup=False,
        )
    out.print(f"  call list: {len(result.call_list):,} customers for the last test month")
    print_run(result, cfg)


def _print_choice(result: Any) -> None:
    """The chosen candidate, the refits, and the calibration month by month."""
    model, split = result.model, result.split
    sel = model.selection_
    if sel is not None:
        win = sel[sel["chosen"]].iloc[0]
        out.print(
            f"  model chosen on the validation months: {win['candidate']} ({model.kind_}, "
            f"{model.best_iteration_} trees, log loss {win['valid_log_loss']:.4f}, AUC "
            f"{win['valid_auc']:.3f}) of {len(sel)} candidates; refitted on "
            f"{split['refit'][0]}..{split['refit'][-1]} ({model.fitted_rows_:,} rows)"
        )
    deployed = result.deployed
    if deployed is not None and deployed is not model:
        out.print(
            f"  deployed: refitted on every labelled month {split['deploy'][0]}.."
            f"{split['deploy'][-1]} ({deployed.fitted_rows_:,} rows), calibrated on "
            f"{', '.join(split['test'])}"
        )
    months = result.by_month
    if months is not None and not months.empty:
        mine = months[months["model"] == "model"]
        cells = ", ".join(
            f"{r.as_of} {r.ece:.3f} (rate {r.positive_rate:.3f}, mean p {r.mean_p:.3f})"
            for r in mine.itertuples()
        )
        out.print(f"  calibration error by test month: {cells}")


def _read_reference(reference: Path, reference_column: str) -> pd.Series:
    """Known labels per customer from ``--reference`` (used only to report agreement)."""
    from segments.core.data.files import read_table
    from segments.exceptions import ConfigError, Violation

    table = read_table(reference, str_columns=("customer_id",))
    if reference_column not in table or "customer_id" not in table:
        raise ConfigError(
            [
                Violation(
                    reference_column,
                    f"--reference {reference} needs columns customer_id and {reference_column}",
                )
            ]
        )
    return table.set_index("customer_id")[reference_column]


def _load_previous(previous: str) -> Any:
    """The groups model of ``--previous``, checked to be one."""
    from segments import StrategicGroups
    from segments.exceptions import ConfigError, Violation
    from segments.mlops.tracking import load_groups_estimator

    try:
        prev_model = load_groups_estimator(previous)
    except Exception as exc:  # MLflow raises its own types for a bad URI
        raise ConfigError(
            [Violation("--previous", f"cannot load {previous!r}: {str(exc).splitlines()[0]}")]
        ) from exc
    if not isinstance(prev_model, StrategicGroups):
        raise ConfigError(
            [
                Violation(
                    "--previous",
                    f"{previous} is a {type(prev_model).__name__}, not a groups model",
                )
            ]
        )
    return prev_model


def _print_sample(sample: Any, what: str, setting: str, after: str) -> None:
    """The rows a fit used, when it used a sample."""
    if sample is not None and sample.sampled:
        out.print(
            f"  fitted on {sample.rows:,} of {sample.of:,} {what} ({setting}), a sample "
            f"stratified by {', '.join(sample.strata)}; {after}"
        )


def _print_groups(result: Any, reference_column: str) -> None:
    """What was fitted: k and why, stability, agreement, id matching, the groups and the
    tier x group tables."""
    model = result.model
    rep = model.k_selection_report_
    out.print(
        f"strategic groups as of {result.as_of}: {len(result.features):,} customers, "
        f"{model.n_groups_} groups ({model.algorithm})"
    )
    _print_sample(result.fit_sample, "customers", "groups.fit_size", "everyone is assigned")
    out.print(f"  k rule: {rep['rule']}")
    if model.k_selection_ is not None:
        ks = model.k_selection_.set_index("k")
        print_frame(ks, "k selection", lambda v: f"{v:.3f}" if isinstance(v, float) else str(v))
        if rep["criteria_disagree"]:
            best = rep["best_k_by_criterion"]
            out.print(
                "  criteria disagree: "
                + ", ".join(f"{c} prefers k={best[c]}" for c in rep["criteria_disagree"])
            )
    out.print(
        f"  surrogate classifier fidelity: {result.metrics['surrogate_fidelity']:.1%} "
        "(membership explained in the persona cards)"
    )
    st = model.stability_
    if st["jaccard"]:
        out.print(
            f"  stability: bootstrap ARI mean {st['ari_mean']:.3f} (min "
            f"{st['ari_min']:.3f}), smallest group Jaccard "
            f"{min(st['jaccard'].values()):.3f}"
        )
    if "reference_ari" in result.metrics:
        out.print(
            f"  against the reference labels ({reference_column}): adjusted Rand index "
            f"{result.metrics['reference_ari']:.3f}"
        )
    if model.match_report_ is not None:
        counts = model.match_report_["status"].value_counts()
        out.print(
            "  ids matched to the previous model: "
            + ", ".join(f"{n} {status}" for status, n in counts.items())
        )
    summary = result.profile["summary"].join(result.names)
    groups = Table(title="Groups")
    for c in ("id", "name", "名称", "customers", "share", "AUM share", "median AUM"):
        groups.add_column(c, justify="left" if c in ("name", "名称") else "right")
    for g, r in summary.iterrows():
        groups.add_row(
            str(g),
            r["name_en"],
            r["name_zh"],
            f"{int(r['customers']):,}",
            f"{r['share']:.1%}",
            f"{r.get('aum_share', float('nan')):.1%}",
            money(r.get("aum_median", float("nan"))),
        )
    out.print(groups)
    counts = result.tier_group["counts"]
    print_frame(counts, f"Tier x group: customers ({result.as_of})", lambda v: f"{int(v):,}")
    near = result.tier_group["near_tier"]
    print_frame(near, "Tier x group: near-tier customers", lambda v: f"{int(v):,}")
