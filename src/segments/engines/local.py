"""The local engine: stream the input through buckets of whole customers in bounded memory.

The input (Parquet or CSV) is read in Arrow record batches and spooled into hash buckets of
customers, so a customer's months always land in the same bucket whatever the file's order;
every bucket is validated before any scoring, then each is scored with
:func:`segments.core.scoring.batch.score_batch`, in memory bounded by the bucket size
(``batch_customers``), never by the input size. Ranks within bands need the whole month:
after scoring, a :class:`~segments.core.upgrade.ranks.RankTable` of the probabilities alone (8 bytes
per scored customer) ranks every part.

Work goes to ``OUT.partial/`` (``_job.json``, ``spool/``, ``parts/``, ``final/``); a killed
run with the same identity (:func:`segments.jobs.score.job_identity`) resumes from the
buckets it finished, one with another identity is discarded and started again.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.data.files import InputFiles
from segments.core.data.panel import ID, MONTH, PanelConfig, PanelInput, read_parquet_panel
from segments.core.scoring.batch import (
    add_counts,
    drift_report,
    merge_violations,
    score_batch,
    validate_batch,
)
from segments.core.scoring.output import ScoreResult, write_part, write_text_atomic
from segments.core.upgrade.ranks import add_ranks, table_from_frames
from segments.exceptions import PanelValidationError, Violation
from segments.jobs.contract import ScoringJob, digest_input, job_identity, make_manifest, publish

__all__ = ["READ_ROWS", "bucket_of", "plan_buckets", "record_batches", "run"]

#: Rows per Arrow record batch read from the input (a customer's months may span several).
READ_ROWS = 1 << 18

Tick = Callable[[str, int, int], None]


def plan_buckets(found: PanelInput, batch_customers: int) -> int:
    """Buckets of about ``batch_customers`` customers, from the input's row count: rows per
    bucket stay below ``batch_customers`` x months, whatever the input's kind."""
    months = max(1, len(found.months or ()))
    return max(1, math.ceil(found.rows / months / batch_customers))


def bucket_of(ids: pa.Array, n_buckets: int) -> np.ndarray:
    """A stable bucket per row from its customer id (hash of the id text)."""
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(pc.cast(ids, pa.string()))
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    uniq = enc.dictionary.to_numpy(zero_copy_only=False).astype(object)
    h = pd.util.hash_array(uniq, categorize=False, hash_key="segments-scoring")
    of_unique = (h % np.uint64(n_buckets)).astype(np.int64)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    return of_unique[idx]


def record_batches(files: InputFiles, panel: PanelConfig, rows: int) -> Iterator[pa.RecordBatch]:
    """The input as Arrow record batches (Parquet parts read with their one schema)."""
    id_col, month_col = panel.source_name(ID), panel.source_name(MONTH)
    if files.format == "parquet":
        if len(files.files) == 1:
            yield from pq.ParquetFile(files.files[0]).iter_batches(batch_size=rows)
            return
        import pyarrow.dataset as ds

        data = ds.dataset([str(f) for f in files.files], schema=files.schema, format="parquet")
        yield from data.to_batches(batch_size=rows)
        return
    from pyarrow import csv

    opts = csv.ConvertOptions(column_types={id_col: pa.string(), month_col: pa.string()})
    reader = csv.open_csv(
        files.path, convert_options=opts, read_options=csv.ReadOptions(block_size=1 << 24)
    )
    yield from reader


def run(job: ScoringJob) -> ScoreResult:
    """Score a prepared job in bounded memory, resuming a killed run of the same job.

    Called by :func:`segments.jobs.score.execute`, which holds the output lock.

    Parameters
    ----------
    job : ScoringJob
        Reads ``batch_customers``, ``scored_at``, ``run_id``, ``progress``, ``on_start``
        and ``on_discard``.

    Returns
    -------
    ScoreResult

    Raises
    ------
    PanelValidationError
        The input breaks the data contract (every problem listed; nothing left behind).
    """
    t0 = time.perf_counter()
    work = job.dest.with_name(job.dest.name + ".partial")
    timings: dict[str, float] = {}
    state = _start_or_resume(job, work)
    timings["digest_and_plan_s"] = time.perf_counter() - t0
    try:
        return _run(job, work, state, timings)
    except PanelValidationError:
        shutil.rmtree(work, ignore_errors=True)  # nothing partial stays behind
        raise


def _start_or_resume(job: ScoringJob, work: Path) -> dict[str, Any]:
    """The stored state of a killed run of this job, or a fresh one (``_job.json``)."""
    n_buckets = plan_buckets(job.input, job.batch_customers)
    ident = job_identity(job, digest_input(job.src), n_buckets)
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
    job: ScoringJob, work: Path, state: dict[str, Any], timings: dict[str, float]
) -> ScoreResult:
    tick: Tick = job.progress or (lambda *_: None)
    t = time.perf_counter()
    _spool(job, work / "spool", state["identity"]["n_buckets"], tick)
    timings["spool_s"] = time.perf_counter() - t
    buckets = sorted((work / "spool").glob("bucket-*.parquet"))
    t = time.perf_counter()
    if not (work / "_validated").exists():
        _validate(job, buckets, tick)
        (work / "_validated").write_text("ok")
    timings["validate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    _score(job, buckets, work / "parts", state, tick)
    timings["score_s"] = time.perf_counter() - t
    t = time.perf_counter()
    final = work / "final"
    n_rows, counts = _rank(job, work / "parts", final, tick)
    timings["rank_s"] = time.perf_counter() - t
    scorer = job.scorer
    report = drift_report(scorer.reference, counts, scorer.psi_thresholds)
    write_text_atomic(final / "_drift.csv", report.to_csv(index=False))
    manifest = make_manifest(
        job,
        state,
        n_rows=n_rows,
        counts=counts,
        engine="local",
        batches=len(buckets),
        report=report,
        timings=timings,
    )
    write_text_atomic(final / "_manifest.json", json.dumps(manifest, indent=2))
    publish(final, job.dest, job.overwrite)
    shutil.rmtree(work, ignore_errors=True)
    return ScoreResult(job.dest, manifest, report, state["run_id"])


def _spool(job: ScoringJob, spool: Path, n_buckets: int, tick: Tick) -> None:
    """Spool the input into buckets of whole customers (skipped when already done)."""
    if (spool / "_done").exists():
        return
    for f in spool.glob("*"):
        f.unlink()
    id_col = job.scorer.panel.source_name(ID)
    writers: dict[int, pq.ParquetWriter] = {}
    rows = 0
    try:
        for batch in record_batches(job.input.files, job.scorer.panel, READ_ROWS):
            table = pa.Table.from_batches([batch])
            if id_col not in table.column_names:
                raise PanelValidationError(
                    [
                        Violation(
                            ID,
                            "is a required column but is missing from the input",
                            hint=f"columns: {', '.join(table.column_names[:20])}",
                        )
                    ],
                    source=str(job.src),
                )
            b = bucket_of(table.column(id_col), n_buckets)
            order = np.argsort(b, kind="stable")
            cuts = np.flatnonzero(np.diff(b[order])) + 1
            for chunk in np.split(order, cuts):
                if not len(chunk):
                    continue
                k = int(b[chunk[0]])
                if k not in writers:
                    writers[k] = pq.ParquetWriter(
                        spool / f"bucket-{k:05d}.parquet", table.schema, compression="zstd"
                    )
                writers[k].write_table(table.take(pa.array(chunk)))
            rows += table.num_rows
            tick("spool", rows, 0)
    finally:
        for w in writers.values():
            w.close()
    if rows == 0:
        raise PanelValidationError([Violation("-", "the input has no rows")], source=str(job.src))
    (spool / "_done").write_text(str(rows))


def _read_bucket(path: Path, panel: PanelConfig) -> pd.DataFrame:
    """A spooled bucket as the panel reader would return it (months as periods)."""
    return read_parquet_panel(path, panel, panel.source_name(MONTH))


def _validate(job: ScoringJob, buckets: list[Path], tick: Tick) -> None:
    """Validate every bucket before any scoring: all problems at once, merged."""
    found: list[Violation] = []
    months_seen: set[str] = set()
    for i, path in enumerate(buckets):
        frame, errors = validate_batch(_read_bucket(path, job.scorer.panel), job.scorer.panel)
        found += errors
        if frame is not None:
            months_seen.update(str(m) for m in frame[MONTH].unique())
        tick("validate", i + 1, len(buckets))
    if found:
        raise PanelValidationError(merge_violations(found), source=str(job.src))
    if job.month not in months_seen:
        last = max(months_seen) if months_seen else "none"
        raise PanelValidationError(
            [Violation(MONTH, f"has no rows for the as-of month {job.month} (last month {last})")],
            source=str(job.src),
        )


def _score(
    job: ScoringJob, buckets: list[Path], parts: Path, state: dict[str, Any], tick: Tick
) -> None:
    """Score each bucket into a part (a part already scored by a killed run is kept)."""
    schema = job.scorer.schema
    for i, path in enumerate(buckets):
        part = parts / path.name.replace("bucket-", "part-")
        if not part.exists():
            raw = _read_bucket(path, job.scorer.panel)
            rows, counts = score_batch(
                raw, job.month, job.scorer, run_id=state["run_id"], scored_at=state["scored_at"]
            )
            part.with_suffix(".counts.json").write_text(json.dumps(counts))
            write_part(pa.Table.from_pandas(rows, schema=schema, preserve_index=False), part)
        tick("score", i + 1, len(buckets))


def _rank(
    job: ScoringJob, parts: Path, final: Path, tick: Tick
) -> tuple[dict[str, int], dict[str, Any]]:
    """Rank every part within bands over the whole month into ``final``; rows per part
    and the counts added up."""
    schema = job.scorer.schema
    part_files = sorted(parts.glob("part-*.parquet"))
    table = table_from_frames(
        pq.read_table(f, columns=["near_band", "tier", "p_upgrade"]).to_pandas() for f in part_files
    )
    total: dict[str, Any] = {}
    n_rows: dict[str, int] = {}
    for i, f in enumerate(part_files):
        add_counts(total, json.loads(f.with_suffix(".counts.json").read_text()))
        target = final / f.name
        frame = pq.read_table(f).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        n_rows[f.name] = len(frame)
        if not target.exists():
            ranked = add_ranks(frame, table)
            write_part(pa.Table.from_pandas(ranked, schema=schema, preserve_index=False), target)
        tick("rank", i + 1, len(part_files))
    return n_rows, total
