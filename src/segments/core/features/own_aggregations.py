"""The aggregations of a bank's own panel columns (``features.columns``), as computations.

A declared own column (:class:`~segments.core.features.own.OwnColumn`) becomes one feature
per aggregation and window; each feature's computation is an :class:`OwnAggregate`, plain
picklable data (the column's declaration and the aggregation's name), so two declarations
of the same column compare equal and a worker process can rebuild them from the spec.

Numeric columns (``h.grid(column)``, NaN where a month is missing; column 0 is the as-of
month):

- ``last``: the value in the as-of month;
- ``mean``, ``min``, ``max``: over the months present in the window;
- ``trend``: the least-squares slope per month over the months present in the window (at
  least two). For a money column it is relative to the column's average level in the
  window (slope / (|mean| + 1): +0.05 is a rise of 5% of the level a month), so it reads
  alike for small and large customers; for any other unit it is the plain slope (units a
  month);
- ``share_above``: the share of the months present in the window with a value above
  ``above``.

Categorical and ordinal columns:

- ``last``: the category in the as-of month (for an ordinal column, the categories are its
  ``order``; for a categorical one, those of the data);
- ``worst`` (ordinal): the position in ``order`` (0 = best) of the worst state seen in the
  window;
- ``months_in``: the months in the window in the column's ``state`` (any of them).

A customer with no month (or no value) in the window gets NaN, never a guess.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segments.core.features.history import History, Values, nanmean, nansum, ratio

if TYPE_CHECKING:
    from segments.core.features.own import OwnColumn

__all__ = ["OwnAggregate", "positions"]


def positions(values: pd.Series, states: Sequence[str]) -> np.ndarray:
    """Each row's position among ``states`` (compared as text): a float array, -1 where the
    value is not one of them, NaN where it is missing.

    Parameters
    ----------
    values : Series
        A categorical column (or any column: it is made categorical first).
    states : sequence of str
        The states, e.g. an ordinal column's ``order``.

    Returns
    -------
    ndarray of float
    """
    cat = values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    cats = cat.cat.categories
    lookup = pd.Index(list(states)).get_indexer(cats.astype(str)).astype(float)
    lookup = np.append(lookup, np.nan)  # code -1 (missing) takes the last entry
    return lookup[cat.cat.codes.to_numpy()]


def _grid(h: History, values: np.ndarray) -> np.ndarray:
    """Per-row values as an (n customers, months) grid, NaN where a month is missing."""
    g = np.full((h.n, h.months), np.nan)
    g[h.codes, h.lag] = values
    return g


def _state_grid(h: History, column: str, states: tuple[str, ...]) -> np.ndarray:
    """The column's positions among ``states`` as a grid (computed once per history)."""
    key = ("own_states", column, states)
    return h.memo(key, lambda: _grid(h, positions(h.rows[column], states)))  # type: ignore[return-value]


def _extreme(grid: np.ndarray, reduce: Any) -> np.ndarray:
    """``nanmin``/``nanmax`` of each row; NaN (without a warning) where a row is empty."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return reduce(grid, axis=1)


def _slope(grid: np.ndarray) -> np.ndarray:
    """Least-squares slope per month of each row over its months present (NaN with fewer
    than two). Column ``k`` is ``k`` months before the as-of month (time ``-k``)."""
    present = ~np.isnan(grid)
    t = -np.arange(grid.shape[1], dtype=float)[None, :] * present
    n = present.sum(axis=1)
    t_mean = ratio(t.sum(axis=1), n.astype(float))
    y_mean = nanmean(grid)
    dt = np.where(present, t - t_mean[:, None], 0.0)
    dy = np.where(present, grid - y_mean[:, None], 0.0)
    return ratio((dt * dy).sum(axis=1), (dt * dt).sum(axis=1))


@dataclass(frozen=True)
class OwnAggregate:
    """The computation of one aggregation of a declared own column (picklable data).

    Attributes
    ----------
    spec : OwnColumn
        The column's declaration.
    aggregation : str
        ``last``, ``mean``, ``min``, ``max``, ``trend``, ``share_above``, ``worst`` or
        ``months_in``.
    """

    spec: OwnColumn
    aggregation: str

    def __call__(self, h: History, w: int) -> Values:
        """The feature for each customer of ``h`` over a window of ``w`` months."""
        s = self.spec
        col = s.column
        if s.kind != "numeric":
            return self._states(h, w)
        if self.aggregation == "last":
            return h.now(col)
        g = h.grid(col)[:, :w]
        if self.aggregation == "mean":
            return nanmean(g)
        if self.aggregation == "min":
            return _extreme(g, np.nanmin)
        if self.aggregation == "max":
            return _extreme(g, np.nanmax)
        if self.aggregation == "trend":
            slope = _slope(g)
            return ratio(slope, np.abs(nanmean(g)) + 1.0) if s.unit == "money" else slope
        if self.aggregation == "share_above":
            present = (~np.isnan(g)).sum(axis=1).astype(float)
            return ratio((g > s.above).sum(axis=1).astype(float), present)
        raise ValueError(f"unknown aggregation {self.aggregation!r}")  # checked at load

    def _states(self, h: History, w: int) -> Values:
        s = self.spec
        if self.aggregation == "last":
            return self._last_category(h)
        if self.aggregation == "worst":
            g = _state_grid(h, s.column, s.order)[:, :w]
            return _extreme(np.where(g < 0, np.nan, g), np.nanmax)
        if self.aggregation == "months_in":
            g = _state_grid(h, s.column, s.state)[:, :w]
            return nansum(np.where(np.isnan(g), np.nan, (g >= 0).astype(float)))
        raise ValueError(f"unknown aggregation {self.aggregation!r}")  # checked at load

    def _last_category(self, h: History) -> pd.Series:
        """The category in the as-of month (missing for a customer without that month)."""
        s = self.spec
        values = h.rows[s.column]
        at = h.lag == 0
        codes = np.full(h.n, -1, dtype=np.int64)
        if s.kind == "ordinal":
            dtype = pd.CategoricalDtype(list(s.order))
            pos = positions(values, s.order)[at]
            codes[h.codes[at]] = np.where(np.isnan(pos) | (pos < 0), -1, pos).astype(np.int64)
        else:
            cat = (
                values
                if isinstance(values.dtype, pd.CategoricalDtype)
                else values.astype("category")
            )
            dtype = cat.dtype
            codes[h.codes[at]] = cat.cat.codes.to_numpy()[at]
        return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), index=h.index)
