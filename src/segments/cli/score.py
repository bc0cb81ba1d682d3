"""``segments score``: the batch scoring job, from the command line."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from segments.cli.common import (
    ExperimentOption,
    PanelOption,
    app,
    err,
    handles_errors,
    out,
)
from segments.core.config.experiment import load_config
from segments.core.data.months import parse_month_option, parse_timestamp


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
@handles_errors
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
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Local worker processes (default: scoring.workers)."),
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
    from segments import engines
    from segments.exceptions import DriftError
    from segments.jobs.score import load_scorer, prepare_scoring, run_scoring

    # Everything that can be known before reading the data fails here, before any work.
    if as_of is not None:
        as_of = parse_month_option(as_of)
    _check_options(scored_at, groups_model, upgrade_model)
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
    with _progress() as tick:
        job = plan.with_options(
            batch_customers=batch_customers or sc.batch_customers,
            scored_at=scored_at,
            progress=tick,
            options={"master": master or sc.spark_master, "workers": workers or sc.workers},
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


def _check_options(scored_at: str | None, *uris_by_option: str | None) -> None:
    """Options known to be wrong before anything is read: a zoneless or bad ``--scored-at``,
    an empty model URI."""
    from segments.exceptions import ConfigError, Violation

    if scored_at is not None:
        parse_timestamp(scored_at)
    options = ("--groups-model", "--upgrade-model")
    for option, uri in zip(options, uris_by_option, strict=True):
        if uri is not None and not uri.strip():
            raise ConfigError(
                [
                    Violation(
                        option,
                        "is empty; give a model URI or leave the option out for the champion",
                    )
                ]
            )


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per stage on a terminal, nothing in a log; yields the tick callback."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        tasks: dict[str, Any] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield tick
