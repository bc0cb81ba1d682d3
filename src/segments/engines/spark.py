"""The Spark engine: :func:`segments.jobs.score.score_batch` per group of whole customers.

Rows are hashed to buckets by customer id (``pmod(xxhash64(customer_id), n)``), so a
customer's months are never split; ``groupBy(bucket).applyInPandas`` hands each bucket to the
same pure function the local engine runs. Validation runs first as its own Spark job and
stops the run with every violation before any scoring. Ranks within near bands use window
functions with the local engine's definition (competition rank, integer ceilings), so the
output equals the local output row for row. PySpark is an optional extra
(``pip install segments[spark]``); sessions bind to 127.0.0.1 without the Spark UI unless
a master URL says otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.outputs import output_lock
from segments.exceptions import ConfigError, PanelValidationError, SegmentsError, Violation
from segments.jobs.score import (
    _RANKS,
    Scorer,
    ScoreResult,
    ScoringJob,
    _digest_input,
    _merge_violations,
    _publish,
    _validated,
    _write_text_atomic,
    add_counts,
    drift_report,
    make_manifest,
    prepare_scoring,
    score_batch,
)

__all__ = ["score_spark", "spark_session"]

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
    """Score a Parquet panel on Spark; same output as :func:`segments.jobs.score.score_local`.

    The same checks run first (:func:`segments.jobs.score.prepare_scoring`) and the job holds
    the same exclusive lock on its output.

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
    """
    t0 = time.perf_counter()
    plan = prepared or prepare_scoring(
        panel_path,
        as_of,
        out,
        scorer,
        overwrite=overwrite,
        allow_short_history=allow_short_history,
        engine="spark",
    )
    with output_lock(plan.dest, plan.lock_info):
        return _score_spark_locked(plan, scorer, master, partitions, scored_at, run_id, spark, t0)


def _score_spark_locked(
    plan: ScoringJob,
    scorer: Scorer,
    master: str | None,
    partitions: int | None,
    scored_at: str | None,
    run_id: str,
    spark: Any,
    t0: float,
) -> ScoreResult:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from segments.core.panel import ID, MONTH

    src, dest, month = plan.src, plan.dest, plan.month
    spark = spark or spark_session(master)
    session_s = time.perf_counter() - t0
    id_col, month_col = scorer.panel.source_name(ID), scorer.panel.source_name(MONTH)
    df = spark.read.parquet(*[str(f) for f in plan.input.files.files])
    stored = plan.input.files.schema.field(month_col).type
    if pa.types.is_timestamp(stored) and stored.tz:
        # Spark holds instants: take the calendar date in the bank's (or the data's) zone,
        # as the local engine does.
        zone = scorer.panel.timezone or stored.tz
        df = df.withColumn(month_col, F.to_date(F.from_utc_timestamp(F.col(month_col), zone)))
    n_customers = df.select(id_col).distinct().count()
    parts = partitions or max(spark.sparkContext.defaultParallelism, -(-n_customers // 100_000))
    df = df.withColumn("_bucket", F.pmod(F.xxhash64(F.col(id_col).cast("string")), F.lit(parts)))
    panel_cfg = scorer.panel
    timings: dict[str, float] = {"session_s": session_s}

    def validate(pdf: pd.DataFrame) -> pd.DataFrame:
        raw = _to_raw(pdf, month_col)
        _, errors = _validated(raw, panel_cfg)
        months = raw[month_col]
        seen = ",".join(sorted({str(m) for m in months.dropna().unique()}))
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

    t = time.perf_counter()
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
        raise PanelValidationError(_merge_violations(violations), source=str(src))
    months_seen = {m for r in found for m in r["months"].split(",") if m}
    if month not in months_seen:
        raise PanelValidationError(
            [Violation(MONTH, f"has no rows for the as-of month {month}")], source=str(src)
        )
    timings["validate_s"] = time.perf_counter() - t

    stamp = scored_at or datetime.now(UTC).isoformat(timespec="seconds")
    schema = scorer.schema
    unranked = pa.schema([f for f in schema if f.name not in _RANKS])
    out_ddl = _ddl(unranked) + ", `_counts` string"
    names = unranked.names

    def score(pdf: pd.DataFrame) -> pd.DataFrame:
        rows, counts = score_batch(
            _to_raw(pdf, month_col), month, scorer, run_id=run_id, scored_at=stamp
        )
        rows = rows[names].copy()
        rows["_counts"] = None
        if len(rows):
            rows.iloc[0, rows.columns.get_loc("_counts")] = json.dumps(counts)
        return rows

    t = time.perf_counter()
    scored = df.groupBy("_bucket").applyInPandas(score, out_ddl).cache()
    total: dict[str, Any] = {}
    for r in scored.where(F.col("_counts").isNotNull()).select("_counts").collect():
        add_counts(total, json.loads(r["_counts"]))
    key = F.when(F.col("near_band").isNotNull(), F.col("near_band")).otherwise(
        F.concat(F.lit("tier "), F.col("tier"))
    )
    w = Window.partitionBy("_key").orderBy(F.col("p_upgrade").desc_nulls_last())
    ranked = (
        scored.withColumn("_key", key)
        .withColumn("_pos", F.rank().over(w))
        .withColumn("_n", F.count("p_upgrade").over(Window.partitionBy("_key")))
    )
    for name, scale in (
        ("upgrade_decile", 10),
        ("upgrade_percentile", 100),
        ("upgrade_permille", 1000),
    ):
        ranked = ranked.withColumn(
            name,
            F.when(
                F.col("p_upgrade").isNotNull(), F.expr(f"(_pos * {scale} + _n - 1) div _n")
            ).cast("bigint"),
        )
    final = (
        ranked.select(*schema.names)
        .repartition(parts, "customer_id")
        .sortWithinPartitions("customer_id")
    )
    work = dest.with_name(dest.name + ".partial")
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
    job = {"identity": {"input_digest": _digest_input(src)}, "run_id": run_id, "scored_at": stamp}
    manifest = make_manifest(
        month=month,
        n_rows=n_rows,
        counts=total,
        src=src,
        job=job,
        scorer=scorer,
        engine=f"spark {spark.sparkContext.master}",
        batches=parts,
        report=report,
        timings=timings,
        plan=plan,
    )
    if manifest["rows"] != sum(total.get("tiers", {}).values()):
        raise SegmentsError("spark: rows written differ from rows scored")
    _write_text_atomic(work / "_drift.csv", report.to_csv(index=False))
    _write_text_atomic(work / "_manifest.json", json.dumps(manifest, indent=2))
    _publish(work, dest, plan.overwrite)
    return ScoreResult(dest, manifest, report, run_id)
