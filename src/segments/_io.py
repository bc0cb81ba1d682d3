"""Reading tables and writing them atomically (Parquet or CSV, chosen by extension)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from segments.exceptions import SegmentsError

__all__ = ["atomic_path", "read_table", "table_format", "write_table"]


class InputFileError(SegmentsError, FileNotFoundError):
    """An input file is missing or in a format segments does not read."""


def table_format(path: str | os.PathLike[str]) -> str:
    """Return ``"parquet"`` or ``"csv"`` from a file name (``.csv.gz`` counts as CSV)."""
    name = Path(path).name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")):
        return "csv"
    raise InputFileError(
        f"file `{path}`: unknown format; expected a name ending in .parquet or .csv (.csv.gz)"
    )


def read_table(
    path: str | os.PathLike[str],
    *,
    columns: list[str] | None = None,
    str_columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read a Parquet or CSV file; ``str_columns`` are read from CSV as text (ids keep zeros)."""
    path = Path(path)
    fmt = table_format(path)
    if not path.exists():
        raise InputFileError(f"file `{path}` does not exist")
    if fmt == "parquet":
        return pd.read_parquet(path, columns=columns)
    header = pd.read_csv(path, nrows=0).columns
    dtype = {c: "str" for c in str_columns if c in header}
    return pd.read_csv(path, usecols=columns, dtype=dtype or None)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A failure (or a kill) part-way leaves ``path`` as it was and no temporary file behind
    that could be mistaken for output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to Parquet or CSV (by extension) atomically and return the path."""
    path = Path(path)
    fmt = table_format(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            compression = "gzip" if path.name.lower().endswith(".gz") else None
            df.to_csv(tmp, index=False, compression=compression)
    return path
