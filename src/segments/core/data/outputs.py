"""Files out: where an output may go, one writer per output, and writing it safely.

Two rules every command follows, defined here once (inputs are :mod:`segments.core.data.files`):

* **No command writes to, over, inside or around one of its inputs** (:func:`check_output`):
  an output that is an input, holds one or sits inside one is refused, and so is the
  working folder; an existing output is replaced only with ``overwrite`` and only when
  segments wrote it (a scoring folder by its manifest, a table file by its metadata).
* **One writer per output** (:func:`output_lock`): an exclusive lock beside the output; a
  second job for the same output fails naming the first.

Files are written under a temporary name and renamed into place, with the mode the umask
gives (not the 0600 of a temporary file).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.data.files import table_format
from segments.exceptions import ConfigError, SegmentsError, Violation

__all__ = [
    "OUTPUT_KEY",
    "OutputBusyError",
    "atomic_path",
    "check_output",
    "is_segments_table",
    "output_lock",
    "write_table",
]

#: Key-value metadata that marks a Parquet table segments wrote (``--overwrite`` checks it).
OUTPUT_KEY = b"segments.output"


class OutputBusyError(SegmentsError, BlockingIOError):
    """Another segments job is writing the same output."""


def _resolved(path: str | os.PathLike[str]) -> Path:
    """The absolute path with symlinks resolved."""
    return Path(os.path.abspath(path)).resolve()


def _inside(child: Path, parent: Path) -> bool:
    """Whether ``child`` is ``parent`` or below it."""
    return child == parent or parent in child.parents


def is_segments_table(path: str | os.PathLike[str], kind: str | None = None) -> bool:
    """Whether ``path`` is a table file segments wrote (Parquet metadata, or CSV header).

    Parameters
    ----------
    path : str or path
        The file.
    kind : str, optional
        Also require this kind (``"tier table"``, ``"synthetic panel"``); a CSV carries no
        kind, only the leading columns of a tier or growth table.

    Returns
    -------
    bool
        False for anything missing, unreadable or not written by segments.
    """
    p = Path(path)
    if not p.is_file():
        return False
    with contextlib.suppress(Exception):
        if table_format(p) == "parquet":
            meta = pq.read_schema(p).metadata or {}
            if kind is not None:
                return meta.get(OUTPUT_KEY) == kind.encode()
            return OUTPUT_KEY in meta
        with pa.input_stream(str(p), compression="detect") as stream:
            first = stream.read(1 << 16).split(b"\n", 1)[0].decode("utf-8")
        return first.startswith(_CSV_MARKS)
    return False


#: The first columns of the CSV tables segments writes: the tier table, the growth table.
_CSV_MARKS = ("customer_id,month,aum_basis,tier", "customer_id,month,aum_change,growth_")


def check_output(
    out: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]] = (),
    *,
    option: str = "--out",
    overwrite: bool = False,
    ours: Callable[[Path], bool] = is_segments_table,
    siblings: Sequence[str] = (),
    what: str = "output",
) -> Path:
    """Refuse an output that would touch an input or data segments did not write.

    Parameters
    ----------
    out : path
        Where the command will write (a file or a folder).
    inputs : sequence of path
        Everything the command reads.
    option : str, default "--out"
        The option named in errors.
    overwrite : bool, default False
        Whether an existing output may be replaced; only one ``ours`` accepts is.
    ours : callable, default :func:`is_segments_table`
        Tells an earlier output of this command from anything else.
    siblings : sequence of str
        Suffixes of work paths written beside ``out`` (``".partial"``): checked likewise.
    what : str
        The output's kind, for messages.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ConfigError
        Naming the option and the problem; nothing has been written.
    """
    dest = Path(out)
    target = _resolved(dest)

    def refuse(problem: str, hint: str = "") -> ConfigError:
        return ConfigError([Violation(option, f"{dest}: {problem}", hint=hint)])

    cwd = Path.cwd().resolve()
    if _inside(cwd, target):
        raise refuse(
            "is the working folder or holds it; segments never writes over it",
            "name a new folder or file",
        )
    for extra in ("", *siblings):
        place = target.with_name(target.name + extra)
        for src in inputs:
            s = _resolved(src)
            if place == s:
                raise refuse(f"is the input {src}; segments never writes over its input")
            if _inside(s, place):
                raise refuse(f"holds the input {src}; segments never writes around its input")
            if s.is_dir() and _inside(place, s):
                raise refuse(
                    f"is inside the input folder {src}; segments never writes into its input"
                )
    if dest.exists() or dest.is_symlink():
        if not overwrite:
            raise refuse("exists", "pass --overwrite to replace it")
        if not ours(dest):
            raise refuse(
                f"exists and is not a {what} segments wrote; --overwrite replaces "
                f"only segments' own {what}, so it is left as it is",
                "choose another path",
            )
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise refuse(f"cannot be created: {parent} is a file")
    try:  # a real probe: permissions, read-only mounts and root all answer truthfully
        fd, probe = tempfile.mkstemp(prefix=".segments-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise refuse(
            f"cannot be written: {parent} does not accept new files ({exc.strerror or exc})"
        ) from None
    return dest


def _lock_path(out: Path) -> Path:
    """The lock file beside ``out``."""
    return out.with_name(f".{out.name}.lock")


@contextlib.contextmanager
def output_lock(out: str | os.PathLike[str], job: dict | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on ``out`` for one job; a second job fails naming the first.

    The lock is a file beside ``out`` (``.NAME.lock``) holding the job's description,
    locked with ``flock``: the kernel releases it when the holder dies, so a killed job
    never blocks the next. It is removed when the job ends.

    Parameters
    ----------
    out : str or path
        The output the job writes.
    job : dict, optional
        What the job is (command, arguments), written into the lock beside pid, host and
        start time, so a second job can name it.

    Yields
    ------
    Path
        The lock file.

    Raises
    ------
    OutputBusyError
        Another process holds the lock (its pid, host, command and start time are named).
    """
    import fcntl

    dest = Path(out)
    path = _lock_path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 1 << 16, 0).decode() or "{}")
            except (ValueError, OSError):
                holder = {}
            os.close(fd)
            who = ", ".join(f"{k} {v}" for k, v in holder.items()) or "unknown job"
            raise OutputBusyError(
                f"--out {dest}: another segments job is writing it ({who});"
                " one writer per output: wait for it or choose another "
                "--out"
            ) from None
        # The holder may have removed the file between our open and lock: lock the live one.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(job or {}),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _umask() -> int:
    """The process umask (read by setting it and back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A failure (or a kill) part-way leaves ``path`` as it was and no temporary file behind
    that could be mistaken for output. The file gets the mode the umask gives.

    Parameters
    ----------
    path : str or path
        The file to write; its folder is created when missing.

    Yields
    ------
    Path
        The temporary file to write to.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], kind: str = "table") -> Path:
    """Write ``df`` to Parquet or CSV (by extension) atomically and return the path.

    Parquet files carry ``segments.output: <kind>`` in their metadata, which is how
    ``--overwrite`` knows a file segments wrote.

    Parameters
    ----------
    df : DataFrame
        The table; its index is not written.
    path : str or path
        ``.parquet``, ``.csv``, ``.csv.gz`` or ``.csv.bz2``.
    kind : str, default "table"
        What the table is (``"tier table"``), recorded in Parquet metadata.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    fmt = table_format(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            table = pa.Table.from_pandas(df, preserve_index=False)
            meta = {**(table.schema.metadata or {}), OUTPUT_KEY: kind.encode()}
            pq.write_table(table.replace_schema_metadata(meta), tmp)
        else:
            compression = {".gz": "gzip", ".bz2": "bz2"}.get(path.suffix.lower())
            df.to_csv(tmp, index=False, compression=compression)
    return path
