"""Tier assignment: the tier table, with near-tier bands, hysteresis and migration.

:func:`assign_tiers` turns a validated panel into the tier table, one row per
customer-month, on a ladder (:mod:`segments.core.tiers.ladders`): the basis (AUM, or a points
ladder's score or balance, :mod:`segments.core.tiers.points`), the tier held
(after the ladder's hysteresis rule) and the one the basis alone gives, the next tier and
the gap to it, the near-tier band and the tier's status. :func:`migration_matrix` and
:func:`migration_summary` read the movements between months.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from segments.core.config.presets import FROM_LADDER
from segments.core.data.panel import AUM, ID, MONTH
from segments.core.tiers.hysteresis import apply_hysteresis
from segments.core.tiers.ladders import Ladder, load_ladder
from segments.core.tiers.points import component_points, window_agg
from segments.exceptions import ConfigError, PanelValidationError, SegmentsWarning, Violation

__all__ = [
    "TIER_COLUMNS",
    "TIER_STATUSES",
    "assign_tiers",
    "check_ladder_history",
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
    "basis_unit",
)
#: ``active``: qualifies for the tier held; ``grace``: below it, not yet on watch;
#: ``watch``: below it long enough to be on watch (hysteresis only).
TIER_STATUSES: tuple[str, ...] = ("active", "grace", "watch")


def _grid(
    codes: np.ndarray, months: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """A customer x month grid of ``values`` (NaN where a customer has no row)."""
    grid = np.full(shape, np.nan)
    grid[codes, months] = values
    return grid


def _qualifying_ranks(
    ladder: Ladder, basis: np.ndarray, panel: pd.DataFrame, codes: np.ndarray, months: np.ndarray
) -> np.ndarray:
    """The rank of the highest tier each cell qualifies for: by the basis or any criterion."""
    shape = basis.shape
    ranks = np.zeros(shape, dtype=np.int8)
    crit_cache: dict[tuple[str, str, int], np.ndarray] = {}
    for r, tier in enumerate(ladder.tiers[1:], start=1):
        ok = basis >= tier.threshold
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
                crit_cache[key] = window_agg(
                    _grid(codes, months, values, shape), crit.window, crit.agg
                )
            with np.errstate(invalid="ignore"):
                ok |= crit_cache[key] >= crit.min
        ranks[ok] = r
    return ranks


def assign_tiers(
    panel: pd.DataFrame,
    ladder: str | os.PathLike[str] | Mapping[str, Any] | Ladder = "cmb",
    *,
    basis_window: int | None = None,
    hysteresis: str | Mapping[str, Any] | None = FROM_LADDER,
    check_history: bool = True,
) -> pd.DataFrame:
    """Assign every customer-month a tier on a ladder.

    Parameters
    ----------
    panel : DataFrame
        A validated panel (:func:`segments.validate_panel`): ``customer_id``, ``month``
        (period[M]), ``aum``, plus any column an any-of criterion or a component names.
    ladder : str, path, mapping or Ladder, default "cmb"
        See :func:`load_ladder`.
    basis_window : int, optional
        Override the ladder's AUM basis window (months averaged).
    hysteresis : str, mapping or None, default "ladder"
        Override the ladder's hysteresis rule.
    check_history : bool, default True
        Refuse a panel with fewer months than a points window or a growth expiry. Jobs
        that tier a panel in batches of customers check the whole panel once, before any
        work, and pass False (a batch of new customers spans fewer months).

    Returns
    -------
    DataFrame
        One row per customer-month, sorted by customer and month, with the columns of
        :data:`TIER_COLUMNS`: ``aum_basis``, ``tier`` (ordered categorical), ``tier_rank``
        (0 = lowest), ``next_tier`` (missing at the top), ``gap_to_next`` (basis to the next
        threshold, 0 when the basis already reaches it), ``gap_ratio`` (basis / next
        threshold), ``near_tier``, ``near_band``, ``tier_status`` (``active``, ``grace``,
        ``watch``), ``qualifying_tier`` (the tier the basis alone gives), ``tier_change``
        (rank change from the previous calendar month; missing after a gap), ``basis_unit``
        (the currency, or ``points``). On a points or growth ladder ``aum_basis`` is the
        score or balance, and each component's points follow (``points_<name>``).

    Raises
    ------
    PanelValidationError
        When the panel has not been validated (no period ``month`` or no ``aum``), or lacks
        a points component's column.
    ConfigError
        When the ladder is invalid, or reads back further than the panel's months.

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
    _require_validated(panel)
    panel = panel.sort_values([ID, MONTH], kind="stable").reset_index(drop=True)
    codes, _ = pd.factorize(panel[ID], sort=False)
    ordinals = panel[MONTH].array.asi8
    m0 = int(ordinals.min()) if len(ordinals) else 0
    months = ordinals - m0
    shape = (int(codes.max()) + 1 if len(codes) else 0, int(months.max()) + 1 if len(months) else 0)
    _check_points_panel(ladder, panel)
    if check_history:
        check_ladder_history(ladder, shape[1])
    observed = np.zeros(shape, dtype=bool)
    observed[codes, months] = True
    basis, points = _basis(ladder, panel, codes, months, observed)
    qual = _qualifying_ranks(ladder, basis, panel, codes, months)
    held, status = apply_hysteresis(qual, observed, ladder.hysteresis)
    out = _tier_rows(
        ladder,
        panel,
        codes,
        ordinals,
        basis[codes, months],
        held[codes, months].astype(np.int8),
        qual[codes, months],
        status[codes, months],
    )
    for name, grid in points.items():
        out[name] = grid[codes, months]
    out.attrs["ladder"] = ladder.name
    return out


def _basis(
    ladder: Ladder,
    panel: pd.DataFrame,
    codes: np.ndarray,
    months: np.ndarray,
    observed: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The basis grid (AUM, a points score or balance) and each component's points grid."""
    shape = observed.shape

    def grid(column: str) -> np.ndarray:
        return _grid(codes, months, panel[column].to_numpy(dtype="float64"), shape)

    if ladder.kind == "aum":
        return window_agg(grid(AUM), ladder.basis_window, "mean"), {}
    grids = {c.column: grid(c.column) for c in ladder.components}
    points = component_points(
        ladder.components,
        grids,
        observed,
        growth=ladder.kind == "growth",
        expiry_months=ladder.expiry_months,
        decay=ladder.decay,
    )
    basis = np.where(observed, 0.0, np.nan)
    for grid_points in points.values():
        basis += grid_points  # NaN where the customer has no row, as in every component
    # Fractional weights add up with float residue (0.7 + 0.2 < 0.9): points to 1e-6.
    np.round(basis, 6, out=basis)
    return basis, points


def _check_points_panel(ladder: Ladder, panel: pd.DataFrame) -> None:
    """Raise when the panel lacks a component's column."""
    missing = sorted({c.column for c in ladder.components} - set(panel.columns))
    if missing:
        raise PanelValidationError(
            [
                Violation(
                    col,
                    f"is read by ladder `{ladder.name}` ("
                    + ", ".join(c.name for c in ladder.components if c.column == col)
                    + ") but the panel lacks it",
                    hint="map the bank's column onto it (panel.column_map) or drop the component",
                )
                for col in missing
            ]
        )


def check_ladder_history(ladder: Ladder, n_months: int) -> None:
    """Raise a named :class:`ConfigError` when the ladder's basis reads further back than
    ``n_months`` of history (:meth:`Ladder.history_problems`)."""
    problems = ladder.history_problems(n_months)
    if problems and n_months:
        raise ConfigError(problems, source=f"ladder {ladder.name}")


def _require_validated(panel: pd.DataFrame) -> None:
    """Raise unless the panel has an id, a monthly-period ``month`` and ``aum``."""
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


def _tier_rows(
    ladder: Ladder,
    panel: pd.DataFrame,
    codes: np.ndarray,
    ordinals: np.ndarray,
    basis_rows: np.ndarray,
    rank: np.ndarray,
    qual_rows: np.ndarray,
    status_rows: np.ndarray,
) -> pd.DataFrame:
    """The tier table from each row's basis, held rank, qualifying rank and status code."""
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
    return pd.DataFrame(
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
            "tier_status": pd.Categorical.from_codes(status_rows, categories=list(TIER_STATUSES)),
            "qualifying_tier": pd.Categorical.from_codes(qual_rows, dtype=tier_dtype),
            "tier_change": change,
            "basis_unit": pd.Categorical.from_codes(
                np.zeros(len(panel), dtype=np.int8), categories=[ladder.basis_unit]
            ),
        }
    )


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
