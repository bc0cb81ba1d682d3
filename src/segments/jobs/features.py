"""Features for a whole panel file, read in batches of whole customers on every core.

:func:`features_from_file` gives what ``build_features(validate_panel(read_panel(path)))``
gives, without holding the panel: the input is cut into batches of whole customers (in
place when it is a customer-sorted Parquet input, else through a spool of hash buckets, see
:mod:`segments.engines.local`), each batch is validated and its features built in a worker
process, and only the feature rows come back. Memory is set by ``batch_customers`` and the
workers, not by the input.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from segments.core.config.sections import ScoringConfig
from segments.core.data.batches import plan_sorted
from segments.core.data.panel import ID, MONTH, PanelConfig, inspect_panel
from segments.core.features.builder import check_windows, feature_columns
from segments.core.features.registry import DEFAULT_WINDOWS
from segments.core.scoring.batch import merge_violations
from segments.engines.spool import plan_buckets, spool
from segments.engines.workers import Batches, default_workers, features_task, pool
from segments.exceptions import PanelValidationError, SegmentsWarning, Violation

__all__ = ["features_from_file"]


def features_from_file(
    path: str | os.PathLike[str],
    as_of: str | pd.Period | None = None,
    *,
    panel: PanelConfig | None = None,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    batch_customers: int = ScoringConfig.batch_customers,
    workers: int | None = None,
) -> pd.DataFrame:
    """Behavioural features per customer as of a month, from a panel file, in batches.

    Parameters
    ----------
    path : str or path
        A Parquet file, a folder of Parquet parts, or a CSV (``.csv``, ``.csv.gz``,
        ``.csv.bz2``).
    as_of : str or Period, optional
        The as-of month; the input's last month by default.
    panel : PanelConfig, optional
        The column map and policies (``ExperimentConfig.panel``).
    windows : sequence of int, default (3, 6, 12)
        Feature windows in months.
    batch_customers : int, default 50_000
        About how many customers a batch holds; memory scales with it.
    workers : int, optional
        Worker processes; by default one per core for inputs of 500,000 rows or more.

    Returns
    -------
    DataFrame
        Equal to :func:`segments.build_features` on the validated panel: indexed by
        ``customer_id``, the catalogue's features, ``attrs["as_of"]`` and
        ``attrs["windows"]``.

    Raises
    ------
    PanelValidationError
        The input breaks the data contract (every problem of every batch, merged), or no
        customer is in ``as_of``.
    """
    panel = panel or PanelConfig()
    ws = check_windows(windows)
    found = inspect_panel(path, panel, months=True)
    months = found.months or ()
    month = pd.Period(as_of, "M") if as_of is not None else max(months)
    estimate = plan_buckets(found, batch_customers)
    n_workers = min(workers, estimate) if workers else default_workers(found.rows, estimate)
    errors: list[Violation] = []
    warns: list[Violation] = []
    frames: list[pd.DataFrame] = []
    with (
        tempfile.TemporaryDirectory(prefix="segments-features-") as tmp,
        pool(n_workers, Path(tmp)) as runner,
    ):
        plan = plan_sorted(found.files, panel.source_name(ID), batch_customers, len(months))
        batches = Batches(
            str(month), feature_columns(found.columns, panel), plan, panel, windows=ws
        )
        if plan is None:
            batches.buckets = spool(
                found,
                panel,
                batches.columns,
                Path(tmp),
                estimate,
                lambda *_: None,
                source=str(path),
            )
        for e, w, X in runner.map(features_task, batches, range(len(batches))):
            errors += e
            warns += w
            if X is not None:
                frames.append(X)
    if errors:
        raise PanelValidationError(merge_violations(errors + warns), source=str(path))
    for w in merge_violations(warns):
        warnings.warn(str(w), SegmentsWarning, stacklevel=2)
    if not frames:
        raise PanelValidationError(
            [Violation(MONTH, f"has no customer in {month}")], source=str(path)
        )
    return _concat(frames, month, ws)


def _concat(frames: list[pd.DataFrame], month: pd.Period, windows: tuple[int, ...]) -> pd.DataFrame:
    """The batches' feature rows as one table. A categorical column whose categories differ
    between batches gets their sorted union: validation sorts a panel's categories, so a
    whole-panel build has the same."""
    first = frames[0]
    for c in [c for c in first.columns if isinstance(first[c].dtype, pd.CategoricalDtype)]:
        if len({f[c].dtype for f in frames}) > 1:
            union = sorted({v for f in frames for v in f[c].cat.categories})
            dtype = pd.CategoricalDtype(union, ordered=first[c].dtype.ordered)
            frames = [f.astype({c: dtype}) for f in frames]
    out = pd.concat(frames).sort_index()
    out.attrs["as_of"] = str(month)
    out.attrs["windows"] = list(windows)
    return out
