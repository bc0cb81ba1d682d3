"""Where a customer's assets come from: the month-on-month AUM change split by source.

Assets rise in three ways only, and the split is an identity, exact to the cent::

    aum_change = growth_accumulation + growth_migration + growth_appreciation + growth_residual

* ``growth_accumulation``: the customer's own money in (payroll, other income) less their
  spending, transfers with other banks left out:
  ``(inflow - transfer_in_other_bank) - (outflow - transfer_out_other_bank)``;
* ``growth_migration``: assets moved in from other banks less moved out:
  ``transfer_in_other_bank - transfer_out_other_bank``;
* ``growth_appreciation``: the change in investment balances (wealth products, funds, bonds,
  insurance, precious metals) not explained by net purchases:
  ``Δ investments - investment_net_purchases``;
* ``growth_residual``: what the three do not explain (AUM is a daily average while flows are
  month totals; interest on deposits; any source that cannot be computed).

A source whose columns the panel lacks is *unknown*: its column is NaN (never a guessed 0)
and its amount is in the residual. Accumulation needs ``inflow``, ``outflow`` and both
transfer columns; migration both transfer columns; appreciation ``investment_net_purchases``
and at least one investment component. A customer's first month, and a month after a gap,
has no change (every column NaN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from segments.core.data.panel import AUM, ID, INVESTMENT_COMPONENTS, MONTH, NET_PURCHASES
from segments.exceptions import ConfigError, Violation

__all__ = [
    "DOMINANT_NONE",
    "GROWTH_COLUMNS",
    "INVESTMENT_COMPONENTS",
    "NET_PURCHASES",
    "SOURCES",
    "accumulation",
    "appreciation",
    "dominant_source",
    "growth_mix",
    "growth_sources",
    "growth_windows",
    "investments",
    "known_sources",
    "migration",
    "source_columns",
]

#: The three sources, in the order of the method.
SOURCES: tuple[str, ...] = ("accumulation", "migration", "appreciation")
#: The output columns besides ``customer_id`` and ``month`` (stable names, see DESIGN.md).
GROWTH_COLUMNS: tuple[str, ...] = (
    "aum_change",
    *(f"growth_{s}" for s in SOURCES),
    "growth_residual",
)
#: The dominant source of a customer whose known sources all shrank (or none is known).
DOMINANT_NONE = "none"

_TRANSFERS = ("transfer_in_other_bank", "transfer_out_other_bank")
_NEEDS: dict[str, tuple[str, ...]] = {
    "accumulation": ("inflow", "outflow", *_TRANSFERS),
    "migration": _TRANSFERS,
    "appreciation": (NET_PURCHASES,),
}


def source_columns(source: str) -> tuple[str, ...]:
    """The panel columns a source needs (appreciation also needs an investment component).

    Parameters
    ----------
    source : {"accumulation", "migration", "appreciation"}

    Returns
    -------
    tuple of str
    """
    return _NEEDS[source]


def known_sources(columns: Sequence[str]) -> dict[str, bool]:
    """Which sources a panel with these columns can compute.

    Parameters
    ----------
    columns : sequence of str
        The panel's columns (contract names).

    Returns
    -------
    dict of str to bool
        ``{source: known}`` in the order of :data:`SOURCES`.

    Examples
    --------
    >>> known_sources(["customer_id", "month", "aum", "transfer_in_other_bank",
    ...                "transfer_out_other_bank"])
    {'accumulation': False, 'migration': True, 'appreciation': False}
    """
    have = set(columns)
    known = {s: set(_NEEDS[s]) <= have for s in SOURCES}
    known["appreciation"] &= any(c in have for c in INVESTMENT_COMPONENTS)
    return known


def accumulation(
    inflow: np.ndarray, outflow: np.ndarray, t_in: np.ndarray, t_out: np.ndarray
) -> np.ndarray:
    """Own money in less spending, transfers with other banks left out (the one rule)."""
    return (inflow - t_in) - (outflow - t_out)


def migration(t_in: np.ndarray, t_out: np.ndarray) -> np.ndarray:
    """Assets moved in from other banks less moved out (the one rule)."""
    return t_in - t_out


def appreciation(
    invest_now: np.ndarray, invest_before: np.ndarray, net_purchases: np.ndarray
) -> np.ndarray:
    """The change in investment balances not explained by net purchases (the one rule)."""
    return (invest_now - invest_before) - net_purchases


def investments(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """The sum of the investment components among ``columns`` (missing values count as 0)."""
    held = [
        np.asarray(v, dtype="float64") for c, v in columns.items() if c in INVESTMENT_COMPONENTS
    ]
    return np.nansum(np.stack(held), axis=0)


def _cents(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)


def _money(panel: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(panel[column]).to_numpy(dtype="float64", na_value=np.nan)


def growth_sources(panel: pd.DataFrame) -> pd.DataFrame:
    """Split every customer-month's AUM change into accumulation, migration, appreciation and
    a residual.

    Parameters
    ----------
    panel : DataFrame
        A validated panel (:func:`segments.check_panel`): ``customer_id``, ``month`` (monthly
        periods), ``aum`` and whichever flow, transfer, investment component and
        ``investment_net_purchases`` columns it has.

    Returns
    -------
    DataFrame
        One row per customer-month, sorted by customer and month: ``customer_id``,
        ``month`` and :data:`GROWTH_COLUMNS`, money rounded to the cent, the identity exact.
        A source the panel cannot compute is NaN (see :func:`known_sources`); a month
        without the customer's previous calendar month is NaN throughout.

    Examples
    --------
    >>> import pandas as pd
    >>> panel = pd.DataFrame({
    ...     "customer_id": ["a", "a"], "month": pd.period_range("2025-01", periods=2, freq="M"),
    ...     "aum": [1000.0, 1600.0], "funds": [0.0, 400.0], "investment_net_purchases": [0, 300],
    ...     "inflow": [0, 900.0], "outflow": [0, 200.0],
    ...     "transfer_in_other_bank": [0, 500.0], "transfer_out_other_bank": [0, 0.0]})
    >>> growth_sources(panel).iloc[1, 2:].tolist()
    [600.0, 200.0, 500.0, 100.0, -200.0]
    """
    missing = [c for c in (ID, MONTH, AUM) if c not in panel.columns]
    if missing:
        raise ConfigError([Violation(c, "is missing; growth sources need it") for c in missing])
    if not isinstance(panel[MONTH].dtype, pd.PeriodDtype):
        raise ConfigError([Violation(MONTH, "must be monthly periods (validate the panel first)")])
    order = np.lexsort((panel[MONTH].array.asi8, panel[ID].to_numpy()))
    df = panel.iloc[order].reset_index(drop=True)
    ids = df[ID].to_numpy()
    ordinal = df[MONTH].array.asi8
    follows = np.zeros(len(df), dtype=bool)
    follows[1:] = (ids[1:] == ids[:-1]) & (ordinal[1:] == ordinal[:-1] + 1)

    def change(values: np.ndarray) -> np.ndarray:
        out = np.full(len(values), np.nan)
        out[1:] = values[1:] - values[:-1]
        return np.where(follows, out, np.nan)

    known = known_sources(df.columns)
    aum_change = _cents(change(_money(df, AUM)))
    nan = np.full(len(df), np.nan)
    parts: dict[str, np.ndarray] = {}
    moved = nan
    if known["migration"]:
        t_in, t_out = _money(df, _TRANSFERS[0]), _money(df, _TRANSFERS[1])
        moved = np.where(follows, migration(t_in, t_out), np.nan)
    parts["accumulation"] = nan
    if known["accumulation"]:
        own = accumulation(_money(df, "inflow"), _money(df, "outflow"), t_in, t_out)
        parts["accumulation"] = _cents(np.where(follows, own, np.nan))
    parts["migration"] = _cents(moved)
    parts["appreciation"] = nan
    if known["appreciation"]:
        invest = investments({c: _money(df, c) for c in INVESTMENT_COMPONENTS if c in df})
        before = np.full(len(df), np.nan)
        before[1:] = invest[:-1]
        grew = appreciation(invest, np.where(follows, before, np.nan), _money(df, NET_PURCHASES))
        parts["appreciation"] = _cents(grew)
    explained = np.zeros(len(df))
    for s in SOURCES:
        if known[s]:
            explained = explained + np.nan_to_num(parts[s])
    residual = _cents(aum_change - explained)
    out = pd.DataFrame({ID: df[ID].to_numpy(), MONTH: df[MONTH].to_numpy()})
    out[MONTH] = df[MONTH].array
    out["aum_change"] = aum_change
    for s in SOURCES:
        out[f"growth_{s}"] = parts[s]
    out["growth_residual"] = residual
    return out


def growth_windows(
    growth: pd.DataFrame, month: pd.Period, windows: Sequence[int] = (3, 6, 12)
) -> pd.DataFrame:
    """Each customer's growth sources summed over the last ``w`` months to ``month``.

    Parameters
    ----------
    growth : DataFrame
        The output of :func:`growth_sources`.
    month : Period
        The last month of every window.
    windows : sequence of int, default (3, 6, 12)
        Window lengths in months.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (customers with a row in ``month``); for each window
        ``w`` and each of :data:`GROWTH_COLUMNS` a column ``{column}_{w}m`` (months without a
        change count as nothing; a source unknown in the panel stays NaN), and
        ``dominant_source_{w}m`` (:func:`dominant_source`).
    """
    bad = [w for w in windows if not isinstance(w, int | np.integer) or w < 1]
    if bad:
        raise ConfigError([Violation("windows", f"has {bad}; expected whole months >= 1")])
    month = pd.Period(month, "M")
    present = growth.loc[growth[MONTH] == month, ID]
    frames = []
    for w in windows:
        first = month - (int(w) - 1)
        inside = growth[(growth[MONTH] >= first) & (growth[MONTH] <= month)]
        inside = inside[inside[ID].isin(present)]
        sums = inside.groupby(ID, sort=True)[list(GROWTH_COLUMNS)].sum(min_count=1)
        for col in GROWTH_COLUMNS:
            unknown = growth[col].isna().all()
            sums[col] = np.nan if unknown else sums[col].fillna(0.0)
        sums = sums.round(2)
        sums["dominant_source"] = dominant_source(sums)
        frames.append(sums.add_suffix(f"_{int(w)}m"))
    out = pd.concat(frames, axis=1)
    return out.reindex(pd.Index(present.sort_values().to_numpy(), name=ID))


def dominant_source(sums: pd.DataFrame) -> np.ndarray:
    """The source that added the most to each customer's assets.

    Parameters
    ----------
    sums : DataFrame
        ``growth_{source}`` columns (e.g. summed over a window).

    Returns
    -------
    ndarray of str
        The source with the largest positive amount, or :data:`DOMINANT_NONE` when no known
        source added anything (ties go to the first in :data:`SOURCES`).
    """
    values = np.column_stack(
        [
            pd.to_numeric(sums[f"growth_{s}"]).to_numpy(dtype="float64", na_value=np.nan)
            for s in SOURCES
        ]
    )
    filled = np.where(np.isnan(values), -np.inf, values)
    best = np.argmax(filled, axis=1)
    top = filled[np.arange(len(filled)), best]
    names = np.array(SOURCES, dtype=object)[best]
    return np.where(top > 0, names, DOMINANT_NONE).astype(object)


def growth_mix(windows: pd.DataFrame, by: pd.Series | pd.DataFrame, window: int) -> pd.DataFrame:
    """The mix of growth sources per tier, group, branch (or tier x group) over a window.

    Parameters
    ----------
    windows : DataFrame
        The output of :func:`growth_windows` (indexed by ``customer_id``) with ``window``.
    by : Series or DataFrame
        The key(s) per customer (indexed by ``customer_id``), e.g. the tier, or the tier and
        the group as two columns; customers without a key are left out.
    window : int
        The window to report, in months.

    Returns
    -------
    DataFrame
        One row per key: ``customers``, the sums of ``aum_change`` and of each source and
        the residual (money; an unknown source stays NaN), and ``share_{source}`` and
        ``share_none``: the share of the key's customers whose dominant source it is.
    """
    suffix = f"_{int(window)}m"
    cols = [f"{c}{suffix}" for c in GROWTH_COLUMNS]
    missing = [c for c in (*cols, f"dominant_source{suffix}") if c not in windows.columns]
    if missing:
        raise ConfigError(
            [Violation("window", f"is {window}; the windows have no {', '.join(missing)}")]
        )
    keys = by.to_frame() if isinstance(by, pd.Series) else by
    frame = windows[cols].rename(columns=lambda c: c.removesuffix(suffix)).join(keys, how="inner")
    names = list(keys.columns)
    grouped = frame.groupby(names, observed=True, sort=True)
    sums = grouped[list(GROWTH_COLUMNS)].sum(min_count=1).round(2)
    sums.insert(0, "customers", grouped.size())
    dominant = windows[f"dominant_source{suffix}"].reindex(frame.index)
    shares = pd.crosstab([frame[n] for n in names], dominant.rename("dominant"), normalize="index")
    for s in (*SOURCES, DOMINANT_NONE):
        sums[f"share_{s}"] = shares[s] if s in shares.columns else 0.0
    return sums
