"""Rank within a band: the one definition training, the local engine and Spark share.

A bank works its near-tier customers best first, so every scored customer gets a rank in
its **ranking group** that month: its near band (``near_band``), or its tier when it is not
in a near band (the ``below_top`` population). The rule:

* ``position = 1 + (customers in the group with a strictly higher score)``: a competition
  rank ("1224"), so **tied scores share the better position** and the next score skips the
  places they took. Ties never depend on the order rows arrive in (file order, batches,
  Spark partitions), so every engine gives the same number to the same customer.
* ``decile = ceil(10 * position / n)``, ``percentile = ceil(100 * position / n)``,
  ``permille = ceil(1000 * position / n)``, where ``n`` is the number of scored customers
  in the group, computed in integer arithmetic (``(position * scale + n - 1) // n``), never
  through floating point: 1 is the best, the worst customer is always 10, 100 and 1000.
* A customer without a score (NaN) has no rank and does not count in ``n``.

:class:`RankTable` holds, per group, how many customers hold each score; it is built from
all scores in memory (:func:`rank_within`), streamed batch by batch (the local engine) or
from counts aggregated elsewhere (Spark collects ``count()`` per group and score), and
answers positions with the same code in every case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "RANK_COLUMNS",
    "SCALES",
    "RankTable",
    "add_ranks",
    "band_key",
    "rank_columns",
    "rank_within",
    "scaled_ranks",
    "table_from_frames",
]

#: The rank names and their scale (the number of places).
SCALES: Mapping[str, int] = {"decile": 10, "percentile": 100, "permille": 1000}
#: The rank columns of the scoring output, with their scale.
RANK_COLUMNS: Mapping[str, int] = {f"upgrade_{k}": v for k, v in SCALES.items()}


def band_key(near_band: Any, tier: Any) -> np.ndarray:
    """The ranking group of each row: its near band, else ``"tier <tier>"``.

    Parameters
    ----------
    near_band, tier : array-like
        One value per row; a missing ``near_band`` (None or NaN) means not in a near band.
        ``tier`` may be the tier's name or its rank: any key with one value per tier.

    Returns
    -------
    ndarray of str
    """
    # Each distinct band and tier is made text once; rows pick theirs by code.
    band_codes, bands = pd.factorize(pd.Series(np.asarray(near_band, dtype=object)))
    tier_codes, tiers = pd.factorize(
        pd.Series(np.asarray(tier, dtype=object)), use_na_sentinel=False
    )
    band_text = np.array([str(b) for b in bands] + [""], dtype=str)
    tier_text = np.array(["tier " + str(t) for t in tiers] + [""], dtype=str)
    return np.where(band_codes >= 0, band_text[band_codes], tier_text[tier_codes])


def _series(values: Any) -> pd.Series:
    """Values as a Series (a Series as it is: its own dtype factorizes fastest)."""
    return values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))


def scaled_ranks(position: np.ndarray, size: np.ndarray) -> dict[str, np.ndarray]:
    """Decile, percentile and permille from positions (1 = best) and group sizes.

    ``ceil(scale * position / size)`` in integer arithmetic.

    Parameters
    ----------
    position, size : ndarray of int
        Positions must lie in ``1..size``.

    Returns
    -------
    dict
        ``decile``, ``percentile`` and ``permille`` as int64 arrays.
    """
    pos = np.asarray(position, dtype=np.int64)
    n = np.maximum(np.asarray(size, dtype=np.int64), 1)
    return {name: (pos * scale + n - 1) // n for name, scale in SCALES.items()}


class RankTable:
    """Per ranking group, how many customers hold each score; answers positions.

    Add scores (or score counts) with :meth:`add`, as often as needed, then ask
    :meth:`positions` or :meth:`ranks` for any scores that were added. Memory is one score
    and one count per distinct score of a group (at most 16 bytes per scored customer).
    """

    def __init__(self) -> None:
        self._parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._tables: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def add(self, keys: Any, scores: Any, counts: Any = None) -> RankTable:
        """Add scores (each held by ``counts`` customers, default 1) to their groups.

        Parameters
        ----------
        keys : array-like of str
            The ranking group of each score (:func:`band_key`).
        scores : array-like of float
            NaN scores are skipped.
        counts : array-like of int, optional

        Returns
        -------
        RankTable
            Itself.
        """
        k = np.asarray(keys).astype(str)
        s = np.asarray(scores, dtype=float)
        c = np.ones(len(s), dtype=np.int64) if counts is None else np.asarray(counts, np.int64)
        has = ~np.isnan(s)
        k, s, c = k[has], s[has], c[has]
        for key in np.unique(k):
            m = k == key
            self._parts.setdefault(str(key), []).append((s[m], c[m]))
        self._tables = None
        return self

    def _table(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Distinct scores of a group, ascending, and how many customers hold a score <= each."""
        if self._tables is None:
            self._tables = {}
        if key not in self._tables:
            parts = self._parts.get(key)
            if not parts:
                raise KeyError(f"no scores were added for the ranking group {key!r}")
            values = np.concatenate([p[0] for p in parts])
            counts = np.concatenate([p[1] for p in parts])
            uniq, inverse = np.unique(values, return_inverse=True)
            per_value = np.bincount(inverse, weights=counts, minlength=len(uniq))
            self._tables[key] = (uniq, np.cumsum(per_value.astype(np.int64)))
        return self._tables[key]

    def sizes(self) -> dict[str, int]:
        """Scored customers per ranking group."""
        return {k: int(self._table(k)[1][-1]) for k in self._parts}

    def positions(self, keys: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
        """Each score's position in its group and the group's size (0 and 0 for NaN).

        Returns
        -------
        position, size : ndarray of int64
        """
        k = np.asarray(keys).astype(str)
        s = np.asarray(scores, dtype=float)
        pos = np.zeros(len(s), dtype=np.int64)
        size = np.zeros(len(s), dtype=np.int64)
        has = ~np.isnan(s)
        for key in np.unique(k[has]):
            m = has & (k == key)
            values, at_most = self._table(str(key))
            n = at_most[-1]
            idx = np.searchsorted(values, s[m], side="right")
            not_higher = np.where(idx > 0, at_most[np.maximum(idx - 1, 0)], 0)
            pos[m] = n - not_higher + 1
            size[m] = n
        return pos, size

    def ranks(self, keys: Any, scores: Any) -> pd.DataFrame:
        """Decile, percentile and permille of each score within its group (1 = best).

        Returns
        -------
        DataFrame
            ``decile``, ``percentile``, ``permille``: int64, or nullable Int64 holding
            ``<NA>`` where a score is NaN.
        """
        s = np.asarray(scores, dtype=float)
        pos, size = self.positions(keys, s)
        has = ~np.isnan(s)
        out = {}
        for name, values in scaled_ranks(pos, size).items():
            if has.all():
                out[name] = values
            else:
                out[name] = pd.array(np.where(has, values, 0), dtype="Int64")
                out[name][~has] = pd.NA
        return pd.DataFrame(out)


def rank_within(score: Any, by: Any = None) -> pd.DataFrame:
    """Percentile (1..100), permille (1..1000) and decile (1..10) of scores within groups.

    1 is the highest score. Tied scores share the better position (a competition rank:
    ``position = 1 + scores in the group strictly higher``), and each rank is
    ``ceil(scale * position / n)`` in integer arithmetic, ``n`` the group's scored count; NaN
    scores get no rank. See the module docstring for the whole rule.

    Parameters
    ----------
    score : array-like of float
    by : array-like, optional
        The group of each score (default: one group).

    Returns
    -------
    DataFrame
        ``percentile``, ``permille``, ``decile``, one row per score in the given order.
    """
    s = np.asarray(score, dtype=float)
    keys = np.zeros(len(s), dtype=np.int64) if by is None else np.asarray(by, dtype=object)
    out = RankTable().add(keys, s).ranks(keys, s)
    return out[["percentile", "permille", "decile"]]


def add_ranks(frame: pd.DataFrame, table: RankTable) -> pd.DataFrame:
    """Fill the output's rank columns (:data:`RANK_COLUMNS`) of scoring rows.

    Parameters
    ----------
    frame : DataFrame
        ``near_band``, ``tier`` and ``p_upgrade`` columns (scoring output rows).
    table : RankTable
        Built from every scored row of the month, keyed by :func:`band_key`.

    Returns
    -------
    DataFrame
        A copy of ``frame`` with ``upgrade_decile``, ``upgrade_percentile`` and
        ``upgrade_permille`` as nullable Int64 (empty where ``p_upgrade`` is).
    """
    out = frame.copy()
    for column, values in rank_columns(out["near_band"], out["tier"], out["p_upgrade"], table):
        out[column] = values
    return out


def rank_columns(
    near_band: Any, tier: Any, p_upgrade: Any, table: RankTable
) -> list[tuple[str, pd.api.extensions.ExtensionArray]]:
    """The output's rank columns (:data:`RANK_COLUMNS`) of scoring rows, by name.

    Parameters
    ----------
    near_band, tier, p_upgrade : array-like
        One value per scoring row.
    table : RankTable
        Built from every scored row of the month, keyed by :func:`band_key`.

    Returns
    -------
    list of (str, array)
        Each rank column as nullable Int64, empty where ``p_upgrade`` is.
    """
    keys = band_key(near_band, tier)
    ranks = table.ranks(keys, np.asarray(p_upgrade, dtype=float))
    return [(c, pd.array(ranks[c.removeprefix("upgrade_")], dtype="Int64")) for c in RANK_COLUMNS]


def table_from_frames(frames: Iterable[pd.DataFrame]) -> RankTable:
    """A :class:`RankTable` of scoring rows (``near_band``, ``tier``, ``p_upgrade``)."""
    table = RankTable()
    for frame in frames:
        table.add(band_key(frame["near_band"], frame["tier"]), frame["p_upgrade"].to_numpy(float))
    return table
