"""A growth report: the panel's growth sources, their windows in one month, and the mix of
sources per tier, strategic group, branch and tier x group."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from segments.core.data.months import check_month_in
from segments.core.data.panel import ID, MONTH
from segments.core.growth.sources import (
    GROWTH_COLUMNS,
    growth_mix,
    growth_sources,
    growth_windows,
    known_sources,
    source_columns,
)
from segments.core.tiers.assign import assign_tiers
from segments.core.tiers.ladders import Ladder
from segments.exceptions import ConfigError, Violation

__all__ = ["BY_CHOICES", "WINDOWS", "GrowthReport", "growth_report", "growth_table"]

#: What a mix can be reported by.
BY_CHOICES: tuple[str, ...] = ("tier", "group", "branch", "tier_group")
#: The windows every report carries (months).
WINDOWS: tuple[int, ...] = (3, 6, 12)


@dataclass(frozen=True)
class GrowthReport:
    """What :func:`growth_report` found.

    Attributes
    ----------
    growth : DataFrame
        One row per customer-month (:func:`~segments.core.growth.growth_sources`).
    month : Period
        The month the windows end in.
    window : int
        The window of the mixes, in months (at most the months of change the panel has).
    windows : DataFrame
        Per customer present in ``month``: every window's sums and dominant source.
    keys : DataFrame
        Per customer in ``month``: ``tier``, ``group`` (when groups were given), ``branch``
        (when the panel has ``branch_id``).
    mixes : dict of str to DataFrame
        :func:`~segments.core.growth.growth_mix` by each of ``by``.
    known : dict of str to bool
        Which sources the panel's columns can compute.
    notes : list of str
        What the report could not do as asked, in words.
    """

    growth: pd.DataFrame
    month: pd.Period
    window: int
    windows: pd.DataFrame
    keys: pd.DataFrame
    mixes: dict[str, pd.DataFrame]
    known: dict[str, bool]
    notes: list[str] = field(default_factory=list)


def _check_by(by: tuple[str, ...], groups: pd.Series | None) -> None:
    problems = [
        Violation("by", f"has {b!r}; expected one of {', '.join(BY_CHOICES)}")
        for b in by
        if b not in BY_CHOICES
    ]
    if groups is None and any(b in ("group", "tier_group") for b in by):
        problems.append(
            Violation("by", "asks for groups; give each customer's group (a scoring output)")
        )
    if problems:
        raise ConfigError(problems)


def growth_report(
    panel: pd.DataFrame,
    ladder: Ladder,
    *,
    month: pd.Period | str | None = None,
    window: int = 12,
    by: tuple[str, ...] = ("tier",),
    groups: pd.Series | None = None,
) -> GrowthReport:
    """Split a panel's AUM changes by source and report the mix by tier, group or branch.

    Parameters
    ----------
    panel : DataFrame
        A validated panel.
    ladder : Ladder
        The ladder whose tier each customer holds in ``month``.
    month : Period or str, optional
        The month the windows end in (default: the panel's latest).
    window : int, default 12
        Months of the mixes; a window longer than the panel's months of change is cut to
        them, and the report's notes say so.
    by : tuple of str, default ("tier",)
        Any of :data:`BY_CHOICES`.
    groups : Series, optional
        Each customer's strategic group (indexed by ``customer_id``), e.g. a scoring
        output's ``segment_name``; needed to report by group.

    Returns
    -------
    GrowthReport
    """
    _check_by(tuple(by), groups)
    if not isinstance(window, int) or window < 1:
        raise ConfigError([Violation("window", f"is {window!r}; expected whole months >= 1")])
    months = panel[MONTH]
    target = pd.Period(month, "M") if month is not None else months.max()
    check_month_in(months, target, "month")
    notes = []
    span = int((target - months.min()).n)
    if span < 1:
        raise ConfigError(
            [Violation("month", f"is {target}, the panel's first month: no change to split")]
        )
    if window > span:
        notes.append(
            f"the window of {window} months is longer than the {span} months of change "
            f"before {target}; reporting {span}"
        )
        window = span
    known = known_sources(panel.columns)
    for s, ok in known.items():
        lacks = [c for c in source_columns(s) if c not in panel.columns] or ["an investment column"]
        if not ok:
            notes.append(
                f"{s} is unknown (the panel lacks {', '.join(lacks)}); it is in the residual"
            )
    growth = growth_sources(panel)
    windows = growth_windows(growth, target, sorted({*WINDOWS, window}))
    keys = _keys(panel, ladder, target, groups)
    if "branch" in by and "branch" not in keys.columns:
        raise ConfigError([Violation("by", "asks for branch; the panel has no branch_id")])
    mixes = {}
    for b in by:
        cols = ["tier", "group"] if b == "tier_group" else [b]
        mixes[b] = growth_mix(windows, keys[cols].dropna(), window)
    return GrowthReport(growth, target, window, windows, keys, mixes, known, notes)


def _keys(
    panel: pd.DataFrame, ladder: Ladder, month: pd.Period, groups: pd.Series | None
) -> pd.DataFrame:
    tiers = assign_tiers(panel, ladder)
    now = tiers[tiers[MONTH] == month].set_index(ID)
    keys = pd.DataFrame({"tier": now["tier"]})
    if groups is not None:
        keys["group"] = groups.reindex(keys.index)
    if "branch_id" in panel.columns:
        rows = panel[panel[MONTH] == month].set_index(ID)["branch_id"]
        keys["branch"] = rows.reindex(keys.index)
    return keys


def growth_table(report: GrowthReport) -> pd.DataFrame:
    """The report's customer-month rows as stored: ``month`` as ``YYYY-MM`` text."""
    table = report.growth[[ID, MONTH, *GROWTH_COLUMNS]]
    return table.assign(**{MONTH: table[MONTH].astype(str)})
