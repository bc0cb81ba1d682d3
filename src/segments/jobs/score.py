"""The batch scoring job: check it, run it on an engine, publish it, track it in MLflow.

A job is checked before any work (:func:`prepare_scoring`: the month, the input, the
columns the models need, history, the output), then runs on an engine
(:mod:`segments.engines`: ``local`` streams buckets of whole customers in bounded memory,
``spark`` runs the same pure function per group of customers) under an exclusive lock on its
output (:func:`execute`). :func:`run_scoring` adds the MLflow scoring run around it: started
with the job (a resumed job keeps its run), ended ``KILLED`` on an interrupt and ``FAILED`` on
an error, logged when the output is published, and decides the exit on drift.

Every engine builds the output in ``OUT.partial/`` and renames it to ``OUT`` in one step
(:func:`publish`), with the same manifest (:func:`make_manifest`). The pieces are documented
where they live: the per-batch function in :mod:`segments.core.scoring.batch`, the output
contract in :mod:`segments.core.scoring.output`, the rank rule in
:mod:`segments.core.upgrade.ranks`, the model loading in :mod:`segments.mlops.scorer`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from segments import engines
from segments.core.config.sections import ScoringConfig
from segments.core.data.months import parse_month_option
from segments.core.data.outputs import output_lock
from segments.core.data.panel import AUM_COMPONENTS, MONTH, PanelConfig, PanelInput, inspect_panel
from segments.core.features.own import own_features
from segments.core.scoring.batch import Scorer, score_batch
from segments.core.scoring.output import (
    OUTPUT_COLUMNS,
    ScoreResult,
    is_scoring_output,
    output_schema,
    read_output,
    schema_table,
    validate_output,
)
from segments.core.tiers.assign import check_ladder_history
from segments.exceptions import INTERRUPTS, ConfigError, PanelValidationError, Violation
from segments.jobs.contract import (
    ScoringJob,
    digest_input,
    job_identity,
    make_manifest,
    publish,
)
from segments.mlops.scorer import ModelContractError, load_scorer

__all__ = [
    "OUTPUT_COLUMNS",
    "ModelContractError",
    "ScoreResult",
    "Scorer",
    "ScoringJob",
    "digest_input",
    "execute",
    "is_scoring_output",
    "job_identity",
    "last_month",
    "load_scorer",
    "make_manifest",
    "output_schema",
    "prepare_scoring",
    "publish",
    "read_output",
    "run_scoring",
    "schema_table",
    "score_batch",
    "score_local",
    "validate_output",
]


def last_month(path: str | os.PathLike[str], panel: PanelConfig | None = None) -> str:
    """The latest month in a panel input (reads the month column only, batch by batch)."""
    panel = panel or PanelConfig()
    months = inspect_panel(path, panel, months=True).months or ()
    if not months:
        raise PanelValidationError(
            [Violation(MONTH, "has no months: the input has no rows")], source=str(path)
        )
    return str(months[-1])


def _missing_columns(found: PanelInput, scorer: Scorer) -> tuple[dict[str, list[str]], dict]:
    """Contract columns the models' features need but the input lacks, and the specs."""
    from segments.core.features import feature_spec
    from segments.core.upgrade.labels import TIER_FEATURES

    contract = {scorer.panel.column_map.get(c, c) for c in found.columns}
    specs = {}
    ladder_features = {*TIER_FEATURES, *scorer.ladder.points_columns}
    for name in scorer.features:
        if name in ladder_features:  # the ladder's (its columns are checked with it)
            continue
        with contextlib.suppress(KeyError):
            specs[name] = feature_spec(name, scorer.windows)
    derived = {"aum"} if contract & set(AUM_COMPONENTS) else set()  # aum: its components' sum
    missing: dict[str, list[str]] = {}
    needs = [(col, name) for name, spec in specs.items() for col in spec.sources]
    needs += [(c.column, f"ladder {scorer.ladder.name}") for c in scorer.ladder.components]
    for col, what in needs:
        if col not in contract | derived:
            missing.setdefault(col, []).append(what)
    return missing, specs


def _history(
    first: pd.Period, month: str, specs: Mapping[str, Any], allow_short: bool, ladder: Any
) -> tuple[int, tuple[str, ...]]:
    """Months of history up to ``month`` and the features whose window is longer (an
    error unless ``allow_short``, as is a ladder's basis window longer than the history)."""
    history = pd.Period(month, "M").ordinal - first.ordinal + 1
    if not allow_short:
        check_ladder_history(ladder, history)
    short = tuple(n for n, spec in specs.items() if spec.window > history)
    if short and not allow_short:
        raise ConfigError(
            [
                Violation(
                    "--as-of",
                    f"{month}: the panel has {history} month(s) up to it (from {first}), "
                    f"fewer than the windows of {len(short)} model feature(s) ("
                    f"{', '.join(short[:5])}{', ...' if len(short) > 5 else ''})",
                    hint="score a later month, or pass --allow-short-history to score anyway with "
                    "those features named as short in the manifest",
                )
            ]
        )
    return history, short


def prepare_scoring(
    panel_path: str | os.PathLike[str],
    as_of: str | None,
    out: str | os.PathLike[str],
    scorer: Scorer,
    *,
    overwrite: bool = False,
    allow_short_history: bool = False,
    engine: str = "local",
) -> ScoringJob:
    """Check everything about a scoring job that can be known before reading the data.

    In this order, each a named error and nothing written: the as-of month's form; the
    input (readable, one schema across parts, the contract's columns, its months, what the
    engine can read, the as-of month present); the own columns the configuration declares
    (``features.columns``, :attr:`Scorer.own`); the columns the models' features need;
    enough history for the feature windows; the output (not an input, not inside or around
    one, not the working folder, replaced only when it is segments' own output and
    ``overwrite`` is set, writable).

    Parameters
    ----------
    panel_path : path
        Parquet file or folder of parts, or CSV (local engine only).
    as_of : str or None
        ``YYYY-MM``; None takes the input's last month.
    out : path
        The output folder.
    scorer : Scorer
    overwrite : bool, default False
    allow_short_history : bool, default False
        Score although the panel has fewer months up to ``as_of`` than a model feature's
        window; the short features are named in the manifest.
    engine : str, default "local"
        An engine of :mod:`segments.engines`.

    Returns
    -------
    ScoringJob

    Raises
    ------
    ConfigError, InputFileError, PanelValidationError, ModelContractError
    """
    from segments.core.data.outputs import check_output

    month = parse_month_option(as_of) if as_of is not None else None
    runner = engines.get(engine)
    found = inspect_panel(panel_path, scorer.panel, months=True)
    src = Path(panel_path)
    if hasattr(runner, "check_input"):
        runner.check_input(found, src)
    months = found.months or ()
    if not months:
        raise PanelValidationError([Violation("(all)", "the input has no rows")], source=str(src))
    month = month or str(months[-1])
    if pd.Period(month, "M") not in months:
        raise PanelValidationError(
            [
                Violation(
                    MONTH,
                    f"has no rows for the as-of month {month} (months {months[0]} .. {months[-1]})",
                )
            ],
            source=str(src),
        )
    with own_features(scorer.own):  # the bank's own columns: read, and in the contract
        scorer.columns(found.columns)  # names a declared own column the input lacks
        missing, specs = _missing_columns(found, scorer)
    if missing:
        raise ModelContractError(
            f"the panel {src} lacks columns the models need: "
            + "; ".join(
                f"`{scorer.panel.source_name(c)}` (for {', '.join(f[:4])}"
                f"{', ...' if len(f) > 4 else ''})"
                for c, f in sorted(missing.items())
            )
        )
    history, short = _history(months[0], month, specs, allow_short_history, scorer.ladder)
    dest = check_output(
        out,
        [src],
        overwrite=overwrite,
        ours=is_scoring_output,
        siblings=(".partial",),
        what="scoring output",
    )
    return ScoringJob(
        src, dest, month, found, history, scorer, short, overwrite=overwrite, engine=engine
    )


def execute(job: ScoringJob) -> ScoreResult:
    """Run a prepared job on its engine, holding the exclusive lock on its output.

    Raises
    ------
    OutputBusyError
        Another job is writing the output.
    PanelValidationError
        The input breaks the data contract (every problem listed; nothing written).
    """
    with output_lock(job.dest, job.lock_info), own_features(job.scorer.own):
        return engines.get(job.engine).run(job)


def run_scoring(
    job: ScoringJob,
    config: Any,
    *,
    track: bool = True,
    fail_on_drift: bool | None = None,
    notify: Callable[[str], None] | None = None,
) -> ScoreResult:
    """Run a job with its MLflow scoring run, and decide the job's exit on drift.

    The run starts with the job (a resumed local job keeps the run it started with); the
    run of a killed job that cannot be resumed is marked ``KILLED``; on an interrupt the
    run ends ``KILLED``, on an error ``FAILED``; a published output is logged and the run
    ends ``FINISHED``.

    Parameters
    ----------
    job : ScoringJob
        From :func:`prepare_scoring` (its callbacks ``on_start``/``on_discard`` are set
        here).
    config : ExperimentConfig
        The experiment (MLflow) and ``scoring.psi_alert``/``scoring.fail_on_drift``.
    track : bool, default True
        Log to MLflow.
    fail_on_drift : bool, optional
        Override ``scoring.fail_on_drift``.
    notify : callable, optional
        Called with a note for the user (e.g. a killed job's run was ended).

    Returns
    -------
    ScoreResult
        With ``drift_alert`` (the PSIs above ``scoring.psi_alert``) and the exit decision
        ``fail`` (drifted and set to fail on drift).
    """
    from segments.mlops.scoring_runs import (
        end_abandoned_run,
        end_scoring_run,
        log_scoring_run,
        start_scoring_run,
    )

    runs: dict[str, str] = {}

    def start(state: Any = None) -> str:
        if track and "id" not in runs:
            runs["id"] = start_scoring_run(config, job.month, job.scorer, str(job.src))
        return runs.get("id", "")

    def discard(state: Mapping[str, Any]) -> None:
        rid = state.get("run_id")
        if track and rid and end_abandoned_run(rid) and notify is not None:
            notify(
                f"note: the killed job left in {job.dest}.partial (MLflow run {rid}) could not "
                "be resumed with these settings; its run is marked KILLED and the job starts again"
            )

    try:
        result = execute(job.with_options(on_start=start, on_discard=discard))
    except BaseException as exc:
        if runs.get("id"):
            end_scoring_run(runs["id"], "KILLED" if isinstance(exc, INTERRUPTS) else "FAILED")
        raise
    if track and result.run_id:
        log_scoring_run(result, config)
    if result.manifest["drift"].get("significant"):
        bad = result.drift[result.drift["flag"] == "significant"]
        result.drift_alert = f"{len(bad)} PSI(s) above {config.scoring.psi_alert}: " + ", ".join(
            f"{r.kind} {r.column} {r.psi:.2f}" for r in bad.head(5).itertuples()
        )
        result.fail = bool(
            fail_on_drift if fail_on_drift is not None else config.scoring.fail_on_drift
        )
    return result


def score_local(
    panel_path: str | os.PathLike[str],
    as_of: str,
    out: str | os.PathLike[str],
    scorer: Scorer,
    *,
    batch_customers: int = ScoringConfig.batch_customers,
    scored_at: str | None = None,
    run_id: str = "",
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    on_start: Callable[[dict[str, Any]], str] | None = None,
    allow_short_history: bool = False,
    prepared: ScoringJob | None = None,
    on_discard: Callable[[dict[str, Any]], None] | None = None,
) -> ScoreResult:
    """Score every customer of a panel file with the local engine, without MLflow.

    :func:`prepare_scoring` then :func:`execute` (see :mod:`segments.engines.local`).
    Arguments are :class:`ScoringJob`'s; ``prepared`` is a job already checked (its panel,
    month, output and overwrite are then used).

    Returns
    -------
    ScoreResult
    """
    job = prepared or prepare_scoring(
        panel_path, as_of, out, scorer, overwrite=overwrite, allow_short_history=allow_short_history
    )
    return execute(
        job.with_options(
            scorer=scorer,
            engine="local",
            batch_customers=batch_customers,
            scored_at=scored_at,
            run_id=run_id,
            progress=progress,
            on_start=on_start,
            on_discard=on_discard,
        )
    )
