"""Files in: what an input is, checked before any work, and reading it.

**Inputs are inspected before any work** (:func:`inspect_files`): the path exists, it is a
Parquet file, a folder of Parquet parts or a CSV (``.csv``, ``.csv.gz``, ``.csv.bz2``); a
file is not empty and its bytes are what its name says (no gzip named ``.csv``); a CSV is
UTF-8 with unique column names; Parquet parts share one set of columns. Each problem is an
:class:`InputFileError` naming the file, part or column.

Where an output may go and how it is written safely is :mod:`segments.core.data.outputs`.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.exceptions import SegmentsError

__all__ = [
    "InputFileError",
    "InputFiles",
    "inspect_files",
    "read_table",
    "table_format",
]

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
_PARQUET_SUFFIXES = (".parquet", ".pq")
# Leading bytes of formats a careless rename can hide behind a .csv or .parquet name.
_MAGIC = {
    b"\x1f\x8b": "gzip-compressed",
    b"BZh": "bzip2-compressed",
    b"PK\x03\x04": "a zip",
    b"\xfd7zXZ": "xz-compressed",
    b"\x28\xb5\x2f\xfd": "zstd-compressed",
    b"PAR1": "Parquet",
}


class InputFileError(SegmentsError, FileNotFoundError):
    """An input file is missing, unreadable, or not in a format segments reads."""


def table_format(path: str | os.PathLike[str]) -> str:
    """Return ``"parquet"`` or ``"csv"`` from a name (a folder counts as Parquet parts)."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith(_PARQUET_SUFFIXES) or p.is_dir():
        return "parquet"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    raise InputFileError(
        f"file `{path}`: unknown format; expected a name ending in .parquet, .csv, .csv.gz "
        "or .csv.bz2, or a folder of .parquet parts"
    )


@dataclass(frozen=True)
class InputFiles:
    """What :func:`inspect_files` found: the files to read and their one schema.

    Attributes
    ----------
    path : Path
        As given.
    format : {"parquet", "csv"}
    files : tuple of Path
        The file, or the folder's Parquet parts in name order.
    columns : tuple of str
    schema : pyarrow.Schema or None
        Parquet: the parts' schema, unified (numeric widening) when the parts differ.
    rows : int
        Rows in the input (Parquet metadata; a counting pass for CSV).
    uniform : bool
        Whether every part stores every column with the same type.
    """

    path: Path
    format: str
    files: tuple[Path, ...]
    columns: tuple[str, ...]
    schema: pa.Schema | None
    rows: int
    uniform: bool = True


def _fail(path: Path, problem: str, hint: str = "") -> InputFileError:
    """The error for ``path``: its problem, then how to fix it."""
    text = f"input `{path}`: {problem}"
    return InputFileError(text + (f"; {hint}" if hint else ""))


def _duplicates(names: Sequence[str]) -> list[str]:
    """Names that appear more than once, sorted."""
    seen: set[str] = set()
    return sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]


def _head(path: Path, n: int = 8) -> bytes:
    """The first ``n`` bytes of a file."""
    with open(path, "rb") as fh:
        return fh.read(n)


def _parquet_parts(folder: Path) -> list[Path]:
    """A folder's Parquet parts in name order; other or hidden data files are an error."""
    found = sorted(p for p in folder.rglob("*") if p.is_file())
    hidden = [
        p for p in found if any(part.startswith(("_", ".")) for part in p.relative_to(folder).parts)
    ]
    # Readers skip hidden names; a hidden *data* part would be skipped silently.
    skipped = [
        p
        for p in hidden
        if p.name.lower().endswith(_PARQUET_SUFFIXES)
        and p.name not in ("_metadata", "_common_metadata")
    ]
    if skipped:
        raise _fail(
            folder,
            "holds Parquet parts with hidden names that readers skip ("
            + ", ".join(str(p.relative_to(folder)) for p in skipped[:5])
            + ")",
            "rename them (no leading '.' or '_') or move them out",
        )
    files = [p for p in found if p not in hidden]
    others = [p for p in files if not p.name.lower().endswith(_PARQUET_SUFFIXES)]
    if others:
        raise _fail(
            folder,
            "is a folder holding files that are not Parquet parts ("
            + ", ".join(str(p.relative_to(folder)) for p in others[:5])
            + ")",
            "a folder input must hold only .parquet parts",
        )
    if not files:
        raise _fail(folder, "is a folder with no Parquet parts (*.parquet)")
    return files


def _parquet_schema(part: Path, shown: Path) -> tuple[pa.Schema, int]:
    """A Parquet file's schema and row count, or an error naming ``shown``."""
    if part.stat().st_size == 0:
        raise _fail(shown, "is empty (0 bytes)")
    head = _head(part, 4)
    if head != b"PAR1":
        what = next((v for k, v in _MAGIC.items() if head.startswith(k)), None)
        raise _fail(shown, "is not a Parquet file" + (f" (it holds {what} data)" if what else ""))
    try:
        meta = pq.ParquetFile(part).metadata
        schema = pq.read_schema(part)
    except (pa.ArrowException, OSError) as exc:
        raise _fail(shown, f"is not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    dup = _duplicates(schema.names)
    if dup:
        raise _fail(shown, f"has duplicate column names: {', '.join(dup)}")
    return schema, meta.num_rows


def _unify_parts(path: Path, parts: list[Path]) -> tuple[pa.Schema, int, bool]:
    """One schema for every part, or an error naming the part and the columns."""
    schemas, rows = [], 0
    for part in parts:
        schema, n = _parquet_schema(part, part)
        schemas.append(schema)
        rows += n
    first = schemas[0]
    for part, schema in zip(parts[1:], schemas[1:], strict=True):
        missing = [c for c in first.names if c not in schema.names]
        extra = [c for c in schema.names if c not in first.names]
        if missing or extra:
            said = "; ".join(
                s
                for s in (
                    f"lacks {', '.join(missing)}" if missing else "",
                    f"has {', '.join(extra)} which {parts[0].name} lacks" if extra else "",
                )
                if s
            )
            raise _fail(
                path,
                f"part {part.name} has other columns than {parts[0].name}: {said}",
                "every part of a folder must have the same columns",
            )
    try:
        unified = pa.unify_schemas(
            [s.remove_metadata() for s in schemas], promote_options="permissive"
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        for part, schema in zip(parts, schemas, strict=True):
            for f in schema:
                base = first.field(f.name).type
                if f.type != base:
                    raise _fail(
                        path,
                        f"part {part.name}: column `{f.name}` is {f.type}, "
                        f"but {base} in {parts[0].name}",
                        "every part must store a column with one type",
                    ) from None
        raise
    uniform = all(s.remove_metadata().equals(first.remove_metadata()) for s in schemas)
    return unified.with_metadata(first.metadata), rows, uniform


def _csv_stream(path: Path) -> pa.NativeFile:
    """A byte stream over a CSV, decompressed by its name."""
    return pa.input_stream(str(path), compression="detect")


def _check_csv(path: Path) -> tuple[tuple[str, ...], int]:
    """Header, UTF-8 and row count of a CSV, in one streaming pass over its bytes."""
    if path.stat().st_size == 0:
        raise _fail(path, "is empty (0 bytes)")
    head = _head(path)
    name = path.name.lower()
    expected = {".gz": b"\x1f\x8b", ".bz2": b"BZh"}
    suffix = next((s for s in expected if name.endswith(s)), None)
    if suffix is not None and not head.startswith(expected[suffix]):
        raise _fail(path, f"is named {suffix} but is not {suffix[1:]}-compressed")
    if suffix is None:
        what = next((v for k, v in _MAGIC.items() if head.startswith(k)), None)
        if what is not None:
            raise _fail(
                path,
                f"is named .csv but holds {what} data",
                "name it after its content (e.g. .csv.gz for gzip)",
            )
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset, header, lines = 0, None, 0
    first = last = b""
    try:
        with _csv_stream(path) as stream:
            while True:
                chunk = stream.read(1 << 24)
                if not chunk:
                    decoder.decode(b"", final=True)
                    break
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    at = offset + exc.start
                    line = lines + chunk[: exc.start].count(b"\n") + 1
                    raise _fail(
                        path,
                        f"is not UTF-8 text (byte 0x{chunk[exc.start]:02x} at "
                        f"offset {at:,}, line {line:,})",
                        "re-save it as UTF-8, e.g. iconv -f GB18030 -t UTF-8",
                    ) from None
                if header is None:
                    first += chunk
                    if b"\n" in first or len(first) > 1 << 20:
                        header = first.split(b"\n", 1)[0]
                lines += chunk.count(b"\n")
                offset += len(chunk)
                last = chunk[-1:]
    except (OSError, pa.ArrowException, EOFError) as exc:
        raise _fail(path, f"cannot be read ({str(exc).splitlines()[0]})") from None
    if header is None:
        header = first
    rows = lines - (0 if offset == 0 or last == b"\n" else -1) - 1
    text = header.decode("utf-8").lstrip("\ufeff").rstrip("\r")
    if not text.strip():
        raise _fail(path, "has no header line")
    import csv

    columns = next(csv.reader([text]))
    dup = _duplicates(columns)
    if dup:
        raise _fail(path, f"has duplicate column names: {', '.join(dup)}")
    if any(not c.strip() for c in columns):
        raise _fail(path, "has a column with an empty name in its header")
    return tuple(columns), max(rows, 0)


def inspect_files(path: str | os.PathLike[str]) -> InputFiles:
    """Check that ``path`` is an input segments reads, before any work; say what it holds.

    Parameters
    ----------
    path : str or path
        A Parquet file, a folder of Parquet parts, or a CSV (``.csv``, ``.csv.gz``,
        ``.csv.bz2``).

    Returns
    -------
    InputFiles

    Raises
    ------
    InputFileError
        Naming the file or part and the problem: missing, empty, not what its name says,
        not UTF-8, duplicate column names, parts with other columns or types.
    """
    p = Path(path)
    fmt = table_format(p)
    if not p.exists():
        raise InputFileError(f"file `{path}` does not exist")
    if fmt == "parquet":
        uniform = True
        if p.is_dir():
            parts = _parquet_parts(p)
            schema, rows, uniform = _unify_parts(p, parts)
        else:
            parts = [p]
            schema, rows = _parquet_schema(p, p)
        return InputFiles(p, "parquet", tuple(parts), tuple(schema.names), schema, rows, uniform)
    if not p.is_file():
        raise _fail(p, "is not a file")
    columns, rows = _check_csv(p)
    return InputFiles(p, "csv", (p,), columns, None, rows)


def read_table(
    path: str | os.PathLike[str],
    *,
    columns: list[str] | None = None,
    str_columns: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read a Parquet file or folder, or a CSV, after :func:`inspect_files` checked it.

    Parameters
    ----------
    path : str or path
        A Parquet file, a folder of Parquet parts, or a CSV.
    columns : list of str, optional
        Only these columns (all by default).
    str_columns : tuple of str, default ()
        Columns a CSV's values are read as text (ids, months); Parquet keeps its types.

    Returns
    -------
    DataFrame

    Raises
    ------
    InputFileError
        As :func:`inspect_files`.
    """
    info = inspect_files(path)
    if info.format == "parquet":
        import pyarrow.dataset as ds

        table = ds.dataset(
            list(map(str, info.files)), schema=info.schema, format="parquet"
        ).to_table(columns=columns)
        return table.to_pandas()
    dtype = {c: "str" for c in str_columns if c in info.columns}
    return pd.read_csv(path, usecols=columns, dtype=dtype or None, encoding="utf-8")
