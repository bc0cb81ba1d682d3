"""Tier ladders, near-tier bands, hysteresis and migration.

A ladder is data (YAML): tiers with an AUM threshold each, optionally reachable by other
criteria too (any-of, e.g. CCB's loans or card spend), near-tier bands just under a
threshold, the AUM basis (the month, or an average of the last N months), and an optional
hysteresis rule (upgrade at once, downgrade only after N consecutive months below, with a
watch status in between). :func:`assign_tiers` turns a validated panel into the tier table:
one row per customer-month.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from segments.core.config import FROM_LADDER, load_preset
from segments.core.panel import AUM, ID, MONTH, NUMERIC_COLUMNS
from segments.exceptions import ConfigError, PanelValidationError, SegmentsWarning, Violation

__all__ = [
    "TIER_COLUMNS",
    "TIER_STATUSES",
    "Criterion",
    "Hysteresis",
    "Ladder",
    "NearBand",
    "Tier",
    "assign_tiers",
    "load_ladder",
    "migration_matrix",
    "migration_summary",
]

#: The tier table's columns, in order (DESIGN.md's stable interface, then extensions).
TIER_COLUMNS: tuple[str, ...] = (
    ID,
    MONTH,
    "aum_basis",
    "tier",
    "tier_rank",
    "next_tier",
    "gap_to_next",
    "gap_ratio",
    "near_tier",
    "near_band",
    "tier_status",
    "qualifying_tier",
    "tier_change",
)
#: ``active``: qualifies for the tier held; ``grace``: below it, not yet on watch;
#: ``watch``: below it long enough to be on watch (hysteresis only).
TIER_STATUSES: tuple[str, ...] = ("active", "grace", "watch")
_AGGS = ("mean", "sum", "last")
_DOWNGRADE_TO = ("qualifying", "highest_recent")


@dataclass(frozen=True)
class Criterion:
    """An alternative way to qualify for a tier: ``agg`` of ``column`` over ``window`` >= ``min``.

    Parameters
    ----------
    column : str
        A numeric contract column, e.g. ``loan_balance`` or ``card_spend``.
    min : float
        The threshold, in the column's unit.
    agg : {"mean", "sum", "last"}, default "mean"
        How months in the window are combined (``sum`` of ``card_spend`` over 12 months is
        a year's spend).
    window : int, default 1
        Calendar months ending at the scored month; missing months are skipped.
    """

    column: str
    min: float
    agg: str = "mean"
    window: int = 1


@dataclass(frozen=True)
class Tier:
    """One rung of a ladder: reached when the AUM basis >= ``min_aum`` or any criterion holds."""

    name: str
    min_aum: float
    label_zh: str = ""
    any_of: tuple[Criterion, ...] = ()


@dataclass(frozen=True)
class NearBand:
    """Customers with ``lower`` <= AUM basis < the threshold of ``tier``, below that tier."""

    name: str
    tier: str
    lower: float


@dataclass(frozen=True)
class Hysteresis:
    """Downgrade only after ``downgrade_after`` consecutive months below the held tier.

    Parameters
    ----------
    downgrade_after : int
        Consecutive observed months below the held tier before moving down.
    watch_after : int, default 1
        Consecutive months below after which the status is ``watch`` (``grace`` before).
    downgrade_to : {"qualifying", "highest_recent"}, default "qualifying"
        Move down to the tier the basis qualifies for now, or to the highest qualifying
        tier of the last ``lookback`` months (CCB).
    lookback : int or None, default None
        Months looked back for ``highest_recent``; defaults to ``downgrade_after``.
    """

    downgrade_after: int
    watch_after: int = 1
    downgrade_to: str = "qualifying"
    lookback: int | None = None

    @property
    def lookback_months(self) -> int:
        """The lookback in months (``downgrade_after`` when unset)."""
        return self.lookback or self.downgrade_after


@dataclass(frozen=True)
class Ladder:
    """A tier ladder.

    Parameters
    ----------
    name : str
        Short name, e.g. ``cmb``.
    tiers : tuple of Tier
        Lowest first; the first tier's ``min_aum`` is 0 so every customer has a tier.
    near_bands : tuple of NearBand, default ()
        Non-overlapping bands just under a tier's threshold.
    basis_window : int, default 1
        Months averaged for the AUM basis (1: the month's own AUM).
    hysteresis : Hysteresis or None, default None
        The downgrade rule; None means tiers follow the basis month by month.
    currency : str, default "CNY"
    description : str, default ""
    """

    name: str
    tiers: tuple[Tier, ...]
    near_bands: tuple[NearBand, ...] = ()
    basis_window: int = 1
    hysteresis: Hysteresis | None = None
    currency: str = "CNY"
    description: str = ""

    @property
    def tier_names(self) -> list[str]:
        """Tier names, lowest first."""
        return [t.name for t in self.tiers]

    @property
    def thresholds(self) -> np.ndarray:
        """AUM thresholds (``min_aum``) of the tiers, lowest first."""
        return np.array([t.min_aum for t in self.tiers], dtype="float64")

    def rank(self, tier: str) -> int:
        """The rank (0 = lowest) of a tier by name."""
        return self.tier_names.index(tier)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> Ladder:
        """Build and validate a ladder from plain data, reporting every problem at once.

        Raises
        ------
        ConfigError
        """
        problems: list[Violation] = []
        known = {
            "name",
            "tiers",
            "near_bands",
            "basis_window",
            "hysteresis",
            "currency",
            "description",
        }
        for key in data:
            if key not in known:
                problems.append(
                    Violation(
                        f"ladder.{key}", "is not a known ladder key", hint=f"known: {sorted(known)}"
                    )
                )
        name = str(data.get("name") or source or "ladder")
        tiers = _parse_tiers(data.get("tiers"), problems)
        names = [t.name for t in tiers]
        bands = _parse_bands(data.get("near_bands") or [], tiers, problems)
        basis_window = data.get("basis_window", 1)
        if not _is_pos_int(basis_window):
            problems.append(
                Violation(
                    "ladder.basis_window", f"is {basis_window!r}; expected a whole number >= 1"
                )
            )
            basis_window = 1
        hyst = _parse_hysteresis(data.get("hysteresis"), problems)
        if problems:
            raise ConfigError(problems, source=f"ladder {name}")
        assert len(set(names)) == len(names)
        return cls(
            name=name,
            tiers=tuple(tiers),
            near_bands=tuple(bands),
            basis_window=int(basis_window),
            hysteresis=hyst,
            currency=str(data.get("currency", "CNY")),
            description=str(data.get("description", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` reads back (for logging and YAML)."""
        return {
            "name": self.name,
            "description": self.description,
            "currency": self.currency,
            "basis_window": self.basis_window,
            "tiers": [
                {
                    "name": t.name,
                    "label_zh": t.label_zh,
                    "min_aum": t.min_aum,
                    **({"any_of": [vars(c) for c in t.any_of]} if t.any_of else {}),
                }
                for t in self.tiers
            ],
            "near_bands": [vars(b) for b in self.near_bands],
            "hysteresis": vars(self.hysteresis) if self.hysteresis else None,
        }


def _is_pos_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _parse_tiers(raw: Any, problems: list[Violation]) -> list[Tier]:
    if not isinstance(raw, list) or not raw:
        problems.append(Violation("ladder.tiers", "must be a non-empty list of tiers"))
        return []
    tiers: list[Tier] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"ladder.tiers[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Violation(where, "must be a mapping with name and min_aum"))
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problems.append(Violation(f"{where}.name", "must be a non-empty string"))
            name = f"tier_{i}"
        if name in seen:
            problems.append(Violation(f"{where}.name", f"{name!r} is used twice"))
        seen.add(name)
        min_aum = item.get("min_aum")
        if not _is_number(min_aum) or min_aum < 0:
            problems.append(Violation(f"{where}.min_aum", f"is {min_aum!r}; expected money >= 0"))
            min_aum = 0.0
        criteria = []
        for j, crit in enumerate(item.get("any_of") or []):
            cw = f"{where}.any_of[{j}]"
            if not isinstance(crit, Mapping):
                problems.append(Violation(cw, "must be a mapping {column, min, agg, window}"))
                continue
            col, cmin = crit.get("column"), crit.get("min")
            agg, window = crit.get("agg", "mean"), crit.get("window", 1)
            if col not in NUMERIC_COLUMNS or col == AUM:
                problems.append(
                    Violation(
                        f"{cw}.column",
                        f"is {col!r}; expected a numeric contract column other than aum",
                    )
                )
            if not _is_number(cmin) or cmin <= 0:
                problems.append(Violation(f"{cw}.min", f"is {cmin!r}; expected a number > 0"))
            if agg not in _AGGS:
                problems.append(Violation(f"{cw}.agg", f"is {agg!r}; expected one of {_AGGS}"))
            if not _is_pos_int(window):
                problems.append(Violation(f"{cw}.window", f"is {window!r}; expected >= 1"))
            criteria.append(Criterion(str(col), float(cmin or 0), str(agg), int(window or 1)))
        unknown = set(item) - {"name", "min_aum", "label_zh", "any_of"}
        for key in sorted(unknown):
            problems.append(Violation(f"{where}.{key}", "is not a known tier key"))
        tiers.append(Tier(name, float(min_aum), str(item.get("label_zh", "")), tuple(criteria)))
    if tiers and tiers[0].min_aum != 0:
        problems.append(
            Violation(
                "ladder.tiers[0].min_aum",
                f"is {tiers[0].min_aum:g}; the lowest tier must start at 0",
            )
        )
    mins = [t.min_aum for t in tiers]
    if any(b <= a for a, b in itertools.pairwise(mins)):
        problems.append(Violation("ladder.tiers", f"min_aum must increase strictly, got {mins}"))
    return tiers


def _parse_bands(raw: Any, tiers: list[Tier], problems: list[Violation]) -> list[NearBand]:
    if not isinstance(raw, list):
        problems.append(Violation("ladder.near_bands", "must be a list"))
        return []
    by_name = {t.name: t for t in tiers}
    bands: list[NearBand] = []
    for i, item in enumerate(raw):
        where = f"ladder.near_bands[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Violation(where, "must be a mapping {name, tier, lower}"))
            continue
        name, tier, lower = item.get("name"), item.get("tier"), item.get("lower")
        if not isinstance(name, str) or not name:
            problems.append(Violation(f"{where}.name", "must be a non-empty string"))
        if tier not in by_name or (tiers and tier == tiers[0].name):
            problems.append(
                Violation(
                    f"{where}.tier",
                    f"is {tier!r}; expected a tier above the lowest ({', '.join(by_name)})",
                )
            )
            continue
        if not _is_number(lower) or not 0 <= lower < by_name[tier].min_aum:
            problems.append(
                Violation(
                    f"{where}.lower",
                    f"is {lower!r}; expected money in [0, {by_name[tier].min_aum:g})",
                )
            )
            continue
        bands.append(NearBand(str(name), str(tier), float(lower)))
    spans = sorted((b.lower, by_name[b.tier].min_aum, b.name) for b in bands)
    for (_, hi, a), (lo, _, b) in itertools.pairwise(spans):
        if lo < hi:
            problems.append(Violation("ladder.near_bands", f"bands {a!r} and {b!r} overlap"))
    return bands


def _parse_hysteresis(raw: Any, problems: list[Violation]) -> Hysteresis | None:
    if raw is None or raw is False or raw == "off":
        return None
    if isinstance(raw, str):
        try:
            raw = load_preset("hysteresis", raw)
        except ConfigError as exc:
            problems.extend(exc.violations)
            return None
    if not isinstance(raw, Mapping):
        problems.append(Violation("hysteresis", "must be off, a preset name or a mapping"))
        return None
    known = {"downgrade_after", "watch_after", "downgrade_to", "lookback"}
    for key in sorted(set(raw) - known):
        problems.append(
            Violation(f"hysteresis.{key}", "is not a known key", hint=f"known: {sorted(known)}")
        )
    after, watch = raw.get("downgrade_after"), raw.get("watch_after", 1)
    to, lookback = raw.get("downgrade_to", "qualifying"), raw.get("lookback")
    ok = True
    if not _is_pos_int(after):
        problems.append(Violation("hysteresis.downgrade_after", f"is {after!r}; expected >= 1"))
        ok = False
    if not _is_pos_int(watch) or (ok and watch > after):
        problems.append(
            Violation(
                "hysteresis.watch_after",
                f"is {watch!r}; expected 1 <= watch_after <= downgrade_after",
            )
        )
        ok = False
    if to not in _DOWNGRADE_TO:
        problems.append(
            Violation("hysteresis.downgrade_to", f"is {to!r}; expected one of {_DOWNGRADE_TO}")
        )
        ok = False
    if lookback is not None and (not _is_pos_int(lookback) or (ok and lookback > after)):
        # A longer lookback could reach months before the streak below and undo the downgrade.
        problems.append(
            Violation(
                "hysteresis.lookback", f"is {lookback!r}; expected 1 <= lookback <= downgrade_after"
            )
        )
        ok = False
    return Hysteresis(after, watch, to, lookback) if ok else None


def load_ladder(
    spec: str | os.PathLike[str] | Mapping[str, Any] | Ladder = "cmb",
    *,
    basis_window: int | None = None,
    hysteresis: str | Mapping[str, Any] | None = FROM_LADDER,
) -> Ladder:
    """Load a ladder from a packaged name, a YAML path, a mapping, or pass one through.

    Parameters
    ----------
    spec : str, path, mapping or Ladder, default "cmb"
        ``cmb``, ``ccb``, ``spdb``, ``bos``, a path to a ladder YAML, or the ladder as data.
    basis_window : int, optional
        Override the months averaged for the AUM basis.
    hysteresis : str, mapping or None, default "ladder"
        ``"ladder"`` keeps the ladder's rule; None or ``"off"`` disables it; a preset name
        (``"ccb"``) or a mapping sets one.

    Returns
    -------
    Ladder

    Raises
    ------
    ConfigError
        When the ladder or an override is invalid (every problem listed).

    Examples
    --------
    >>> from segments import load_ladder
    >>> load_ladder("cmb").tier_names
    ['mass', 'gold', 'sunflower', 'diamond', 'private']
    """
    if isinstance(spec, Ladder):
        ladder = spec
    elif isinstance(spec, Mapping):
        ladder = Ladder.from_dict(spec)
    else:
        ladder = Ladder.from_dict(load_preset("ladders", spec), source=str(spec))
    problems: list[Violation] = []
    if basis_window is not None:
        if not _is_pos_int(basis_window):
            raise ConfigError(
                [
                    Violation(
                        "tiers.basis_window", f"is {basis_window!r}; expected a whole number >= 1"
                    )
                ]
            )
        ladder = replace(ladder, basis_window=int(basis_window))
    if not (isinstance(hysteresis, str) and hysteresis == FROM_LADDER):
        rule = _parse_hysteresis(hysteresis, problems)
        if problems:
            raise ConfigError(problems)
        ladder = replace(ladder, hysteresis=rule)
    return ladder


def _window_agg(grid: np.ndarray, window: int, agg: str) -> np.ndarray:
    """Combine each cell with the ``window - 1`` calendar months before it, skipping NaN."""
    if agg == "last" or window == 1:
        return grid.copy()
    total = np.zeros_like(grid)
    count = np.zeros(grid.shape, dtype=np.int32)
    for lag in range(min(window, grid.shape[1])):  # a window longer than the history
        shifted = grid[:, : grid.shape[1] - lag] if lag else grid  # averages what there is
        present = ~np.isnan(shifted)
        total[:, lag:] += np.where(present, shifted, 0.0)
        count[:, lag:] += present
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count if agg == "mean" else total
    out[count == 0] = np.nan
    return out


def _grid(codes: np.ndarray, months: np.ndarray, values: np.ndarray, shape: tuple[int, int]):
    grid = np.full(shape, np.nan)
    grid[codes, months] = values
    return grid


def _qualifying_ranks(
    ladder: Ladder, basis: np.ndarray, panel: pd.DataFrame, codes: np.ndarray, months: np.ndarray
) -> np.ndarray:
    shape = basis.shape
    ranks = np.zeros(shape, dtype=np.int8)
    crit_cache: dict[tuple[str, str, int], np.ndarray] = {}
    for r, tier in enumerate(ladder.tiers[1:], start=1):
        ok = basis >= tier.min_aum
        for crit in tier.any_of:
            if crit.column not in panel.columns:
                warnings.warn(
                    f"ladder `{ladder.name}` tier `{tier.name}` can also be reached by "
                    f"`{crit.column}`, which the panel lacks; that criterion is skipped",
                    SegmentsWarning,
                    stacklevel=3,
                )
                continue
            key = (crit.column, crit.agg, crit.window)
            if key not in crit_cache:
                values = panel[crit.column].to_numpy(dtype="float64")
                crit_cache[key] = _window_agg(
                    _grid(codes, months, values, shape), crit.window, crit.agg
                )
            with np.errstate(invalid="ignore"):
                ok |= crit_cache[key] >= crit.min
        ranks[ok] = r
    return ranks


def _apply_hysteresis(
    qual: np.ndarray, observed: np.ndarray, rule: Hysteresis | None
) -> tuple[np.ndarray, np.ndarray]:
    """Held tier rank and status code (0 active, 1 grace, 2 watch) per cell."""
    if rule is None:
        return qual, np.zeros(qual.shape, dtype=np.int8)
    n_c, n_m = qual.shape
    held = np.full(n_c, -1, dtype=np.int16)
    below = np.zeros(n_c, dtype=np.int16)
    held_grid = np.zeros(qual.shape, dtype=np.int8)
    status = np.zeros(qual.shape, dtype=np.int8)
    # Ranks of observed months only, so "consecutive" skips months the customer is absent.
    qual_masked = np.where(observed, qual, -1).astype(np.int16)
    for t in range(n_m):
        obs = observed[:, t]
        q = qual[:, t].astype(np.int16)
        first = obs & (held < 0)
        held[first] = q[first]
        below[first] = 0
        up = obs & ~first & (q >= held)
        held[up] = q[up]
        below[up] = 0
        dn = obs & ~first & (q < held)
        below[dn] += 1
        move = dn & (below >= rule.downgrade_after)
        if move.any():
            idx = np.flatnonzero(move)
            if rule.downgrade_to == "highest_recent":
                lo = max(0, t - rule.lookback_months + 1)
                target = qual_masked[idx, lo : t + 1].max(axis=1)
            else:
                target = q[idx]
            held[idx] = target
            # Months below the new tier, counted back from now within the lookback.
            streak = np.zeros(len(idx), dtype=np.int16)
            alive = np.ones(len(idx), dtype=bool)
            for lag in range(rule.lookback_months):
                if t - lag < 0:
                    break
                col = qual_masked[idx, t - lag]
                seen = col >= 0
                is_below = seen & (col < target)
                alive &= is_below | ~seen
                streak += alive & is_below
            below[idx] = streak
        held_grid[:, t] = np.maximum(held, 0)
        st = np.where(below == 0, 0, np.where(below >= rule.watch_after, 2, 1))
        status[:, t] = st
    return held_grid, status


def assign_tiers(
    panel: pd.DataFrame,
    ladder: str | os.PathLike[str] | Mapping[str, Any] | Ladder = "cmb",
    *,
    basis_window: int | None = None,
    hysteresis: str | Mapping[str, Any] | None = FROM_LADDER,
) -> pd.DataFrame:
    """Assign every customer-month a tier on a ladder.

    Parameters
    ----------
    panel : DataFrame
        A validated panel (:func:`segments.validate_panel`): ``customer_id``, ``month``
        (period[M]), ``aum``, plus any column an any-of criterion names.
    ladder : str, path, mapping or Ladder, default "cmb"
        See :func:`load_ladder`.
    basis_window : int, optional
        Override the ladder's AUM basis window (months averaged).
    hysteresis : str, mapping or None, default "ladder"
        Override the ladder's hysteresis rule.

    Returns
    -------
    DataFrame
        One row per customer-month, sorted by customer and month, with the columns of
        :data:`TIER_COLUMNS`: ``aum_basis``, ``tier`` (ordered categorical), ``tier_rank``
        (0 = lowest), ``next_tier`` (missing at the top), ``gap_to_next`` (money to the next
        threshold, 0 when the basis already reaches it), ``gap_ratio`` (basis / next
        threshold), ``near_tier``, ``near_band``, ``tier_status`` (``active``, ``grace``,
        ``watch``), ``qualifying_tier`` (the tier the basis alone gives), ``tier_change``
        (rank change from the previous calendar month; missing after a gap).

    Raises
    ------
    PanelValidationError
        When the panel has not been validated (no period ``month`` or no ``aum``).
    ConfigError
        When the ladder is invalid.

    Examples
    --------
    >>> import pandas as pd
    >>> from segments import assign_tiers, validate_panel
    >>> panel = validate_panel(pd.DataFrame({
    ...     "customer_id": ["C1", "C1", "C2"], "month": ["2024-01", "2024-02", "2024-01"],
    ...     "aum": [49_999.0, 50_000.0, 35_000.0]}))
    >>> table = assign_tiers(panel)
    >>> table["tier"].tolist(), table["near_band"].tolist()
    (['mass', 'gold', 'mass'], ['near_gold', nan, 'near_gold'])
    """
    ladder = load_ladder(ladder, basis_window=basis_window, hysteresis=hysteresis)
    problems = []
    for col in (ID, MONTH, AUM):
        if col not in panel.columns:
            problems.append(Violation(col, "is required but missing"))
    if MONTH in panel.columns and not isinstance(panel[MONTH].dtype, pd.PeriodDtype):
        problems.append(
            Violation(
                MONTH,
                "is not a monthly period",
                hint="run segments.validate_panel on the panel first",
            )
        )
    if problems:
        raise PanelValidationError(problems)
    panel = panel.sort_values([ID, MONTH], kind="stable").reset_index(drop=True)
    codes, _ = pd.factorize(panel[ID], sort=False)
    ordinals = panel[MONTH].array.asi8
    m0 = int(ordinals.min()) if len(ordinals) else 0
    months = ordinals - m0
    shape = (int(codes.max()) + 1 if len(codes) else 0, int(months.max()) + 1 if len(months) else 0)
    aum_grid = _grid(codes, months, panel[AUM].to_numpy(dtype="float64"), shape)
    basis = _window_agg(aum_grid, ladder.basis_window, "mean")
    observed = ~np.isnan(aum_grid)
    qual = _qualifying_ranks(ladder, basis, panel, codes, months)
    held, status = _apply_hysteresis(qual, observed, ladder.hysteresis)

    basis_rows = basis[codes, months]
    rank = held[codes, months].astype(np.int8)
    qual_rows = qual[codes, months]
    thresholds = ladder.thresholds
    top = len(ladder.tiers) - 1
    has_next = rank < top
    next_min = np.where(has_next, thresholds[np.minimum(rank + 1, top)], np.nan)
    gap = np.where(has_next, np.maximum(next_min - basis_rows, 0.0), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_ratio = np.where(has_next, basis_rows / next_min, np.nan)

    band_code = np.full(len(panel), -1, dtype=np.int16)
    for b, band in enumerate(ladder.near_bands):
        target = ladder.rank(band.tier)
        inside = (basis_rows >= band.lower) & (basis_rows < thresholds[target]) & (rank < target)
        band_code[inside] = b

    names = ladder.tier_names
    tier_dtype = pd.CategoricalDtype(names, ordered=True)
    same_customer = np.r_[False, codes[1:] == codes[:-1]][: len(codes)]
    consecutive = same_customer & np.r_[False, np.diff(ordinals) == 1][: len(codes)]
    change = pd.array(np.r_[0, np.diff(rank.astype(np.int16))][: len(rank)], dtype="Int8")
    change[~consecutive] = pd.NA
    out = pd.DataFrame(
        {
            ID: panel[ID].to_numpy(),
            MONTH: panel[MONTH].array,
            "aum_basis": basis_rows,
            "tier": pd.Categorical.from_codes(rank, dtype=tier_dtype),
            "tier_rank": rank,
            "next_tier": pd.Categorical.from_codes(
                np.where(has_next, rank + 1, -1), dtype=tier_dtype
            ),
            "gap_to_next": gap,
            "gap_ratio": gap_ratio,
            "near_tier": band_code >= 0,
            "near_band": pd.Categorical.from_codes(
                band_code, categories=[b.name for b in ladder.near_bands]
            ),
            "tier_status": pd.Categorical.from_codes(
                status[codes, months], categories=list(TIER_STATUSES)
            ),
            "qualifying_tier": pd.Categorical.from_codes(qual_rows, dtype=tier_dtype),
            "tier_change": change,
        }
    )
    out.attrs["ladder"] = ladder.name
    return out


def migration_matrix(
    tier_table: pd.DataFrame,
    from_month: str | pd.Period,
    to_month: str | pd.Period,
    *,
    normalize: bool = False,
) -> pd.DataFrame:
    """Tier transition matrix between two months, for customers present in both.

    Parameters
    ----------
    tier_table : DataFrame
        The output of :func:`assign_tiers`.
    from_month, to_month : str or Period
        E.g. ``"2024-06"``.
    normalize : bool, default False
        Rates per row (each ``from`` tier sums to 1) instead of counts.

    Returns
    -------
    DataFrame
        Rows: tier in ``from_month``; columns: tier in ``to_month``; all tiers of the ladder
        in rank order, zero-filled.
    """
    start, end = pd.Period(from_month, "M"), pd.Period(to_month, "M")
    for label, month in (("from_month", start), ("to_month", end)):
        if not (tier_table[MONTH] == month).any():
            raise PanelValidationError(
                [
                    Violation(
                        MONTH,
                        f"has no rows for {label} {month}",
                        hint=f"months present: {tier_table[MONTH].min()} .. "
                        f"{tier_table[MONTH].max()}",
                    )
                ]
            )
    a = tier_table.loc[tier_table[MONTH] == start, [ID, "tier"]]
    b = tier_table.loc[tier_table[MONTH] == end, [ID, "tier"]]
    both = a.merge(b, on=ID, suffixes=("_from", "_to"))
    counts = pd.crosstab(both["tier_from"], both["tier_to"], dropna=False)
    cats = tier_table["tier"].cat.categories
    counts = counts.reindex(index=cats, columns=cats, fill_value=0)
    counts.index.name, counts.columns.name = f"tier {start}", f"tier {end}"
    if normalize:
        totals = counts.sum(axis=1).replace(0, np.nan)
        return counts.div(totals, axis=0).fillna(0.0)
    return counts


def migration_summary(tier_table: pd.DataFrame) -> pd.DataFrame:
    """Upgrade and downgrade counts and rates for each month against the month before.

    Parameters
    ----------
    tier_table : DataFrame
        The output of :func:`assign_tiers`.

    Returns
    -------
    DataFrame
        Indexed by month (from the second month on): ``n_customers`` present in both months,
        ``n_up``, ``n_down``, ``n_same``, ``up_rate``, ``down_rate``.
    """
    change = tier_table["tier_change"]
    known = change.notna()
    frame = pd.DataFrame(
        {
            MONTH: tier_table.loc[known, MONTH],
            "n_up": (change[known] > 0).astype(int),
            "n_down": (change[known] < 0).astype(int),
            "n_same": (change[known] == 0).astype(int),
        }
    )
    out = frame.groupby(MONTH, observed=True).sum()
    out.insert(0, "n_customers", out.sum(axis=1))
    out["up_rate"] = out["n_up"] / out["n_customers"]
    out["down_rate"] = out["n_down"] / out["n_customers"]
    return out
