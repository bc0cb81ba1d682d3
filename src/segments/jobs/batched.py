"""Jobs over a whole panel file in batches of whole customers, on every core.

:func:`run_validated` cuts the input into batches of whole customers (in place when it is
a customer-sorted Parquet input, else through a spool of hash buckets, see
:mod:`segments.engines.local`), validates each batch (every month) in a worker process and
hands its validated frame to the job's work: features (:func:`segments.features_from_file`),
a groups training's inputs or an upgrade training's labelled rows
(:mod:`segments.jobs.train`, :mod:`segments.jobs.train_upgrade`). Only what the work
returns comes back, so memory is set by ``batch_customers`` and the workers, not by the
input. Every work is per customer, so the batches' results put together equal the work
on the whole validated panel.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from segments.core.data.batches import plan_sorted
from segments.core.data.panel import ID, PanelConfig, PanelInput, PanelSummary
from segments.core.features.builder import feature_columns
from segments.core.features.own import active_columns
from segments.core.scoring.batch import merge_violations
from segments.engines.spool import plan_buckets, spool
from segments.engines.workers import Batches, Extent, default_workers, pool, validated_task
from segments.exceptions import PanelValidationError, SegmentsWarning, Violation

__all__ = ["concat_frames", "run_validated", "training_columns"]


def training_columns(found: PanelInput, panel: PanelConfig, extra: Sequence[str] = ()) -> list[str]:
    """The input columns a training job reads: a feature table's, ``extra`` (the ladder's)
    and ``branch_id`` (the call lists' ranks by branch)."""
    return feature_columns(found.columns, panel, (*extra, "branch_id"))


def run_validated(
    path: str | os.PathLike[str],
    found: PanelInput,
    panel: PanelConfig,
    columns: list[str],
    work: Callable[[pd.DataFrame], Any],
    *,
    batch_customers: int,
    workers: int | None,
    digest: bool = True,
    months: tuple[str, int] | None = None,
    ladder_columns: Sequence[str] = (),
) -> tuple[list[Any], PanelSummary]:
    """Validate every batch of an input and run ``work`` on each validated batch.

    Parameters
    ----------
    path : str or path
        The input (a Parquet file, a folder of parts, or a CSV).
    found : PanelInput
        The input as inspected (:func:`segments.core.data.panel.inspect_panel`).
    panel : PanelConfig
        The column map and policies.
    columns : list of str
        The input columns to read (the bank's names); only these are validated.
    work : callable
        A picklable callable (a module-level function or a dataclass instance) taking a
        batch's validated frame; its result comes back to this process.
    batch_customers : int
        About how many customers a batch holds.
    workers : int or None
        Worker processes; None: :func:`~segments.engines.workers.default_workers`.
    digest : bool, default True
        Put the input's content digest in the summary (a run's record of its data: each
        validated batch is digested by its worker, :mod:`segments.core.data.digest`, and
        the parts added up); ``False`` leaves it empty for callers that drop the summary.
        Only with every month read (``months`` None).
    months : (str, int), optional
        ``(as_of, n)``: read (and validate) only the ``n`` months up to ``as_of``, all
        that ``work`` reads (features: the longest window plus one); every month when None.
    ladder_columns : sequence of str, default ()
        The ladder's columns (contract names), which the digest covers too.

    Returns
    -------
    results : list
        ``work``'s result per batch, in batch order.
    summary : PanelSummary
        The input's rows, customers, months and content digest.

    Raises
    ------
    PanelValidationError
        Every problem of every batch, merged (the same messages, counts and example ids as
        the whole panel's check); nothing else runs once a batch has failed.
    """
    from segments.core.data.digest import PanelDigest

    estimate = plan_buckets(found, batch_customers)
    n_workers = min(workers, estimate) if workers else default_workers(found.rows, estimate)
    months_in = len(found.months or ())
    errors: list[Violation] = []
    warns: list[Violation] = []
    results: list[Any] = []
    extents: list[Extent] = []
    with (
        tempfile.TemporaryDirectory(prefix="segments-batches-") as tmp,
        pool(n_workers, Path(tmp)) as runner,
    ):
        plan = plan_sorted(found.files, panel.source_name(ID), batch_customers, months_in)
        month, n = months or ("", None)
        # The own columns registered now travel with the batches: workers register them.
        batches = Batches(month, columns, plan, panel, months=n, work=work, own=active_columns())
        if digest and months is None:
            batches.digest = tuple(ladder_columns)
        if plan is None:
            batches.buckets = spool(
                found, panel, columns, Path(tmp), estimate, lambda *_: None, source=str(path)
            )
        for e, w, result, extent in runner.map(validated_task, batches, range(len(batches))):
            errors += e
            warns += w
            if extent is not None:
                results.append(result)
                extents.append(extent)
    if errors:
        raise PanelValidationError(merge_violations(errors + warns), source=str(path))
    for w in merge_violations(warns):
        warnings.warn(str(w), SegmentsWarning, stacklevel=3)
    months = sorted(set().union(*(e.months for e in extents))) if extents else []
    content = PanelDigest.total(e.digest for e in extents) if batches.digest is not None else None
    summary = PanelSummary(
        rows=sum(e.rows for e in extents),
        customers=sum(e.customers for e in extents),
        months=tuple(months),
        digest=content.hexdigest() if content is not None else "",
        source=str(path),
    )
    return results, summary


def concat_frames(frames: Sequence[pd.DataFrame], *, by: Sequence[str] = ()) -> pd.DataFrame:
    """The batches' rows as one table, in the order the whole panel's work gives: sorted
    by the index (``by`` empty) or by the columns ``by``.

    A categorical column whose categories differ between batches gets their sorted union:
    validation sorts a panel's categories, and a whole-panel table has the same.
    """
    frames = [f for f in frames if f is not None]
    first = frames[0]
    for c in [c for c in first.columns if isinstance(first[c].dtype, pd.CategoricalDtype)]:
        if len({f[c].dtype for f in frames}) > 1:
            union = sorted({v for f in frames for v in f[c].cat.categories})
            dtype = pd.CategoricalDtype(union, ordered=first[c].dtype.ordered)
            frames = [f.astype({c: dtype}) if c in f else f for f in frames]
    out = pd.concat(frames)
    if by:
        return out.sort_values(list(by), kind="stable").reset_index(drop=True)
    return out.sort_index(kind="stable")
