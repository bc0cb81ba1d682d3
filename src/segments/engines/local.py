"""The local engine: batches of whole customers, validated then scored, on every core.

A customer-sorted Parquet input (the usual export) is read in place: its id column alone is
read once to cut it into row ranges of about ``batch_customers`` customers
(:func:`segments.core.data.batches.plan_sorted`), and each batch reads only its own rows.
Any other input is spooled first into hash buckets of customers (one streaming pass,
:mod:`segments.engines.spool`), and each bucket is a batch. Either way a batch reads only
the columns and months the job needs (:meth:`Scorer.columns`, :attr:`Scorer.months_needed`).

Every batch is validated before any is scored; then each is scored with
:func:`segments.core.scoring.batch.score_batch` into its own part. Batches run in worker
processes, one per core (:mod:`segments.engines.workers`), in memory bounded by the batch
size, never by the input size. Ranks within bands need the whole month: after scoring, a
:class:`~segments.core.upgrade.ranks.RankTable` of the probabilities alone (8 bytes per
scored customer) ranks every part.

Work goes to ``OUT.partial/`` (``_job.json``, ``spool/``, ``parts/``, ``final/``); a killed
run with the same identity (:func:`segments.jobs.score.job_identity`) resumes from the
batches it finished, one with another identity is discarded and started again.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from segments.core.data.batches import BatchPlan, plan_sorted
from segments.core.data.digest import PanelDigest
from segments.core.data.panel import ID
from segments.core.scoring.batch import add_counts, check_batches, drift_report
from segments.core.scoring.output import ScoreResult, write_text_atomic
from segments.core.upgrade.ranks import table_from_frames
from segments.engines.spool import READ_ROWS, bucket_of, plan_buckets, record_batches, spool
from segments.engines.workers import (
    Batches,
    Runner,
    default_workers,
    pool,
    rank_task,
    score_task,
    validate_task,
)
from segments.exceptions import PanelValidationError, Violation
from segments.jobs.contract import ScoringJob, digest_input, job_identity, make_manifest, publish

__all__ = [
    "READ_ROWS",
    "bucket_of",
    "plan_buckets",
    "record_batches",
    "run",
    "run_on",
    "sorted_plan",
    "work_folder",
]

Tick = Callable[[str, int, int], None]


def run(job: ScoringJob) -> ScoreResult:
    """Score a prepared job in bounded memory, resuming a killed run of the same job.

    Called by :func:`segments.jobs.score.execute`, which holds the output lock.

    Parameters
    ----------
    job : ScoringJob
        Reads ``batch_customers``, ``scored_at``, ``run_id``, ``progress``, ``on_start``,
        ``on_discard`` and ``options["workers"]`` (worker processes; by default one per
        core for inputs of 500,000 rows or more, else none).

    Returns
    -------
    ScoreResult

    Raises
    ------
    PanelValidationError
        The input breaks the data contract (every problem listed; nothing left behind).
    """
    t0 = time.perf_counter()
    estimate = plan_buckets(job.input, job.batch_customers)
    asked = job.options.get("workers")
    # never more workers than batches: an idle worker still costs an interpreter's memory
    workers = min(int(asked), estimate) if asked else default_workers(job.input.rows, estimate)
    with pool(workers, work_folder(job)) as runner:  # workers start while the input is planned
        return run_on(job, runner, sorted_plan(job), t0)


def work_folder(job: ScoringJob) -> Path:
    """Where a job works until it publishes: ``OUT.partial``."""
    return job.dest.with_name(job.dest.name + ".partial")


def sorted_plan(job: ScoringJob) -> BatchPlan | None:
    """The batches of a customer-sorted Parquet input, read in place (None: spool it)."""
    months = len(job.input.months or ())
    id_col = job.scorer.panel.source_name(ID)
    return plan_sorted(job.input.files, id_col, job.batch_customers, months)


def run_on(job: ScoringJob, runner: Runner, plan: BatchPlan | None, t0: float) -> ScoreResult:
    """The engine's flow on any runner of batch tasks (worker processes, inline, or a
    Spark session: :class:`segments.engines.spark.SparkRunner`): spool when there is no
    plan, validate every batch, score, rank, publish; resume a killed run of the job.

    Parameters
    ----------
    job : ScoringJob
    runner : Runner
        Runs the batch tasks; its ``name`` goes into the manifest.
    plan : BatchPlan or None
        :func:`sorted_plan`.
    t0 : float
        When the job started (``time.perf_counter``).

    Returns
    -------
    ScoreResult
    """
    work = work_folder(job)
    timings: dict[str, float] = {}
    estimate = plan_buckets(job.input, job.batch_customers)
    batching = (
        {"kind": "sorted", "batches": len(plan.batches)}
        if plan is not None
        else {"kind": "buckets", "batches": estimate}
    )
    state = _start_or_resume(job, work, batching)
    timings["digest_and_plan_s"] = time.perf_counter() - t0
    try:
        return _run(job, work, state, plan, timings, runner)
    except PanelValidationError:
        shutil.rmtree(work, ignore_errors=True)  # nothing partial stays behind
        raise


def _start_or_resume(job: ScoringJob, work: Path, batching: dict[str, Any]) -> dict[str, Any]:
    """The stored state of a killed run of this job, or a fresh one (``_job.json``)."""
    ident = job_identity(job, digest_input(job.src), batching)
    job_file = work / "_job.json"
    state = None
    if job_file.exists():
        stored = json.loads(job_file.read_text())
        if stored.get("identity") == ident:
            state = stored  # resume
        elif job.on_discard is not None:  # another job's leftovers: its run will never finish
            job.on_discard(stored)
    if state is None:
        shutil.rmtree(work, ignore_errors=True)
        (work / "spool").mkdir(parents=True)
        (work / "parts").mkdir()
        (work / "final").mkdir()
        state = {
            "identity": ident,
            "scored_at": job.scored_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "run_id": job.run_id,
            "resumed": 0,
        }
        if job.on_start is not None:
            state["run_id"] = job.on_start(state)
    else:
        state["resumed"] = state.get("resumed", 0) + 1
    job_file.write_text(json.dumps(state, indent=2))
    return state


def _run(
    job: ScoringJob,
    work: Path,
    state: dict[str, Any],
    plan: BatchPlan | None,
    timings: dict[str, float],
    runner: Runner,
) -> ScoreResult:
    tick: Tick = job.progress or (lambda *_: None)
    scorer = job.scorer
    t = time.perf_counter()
    batches = Batches.scoring(
        scorer,
        job.month,
        scorer.columns(job.input.columns),
        plan,
        parts=work / "parts",
        final=work / "final",
        run_id=state["run_id"],
        scored_at=state["scored_at"],
    )
    if plan is None:
        batches.buckets = spool(
            job.input,
            scorer.panel,
            batches.columns,
            work / "spool",
            state["identity"]["batching"]["batches"],
            tick,
            source=str(job.src),
        )
    timings["spool_s"] = time.perf_counter() - t
    t = time.perf_counter()
    validated = work / "_validated"
    if not validated.exists():
        digest = _validate(job, batches, runner, tick)
        write_text_atomic(validated, json.dumps({"data_digest": digest}))
    state["data_digest"] = _validated_digest(validated)
    timings["validate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    todo = [i for i in range(len(batches)) if not batches.part(i).exists()]
    for done, _ in enumerate(runner.map(score_task, batches, todo), len(batches) - len(todo) + 1):
        tick("score", done, len(batches))
    timings["score_s"] = time.perf_counter() - t
    t = time.perf_counter()
    final = work / "final"
    n_rows, counts = _rank(batches, runner, tick)
    timings["rank_s"] = time.perf_counter() - t
    report = drift_report(scorer.reference, counts, scorer.psi_thresholds, scorer.sources)
    write_text_atomic(final / "_drift.csv", report.to_csv(index=False))
    manifest = make_manifest(
        job,
        state,
        n_rows=n_rows,
        counts=counts,
        engine=runner.name,
        batches=len(batches),
        report=report,
        timings=timings,
    )
    write_text_atomic(final / "_manifest.json", json.dumps(manifest, indent=2))
    publish(final, job.dest, job.overwrite)
    shutil.rmtree(work, ignore_errors=True)
    return ScoreResult(job.dest, manifest, report, state["run_id"])


def _validate(job: ScoringJob, batches: Batches, runner: Runner, tick: Tick) -> str:
    """Validate every batch before any scoring: all problems at once, merged. Returns the
    input's content digest, the batches' parts added up (:mod:`segments.core.data.digest`)."""
    found: list[Violation] = []
    months_seen: set[str] = set()
    parts: list[PanelDigest] = []
    tasks = runner.map(validate_task, batches, range(len(batches)))
    for i, (errors, months, digest) in enumerate(tasks):
        found += errors
        months_seen.update(months)
        if digest is not None:
            parts.append(PanelDigest.from_dict(digest))
        tick("validate", i + 1, len(batches))
    check_batches(found, months_seen, job.month, str(job.src))
    return PanelDigest.total(parts).hexdigest()


def _validated_digest(validated: Path) -> str:
    """The content digest a validation recorded (a run killed after validating resumes
    with it); empty from a work folder of an older version."""
    try:
        return str(json.loads(validated.read_text()).get("data_digest", ""))
    except (ValueError, AttributeError):
        return ""


def _rank(batches: Batches, runner: Runner, tick: Tick) -> tuple[dict[str, int], dict[str, Any]]:
    """Rank every part within bands over the whole month into ``final``; rows per part
    and the counts added up."""
    names = [batches.part(i).name for i in range(len(batches))]
    table = table_from_frames(
        pq.read_table(batches.parts / n, columns=["near_band", "tier", "p_upgrade"]).to_pandas()
        for n in names
    )
    total: dict[str, Any] = {}
    for name in names:
        add_counts(
            total, json.loads((batches.parts / name).with_suffix(".counts.json").read_text())
        )
    ranking = dataclasses.replace(batches, ranks=table)
    n_rows = {}
    for i, rows in enumerate(runner.map(rank_task, ranking, range(len(batches)))):
        n_rows[names[i]] = rows
        tick("rank", i + 1, len(batches))
    return n_rows, total
