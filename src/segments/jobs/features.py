"""Features for a whole panel file, read in batches of whole customers on every core.

:func:`features_from_file` gives what ``build_features(validate_panel(read_panel(path)))``
gives, without holding the panel: the input is cut into batches of whole customers (in
place when it is a customer-sorted Parquet input, else through a spool of hash buckets, see
:mod:`segments.engines.local`), each batch is validated and its features built in a worker
process, and only the feature rows come back. Memory is set by ``batch_customers`` and the
workers, not by the input. Only the months the features read are read and validated: the
longest window plus one, up to the as-of month.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from segments.core.config.sections import ScoringConfig
from segments.core.data.panel import MONTH, PanelConfig, inspect_panel
from segments.core.features.builder import (
    build_features,
    check_as_of,
    check_windows,
    feature_columns,
)
from segments.core.features.own import OwnColumn, own_features
from segments.core.features.registry import DEFAULT_WINDOWS
from segments.jobs.batched import concat_frames, run_validated

__all__ = ["FeaturesAt", "features_from_file"]


@dataclass(frozen=True)
class FeaturesAt:
    """A batch's features as of a month (None when nobody in the batch is in it)."""

    month: str
    windows: tuple[int, ...]

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame | None:
        month = pd.Period(self.month, "M")
        if not (frame[MONTH] == month).any():
            return None
        return build_features(frame, month, windows=self.windows)


def features_from_file(
    path: str | os.PathLike[str],
    as_of: str | pd.Period | None = None,
    *,
    panel: PanelConfig | None = None,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    columns: Sequence[OwnColumn] = (),
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
    columns : sequence of OwnColumn, default ()
        The bank's own columns declared as features (``ExperimentConfig.features.columns``);
        their features are built too (registered while it runs, in the workers as well).
    batch_customers : int, default 50_000
        About how many customers a batch holds; memory scales with it.
    workers : int, optional
        Worker processes; by default one per core for inputs of 500,000 rows or more.

    Returns
    -------
    DataFrame
        Equal to :func:`segments.build_features` on the validated panel (which reads the
        same months): indexed by
        ``customer_id``, the catalogue's features, ``attrs["as_of"]`` and
        ``attrs["windows"]``.

    Raises
    ------
    PanelValidationError
        The months read break the data contract (every problem of every batch, merged),
        or no customer is in ``as_of``, or the input lacks a declared own column. A problem
        in an earlier month is not found here: ``segments validate``, training and scoring
        check every month.
    """
    with own_features(columns):
        return _features_from_file(path, as_of, panel, windows, batch_customers, workers)


def _features_from_file(
    path: str | os.PathLike[str],
    as_of: str | pd.Period | None,
    panel: PanelConfig | None,
    windows: Sequence[int],
    batch_customers: int,
    workers: int | None,
) -> pd.DataFrame:
    """:func:`features_from_file`, with the own columns registered."""
    panel = panel or PanelConfig()
    ws = check_windows(windows)
    found = inspect_panel(path, panel, months=True)
    month = pd.Period(as_of, "M") if as_of is not None else max(found.months or ())
    check_as_of(found.months or (), month, str(path))
    frames, _ = run_validated(
        path,
        found,
        panel,
        feature_columns(found.columns, panel),
        FeaturesAt(str(month), ws),
        batch_customers=batch_customers,
        workers=workers,
        digest=False,
        months=(str(month), max(ws) + 1),  # all build_features reads
    )
    out = concat_frames(frames)
    out.attrs["as_of"] = str(month)
    out.attrs["windows"] = list(ws)
    return out
