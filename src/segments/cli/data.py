"""The data commands: ``synth``, ``validate``, ``tiers``, ``ladders``."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from segments.cli.common import (
    app,
    err,
    handles_errors,
    money,
    out,
    validated_panel,
)
from segments.core.config.experiment import load_config
from segments.core.config.presets import available_presets
from segments.core.data.months import check_month_in, parse_month_option
from segments.core.data.outputs import check_output, is_segments_table, output_lock, write_table
from segments.core.data.panel import MONTH, read_panel
from segments.core.data.synthetic import write_bank
from segments.core.data.validation import check_panel
from segments.core.features.own import own_features
from segments.core.tiers.assign import assign_tiers, migration_matrix, migration_summary
from segments.core.tiers.ladders import load_ladder
from segments.exceptions import (
    PanelValidationError,
)


@app.command()
@handles_errors
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
    with own_features(cfg.features.columns):  # the bank's own columns are checked too
        return cfg, check_panel(raw, cfg.panel)


@app.command()
@handles_errors
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
        f"  AUM ({s['currency']}): mean {money(s['aum_mean'])}, "
        + ", ".join(f"{k} {money(v)}" for k, v in q.items())
    )


def _tier_tables(tiers: pd.DataFrame, ladder, month: pd.Period, aum: pd.Series) -> None:
    """The month's tier mix, its near-tier bands and, on a points ladder, the points by
    component (``aum``: the panel's AUM per customer that month)."""
    now = tiers[tiers[MONTH] == month]
    unit = ladder.basis_unit
    table = Table(title=f"Tiers in {month} (ladder {ladder.name})")
    for col in ("tier", "label", f"min {unit}", "customers", "share", "AUM share"):
        table.add_column(col, justify="left" if col in ("tier", "label") else "right")
    money_now = aum.reindex(now["customer_id"]).to_numpy()
    total_aum = np.nansum(money_now)
    for t in ladder.tiers:
        mask = (now["tier"] == t.name).to_numpy()
        table.add_row(
            t.name,
            t.label_zh,
            _basis_text(ladder, t.threshold),
            f"{int(mask.sum()):,}",
            f"{mask.sum() / max(len(now), 1):.2%}",
            f"{np.nansum(money_now[mask]) / total_aum:.2%}" if total_aum else "-",
        )
    out.print(table)
    if ladder.points_columns:
        pts = now.groupby("tier", observed=False)[ladder.points_columns].mean()
        pt = Table(title=f"Mean points by component in {month}")
        pt.add_column("tier")
        for c in ladder.components:
            pt.add_column(c.name, justify="right")
        for tier, row in pts.iterrows():
            pt.add_row(str(tier), *("-" if pd.isna(v) else f"{v:,.1f}" for v in row))
        out.print(pt)
    if ladder.near_bands:
        near = Table(title=f"Near-tier customers in {month}")
        for col in ("band", "next tier", f"basis range ({unit})", "customers", "share"):
            near.add_column(col, justify="left" if col in ("band", "next tier") else "right")
        for b in ladder.near_bands:
            n = int((now["near_band"] == b.name).sum())
            near.add_row(
                b.name,
                b.tier,
                f"{_basis_text(ladder, b.lower)} - "
                f"{_basis_text(ladder, ladder.tiers[ladder.rank(b.tier)].threshold)}",
                f"{n:,}",
                f"{n / max(len(now), 1):.2%}",
            )
        out.print(near)
    if ladder.hysteresis is not None:
        counts = now["tier_status"].value_counts().reindex(["active", "grace", "watch"])
        out.print("tier status: " + ", ".join(f"{k} {int(v):,}" for k, v in counts.items()))


@app.command()
@handles_errors
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
    frame = validated_panel(panel, cfg)
    table = assign_tiers(frame, lad)
    months = table[MONTH]
    target = wanted if wanted is not None else months.max()
    check_month_in(months, target)
    in_month = frame[frame[MONTH] == target]
    _tier_tables(table, lad, target, in_month.set_index("customer_id")["aum"])
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


@app.command()
@handles_errors
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
        out.print(f"[bold]{lad.name}[/bold]: {lad.description} ({lad.kind} ladder)")
        for line in [*_basis_lines(lad), f"hysteresis: {rule}"]:
            out.print(f"  {line}", markup=False)
        for t in lad.tiers:
            extra = "".join(
                f" or {c.agg} {c.column} over {c.window}m >= {money(c.min)}" for c in t.any_of
            )
            basis = "AUM" if lad.kind == "aum" else "points"
            out.print(
                f"  {t.name:<14} {t.label_zh:<8} {basis} >= {_basis_text(lad, t.threshold)}{extra}",
                markup=False,
            )
        for b in lad.near_bands:
            share = f" ({b.ratio:.0%} of it)" if b.ratio is not None else ""
            out.print(
                f"  near band {b.name}: {_basis_text(lad, b.lower)} <= basis < threshold of "
                f"{b.tier}{share}",
                markup=False,
            )


def _basis_text(lad, value: float) -> str:
    """A threshold as text: money without decimals, points with any they have."""
    return money(value) if lad.kind == "aum" else f"{value:,.10g}"


def _basis_lines(lad) -> list[str]:
    """How a ladder's basis is made, one line per part."""
    if lad.kind == "aum":
        return [f"basis: AUM, {lad.basis_window}-month average ({lad.currency})"]
    if lad.kind == "points":
        head = "basis: the sum of the components' points"
    else:
        keep = (
            f"points expire after {lad.expiry_months} months"
            if lad.decay is None
            else f"the balance loses {lad.decay:.0%} a month"
        )
        head = f"basis: a balance of points earned each month from activities; {keep}"
    lines = [head]
    for c in lad.components:
        how = c.column if lad.kind == "growth" else f"{c.agg} {c.column} over {c.window}m"
        cap = (
            ""
            if c.cap is None
            else f", at most {c.cap:g}" + (" a month" if lad.kind == "growth" else "")
        )
        word = "point" if c.points == 1 else "points"
        lines.append(f"- {c.name}: {c.points:g} {word} per {c.per:,g} of {how}{cap}")
    return lines
