"""The Spark engine: :func:`segments.core.scoring.batch.score_batch` per group of whole customers.

Rows are hashed to buckets by customer id (``pmod(xxhash64(customer_id), n)``), so a
customer's months are never split; ``groupBy(bucket).applyInPandas`` hands each bucket to the
same pure function the local engine runs. Validation runs first as its own Spark job and
stops the run with every violation before any scoring. Ranks within bands come from the core
definition (:mod:`segments.core.upgrade.ranks`): Spark counts customers per (ranking group,
probability), the driver turns those counts into ranks with the same
:class:`~segments.core.upgrade.ranks.RankTable` the local engine uses, and a join puts them on the
rows, so the output equals the local output row for row. PySpark is an optional extra
(``pip install segments[spark]``); sessions bind to 127.0.0.1 without the Spark UI unless
a master URL says otherwise.

Engine options (:attr:`segments.jobs.score.ScoringJob.options`): ``master`` (Spark master
URL), ``partitions`` (buckets of whole customers), ``session`` (an existing SparkSession).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.data.panel import ID, MONTH, PanelInput
from segments.core.scoring.batch import (
    Scorer,
    add_counts,
    drift_report,
    merge_violations,
    score_batch,
    validate_batch,
)
from segments.core.scoring.output import RANKS, ScoreResult, write_text_atomic
from segments.core.upgrade.ranks import RANK_COLUMNS, RankTable, band_key
from segments.exceptions import ConfigError, PanelValidationError, SegmentsError, Violation
from segments.jobs.contract import ScoringJob, digest_input, make_manifest, publish

__all__ = ["check_input", "rank_rows", "run", "score_spark", "spark_session"]

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


def _to_raw(pdf: pd.DataFrame, month_col: str) -> pd.DataFrame:
    """Spark hands dates over as datetimes; the panel contract reads months as periods."""
    pdf = pdf.drop(columns="_bucket")
    col = pdf.get(month_col)
    if col is not None and (pd.api.types.is_datetime64_any_dtype(col) or col.dtype == object):
        months = pd.to_datetime(col, errors="coerce")
        if months.notna().all():
            pdf[month_col] = months.dt.to_period("M")
    return pdf


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
    partitions : int, optional
        Buckets of whole customers (default: about ``100_000`` customers each, at least
        the session's parallelism).
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
            scorer=scorer, engine="spark", scored_at=scored_at, run_id=run_id, options=options
        )
    )


def run(job: ScoringJob) -> ScoreResult:
    """Score a prepared job on Spark (called by :func:`segments.jobs.score.execute`, which
    holds the output lock).

    Parameters
    ----------
    job : ScoringJob
        Reads ``scored_at``, ``run_id``, ``on_start`` (called first, its run id stamped)
        and the options ``master``, ``partitions`` and ``session``.

    Returns
    -------
    ScoreResult

    Raises
    ------
    PanelValidationError
        The input breaks the data contract (every violation, before any scoring).
    """
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    run_id = job.on_start({}) if job.on_start is not None else job.run_id
    stamp = job.scored_at or datetime.now(UTC).isoformat(timespec="seconds")
    scorer = job.scorer
    spark = job.options.get("session") or spark_session(job.options.get("master"))
    timings: dict[str, float] = {"session_s": time.perf_counter() - t0}
    id_col, month_col = scorer.panel.source_name(ID), scorer.panel.source_name(MONTH)
    df = spark.read.parquet(*[str(f) for f in job.input.files.files])
    stored = job.input.files.schema.field(month_col).type
    if pa.types.is_timestamp(stored) and stored.tz:
        # Spark holds instants: take the calendar date in the bank's (or the data's) zone,
        # as the local engine does.
        zone = scorer.panel.timezone or stored.tz
        df = df.withColumn(month_col, F.to_date(F.from_utc_timestamp(F.col(month_col), zone)))
    n_customers = df.select(id_col).distinct().count()
    parts = job.options.get("partitions") or max(
        spark.sparkContext.defaultParallelism, -(-n_customers // 100_000)
    )
    df = df.withColumn("_bucket", F.pmod(F.xxhash64(F.col(id_col).cast("string")), F.lit(parts)))
    t = time.perf_counter()
    _validate(job, df, month_col)
    timings["validate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    scored = _scored(job, df, month_col, run_id, stamp).cache()
    total: dict[str, Any] = {}
    for r in scored.where(F.col("_counts").isNotNull()).select("_counts").collect():
        add_counts(total, json.loads(r["_counts"]))
    final = (
        rank_rows(spark, scored)
        .select(*scorer.schema.names)
        .repartition(parts, "customer_id")
        .sortWithinPartitions("customer_id")
    )
    work = job.dest.with_name(job.dest.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    final.write.parquet(str(work), compression="zstd")
    scored.unpersist()
    timings["score_s"] = time.perf_counter() - t
    for f in work.glob("*"):  # Spark's bookkeeping files are not part of the output
        if f.name.startswith(("_SUCCESS", ".")):
            f.unlink()
    n_rows = {f.name: pq.ParquetFile(f).metadata.num_rows for f in sorted(work.glob("*.parquet"))}
    report = drift_report(scorer.reference, total, scorer.psi_thresholds)
    timings["total_s"] = time.perf_counter() - t0
    state = {"identity": {"input_digest": digest_input(job.src)}, "run_id": run_id}
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
    write_text_atomic(work / "_drift.csv", report.to_csv(index=False))
    write_text_atomic(work / "_manifest.json", json.dumps(manifest, indent=2))
    publish(work, job.dest, job.overwrite)
    return ScoreResult(job.dest, manifest, report, run_id)


def _validate(job: ScoringJob, df: Any, month_col: str) -> None:
    """Validate every bucket as its own Spark job; raise with every violation."""
    panel_cfg = job.scorer.panel

    def validate(pdf: pd.DataFrame) -> pd.DataFrame:
        raw = _to_raw(pdf, month_col)
        _, errors = validate_batch(raw, panel_cfg)
        seen = ",".join(sorted({str(m) for m in raw[month_col].dropna().unique()}))
        rows = [
            {
                "column": v.column,
                "problem": v.problem,
                "n_rows": v.n_rows,
                "examples": json.dumps(list(v.examples)),
                "hint": v.hint,
                "months": "",
            }
            for v in errors
        ]
        rows.append(
            {"column": "", "problem": "", "n_rows": 0, "examples": "[]", "hint": "", "months": seen}
        )
        return pd.DataFrame(rows)

    found = (
        df.groupBy("_bucket")
        .applyInPandas(
            validate,
            "column string, problem string, n_rows bigint, examples string, "
            "hint string, months string",
        )
        .collect()
    )
    violations = [
        Violation(
            r["column"],
            r["problem"],
            int(r["n_rows"]),
            tuple(json.loads(r["examples"])),
            hint=r["hint"] or "",
        )
        for r in found
        if r["column"]
    ]
    if violations:
        raise PanelValidationError(merge_violations(violations), source=str(job.src))
    months_seen = {m for r in found for m in r["months"].split(",") if m}
    if job.month not in months_seen:
        raise PanelValidationError(
            [Violation(MONTH, f"has no rows for the as-of month {job.month}")],
            source=str(job.src),
        )


def _scored(job: ScoringJob, df: Any, month_col: str, run_id: str, stamp: str) -> Any:
    """The unranked output rows (``score_batch`` per bucket), with each row's ranking group
    (``_key``, :func:`segments.core.upgrade.ranks.band_key`) and one row per bucket carrying the
    bucket's counts as JSON (``_counts``)."""
    scorer, month = job.scorer, job.month
    unranked = pa.schema([f for f in scorer.schema if f.name not in RANKS])
    out_ddl = _ddl(unranked) + ", `_key` string, `_counts` string"
    names = unranked.names

    def score(pdf: pd.DataFrame) -> pd.DataFrame:
        rows, counts = score_batch(
            _to_raw(pdf, month_col), month, scorer, run_id=run_id, scored_at=stamp
        )
        rows = rows[names].copy()
        rows["_key"] = band_key(rows["near_band"], rows["tier"])
        rows["_counts"] = None
        if len(rows):
            rows.iloc[0, rows.columns.get_loc("_counts")] = json.dumps(counts)
        return rows

    return df.groupBy("_bucket").applyInPandas(score, out_ddl)


def rank_rows(spark: Any, scored: Any) -> Any:
    """Add the rank columns to scored rows with the core rule (:mod:`segments.core.upgrade.ranks`).

    Spark counts the customers holding each probability in each ranking group (``_key``);
    the driver builds a :class:`~segments.core.upgrade.ranks.RankTable` from those counts (one row
    per distinct probability of a group, not per customer) and ranks each distinct
    probability; a join on (``_key``, ``p_upgrade``) puts the ranks on the rows (empty where
    ``p_upgrade`` is).

    Parameters
    ----------
    spark : SparkSession
    scored : pyspark.sql.DataFrame
        Rows with ``_key`` and ``p_upgrade``.

    Returns
    -------
    pyspark.sql.DataFrame
        ``scored`` with ``upgrade_decile``, ``upgrade_percentile`` and ``upgrade_permille``.
    """
    from pyspark.sql import functions as F

    counts = (
        scored.where(F.col("p_upgrade").isNotNull()).groupBy("_key", "p_upgrade").count().toPandas()
    )
    if counts.empty:
        for name in RANK_COLUMNS:
            scored = scored.withColumn(name, F.lit(None).cast("bigint"))
        return scored
    keys, p = counts["_key"].to_numpy(), counts["p_upgrade"].to_numpy(dtype=float)
    ranks = RankTable().add(keys, p, counts["count"].to_numpy()).ranks(keys, p)
    lookup = pd.DataFrame({"_key": keys, "p_upgrade": p})
    for name in RANK_COLUMNS:
        lookup[name] = ranks[name.removeprefix("upgrade_")].to_numpy(dtype="int64")
    ddl = "`_key` string, `p_upgrade` double, " + ", ".join(
        f"`{name}` bigint" for name in RANK_COLUMNS
    )
    return scored.join(spark.createDataFrame(lookup, ddl), on=["_key", "p_upgrade"], how="left")
