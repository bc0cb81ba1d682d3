"""Spooling an input that cannot be read in batches straight away into hash buckets.

A CSV, an input not sorted by customer, or Parquet parts that store a column with different
types are read once, in Arrow record batches, and each row is written to the bucket its
customer id hashes to, so a customer's months always land in the same bucket whatever the
file's order. Only the columns the job reads are written. Each bucket is then a batch of
whole customers, read in memory bounded by the bucket.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.data.files import InputFiles
from segments.core.data.panel import ID, MONTH, PanelConfig, PanelInput
from segments.exceptions import PanelValidationError, Violation

__all__ = ["READ_ROWS", "bucket_of", "plan_buckets", "record_batches", "spool"]

#: Rows per Arrow record batch read from the input (a customer's months may span several).
READ_ROWS = 1 << 18


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


def spool(
    found: PanelInput,
    panel: PanelConfig,
    columns: Sequence[str],
    folder: Path,
    n_buckets: int,
    tick: Callable[[str, int, int], None],
    *,
    source: str = "",
) -> list[Path]:
    """Write the input's ``columns`` into ``n_buckets`` bucket files of whole customers.

    Skipped when ``folder`` holds a finished spool (a resumed job).

    Returns
    -------
    list of Path
        The bucket files, in order.

    Raises
    ------
    PanelValidationError
        The input has no id column or no rows.
    """
    if not (folder / "_done").exists():
        for f in folder.glob("*"):
            f.unlink()
        rows = _write_buckets(found, panel, columns, folder, n_buckets, tick, source)
        if rows == 0:
            raise PanelValidationError([Violation("-", "the input has no rows")], source=source)
        (folder / "_done").write_text(str(rows))
    return sorted(folder.glob("bucket-*.parquet"))


def _write_buckets(
    found: PanelInput,
    panel: PanelConfig,
    columns: Sequence[str],
    folder: Path,
    n_buckets: int,
    tick: Callable[[str, int, int], None],
    source: str,
) -> int:
    """Every input row into its customer's bucket; the rows written."""
    id_col = panel.source_name(ID)
    writers: dict[int, pq.ParquetWriter] = {}
    rows = 0
    try:
        for batch in record_batches(found.files, panel, READ_ROWS):
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
                    source=source,
                )
            table = table.select([c for c in table.column_names if c in set(columns)])
            b = bucket_of(table.column(id_col), n_buckets)
            order = np.argsort(b, kind="stable")
            cuts = np.flatnonzero(np.diff(b[order])) + 1
            for chunk in np.split(order, cuts):
                if not len(chunk):
                    continue
                k = int(b[chunk[0]])
                if k not in writers:
                    writers[k] = pq.ParquetWriter(
                        folder / f"bucket-{k:05d}.parquet", table.schema, compression="zstd"
                    )
                writers[k].write_table(table.take(pa.array(chunk)))
            rows += table.num_rows
            tick("spool", rows, 0)
    finally:
        for w in writers.values():
            w.close()
    return rows
