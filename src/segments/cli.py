"""The ``segments`` command line: thin commands over the Python API.

Exit codes: 0 success; 1 a :class:`~segments.exceptions.SegmentsError` (bad input, bad
config, refused action) reported on stderr; 2 a usage error.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from segments.core.config.experiment import load_config
from segments.core.config.presets import available_presets, check_model_name
from segments.core.data.months import parse_month_option
from segments.core.data.outputs import check_output, is_segments_table, output_lock, write_table
from segments.core.data.panel import MONTH, read_panel
from segments.core.data.synthetic import write_bank
from segments.core.data.validation import check_panel
from segments.core.tiers.assign import assign_tiers, migration_matrix, migration_summary
from segments.core.tiers.ladders import load_ladder
from segments.exceptions import (
    INTERRUPTS,
    Interrupted,
    PanelValidationError,
    SegmentsError,
    SegmentsWarning,
)

app = typer.Typer(
    name="segments",
    help="Tier and strategic-group customers of a retail bank.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Wide enough for the tables when piped to a file or a scheduler's log.
_WIDTH = None if sys.stdout.isatty() else 160
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)

F = TypeVar("F", bound=Callable[..., Any])


def _handles_errors(func: F) -> F:
    """Report a SegmentsError as clear lines on stderr and exit 1; warnings go to stderr."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SegmentsWarning)
            try:
                result = func(*args, **kwargs)
            except SegmentsError as exc:
                _flush_warnings(caught)
                err.print(f"error: {exc}", markup=False)
                raise typer.Exit(1) from None
            except INTERRUPTS as exc:
                signum = getattr(exc, "signum", signal.SIGINT)
                err.print(
                    f"stopped by {signal.Signals(signum).name}: nothing was published; "
                    "run the same command again to resume",
                    markup=False,
                )
                raise typer.Exit(128 + signum) from None
        _flush_warnings(caught)
        return result

    return wrapper  # type: ignore[return-value]


def _flush_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        if issubclass(w.category, SegmentsWarning):
            err.print(f"warning: {w.message}", markup=False)
        else:  # not ours: hand back to the normal machinery
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _money(x: float) -> str:
    return f"{x:,.0f}"


@app.command()
@_handles_errors
def synth(
    customers: Annotated[int, typer.Option(min=1, help="Customers in the bank.")] = 10_000,
    months: Annotated[int, typer.Option(min=1, max=240, help="Calendar months.")] = 24,
    seed: Annotated[int, typer.Option(help="Master seed; same seed, same bank.")] = 0,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for panel.parquet and truth.parquet.")
    ] = Path("data/synthetic"),
    start: Annotated[str, typer.Option(help="First month, YYYY-MM.")] = "2024-01",
    overwrite: Annotated[
        bool, typer.Option(help="Replace a synthetic bank written before in DIR.")
    ] = False,
) -> None:
    """Write the synthetic bank: DIR/panel.parquet (the contract) and DIR/truth.parquet."""
    start = parse_month_option(start, "--start")
    files = {"panel.parquet": "synthetic panel", "truth.parquet": "synthetic truth"}
    if out_dir.is_dir():
        from segments.jobs.score import is_scoring_output

        # Beside a bank may lie what segments made of it (a tier table, scores); a folder
        # that is itself an output, or holds anything else, is not a bank's folder.
        strangers = [] if not is_scoring_output(out_dir) else ["_manifest.json"]
        strangers += sorted(
            p.name
            for p in out_dir.iterdir()
            if p.name not in files
            and not p.name.startswith(".")
            and not is_segments_table(p)
            and not is_scoring_output(p)
        )
        if strangers:
            from segments.exceptions import ConfigError, Violation

            raise ConfigError(
                [
                    Violation(
                        "--out",
                        f"{out_dir}: holds files segments did not "
                        f"write ({', '.join(strangers[:5])}); a synthetic "
                        "bank goes into a new folder or over one written "
                        "before",
                    )
                ]
            )
    for name, kind in files.items():
        check_output(
            out_dir / name,
            overwrite=overwrite,
            what="synthetic bank file",
            ours=functools.partial(is_segments_table, kind=kind),
        )
    with output_lock(out_dir / "panel.parquet", {"command": "segments synth"}):
        paths = write_bank(out_dir, customers, months, seed=seed, start=start)
    out.print(f"wrote {paths['panel']} ({customers:,} customers x {months} months, seed {seed})")
    out.print(f"wrote {paths['truth']} (persona and planted upgrade drivers per customer)")


def _load_panel_report(panel: Path, config: Path | None, gaps: str | None):
    overrides = {"panel": {"gaps": gaps}} if gaps else None
    cfg = load_config(config, overrides)
    raw = read_panel(panel, cfg.panel)
    return cfg, check_panel(raw, cfg.panel)


@app.command()
@_handles_errors
def validate(
    panel: Annotated[Path, typer.Argument(help="Panel file: .parquet or .csv(.gz).")],
    config: Annotated[
        Path | None, typer.Option(help="Experiment YAML (column map, policies).")
    ] = None,
    gaps: Annotated[str | None, typer.Option(help="Missing months: warn, error or ignore.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Check a panel against the data contract; list every violation at once."""
    _cfg, report = _load_panel_report(panel, config, gaps)
    for w in report.warnings:
        err.print(f"warning: {w}", markup=False)
    if not report.ok:
        raise PanelValidationError(report.errors, source=str(panel))
    s = report.summary
    if as_json:
        out.print(json.dumps(s, indent=2, default=str), markup=False)
        return
    out.print(f"panel {panel}: OK")
    out.print(
        f"  {s['n_rows']:,} rows, {s['n_customers']:,} customers, {s['n_months']} months "
        f"({s['first_month']} .. {s['last_month']})"
    )
    out.print(f"  columns used ({len(s['columns_used'])}): {', '.join(s['columns_used'])}")
    if s["columns_mapped"]:
        mapped = ", ".join(f"{a} -> {b}" for a, b in s["columns_mapped"].items())
        out.print(f"  columns mapped: {mapped}")
    if s["columns_ignored"]:
        ignored = ", ".join(s["columns_ignored"])
        out.print(f"  columns not in the contract (kept, unused): {ignored}")
    if s["aum_derived_from_components"]:
        out.print("  aum derived as the sum of its components")
    q = s["aum_quantiles"]
    out.print(
        f"  AUM ({s['currency']}): mean {_money(s['aum_mean'])}, "
        + ", ".join(f"{k} {_money(v)}" for k, v in q.items())
    )


def _tier_tables(tiers: pd.DataFrame, ladder, month: pd.Period) -> None:
    now = tiers[tiers[MONTH] == month]
    table = Table(title=f"Tiers in {month} (ladder {ladder.name})")
    for col in ("tier", "label", "min AUM", "customers", "share", "AUM share"):
        table.add_column(col, justify="left" if col in ("tier", "label") else "right")
    total_aum = now["aum_basis"].sum()
    for t in ladder.tiers:
        rows = now[now["tier"] == t.name]
        table.add_row(
            t.name,
            t.label_zh,
            _money(t.min_aum),
            f"{len(rows):,}",
            f"{len(rows) / max(len(now), 1):.2%}",
            f"{rows['aum_basis'].sum() / total_aum:.2%}" if total_aum else "-",
        )
    out.print(table)
    if ladder.near_bands:
        near = Table(title=f"Near-tier customers in {month}")
        for col in ("band", "next tier", "basis range", "customers", "share"):
            near.add_column(col, justify="left" if col in ("band", "next tier") else "right")
        for b in ladder.near_bands:
            n = int((now["near_band"] == b.name).sum())
            near.add_row(
                b.name,
                b.tier,
                f"{_money(b.lower)} - {_money(ladder.tiers[ladder.rank(b.tier)].min_aum)}",
                f"{n:,}",
                f"{n / max(len(now), 1):.2%}",
            )
        out.print(near)
    if ladder.hysteresis is not None:
        counts = now["tier_status"].value_counts().reindex(["active", "grace", "watch"])
        out.print("tier status: " + ", ".join(f"{k} {int(v):,}" for k, v in counts.items()))


@app.command()
@_handles_errors
def tiers(
    panel: Annotated[Path, typer.Argument(help="Panel file: .parquet or .csv(.gz).")],
    ladder: Annotated[
        str | None,
        typer.Option(
            help="Ladder: " + ", ".join(available_presets("ladders")) + ", or a YAML path."
        ),
    ] = None,
    month: Annotated[
        str | None, typer.Option(help="Month to report, YYYY-MM (default: the latest).")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the tier table (every customer-month) here.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Experiment YAML.")] = None,
    basis_window: Annotated[
        int | None, typer.Option(min=1, help="Average AUM over the last N months.")
    ] = None,
    hysteresis: Annotated[
        str | None, typer.Option(help="off, ccb, or a YAML path (default: the ladder's).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a tier table segments wrote before at --out.")
    ] = False,
) -> None:
    """Tier every customer-month; print the tier mix, near-tier counts and migration."""
    # Everything that can be checked before reading the panel is checked first.
    wanted = pd.Period(parse_month_option(month, "--month"), "M") if month else None
    cfg = load_config(config)
    hyst: Any = cfg.tiers.hysteresis
    if hysteresis is not None:
        hyst = None if hysteresis == "off" else hysteresis
    lad = load_ladder(
        ladder or cfg.tiers.ladder,
        basis_window=basis_window or cfg.tiers.basis_window,
        hysteresis=hyst,
    )
    if out_path is not None:
        inputs = [panel, *(p for p in (config, ladder, hysteresis) if p and Path(p).exists())]
        check_output(
            out_path,
            inputs,
            overwrite=overwrite,
            what="tier table",
            ours=functools.partial(is_segments_table, kind="tier table"),
        )
    frame = _validated(panel, cfg)
    table = assign_tiers(frame, lad)
    months = table[MONTH]
    target = wanted if wanted is not None else months.max()
    if not (months == target).any():
        from segments.exceptions import ConfigError, Violation

        raise ConfigError(
            [
                Violation(
                    "--month",
                    f"is {target}; the panel has no rows in it "
                    f"(months {months.min()} .. {months.max()})",
                )
            ]
        )
    _tier_tables(table, lad, target)
    previous = target - 1
    if (months == previous).any():
        mig = migration_matrix(table, previous, target)
        mt = Table(title=f"Migration {previous} -> {target} (customers in both months; rows: from)")
        mt.add_column("from \\ to")
        for c in mig.columns:
            mt.add_column(str(c), justify="right")
        for idx, row in mig.iterrows():
            mt.add_row(str(idx), *[f"{int(v):,}" for v in row])
        out.print(mt)
    summary = migration_summary(table)
    if len(summary):
        st = Table(title="Upgrades and downgrades by month (vs the month before)")
        for col in ("month", "customers", "up", "down", "up rate", "down rate"):
            st.add_column(col, justify="right")
        for m, r in summary.tail(12).iterrows():
            st.add_row(
                str(m),
                f"{int(r.n_customers):,}",
                f"{int(r.n_up):,}",
                f"{int(r.n_down):,}",
                f"{r.up_rate:.2%}",
                f"{r.down_rate:.2%}",
            )
        out.print(st)
    if out_path is not None:
        storable = table.assign(month=table[MONTH].astype(str))
        with output_lock(out_path, {"command": "segments tiers", "input": str(panel)}):
            write_table(storable, out_path, kind="tier table")
        out.print(f"wrote {out_path} ({len(table):,} customer-months)")


train_app = typer.Typer(help="Train models (tracked in MLflow).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def _validated(panel: Path, cfg) -> pd.DataFrame:
    raw = read_panel(panel, cfg.panel)
    report = check_panel(raw, cfg.panel)
    for w in report.warnings:
        err.print(f"warning: {w}", markup=False)
    if not report.ok:
        raise PanelValidationError(report.errors, source=str(panel))
    assert report.frame is not None
    return report.frame


def _print_frame(df: pd.DataFrame, title: str, fmt: Callable[[Any], str] = str) -> None:
    t = Table(title=title)
    t.add_column(str(df.index.name or ""))
    for c in df.columns:
        t.add_column(str(c), justify="right")
    for idx, row in df.iterrows():
        t.add_row(str(idx), *[fmt(v) for v in row])
    out.print(t)


PanelOption = Annotated[Path, typer.Option(help="Panel file: .parquet or .csv(.gz).")]
ExperimentOption = Annotated[
    Path | None,
    typer.Option(
        help="Experiment YAML (experiments/NAME.yaml); the MLflow experiment is named after it."
    ),
]


def _print_run(result: Any, cfg: Any) -> None:
    from segments.mlops.tracking import tracking_uri

    out.print(f"MLflow run {result.run_id} in experiment '{cfg.name}' at {tracking_uri()}")
    out.print(f"model: {result.model_uri}")
    if result.model_version:
        name = result.registered_model
        out.print(
            f"registered: {name} version {result.model_version} (alias challenger); "
            f"promote with: segments promote {name} --version {result.model_version}"
        )


@train_app.command("groups")
@_handles_errors
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
    ref = None
    if reference is not None:
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
        ref = table.set_index("customer_id")[reference_column]
    from segments.exceptions import ConfigError, Violation

    prev_model = None
    if previous is not None:  # the model is checked before the panel is read
        from segments import StrategicGroups
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
    frame = _validated(panel, cfg)
    month = pd.Period(as_of, "M") if as_of else frame[MONTH].max()
    history = int((frame[MONTH].drop_duplicates() <= month).sum())
    windows = cfg.features.windows
    if 0 < history < min(windows):  # every windowed feature would be empty
        raise ConfigError(
            [
                Violation(
                    "--as-of",
                    f"{month}: the panel has {history} month(s) "
                    f"up to it, fewer than the shortest feature window "
                    f"({min(windows)} months)",
                    hint="train on a later month",
                )
            ]
        )
    if 0 < history < max(windows):
        warnings.warn(
            SegmentsWarning(
                f"the panel has {history} month(s) up to {month}: features over "
                f"{', '.join(str(w) for w in windows if w > history)} months summarise only "
                "those"
            ),
            stacklevel=2,
        )
    result = train_groups(frame, cfg, as_of=as_of, reference=ref, previous=prev_model)
    log_groups(result, frame)
    model = result.model
    rep = model.k_selection_report_
    out.print(
        f"strategic groups as of {result.as_of}: {len(result.features):,} customers, "
        f"{model.n_groups_} groups ({model.algorithm})"
    )
    out.print(f"  k rule: {rep['rule']}")
    if model.k_selection_ is not None:
        ks = model.k_selection_.set_index("k")
        _print_frame(ks, "k selection", lambda v: f"{v:.3f}" if isinstance(v, float) else str(v))
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
            _money(r.get("aum_median", float("nan"))),
        )
    out.print(groups)
    counts = result.tier_group["counts"]
    _print_frame(counts, f"Tier x group: customers ({result.as_of})", lambda v: f"{int(v):,}")
    near = result.tier_group["near_tier"]
    _print_frame(near, "Tier x group: near-tier customers", lambda v: f"{int(v):,}")
    _print_run(result, cfg)


@train_app.command("upgrade")
@_handles_errors
def train_upgrade_cmd(
    panel: PanelOption,
    config: ExperimentOption = None,
) -> None:
    """Train the upgrade model; evaluate it out of time against the rule of thumb."""
    from segments.jobs.log_training import log_upgrade
    from segments.jobs.train import train_upgrade

    cfg = load_config(config)
    frame = _validated(panel, cfg)
    result = log_upgrade(train_upgrade(frame, cfg), frame)
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
    labelled = int(counts["positives"].sum() + counts["negatives"].sum())
    out.print(
        f"  labelled customer-months: {labelled:,}"
        f" ({int(counts['positives'].sum()):,} upgrades), censored "
        f"{int(counts['censored'].sum()):,}; trees kept {result.model.best_iteration_}"
    )
    rows = [
        "roc_auc",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
        "lift_top5",
        "lift_top10",
        "lift_top20",
        "capture_top10",
    ]
    for segment in ["all", *sorted(s for s in result.metrics["segment"].unique() if s != "all")]:
        comp = result.comparison(segment).reindex(rows)
        _print_frame(
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
    _print_run(result, cfg)


def _text(value: Any) -> str:
    """A cell for a table: '-' for None, NaN and empty."""
    return "-" if value is None or value != value or value == "" else str(value)


def _print_report(report: Any) -> None:
    checks = Table(title=f"Promotion checks: {report.name} version {report.version}")
    for c in ("check", "result", "detail"):
        checks.add_column(c)
    for r in report.checks.itertuples():
        checks.add_row(r.check, "pass" if r.passed else "FAIL", r.detail)
    out.print(checks)

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "-" if v != v else f"{v:,.0f}" if v.is_integer() and abs(v) >= 1 else f"{v:.4f}"
        return str(v)

    _print_frame(
        report.logged, "Challenger vs champion: metrics logged by their training runs", fmt
    )
    if report.same_months is not None:
        title = (
            "On the challenger's held-out months"
            if report.kind == "upgrade"
            else "On the same customers"
        )
        _print_frame(report.same_months, title, fmt)
    for note in report.notes:
        out.print(f"  note: {note}", markup=False)


@app.command()
@_handles_errors
def promote(
    model: Annotated[str, typer.Argument(help="Registered model name, e.g. demo-upgrade.")],
    version: Annotated[int | None, typer.Option(help="The version to make champion.")] = None,
    challenger: Annotated[
        bool, typer.Option("--challenger", help="Promote the version aliased challenger.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "",
    config: ExperimentOption = None,
    panel: Annotated[
        Path | None,
        typer.Option(
            help="A panel to compare challenger and champion on the same held-out months."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Check and compare only; change nothing.")] = False,
) -> None:
    """Move the champion alias to a version after checks; log the evidence and the change."""
    from segments.exceptions import ConfigError, PromotionConflict, PromotionError, Violation
    from segments.mlops.promotion import promote as do_promote
    from segments.mlops.registry import CHALLENGER, aliases

    check_model_name(model, "MODEL")
    if (version is None) == (not challenger):
        raise ConfigError([Violation("--version", "give either --version N or --challenger")])
    if version is None:
        version = aliases(model).get(CHALLENGER)
        if version is None:
            raise ConfigError([Violation("--challenger", f"{model} has no challenger alias")])
    cfg = load_config(config)
    frame = _validated(panel, cfg) if panel is not None else None
    try:
        report = do_promote(model, version, reason=reason, config=cfg, panel=frame, dry_run=dry_run)
    except PromotionError as exc:
        if exc.report is not None:
            _print_report(exc.report)
            out.print(f"evidence logged in MLflow run {exc.report.evidence_run_id}")
        if isinstance(exc, PromotionConflict):
            out.print(
                "another change of this model got there first; nothing was changed: "
                f"see segments history {model}"
            )
        raise
    _print_report(report)
    if dry_run:
        bad = report.failed
        out.print(
            "dry run: "
            + (f"{len(bad)} check(s) would fail" if bad else "every check passes")
            + "; nothing changed"
        )
        return
    out.print(
        f"{model}: champion {('v' + report.champion) if report.champion else '(none)'}"
        f" -> v{report.version}; evidence in MLflow run {report.evidence_run_id}"
    )
    out.print(f"load it with models:/{model}@champion")


@app.command()
@_handles_errors
def history(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON.")] = False,
) -> None:
    """Print the audit log of a model's alias changes (who, when, from, to, why)."""
    from segments.mlops.registry import aliases
    from segments.mlops.registry import history as read_history

    check_model_name(model, "MODEL")
    events = read_history(model)
    if as_json:
        out.print(events.to_json(orient="records", indent=2), markup=False)
        return
    table = Table(title=f"Alias history of {model}")
    for c in (
        "#",
        "when (UTC)",
        "by",
        "event",
        "alias",
        "from",
        "to",
        "reason",
        "AUC / ARI",
        "evidence run",
    ):
        table.add_column(c)
    for n, r in events.iterrows():
        m = r["metrics"] or {}
        key = m.get("model.roc_auc", m.get("stability_ari_mean"))
        table.add_row(
            str(n),
            str(r["at"])[:19].replace("T", " "),
            str(r["by"]),
            str(r["event"]),
            str(r["alias"]),
            _text(r["from_version"]),
            _text(r["to_version"]),
            _text(r["reason"]),
            "-" if key is None else f"{key:.3f}",
            _text(r["evidence_run_id"]),
        )
    out.print(table)
    now = aliases(model)
    out.print(
        "aliases now: " + (", ".join(f"{a} -> v{v}" for a, v in sorted(now.items())) or "none")
    )


@app.command()
@_handles_errors
def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 5000,
    host: Annotated[
        str, typer.Option(help="Interface to bind; the default serves this machine only.")
    ] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="Server worker processes.")] = 1,
) -> None:
    """Start the MLflow UI on the project's tracking store and print its URL."""
    import os
    import subprocess

    from segments.mlops.tracking import tracking_uri

    uri = tracking_uri()
    if uri.startswith(("http://", "https://", "databricks")):
        out.print(f"the tracking store is a server: open {uri} in a browser")
        return
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"warning: binding the UI to {host} serves it beyond this machine", markup=False)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    out.print(f"MLflow UI for {uri}")
    out.print(f"  http://{'127.0.0.1' if host == 'localhost' else host}:{port}  (Ctrl-C stops it)")
    proc = subprocess.Popen(cmd, env=env)
    try:
        code = proc.wait()
    except INTERRUPTS:  # Ctrl-C stops the UI: not an error
        proc.terminate()
        code = proc.wait()
    if code not in (0, -15, 130):
        raise typer.Exit(code)


def _print_scored(result: Any) -> None:
    """The summary of a finished scoring job: rows, tiers, groups, drift, the MLflow run."""
    m = result.manifest
    out.print(
        f"wrote {m['rows']:,} customers to {result.out} ({len(m['parts'])} parts; "
        f"{m['scored_upgrade']:,} with an upgrade probability)"
    )
    out.print("  tiers: " + ", ".join(f"{k} {v:,}" for k, v in m["tiers"].items()))
    out.print("  groups: " + ", ".join(f"{k} {v:,}" for k, v in m["segments"].items()))
    d = m["drift"]
    if d.get("checked"):
        out.print(
            f"  drift: {d['checked']} PSIs; {d['moderate']} moderate, "
            f"{d['significant']} significant; largest {d['max_psi']:.3f} "
            f"({d['max_psi_column']})"
        )
    else:
        err.print(
            "warning: the models carry no training reference; drift not measured", markup=False
        )
    if result.run_id:
        from segments.mlops.tracking import tracking_uri

        out.print(f"MLflow run {result.run_id} at {tracking_uri()} (segments ui to browse)")


@app.command()
@_handles_errors
def score(
    panel: PanelOption,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Output folder (parts, _manifest.json, _drift.csv).")
    ],
    as_of: Annotated[
        str | None,
        typer.Option(help="The month to score, YYYY-MM (default: the panel's last month)."),
    ] = None,
    config: ExperimentOption = None,
    groups_model: Annotated[
        str | None,
        typer.Option(help="Groups model URI (default models:/<experiment>-groups@champion)."),
    ] = None,
    upgrade_model: Annotated[
        str | None,
        typer.Option(help="Upgrade model URI (default models:/<experiment>-upgrade@champion)."),
    ] = None,
    engine: Annotated[
        str | None, typer.Option(help="local or spark (default: scoring.engine).")
    ] = None,
    batch_customers: Annotated[
        int | None,
        typer.Option(min=1, help="Customers per batch (default: scoring.batch_customers)."),
    ] = None,
    master: Annotated[
        str | None,
        typer.Option(help="Spark master URL (default SEGMENTS_SPARK_MASTER or local[2])."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
    track: Annotated[bool, typer.Option(help="Log the scoring run to MLflow.")] = True,
    scored_at: Annotated[
        str | None, typer.Option(help="Timestamp for the rows (backfills; default now).")
    ] = None,
    fail_on_drift: Annotated[
        bool | None, typer.Option(help="Exit 1 after writing when a PSI passes scoring.psi_alert.")
    ] = None,
    allow_short_history: Annotated[
        bool,
        typer.Option(
            help="Score an as-of month with fewer "
            "months of history than the feature "
            "windows; the short features are named "
            "in the manifest."
        ),
    ] = False,
) -> None:
    """Score every customer: tier, group, upgrade probability, reasons; watch drift."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from segments import engines
    from segments.exceptions import ConfigError, DriftError, Violation
    from segments.jobs.score import load_scorer, prepare_scoring, run_scoring

    # Everything that can be known before reading the data fails here, before any work.
    if as_of is not None:
        as_of = parse_month_option(as_of)
    if scored_at is not None:
        from datetime import datetime

        try:
            stamp = datetime.fromisoformat(scored_at)
        except ValueError:
            stamp = None
        if stamp is None or stamp.tzinfo is None:
            raise ConfigError(
                [
                    Violation(
                        "--scored-at",
                        f"is {scored_at!r}; expected an ISO "
                        "8601 time with its zone, e.g. "
                        "2026-01-01T00:00:00+00:00",
                    )
                ]
            )
    for option, uri in (("--groups-model", groups_model), ("--upgrade-model", upgrade_model)):
        if uri is not None and not uri.strip():
            raise ConfigError(
                [
                    Violation(
                        option,
                        "is empty; give a model URI or leave the option out for the champion",
                    )
                ]
            )
    cfg = load_config(config)
    sc = cfg.scoring
    engines.get(engine or sc.engine, option="--engine" if engine else "scoring.engine")
    engine = engine or sc.engine  # an unknown engine failed above, before the models load
    scorer = load_scorer(cfg, groups_uri=groups_model, upgrade_uri=upgrade_model)
    plan = prepare_scoring(
        panel,
        as_of,
        out_dir,
        scorer,
        overwrite=overwrite,
        allow_short_history=allow_short_history,
        engine=engine,
    )
    month = plan.month
    out.print(
        f"scoring {panel} as of {month} with {scorer.groups_model} and "
        f"{scorer.upgrade_model} ({engine})"
    )
    if plan.short_features:
        err.print(
            f"warning: {plan.history_months} month(s) of history up to {month}: "
            f"{len(plan.short_features)} feature(s) are short ("
            f"{', '.join(plan.short_features[:5])}); named in the manifest",
            markup=False,
        )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:  # no bar in a log
        tasks: dict[str, Any] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        job = plan.with_options(
            batch_customers=batch_customers or sc.batch_customers,
            scored_at=scored_at,
            progress=tick,
            options={"master": master or sc.spark_master},
        )
        result = run_scoring(
            job,
            cfg,
            track=track,
            fail_on_drift=fail_on_drift,
            notify=lambda note: err.print(note, markup=False),
        )
    _print_scored(result)
    if result.fail:
        raise DriftError(
            f"output written to {result.out}, but the population drifted: {result.drift_alert}"
        )
    if result.drift_alert:
        err.print(f"warning: population drift: {result.drift_alert}", markup=False)


@app.command()
@_handles_errors
def ladders(
    name: Annotated[str | None, typer.Argument(help="A preset name or YAML path to show.")] = None,
) -> None:
    """List the packaged ladders, or show one."""
    names = [name] if name else available_presets("ladders")
    for n in names:
        lad = load_ladder(n)
        rule = (
            "off"
            if lad.hysteresis is None
            else (
                f"watch after {lad.hysteresis.watch_after}, down after "
                f"{lad.hysteresis.downgrade_after} ({lad.hysteresis.downgrade_to})"
            )
        )
        out.print(
            f"[bold]{lad.name}[/bold]: {lad.description} (basis: {lad.basis_window}-month "
            f"average; hysteresis: {rule})"
        )
        for t in lad.tiers:
            extra = "".join(
                f" or {c.agg} {c.column} over {c.window}m >= {_money(c.min)}" for c in t.any_of
            )
            out.print(
                f"  {t.name:<14} {t.label_zh:<8} AUM >= {_money(t.min_aum)}{extra}", markup=False
            )
        for b in lad.near_bands:
            out.print(
                f"  near band {b.name}: {_money(b.lower)} <= AUM < threshold of {b.tier}",
                markup=False,
            )


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def main() -> None:
    """Entry point of the ``segments`` console script."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _raise_interrupted)
    try:
        app(prog_name="segments", standalone_mode=True)
    except Interrupted as exc:  # outside a command (while parsing, or while printing)
        err.print(f"stopped by {signal.Signals(exc.signum).name}", markup=False)
        sys.exit(128 + exc.signum)
    except SystemExit as exc:
        sys.exit(exc.code)
