"""A batch of customers' recent months as grids: what a feature's computation reads.

:class:`History` holds the panel rows of the months a feature table needs, one row per
customer, one column per month back from the as-of month (column 0 is the as-of month,
column ``k`` is ``k`` months before). Features read it through :meth:`History.grid`,
:meth:`History.now` and friends; the helpers :func:`nanmean`, :func:`nansum` and
:func:`ratio` are the NaN-aware arithmetic the catalogue uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from segments.core.data.panel import AUM, ID

__all__ = ["History", "Values", "nanmean", "nansum", "ratio"]

#: What a feature's computation returns: one value per customer, in the history's order.
#: A Series must be indexed by :attr:`History.index`.
Values = np.ndarray | pd.api.extensions.ExtensionArray | pd.Series


def nanmean(grid: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN where a row has no value.

    Parameters
    ----------
    grid : ndarray of shape (n_customers, n_months)
        Values, NaN where a month is missing.

    Returns
    -------
    ndarray of shape (n_customers,)
    """
    count = (~np.isnan(grid)).sum(axis=1)
    total = np.nansum(grid, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    out[count == 0] = np.nan
    return out


def nansum(grid: np.ndarray) -> np.ndarray:
    """Row sums ignoring NaN; NaN where a row has no value (not 0).

    Parameters
    ----------
    grid : ndarray of shape (n_customers, n_months)
        Values, NaN where a month is missing.

    Returns
    -------
    ndarray of shape (n_customers,)
    """
    out = np.nansum(grid, axis=1)
    out[np.isnan(grid).all(axis=1)] = np.nan
    return out


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN wherever the result is not finite (0/0, x/0, NaN inputs).

    Parameters
    ----------
    num, den : ndarray
        Numerator and denominator, broadcastable.

    Returns
    -------
    ndarray
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~np.isfinite(out)] = np.nan
    return out


class History:
    """The recent months of a batch of customers, as one row per customer.

    Parameters
    ----------
    rows : DataFrame
        Panel rows of the months ``0 .. months - 1`` back from the as-of month.
    lag : ndarray of int
        For each row, how many months before the as-of month it is.
    windows : sequence of int
        The feature windows (checked, sorted); the longest sets ``months``.

    Attributes
    ----------
    ids : Index
        The customers, in the order of every grid's rows.
    index : Index
        ``ids`` named ``customer_id``: the index of the feature table.
    n : int
        The number of customers.
    months : int
        The months of history held (the longest window plus one).
    windows : tuple of int
        The feature windows.
    long : int
        The longest window.
    computed : dict of str to array
        The features computed so far, by name (a feature may read those declared before it).
    """

    def __init__(self, rows: pd.DataFrame, lag: np.ndarray, windows: Sequence[int]) -> None:
        self.rows = rows
        self.lag = lag
        self.windows = tuple(windows)
        self.long = max(self.windows)
        self.months = self.long + 1
        self.codes, self.ids = pd.factorize(rows[ID], sort=False)
        self.n = len(self.ids)
        self.index = pd.Index(self.ids, name=ID)
        self.computed: dict[str, Values] = {}
        self._grids: dict[str, np.ndarray] = {}
        self._memo: dict[object, object] = {}

    def has(self, *columns: str) -> bool:
        """Whether the panel has every one of ``columns``."""
        return all(c in self.rows.columns for c in columns)

    def grid(self, column: str) -> np.ndarray:
        """A panel column as an (n customers, months) float grid, NaN where a month is missing.

        Column 0 is the as-of month, column ``k`` is ``k`` months before. The grid is kept
        until :meth:`release`; treat it as read-only.
        """
        g = self._grids.get(column)
        if g is None:
            g = np.full((self.n, self.months), np.nan)
            g[self.codes, self.lag] = self.rows[column].to_numpy(dtype="float64")
            self._grids[column] = g
        return g

    def now(self, column: str) -> np.ndarray:
        """A panel column's value in the as-of month (NaN for customers without that month).

        Returns a fresh array the caller may change.
        """
        g = self._grids.get(column)
        if g is not None:
            return g[:, 0].copy()
        out = np.full(self.n, np.nan)
        at = self.lag == 0
        out[self.codes[at]] = self.rows[column].to_numpy(dtype="float64")[at]
        return out

    def latest(self, column: str) -> Values:
        """A column's value in each customer's latest month held, keeping its dtype.

        For static attributes (categories), which a customer keeps while not active.
        """
        first = self.memo("latest_rows", self._latest_rows)
        return self.rows[column].take(first).set_axis(self.index)

    def _latest_rows(self) -> np.ndarray:
        order = np.lexsort((self.lag, self.codes))
        codes = self.codes[order]
        start = np.ones(len(order), dtype=bool)
        start[1:] = codes[1:] != codes[:-1]
        return order[start]

    def memo(self, key: object, make: Callable[[], object]) -> object:
        """A value shared by several features, computed once per history (``make()``)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    @property
    def aum(self) -> np.ndarray:
        """The AUM grid."""
        return self.grid(AUM)

    @property
    def log_aum(self) -> np.ndarray:
        """``log1p`` of the AUM grid."""
        return self.memo("log_aum", lambda: np.log1p(self.aum))  # type: ignore[return-value]

    def aum_base(self, months: int) -> np.ndarray:
        """Average AUM over the last ``months`` months plus one: the base flows are set
        against (never zero, so a flow of an empty account stays finite)."""
        return self.memo(  # type: ignore[return-value]
            ("aum_base", months), lambda: nanmean(self.aum[:, :months]) + 1.0
        )

    def release(self, keep: set[str]) -> None:
        """Drop the grids of columns not in ``keep`` (AUM is always kept)."""
        for column in [c for c in self._grids if c not in keep and c != AUM]:
            del self._grids[column]
