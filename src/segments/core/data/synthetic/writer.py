"""Writing the synthetic bank to ``panel.parquet`` and ``truth.parquet``, chunk by chunk."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.data.synthetic.bank import iter_bank

__all__ = ["write_bank"]


def _marked(schema: pa.Schema, kind: str) -> pa.Schema:
    from segments.core.data.outputs import OUTPUT_KEY

    return schema.with_metadata({**(schema.metadata or {}), OUTPUT_KEY: kind.encode()})


def write_bank(
    out_dir: str | os.PathLike[str],
    n_customers: int,
    n_months: int = 24,
    *,
    seed: int = 0,
    start: str = "2024-01",
) -> dict[str, Path]:
    """Write ``panel.parquet`` and ``truth.parquet`` into ``out_dir``, chunk by chunk.

    Memory is bounded by one chunk of customers. Both files are written under temporary
    names and renamed into place only when complete, so a failure leaves no partial file.

    Parameters
    ----------
    out_dir : str or path
        The directory to write into (created if missing).
    n_customers : int
        Customers in the bank.
    n_months : int, default 24
        Calendar months in the panel.
    seed : int, default 0
        Master seed; the same seed gives the same files.
    start : str, default "2024-01"
        The first month.

    Returns
    -------
    dict
        ``{"panel": path, "truth": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=out))
    try:
        writer: pq.ParquetWriter | None = None
        truth_writer: pq.ParquetWriter | None = None
        for panel, truth in iter_bank(n_customers, n_months, seed=seed, start=start):
            truth_table = pa.Table.from_pandas(truth, preserve_index=False)
            if writer is None:  # marked as segments' own, so --overwrite may replace them
                writer = pq.ParquetWriter(
                    tmp / "panel.parquet", _marked(panel.schema, "synthetic panel")
                )
                truth_writer = pq.ParquetWriter(
                    tmp / "truth.parquet", _marked(truth_table.schema, "synthetic truth")
                )
            writer.write_table(panel, row_group_size=1_000_000)
            assert truth_writer is not None
            truth_writer.write_table(truth_table)
        assert writer is not None and truth_writer is not None
        writer.close()
        truth_writer.close()
        paths = {}
        for name in ("truth", "panel"):
            target = out / f"{name}.parquet"
            os.replace(tmp / f"{name}.parquet", target)
            paths[name] = target
        return paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
