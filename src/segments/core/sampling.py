"""The stratified sample a fit takes when the book is larger than the configured size.

Trainings fit on everyone up to a size (``groups.fit_size`` customers, ``upgrade.fit_size``
training rows); above it they fit on a sample drawn by :func:`stratified_sample` and still
assign or score everyone. The sample keeps every stratum's share of the whole (a
proportional allocation), so the small strata a bank cares most about (the upper tiers,
the upgrades) are in it in their true proportion and never left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FitSample", "stratified_sample"]


@dataclass(frozen=True)
class FitSample:
    """The rows a fit used: how many of how many, and what the sample was stratified by
    (logged with the run).

    Attributes
    ----------
    rows : int
        Rows fitted on.
    of : int
        Rows available.
    strata : tuple of str
        The columns the sample was stratified by (empty: no sample, every row).
    """

    rows: int
    of: int
    strata: tuple[str, ...] = ()

    @property
    def sampled(self) -> bool:
        """Whether the fit used a sample."""
        return self.rows < self.of

    def as_params(self, prefix: str) -> dict[str, object]:
        """The sample as run parameters, e.g. ``groups.fit_rows``."""
        return {
            f"{prefix}.fit_rows": self.rows,
            f"{prefix}.fit_of": self.of,
            f"{prefix}.fit_strata": ",".join(self.strata) if self.sampled else "",
        }


def stratified_sample(
    strata: pd.DataFrame | pd.Series,
    size: int,
    random_state: int | np.random.RandomState | None = 0,
) -> np.ndarray:
    """Row positions of a sample of ``size`` rows keeping each stratum's share.

    Each stratum (a distinct combination of the values in ``strata``, missing values a
    stratum of their own) gets ``size * its share`` rows, rounded by largest remainder so
    the total is exactly ``size``; every stratum gets at least one row when ``size`` allows
    it. Rows within a stratum are drawn at random without replacement.

    Parameters
    ----------
    strata : DataFrame or Series
        One row per candidate row: the values that define its stratum.
    size : int
        Rows to draw; all rows when there are no more than this.
    random_state : int, RandomState or None, default 0
        Seed of the draw (a RandomState gives one).

    Returns
    -------
    ndarray of int
        Sorted row positions (all of them when ``size >= len(strata)``).
    """
    n = len(strata)
    if size >= n:
        return np.arange(n)
    frame = strata.to_frame() if isinstance(strata, pd.Series) else strata
    codes = frame.groupby(list(frame.columns), dropna=False, sort=True, observed=True).ngroup()
    codes = codes.to_numpy()
    counts = np.bincount(codes)
    exact = size * counts / n
    take = np.floor(exact).astype(np.int64)
    floor = 1 if size >= len(counts) else 0
    take = np.maximum(take, floor)
    short = size - int(take.sum())
    behind = exact - take  # what each stratum still lacks of its share
    if short > 0:  # the largest shortfalls first, ties to the larger stratum
        order = np.lexsort((-counts, -behind))
        order = order[take[order] < counts[order]]
        take[order[:short]] += 1
    elif short < 0:  # the minimum of one overshot: trim the most over-served strata
        order = np.lexsort((-counts, behind))
        order = order[take[order] > floor]
        take[order[:-short]] -= 1
    if isinstance(random_state, np.random.RandomState):
        random_state = int(random_state.randint(2**31 - 1))
    rng = np.random.default_rng(random_state)
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    picked = [
        rng.choice(order[s : s + c], t, replace=False)
        for s, c, t in zip(starts, counts, take, strict=True)
        if t > 0
    ]
    return np.sort(np.concatenate(picked))
