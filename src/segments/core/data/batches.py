"""Batches of whole customers, read straight from a customer-sorted Parquet input.

A bank's panel is usually exported sorted by customer (a database's ``ORDER BY``, Spark's
``sortWithinPartitions``). Such an input needs no spool: :func:`plan_sorted` reads the id
column alone, once, checks that every customer's rows are together and in order, and cuts
the rows into :class:`Batch` ranges of about ``batch_customers`` customers, each cut on a
customer boundary and, where it can be, at the start of a Parquet row group, so that each
batch reads its own row groups and little else. :func:`read_batch` then reads one range's
columns, in any process, in memory bounded by the batch.

An input that is not sorted, a CSV, parts that store a column with different types, or
row groups much larger than a batch return no plan: the engine spools such an input into
hash buckets of customers first (one streaming pass), and each bucket is a batch.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segments.core.data.files import InputFiles

__all__ = ["Batch", "BatchPlan", "plan_sorted", "read_batch", "row_boundaries"]

#: A row group larger than this many batches' rows makes the plan spool instead: cutting
#: inside it would re-read its start for every batch.
MAX_ROW_GROUP_BATCHES = 4
#: Rows read at a time when a batch starts or ends inside a row group.
_STEP_ROWS = 1 << 16


@dataclass(frozen=True)
class Batch:
    """One batch of whole customers: rows ``start`` to ``stop`` (excluded) of the input.

    Attributes
    ----------
    index : int
        Its place in the plan (0, 1, ...): names its output part.
    start, stop : int
        Rows of the input, counted across its files in name order.
    customers : int
        Customers whose rows it holds.
    """

    index: int
    start: int
    stop: int
    customers: int


@dataclass(frozen=True)
class BatchPlan:
    """How a customer-sorted Parquet input is cut into batches.

    Attributes
    ----------
    files : tuple of str
        The input's Parquet files, in name order.
    row_groups : tuple of (int, int, int, int)
        Every row group as (file index, row group index, first row, rows).
    batches : tuple of Batch
    customers : int
        Distinct customers in the input (rows with a missing id are not counted).
    """

    files: tuple[str, ...]
    row_groups: tuple[tuple[int, int, int, int], ...]
    batches: tuple[Batch, ...]
    customers: int


def row_boundaries(ids: pa.Array, previous: pa.Scalar | None) -> tuple[np.ndarray, bool]:
    """Where new customers start in a chunk of a customer-sorted id column.

    Parameters
    ----------
    ids : pyarrow.Array
        The next rows' ids.
    previous : pyarrow.Scalar or None
        The last non-missing id before them (None at the start of the input).

    Returns
    -------
    starts : ndarray of int
        Positions in ``ids`` where a customer's first row is. A missing id never starts a
        customer: its row belongs to the customer before it (validation reports it).
    in_order : bool
        False when an id is smaller than the one before it: the input is not sorted.
    """
    valid = pc.is_valid(ids)
    pos = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    vals = ids.filter(valid)
    if previous is not None and previous.is_valid:
        vals = pa.concat_arrays([pa.array([previous.as_py()], type=ids.type), vals])
        head: list[bool] = []
    else:
        head = [True] if len(vals) else []
    if len(vals) < 2:
        return pos[: len(head)], True
    left, right = vals.slice(0, len(vals) - 1), vals.slice(1)
    if pc.any(pc.less(right, left)).as_py():
        return np.empty(0, dtype=np.int64), False
    new = pc.not_equal(right, left).to_numpy(zero_copy_only=False)
    if head:
        new = np.r_[True, new]
    return pos[new], True


def plan_sorted(
    found: InputFiles, id_col: str, batch_customers: int, months: int = 1
) -> BatchPlan | None:
    """Plan batches over a customer-sorted Parquet input from its id column alone.

    Parameters
    ----------
    found : InputFiles
        The inspected input.
    id_col : str
        The id column's name in the input.
    batch_customers : int
        About how many customers a batch holds.
    months : int, default 1
        Months in the input: rows per customer, to size row groups against batches.

    Returns
    -------
    BatchPlan or None
        None when the input cannot be read in batches straight away: a CSV, parts storing
        a column with different types, row groups larger than
        :data:`MAX_ROW_GROUP_BATCHES` batches, or ids out of order.
    """
    if found.format != "parquet" or not found.uniform or found.rows == 0:
        return None
    files = tuple(str(f) for f in found.files)
    groups: list[tuple[int, int, int, int]] = []
    first = 0
    for i, f in enumerate(files):
        meta = pq.ParquetFile(f).metadata
        for g in range(meta.num_row_groups):
            rows = meta.row_group(g).num_rows
            groups.append((i, g, first, rows))
            first += rows
    if max(r for *_, r in groups) > MAX_ROW_GROUP_BATCHES * batch_customers * max(1, months):
        return None
    starts, group_starts = _customer_starts(files, groups, id_col)
    if starts is None:
        return None
    batches = _cut(starts, group_starts, first, batch_customers)
    return BatchPlan(files, tuple(groups), batches, len(starts))


def _customer_starts(
    files: Sequence[str], groups: Sequence[tuple[int, int, int, int]], id_col: str
) -> tuple[np.ndarray | None, list[int]]:
    """Every customer's first row and, per row group, the first customer starting in it
    (an index into the former); None when the ids are out of order."""
    found: list[np.ndarray] = []
    group_starts: list[int] = []
    n = 0
    previous = None
    for i, g, first, _ in groups:
        ids = pq.ParquetFile(files[i]).read_row_group(g, columns=[id_col]).column(0)
        ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        starts, in_order = row_boundaries(ids, previous)
        if not in_order:
            return None, []
        group_starts.append(n)
        found.append(starts + first)
        n += len(starts)
        valid = ids.drop_null()
        if len(valid):
            previous = valid[len(valid) - 1]
    return (np.concatenate(found) if found else np.empty(0, dtype=np.int64)), group_starts


def _cut(
    starts: np.ndarray, group_starts: Sequence[int], rows: int, batch_customers: int
) -> tuple[Batch, ...]:
    """Cut at customer starts: at the first customer of a row group when that leaves the
    batch at least half full, else after ``batch_customers`` customers."""
    if not len(starts):
        return (Batch(0, 0, rows, 0),)
    aligned = sorted(set(group_starts) - {0, len(starts)})
    cuts = [0]
    while len(starts) - cuts[-1] > batch_customers:
        limit = cuts[-1] + batch_customers
        j = bisect.bisect_right(aligned, limit) - 1
        best = aligned[j] if j >= 0 and aligned[j] >= cuts[-1] + batch_customers // 2 else limit
        cuts.append(best)
    cuts.append(len(starts))
    out = []
    for k, (a, b) in enumerate(itertools.pairwise(cuts)):
        start = 0 if k == 0 else int(starts[a])
        stop = rows if b == len(starts) else int(starts[b])
        out.append(Batch(k, start, stop, b - a))
    return tuple(out)


def read_batch(
    plan: BatchPlan,
    batch: Batch,
    columns: Sequence[str] | None = None,
    dictionary: Sequence[str] = (),
    keep: Callable[[pa.Table], pa.Table] | None = None,
) -> pa.Table:
    """The rows of one batch, with only ``columns`` (every column when None).

    Reads the row groups the batch covers; where it starts or ends inside one, reads that
    row group in steps up to the batch's edge only. ``keep`` filters each piece as it is
    read, so the rows it drops are never held beside the batch.

    Parameters
    ----------
    plan : BatchPlan
    batch : Batch
    columns : sequence of str, optional
    dictionary : sequence of str, default ()
        Text columns to read dictionary-encoded (pandas categoricals).
    keep : callable, optional
        A piece's rows to keep (a table in, a table out), e.g. the months a score reads.

    Returns
    -------
    pyarrow.Table
    """
    cols = list(columns) if columns is not None else None
    # With a filter, row groups are read in steps too: rows it drops are never held whole.
    read = _pieces(plan, batch, cols, list(dictionary), whole=keep is None)
    pieces = [keep(p) if keep else p for p in read]
    if not pieces:
        schema = pq.read_schema(plan.files[0])
        return schema.empty_table().select(cols) if cols else schema.empty_table()
    return pa.concat_tables(pieces)


def _pieces(
    plan: BatchPlan,
    batch: Batch,
    columns: list[str] | None,
    dictionary: list[str],
    *,
    whole: bool = True,
) -> Iterator[pa.Table]:
    """The batch's rows, row group by row group (``whole``), or in steps of
    ``_STEP_ROWS`` rows."""
    for i, g, first, rows in plan.row_groups:
        lo, hi = max(batch.start, first), min(batch.stop, first + rows)
        if lo >= hi:
            continue
        pf = pq.ParquetFile(plan.files[i], read_dictionary=dictionary or None)
        if whole and lo == first and hi == first + rows:
            yield pf.read_row_group(g, columns=columns)
            continue
        at = first
        for step in pf.iter_batches(batch_size=_STEP_ROWS, row_groups=[g], columns=columns):
            a, b = max(lo, at), min(hi, at + step.num_rows)
            if a < b:
                yield pa.Table.from_batches([step.slice(a - at, b - a)])
            at += step.num_rows
            if at >= hi:
                break
