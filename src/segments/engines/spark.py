"""The Spark engine: the local engine's batch functions as Spark tasks.

A customer-sorted Parquet input (the usual export) is cut into batches of whole customers
from its id column, as the local engine cuts it (:func:`segments.engines.local.sorted_plan`),
and the local engine's flow runs with each batch a Spark task (:class:`SparkRunner`): the
task reads only its batch's rows, columns and months, as Arrow, and runs the same
validate, score and rank functions the local workers run
(:mod:`segments.engines.workers`). Every batch is validated before any is scored, a killed
run resumes, and Spark moves batch numbers and counts, never rows. Input, work folder and
output must be on storage the driver and every executor see at the same path (local mode
always does).

Any other Parquet input (not sorted by customer) is read by Spark, which hash-partitions the
rows by customer (``repartition(n, customer_id)``, about ``batch_customers`` customers a
partition), so a customer's months are never split and each partition is a bucket of whole
customers; ``mapInArrow`` hands each bucket's Arrow batches to :class:`BucketTask`, which
converts them as the local reader does (:func:`~segments.core.data.panel.panel_frame`),
validates every month and scores when clean. That input is read and shuffled once: the
scored rows and each bucket's summary (violations, months, drift counts) go to the work
folder, and any violation stops the run there, with every problem listed, before anything is
ranked or published. Ranks within bands come from the core definition
(:mod:`segments.core.upgrade.ranks`): Spark counts customers per (ranking group,
probability), the driver builds the same :class:`~segments.core.upgrade.ranks.RankTable` the
local engine uses, and a map over the scored rows' Arrow batches sets the ranks. Either way
the output equals the local output row for row. PySpark is an optional extra (``pip install
segments[spark]``); sessions bind to 127.0.0.1 without the Spark UI unless a master URL says
otherwise, one thread per Python worker.

Engine options (:attr:`segments.jobs.score.ScoringJob.options`): ``master`` (Spark master
URL), ``partitions`` (buckets of an unsorted input; default from ``batch_customers``),
``session`` (an existing SparkSession).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.config.sections import ScoringConfig
from segments.core.data.digest import PanelDigest
from segments.core.data.panel import ID, PanelInput
from segments.core.scoring.batch import (
    Scorer,
    add_counts,
    check_batches,
    drift_report,
)
from segments.core.scoring.output import ScoreResult, write_text_atomic
from segments.core.upgrade.ranks import RankTable, band_key
from segments.engines.arrow_tasks import BucketTask, Ranker
from segments.engines.local import run_on, sorted_plan, work_folder
from segments.engines.workers import THREAD_ENV, Runner
from segments.exceptions import ConfigError, SegmentsError, Violation
from segments.jobs.contract import ScoringJob, digest_input, make_manifest, publish

__all__ = [
    "SparkRunner",
    "buckets_for",
    "check_input",
    "rank_rows",
    "run",
    "score_spark",
    "spark_session",
]

_SPARK_TYPES = {
    pa.string(): "string",
    pa.float64(): "double",
    pa.int64(): "bigint",
    pa.bool_(): "boolean",
}


def spark_session(master: str | None = None, app: str = "segments") -> Any:
    """A SparkSession: ``master`` or ``SEGMENTS_SPARK_MASTER`` or ``local[2]``.

    Workers run this interpreter (``PYSPARK_PYTHON``); a local session binds to 127.0.0.1
    and starts no UI.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(
            [
                Violation(
                    "--engine",
                    "spark needs PySpark",
                    hint="pip install 'segments[spark]' (make install does)",
                )
            ]
        ) from exc
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    master = master or os.environ.get("SEGMENTS_SPARK_MASTER") or "local[2]"
    builder = (
        SparkSession.builder.appName(app)
        .master(master)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "8")
    )
    for name in THREAD_ENV:  # one thread per Python worker: Spark runs one per core
        builder = builder.config(f"spark.executorEnv.{name}", "1")
    if master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    try:
        return builder.getOrCreate()
    except Exception as exc:  # py4j and Spark raise their own types for a bad master
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise ConfigError(
            [
                Violation(
                    "--master",
                    f"is {master!r}; Spark could not start a session on it ({first[:200]})",
                )
            ]
        ) from None


def _ddl(schema: pa.Schema) -> str:
    return ", ".join(f"`{f.name}` {_SPARK_TYPES[f.type]}" for f in schema)


def check_input(found: PanelInput, src: Path) -> None:
    """Refuse an input Spark cannot read as one table: a CSV, or Parquet parts that store
    a column with different types.

    Raises
    ------
    ConfigError
        Naming ``--engine`` and what to do instead.
    """
    if found.files.format != "parquet":
        raise ConfigError(
            [
                Violation(
                    "--engine",
                    f"spark reads Parquet; {src} is a CSV",
                    hint="convert it to Parquet or use --engine local",
                )
            ]
        )
    if not found.files.uniform:
        raise ConfigError(
            [
                Violation(
                    "--engine",
                    f"spark needs the parts of {src} to store each column with one type",
                    hint="rewrite the parts or use --engine local",
                )
            ]
        )


def score_spark(
    panel_path: str | os.PathLike[str],
    as_of: str,
    out: str | os.PathLike[str],
    scorer: Scorer,
    *,
    master: str | None = None,
    partitions: int | None = None,
    batch_customers: int = ScoringConfig.batch_customers,
    scored_at: str | None = None,
    run_id: str = "",
    overwrite: bool = False,
    spark: Any = None,
    allow_short_history: bool = False,
    prepared: ScoringJob | None = None,
) -> ScoreResult:
    """Score a Parquet panel on Spark, without MLflow; same output as the local engine.

    :func:`~segments.jobs.score.prepare_scoring` then :func:`~segments.jobs.score.execute`
    (which holds the output lock) with this engine.

    Parameters
    ----------
    panel_path : path
        Parquet file or folder.
    as_of, out, scorer, scored_at, run_id, overwrite, allow_short_history, prepared
        As for :func:`~segments.jobs.score.score_local`.
    master : str, optional
        Spark master URL (default ``SEGMENTS_SPARK_MASTER`` or ``local[2]``).
    batch_customers : int, default 50_000 (``scoring.batch_customers``)
        About how many customers a batch (a Spark task) holds.
    partitions : int, optional
        Buckets of an unsorted input (default: about ``scoring.batch_customers`` customers
        each, at least the session's parallelism; :func:`buckets_for`).
    spark : SparkSession, optional
        An existing session.

    Returns
    -------
    ScoreResult
    """
    # The job layer runs the engine; this convenience entry goes through it (lazily, so the
    # engine module does not import the job at load time).
    from segments.jobs.score import execute, prepare_scoring

    job = prepared or prepare_scoring(
        panel_path,
        as_of,
        out,
        scorer,
        overwrite=overwrite,
        allow_short_history=allow_short_history,
        engine="spark",
    )
    options = {"master": master, "partitions": partitions, "session": spark}
    return execute(
        job.with_options(
            scorer=scorer,
            engine="spark",
            batch_customers=batch_customers,
            scored_at=scored_at,
            run_id=run_id,
            options=options,
        )
    )


def run(job: ScoringJob) -> ScoreResult:
    """Score a prepared job on Spark (called by :func:`segments.jobs.score.execute`, which
    holds the output lock).

    A customer-sorted Parquet input (the usual export) runs the local engine's flow
    (:func:`segments.engines.local.run_on`: validate every batch, score, rank, publish,
    resume after a kill) with each batch a Spark task (:class:`SparkRunner`). An unsorted
    Parquet input is read by Spark and partitioned by customer in one pass
    (:func:`_run_shuffled`): each partition's Arrow batches go to :class:`BucketTask`
    (``mapInArrow``), which validates the bucket (every month) and, when it is clean,
    scores it with :func:`~segments.core.scoring.batch.score_batch`; the rows go to
    ``OUT.partial/scored``, and any violation stops the run there, before anything is ranked
    or published. Ranks come from a :class:`RankTable` of the probabilities' counts, set on
    every row by a map over the scored rows (no join, no second shuffle).

    Parameters
    ----------
    job : ScoringJob
        Reads ``scored_at``, ``run_id``, ``on_start`` (called first, its run id stamped),
        ``batch_customers`` (customers a bucket holds, about) and the options ``master``,
        ``partitions`` and ``session``.

    Returns
    -------
    ScoreResult

    Raises
    ------
    PanelValidationError
        The input breaks the data contract (every violation; nothing published or left).
    """
    t0 = time.perf_counter()
    spark = job.options.get("session") or spark_session(job.options.get("master"))
    plan = sorted_plan(job)
    if plan is not None:
        return run_on(job, SparkRunner(spark, work_folder(job)), plan, t0)
    return _run_shuffled(job, spark, t0)


class SparkRunner(Runner):
    """Runs the local engine's batch tasks as Spark tasks, one per batch.

    The tasks are :mod:`segments.engines.workers`' (validate, score, rank a batch); each
    Spark task reads its own batch's rows from the input, as a local worker does, so Spark
    moves a batch number in and a few numbers out, never the rows. The input, the work
    folder and the output must be on storage the driver and every executor see at the same
    path (local mode always does).
    """

    def __init__(self, spark: Any, folder: Path) -> None:
        super().__init__(None, folder, spark.sparkContext.defaultParallelism)
        self.spark = spark

    @property
    def name(self) -> str:
        return f"spark {self.spark.sparkContext.master}"

    def map(self, task: Callable[[Any], Any], batches: Any, items: Iterable[int]) -> Iterator[Any]:
        """``task`` on each batch number, one Spark task each; results in order."""
        items = list(items)
        if not items:
            return iter(())
        handover = self.handover(batches)
        tasks = [(handover, i) for i in items]
        with _cancelling(self.spark):  # a stopped run leaves no task writing a part
            return iter(self.spark.sparkContext.parallelize(tasks, len(tasks)).map(task).collect())


def _run_shuffled(job: ScoringJob, spark: Any, t0: float) -> ScoreResult:
    """An input that cannot be cut in place (not sorted by customer): Spark reads and
    partitions it by customer, one pass (see the module's notes). Nothing stays behind
    on any error or interrupt: the Spark jobs are cancelled and ``OUT.partial`` removed."""
    work = work_folder(job)
    job_file = work / "_job.json"
    if job_file.exists() and job.on_discard is not None:  # a killed local run's work
        job.on_discard(json.loads(job_file.read_text()))
    shutil.rmtree(work, ignore_errors=True)
    run_id = job.on_start({}) if job.on_start is not None else job.run_id
    try:
        with _cancelling(spark):
            return _shuffled(job, spark, work, run_id, t0)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # nothing partial stays behind
        raise


@contextlib.contextmanager
def _cancelling(spark: Any) -> Iterator[None]:
    """The Spark jobs started inside run in their own group, cancelled on any error or
    interrupt (SIGTERM arrives as :class:`~segments.exceptions.Interrupted`), so none goes
    on writing after the run stops."""
    sc = spark.sparkContext
    group = f"segments-{os.getpid()}-{time.monotonic_ns()}"
    sc.setJobGroup(group, "segments score", interruptOnCancel=True)
    try:
        yield
    except BaseException:
        sc.cancelJobGroup(group)
        raise
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)


def _shuffled(job: ScoringJob, spark: Any, work: Path, run_id: str, t0: float) -> ScoreResult:
    from pyspark.sql import functions as F

    stamp = job.scored_at or datetime.now(UTC).isoformat(timespec="seconds")
    scorer = job.scorer
    timings: dict[str, float] = {"session_s": time.perf_counter() - t0}
    t = time.perf_counter()
    parts = job.options.get("partitions") or buckets_for(
        job.input.rows, len(job.input.months or ()) or 1, job.batch_customers,
        spark.sparkContext.defaultParallelism,
    )  # fmt: skip
    _score_buckets(job, spark, parts, work / "scored", run_id, stamp)
    scored = spark.read.parquet(str(work / "scored"))
    total, digest = _check_buckets(job, scored)
    timings["validate_and_score_s"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = scored.where(F.col("_summary").isNull())
    ranked = rank_rows(spark, rows.drop("_summary"), scorer.schema)
    final = work / "final"
    ranked.write.parquet(str(final), compression="zstd")
    timings["rank_s"] = time.perf_counter() - t
    for f in final.glob("*"):  # Spark's bookkeeping files are not part of the output
        if f.name.startswith(("_SUCCESS", ".")):
            f.unlink()
    n_rows = {f.name: pq.ParquetFile(f).metadata.num_rows for f in sorted(final.glob("*.parquet"))}
    report = drift_report(scorer.reference, total, scorer.psi_thresholds, scorer.sources)
    timings["total_s"] = time.perf_counter() - t0
    state = {
        "identity": {"input_digest": digest_input(job.src)},
        "run_id": run_id,
        "data_digest": digest,
    }
    manifest = make_manifest(
        job,
        {**state, "scored_at": stamp},
        n_rows=n_rows,
        counts=total,
        engine=f"spark {spark.sparkContext.master}",
        batches=parts,
        report=report,
        timings=timings,
    )
    if manifest["rows"] != sum(total.get("tiers", {}).values()):
        raise SegmentsError("spark: rows written differ from rows scored")
    write_text_atomic(final / "_drift.csv", report.to_csv(index=False))
    write_text_atomic(final / "_manifest.json", json.dumps(manifest, indent=2))
    publish(final, job.dest, job.overwrite)
    shutil.rmtree(work, ignore_errors=True)
    return ScoreResult(job.dest, manifest, report, run_id)


def buckets_for(rows: int, months: int, batch_customers: int, parallelism: int) -> int:
    """Buckets of whole customers for an input: about ``batch_customers`` customers each
    (customers estimated as rows / months), and at least one per core of the session."""
    customers = -(-rows // max(months, 1))
    return max(parallelism, -(-customers // max(batch_customers, 1)))


def _quoted(name: str) -> str:
    """A column name as Spark reads it literally (dots, backticks and all)."""
    return "`" + name.replace("`", "``") + "`"


def _score_buckets(
    job: ScoringJob, spark: Any, parts: int, where: Path, run_id: str, stamp: str
) -> None:
    """Read the needed columns, partition the rows by customer into ``parts`` buckets and
    write every bucket's :class:`BucketTask` result to ``where``."""
    from pyspark.sql import functions as F

    scorer = job.scorer
    id_col = scorer.panel.source_name(ID)
    columns = scorer.columns(job.input.columns)
    df = spark.read.parquet(*[str(f) for f in job.input.files.files])
    df = df.select(*[F.col(_quoted(c)) for c in columns])
    # Hash partitioning by customer: each partition is a bucket of whole customers (Spark
    # keeps an explicit partition count: adaptive execution does not coalesce it).
    task = BucketTask(job.month, scorer, run_id, stamp, job.input.files.schema)
    buckets = df.repartition(parts, F.col(_quoted(id_col))).mapInArrow(task, _ddl(task.schema))
    buckets.write.parquet(str(where), compression="zstd")


def _check_buckets(job: ScoringJob, scored: Any) -> tuple[dict[str, Any], str]:
    """The buckets' summaries: raise with every violation (or a missing as-of month);
    else the drift counts and the content digests added up."""
    from pyspark.sql import functions as F

    summaries = [
        json.loads(r["_summary"])
        for r in scored.where(F.col("_summary").isNotNull()).select("_summary").collect()
    ]
    violations = [
        Violation(
            v["column"], v["problem"], v["n_rows"], tuple(v["examples"]), hint=v["hint"] or ""
        )
        for s in summaries
        for v in s["violations"]
    ]
    months_seen = {m for s in summaries for m in s["months"]}
    check_batches(violations, months_seen, job.month, str(job.src))
    total: dict[str, Any] = {}
    for s in summaries:
        add_counts(total, s.get("counts", {}))
    parts = (PanelDigest.from_dict(s["digest"]) for s in summaries if s.get("digest"))
    return total, PanelDigest.total(parts).hexdigest()


def rank_rows(spark: Any, scored: Any, schema: pa.Schema) -> Any:
    """Add the rank columns to scored rows with the core rule (:mod:`segments.core.upgrade.ranks`).

    Spark counts the customers holding each probability in each ranking group (band, tier);
    the driver builds a :class:`~segments.core.upgrade.ranks.RankTable` from those counts (one
    row per distinct probability of a group, not per customer), and a map over the rows'
    Arrow batches sets each row's ranks with :func:`~segments.core.upgrade.ranks.rank_columns`,
    as the local engine's :func:`~segments.engines.workers.rank_task` does.

    Parameters
    ----------
    spark : SparkSession
    scored : pyspark.sql.DataFrame
        Rows of the output's columns but the ranks.
    schema : pyarrow.Schema
        The output's schema (:attr:`Scorer.schema`).

    Returns
    -------
    pyspark.sql.DataFrame
        The rows in ``schema``: ranks set (empty where ``p_upgrade`` is).
    """
    from pyspark.sql import functions as F

    counts = (
        scored.where(F.col("p_upgrade").isNotNull())
        .groupBy("near_band", "tier", "p_upgrade")
        .count()
        .toPandas()
    )
    table = RankTable()
    if not counts.empty:
        table.add(
            band_key(counts["near_band"], counts["tier"]),
            counts["p_upgrade"].to_numpy(dtype=float),
            counts["count"].to_numpy(),
        )
    return scored.mapInArrow(Ranker(table, schema), _ddl(schema))
