"""The growth and plan commands: where each customer's assets come from (the mix per tier,
group and branch), and the service plan a scoring output turns into."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from segments.cli.common import (
    ExperimentOption,
    app,
    err,
    handles_errors,
    money,
    out,
    validated_panel,
)
from segments.core.config.experiment import load_config
from segments.core.config.presets import available_presets
from segments.core.data.months import parse_month_option
from segments.core.data.outputs import check_output, is_segments_table, output_lock, write_table
from segments.core.growth import BY_CHOICES, SOURCES, GrowthReport, growth_report, growth_table
from segments.core.scoring.output import is_scoring_output, read_output
from segments.core.tiers.ladders import load_ladder
from segments.exceptions import ConfigError, Violation

_TITLES = {
    "tier": "tier",
    "group": "strategic group",
    "branch": "branch",
    "tier_group": "tier x strategic group",
}


def _groups(scores: Path | None) -> pd.Series | None:
    if scores is None:
        return None
    frame = read_output(scores)
    return frame.set_index("customer_id")["segment_name"].astype("string")


#: Rows printed per mix (the largest keys first): a bank has thousands of branches.
MAX_ROWS = 25


def _mix_table(report: GrowthReport, by: str) -> None:
    mix = report.mixes[by]
    shown = mix if len(mix) <= MAX_ROWS or by == "tier" else mix.nlargest(MAX_ROWS, "customers")
    title = f"Where assets came from, {report.window} months to {report.month}, by {_TITLES[by]}"
    if len(shown) < len(mix):
        title += f" ({len(shown)} of {len(mix)}, most customers first)"
    table = Table(title=title, caption="main source: share of customers whose largest source it is")
    for name in mix.index.names:
        table.add_column(str(name))
    for col in ("customers", "AUM change", *SOURCES, "residual"):
        table.add_column(col, justify="right")
    table.add_column("main source\nacc / mig / app / none", justify="right")
    for key, row in shown.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        cells = [str(k) for k in keys]
        cells.append(f"{int(row['customers']):,}")
        for col in ("aum_change", *(f"growth_{s}" for s in SOURCES), "growth_residual"):
            cells.append("unknown" if pd.isna(row[col]) else money(row[col]))
        cells.append(" / ".join(f"{row[f'share_{s}']:.0%}" for s in (*SOURCES, "none")))
        table.add_row(*cells)
    out.print(table)


@app.command()
@handles_errors
def growth(
    panel: Annotated[Path, typer.Argument(help="Panel file: .parquet or .csv(.gz).")],
    month: Annotated[
        str | None, typer.Option(help="Month the windows end in, YYYY-MM (default: the latest).")
    ] = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            help="Also report the mix by: group, branch or tier_group (repeatable); the mix "
            "by tier is always printed."
        ),
    ] = None,
    window: Annotated[int, typer.Option(min=1, help="Months of the mix (3, 6, 12...).")] = 12,
    scores: Annotated[
        Path | None,
        typer.Option(help="A scoring output (segments score --out): each customer's group."),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Write the growth sources (every customer-month) here."),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Experiment YAML.")] = None,
    ladder: Annotated[
        str | None,
        typer.Option(
            help="Ladder: " + ", ".join(available_presets("ladders")) + ", or a YAML path."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a growth table segments wrote before at --out.")
    ] = False,
) -> None:
    """Split every customer-month's AUM change into accumulation, migration from other banks,
    appreciation and a residual; print the mix of sources per tier (and group or branch)."""
    wanted = pd.Period(parse_month_option(month, "--month"), "M") if month else None
    chosen = ("tier", *(b for b in (by or []) if b != "tier"))
    bad = [b for b in chosen if b not in BY_CHOICES]
    if bad:
        raise ConfigError(
            [Violation("--by", f"has {', '.join(bad)}; expected {', '.join(BY_CHOICES)}")]
        )
    needs_groups = any(b in ("group", "tier_group") for b in chosen)
    if needs_groups and scores is None:
        raise ConfigError(
            [Violation("--by", "group needs --scores: a scoring output with each customer's group")]
        )
    if scores is not None and not is_scoring_output(scores):
        raise ConfigError([Violation("--scores", f"{scores} is not a segments scoring output")])
    cfg = load_config(config)
    lad = load_ladder(
        ladder or cfg.tiers.ladder,
        basis_window=cfg.tiers.basis_window,
        hysteresis=cfg.tiers.hysteresis,
    )
    if out_path is not None:
        inputs = [panel, *(p for p in (config, ladder, scores) if p and Path(p).exists())]
        check_output(
            out_path,
            inputs,
            overwrite=overwrite,
            what="growth table",
            ours=functools.partial(is_segments_table, kind="growth table"),
        )
    frame = validated_panel(panel, cfg)
    try:
        report = growth_report(
            frame, lad, month=wanted, window=window, by=chosen, groups=_groups(scores)
        )
    except ConfigError as exc:  # the API's argument names, as the options they came from
        options = {"month": "--month", "window": "--window", "by": "--by"}
        raise ConfigError(
            [
                Violation(options.get(v.column, v.column), v.problem, hint=v.hint)
                for v in exc.violations
            ]
        ) from None
    for note in report.notes:
        err.print(f"note: {note}", markup=False)
    for b in chosen:
        _mix_table(report, b)
    if out_path is not None:
        with output_lock(out_path, {"command": "segments growth", "input": str(panel)}):
            write_table(growth_table(report), out_path, kind="growth table")
        out.print(f"wrote {out_path} ({len(report.growth):,} customer-months)")


@app.command()
@handles_errors
def plan(
    scores: Annotated[Path, typer.Option(help="A scoring output folder (segments score --out).")],
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Plan folder: plan.parquet, staffing.csv, levers_*.csv, summary.md.",
        ),
    ],
    config: ExperimentOption = None,
    managers: Annotated[
        Path | None,
        typer.Option(
            help="CSV of managers available: branch_id, service_model, managers "
            "(default: service.managers; none: the managers each branch needs)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a plan segments wrote before.")] = False,
    track: Annotated[bool, typer.Option(help="Log the planning run to MLflow.")] = True,
) -> None:
    """Turn scores into a service plan: each customer's service model, managers per branch
    against their capacity, and the near-tier call list within it."""
    from segments.jobs.plan import prepare_plan, run_plan

    cfg = load_config(config)
    job = prepare_plan(scores, out_path, cfg, managers=managers, overwrite=overwrite)
    result, run_id = run_plan(job, track=track, experiment=cfg.name)
    totals = result.totals(job.service)
    table = Table(title=f"Service plan {result.as_of} (service map {job.service.name})")
    table.add_column("service model")
    for col in ("customers", "managers needed", "available", "short", "contacts/month",
                "prospects", "outside capacity"):  # fmt: skip
        table.add_column(col, justify="right")
    for model, row in totals.iterrows():
        table.add_row(
            f"{model} {row['label_zh']}",
            f"{int(row['customers']):,}",
            f"{int(row['managers_needed']):,}",
            "-" if pd.isna(row["managers_available"]) else f"{int(row['managers_available']):,}",
            f"{int(row['shortfall']):,}",
            f"{row['contacts_per_month']:,.0f}",
            f"{int(row['prospects']):,}",
            f"{int(row['prospects_outside']):,}",
        )
    out.print(table)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    mix = result.levers_by_group
    if len(mix):
        out.print(
            "levers on the call list: "
            + ", ".join(
                f"{lever} {int((result.customers['lever'] == lever).sum()):,}"
                for lever in (c.removeprefix("share_") for c in mix.columns[1:])
            )
        )
    out.print(f"wrote {job.out} ({len(result.customers):,} customers; summary.md)")
    if run_id:
        from segments.mlops.tracking import tracking_uri

        out.print(f"MLflow run {run_id} at {tracking_uri()} (segments ui to browse)")
