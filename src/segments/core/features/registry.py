"""Feature declarations: one entry per feature, its catalogue text and its computation.

A feature is declared once with :func:`feature`, a decorator on the function that computes
it::

    @feature(
        "payroll_avg_6m", "flows", "money",
        en="average monthly payroll over the last 6 months", zh="近6个月月均代发工资",
        sources=("payroll_inflow",), window=6,
    )
    def _payroll_avg(h: History, w: int) -> np.ndarray:
        return nanmean(h.grid("payroll_inflow")[:, :w])

The declarations, in the order they are made, are the catalogue (:func:`catalogue`,
:data:`FEATURE_CATALOGUE`, :func:`catalogue_frame`) and what
:func:`~segments.core.features.build_features` computes, in that order, for every declaration
whose ``sources`` the panel has.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from segments.core.data.panel import AUM
from segments.core.features.history import History, Values
from segments.exceptions import ConfigError, Violation

__all__ = [
    "DEFAULT_WINDOWS",
    "FEATURE_CATALOGUE",
    "HISTORY",
    "LOG_UNITS",
    "LONGEST",
    "PER_WINDOW",
    "TIER_SPECS",
    "UNITS",
    "Compute",
    "Declaration",
    "FeatureSpec",
    "catalogue",
    "catalogue_frame",
    "declarations",
    "declared",
    "describe",
    "feature",
    "feature_spec",
    "is_log_scale",
    "not_built",
    "plan",
    "register",
    "unregister",
]

#: Units: how a value is read and shown.
UNITS = ("money", "ratio", "share", "count", "months", "years", "flag", "category", "per_month")
#: Units shown and modelled on a log scale (heavy right tails).
LOG_UNITS = ("money", "count", "per_month")
DEFAULT_WINDOWS: tuple[int, ...] = (3, 6, 12)

#: Window rules: one feature per configured window (the name holds ``{w}``) ...
PER_WINDOW = "per_window"
#: ... the longest configured window ...
LONGEST = "longest"
#: ... or all the history a feature table holds (the longest window plus one month).
HISTORY = "history"
WindowRule = int | Literal["per_window", "longest", "history"]

#: A feature's computation: the history and the feature's window in months -> one value per
#: customer.
Compute = Callable[[History, int], Values]


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the catalogue.

    Attributes
    ----------
    name : str
        Column name; carries its window (``aum_avg_3m``) where it has one.
    family : str
        ``aum_level``, ``aum_trend``, ``asset_mix``, ``breadth``, ``flows``, ``activity``,
        ``channels``, ``credit``, ``life_stage``.
    unit : str
        One of ``money``, ``ratio`` (a change, shown as a percentage), ``share`` (0..1),
        ``count``, ``per_month``, ``months``, ``years``, ``flag``, ``category``. A share is a
        proportion shown as a percentage (it may exceed 100% for flows relative to AUM).
    window : int
        Months of history it summarises (1 = the as-of month only).
    en, zh : str
        What it measures, in English and Chinese.
    sources : tuple of str
        Panel columns it needs; it is built only when all are present.
    """

    name: str
    family: str
    unit: str
    window: int
    en: str
    zh: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Declaration:
    """A feature as declared: its catalogue entry (with ``{w}`` for its window) and its
    computation.

    Attributes
    ----------
    name, family, unit, en, zh : str
        As in :class:`FeatureSpec`; ``name``, ``en`` and ``zh`` may hold ``{w}``, replaced
        by the window in months.
    sources : tuple of str
        Panel columns it needs.
    window : int or str
        Months it summarises: a number, or :data:`PER_WINDOW` (one feature per configured
        window), :data:`LONGEST` (the longest window) or :data:`HISTORY` (the longest plus
        one). Consecutive :data:`PER_WINDOW` declarations are listed window by window.
    compute : callable
        ``compute(history, window) -> values``, one value per customer of the history.
    log_scale : bool, optional
        Cluster and profile on ``log1p``; by default when the unit is in :data:`LOG_UNITS`.
    any_source : bool, default False
        Built when any of ``sources`` is present (missing ones count as zero), not all.
    """

    name: str
    family: str
    unit: str
    en: str
    zh: str
    sources: tuple[str, ...]
    window: WindowRule
    compute: Compute
    log_scale: bool | None = None
    any_source: bool = False

    def spec(self, window: int) -> FeatureSpec:
        """The catalogue entry for a window in months."""

        def fill(text: str) -> str:
            return text.replace("{w}", str(window))

        return FeatureSpec(
            fill(self.name), self.family, self.unit, window, fill(self.en), fill(self.zh),
            self.sources,
        )  # fmt: skip

    def available(self, columns: Iterable[str]) -> bool:
        """Whether a panel with ``columns`` has what this feature needs."""
        have = set(columns)
        test = any if self.any_source else all
        return test(c in have for c in self.sources)

    @property
    def on_log_scale(self) -> bool:
        """Whether the feature is clustered and profiled on ``log1p``."""
        return self.unit in LOG_UNITS if self.log_scale is None else self.log_scale


_DECLARATIONS: list[Declaration] = []

#: Columns the upgrade model adds to the features, known at the as-of month; described
#: here: the tier table's (built by :mod:`segments.core.tiers.assign`) and the as-of month's
#: calendar month (seasonality, :data:`segments.core.upgrade.labels.CALENDAR_FEATURES`).
TIER_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "gap_ratio", "tier", "share", 1, "AUM as a share of the next tier's threshold",
        "资产达到下一等级门槛的比例", (AUM,),
    ),
    FeatureSpec(
        "gap_to_next", "tier", "money", 1, "money still needed to reach the next tier",
        "距下一等级门槛的差额", (AUM,),
    ),
    FeatureSpec(
        "tier_rank", "tier", "count", 1, "current tier (0 = lowest)", "当前等级(0为最低)", (AUM,)
    ),
    FeatureSpec("near_band", "tier", "category", 1, "near-tier band", "临界区间", (AUM,)),
    FeatureSpec(
        "month_of_year", "calendar", "count", 1,
        "calendar month of the as-of month (seasonality: year-end bonuses, Spring Festival)",
        "所在自然月(季节性:年终奖、春节)", (),
    ),
)  # fmt: skip

#: The catalogue for the default windows (3, 6, 12 months), by name; kept up to date by
#: :func:`register` and :func:`unregister`.
FEATURE_CATALOGUE: dict[str, FeatureSpec] = {}
_LOG_SCALE: set[str] = set()
#: :func:`describe`'s answers, by name (emptied whenever the declarations change).
_DESCRIBED: dict[str, FeatureSpec | None] = {}


def declarations() -> tuple[Declaration, ...]:
    """Every declared feature, in catalogue order."""
    return tuple(_DECLARATIONS)


def plan(windows: Sequence[int]) -> list[tuple[Declaration, FeatureSpec]]:
    """Each declaration with its catalogue entry for ``windows``, in catalogue order.

    Parameters
    ----------
    windows : sequence of int
        The feature windows in months, in the order their features are listed.

    Returns
    -------
    list of (Declaration, FeatureSpec)
    """
    long = max(windows)
    fixed = {LONGEST: long, HISTORY: long + 1}
    out: list[tuple[Declaration, FeatureSpec]] = []
    run: list[Declaration] = []  # consecutive per-window declarations, listed window by window
    for d in (*_DECLARATIONS, None):
        if d is not None and d.window == PER_WINDOW:
            run.append(d)
            continue
        out += [(r, r.spec(w)) for w in windows for r in run]
        run = []
        if d is not None and not _too_long(d, long):
            out.append((d, d.spec(fixed.get(d.window, d.window))))  # type: ignore[arg-type]
    return out


def _too_long(d: Declaration, longest: int) -> bool:
    """Whether a feature's own window is longer than the longest feature window."""
    return isinstance(d.window, int) and d.window > longest


def not_built(windows: Sequence[int]) -> list[str]:
    """The features of the catalogue whose own window (months) is longer than the longest
    of ``windows``: not built with them (their months are not read), named for the run's
    report.

    Parameters
    ----------
    windows : sequence of int
        The feature windows in months.

    Returns
    -------
    list of str
        Their names, in catalogue order.
    """
    long = max(windows)
    return [d.name for d in _DECLARATIONS if _too_long(d, long)]


def catalogue(windows: Sequence[int] = DEFAULT_WINDOWS) -> list[FeatureSpec]:
    """Every feature's catalogue entry for ``windows``, then the tier-table columns."""
    return [s for _, s in plan(windows)] + list(TIER_SPECS)


def _refresh() -> None:
    """Rebuild :data:`FEATURE_CATALOGUE` (in place: importers hold the same dict)."""
    specs = plan(DEFAULT_WINDOWS)
    FEATURE_CATALOGUE.clear()
    FEATURE_CATALOGUE.update({s.name: s for _, s in specs})
    FEATURE_CATALOGUE.update({s.name: s for s in TIER_SPECS})
    _LOG_SCALE.clear()
    _LOG_SCALE.update(s.name for d, s in specs if d.on_log_scale)
    _LOG_SCALE.update(s.name for s in TIER_SPECS if s.unit in LOG_UNITS)
    _DESCRIBED.clear()


def register(declaration: Declaration) -> Declaration:
    """Add a feature at the end of the catalogue.

    Raises
    ------
    ConfigError
        When a feature of that name is declared already or the unit is unknown.
    """
    d = declaration
    if d.unit not in UNITS:
        raise ConfigError([Violation(d.name, f"has unit {d.unit!r}; expected one of {UNITS}")])
    if any(x.name == d.name for x in _DECLARATIONS) or d.name in {s.name for s in TIER_SPECS}:
        raise ConfigError([Violation(d.name, "is declared twice")])
    _DECLARATIONS.append(d)
    _refresh()
    return d


def unregister(name: str) -> Declaration:
    """Remove a declared feature (by its declared name, ``{w}`` included) and return it."""
    for i, d in enumerate(_DECLARATIONS):
        if d.name == name:
            del _DECLARATIONS[i]
            _refresh()
            return d
    raise ConfigError([Violation(name, "is not a declared feature")])


@contextlib.contextmanager
def declared(new: Iterable[Declaration]) -> Iterator[tuple[Declaration, ...]]:
    """Register declarations for the duration of a ``with`` block, then remove them.

    A declaration equal to one registered already (same name, texts, unit, window and
    computation) is left as it is, and not removed on exit: nested blocks and a block run
    twice add nothing. Only what the block added is removed, so the catalogue is as it was.

    Parameters
    ----------
    new : iterable of Declaration

    Yields
    ------
    tuple of Declaration
        The declarations this block added.

    Raises
    ------
    ConfigError
        A declaration's unit is unknown, or its name is taken by another definition
        (nothing is registered then).
    """
    added: list[Declaration] = []
    problems: list[Violation] = []
    tier = {s.name for s in TIER_SPECS}
    for d in new:
        same = next((x for x in (*_DECLARATIONS, *added) if x.name == d.name), None)
        if d.unit not in UNITS:
            problems.append(Violation(d.name, f"has unit {d.unit!r}; expected one of {UNITS}"))
        elif d.name in tier or (same is not None and same != d):
            problems.append(
                Violation(
                    d.name,
                    "is declared already, with another definition",
                    hint="a feature name means one thing within a job: rename one of them",
                )
            )
        elif same is None:
            added.append(d)
    if problems:
        raise ConfigError(problems)
    if not added:
        yield ()
        return
    _DECLARATIONS.extend(added)
    _refresh()
    try:
        yield tuple(added)
    finally:
        _DECLARATIONS[:] = [x for x in _DECLARATIONS if not any(x is d for d in added)]
        _refresh()


def feature(
    name: str,
    family: str,
    unit: str,
    *,
    en: str,
    zh: str,
    sources: Sequence[str],
    window: WindowRule = 1,
    log_scale: bool | None = None,
    any_source: bool = False,
) -> Callable[[Compute], Compute]:
    """Declare a feature: a decorator on the function that computes it.

    Parameters are those of :class:`Declaration`. The function is returned unchanged, so
    one function can be declared under several names.

    Examples
    --------
    >>> from segments.core.features import feature, unregister
    >>> @feature("aum_max_{w}m", "aum_level", "money", en="highest AUM in {w} months",
    ...          zh="近{w}个月最高资产", sources=("aum",), window="per_window")
    ... def aum_max(h, w):
    ...     return h.aum[:, :w].max(axis=1)
    >>> _ = unregister("aum_max_{w}m")
    """

    def declare(compute: Compute) -> Compute:
        register(
            Declaration(
                name, family, unit, en, zh, tuple(sources), window, compute, log_scale, any_source
            )
        )
        return compute

    return declare


def is_log_scale(name: str) -> bool:
    """Whether a feature is heavy-tailed enough to cluster and profile on ``log1p``.

    Answers for every window, not only the default ones: ``aum_avg_9m`` is on a log scale
    like ``aum_avg_6m`` (a per-window declaration's ``{w}`` matches any number of months).
    False for a name no declaration makes.
    """
    if not isinstance(name, str):  # positional columns of an array input
        return False
    if name in _LOG_SCALE:
        return True
    return any(
        d.on_log_scale and re.fullmatch(re.escape(d.name).replace(r"\{w\}", r"\d+"), name)
        for d in _DECLARATIONS
        if d.window == PER_WINDOW
    )


def describe(name: str) -> FeatureSpec | None:
    """The catalogue entry of a feature, whatever window its name holds (``aum_avg_2m``
    with windows ``[2, 3]``), or None for a name no declaration makes.

    :data:`FEATURE_CATALOGUE` holds the default windows only; this also reads a
    per-window declaration's ``{w}`` as any number of months. Answers are kept until the
    declarations change, so a caller may ask once per row.
    """
    if name in FEATURE_CATALOGUE:
        return FEATURE_CATALOGUE[name]
    if name not in _DESCRIBED:
        found = None
        for d in _DECLARATIONS:
            if d.window != PER_WINDOW:
                continue
            m = re.fullmatch(re.escape(d.name).replace(r"\{w\}", r"(\d+)"), str(name))
            if m:
                found = d.spec(int(m.group(1)))
                break
        _DESCRIBED[name] = found
    return _DESCRIBED[name]


def feature_spec(name: str, windows: Sequence[int] = DEFAULT_WINDOWS) -> FeatureSpec:
    """The catalogue entry of a feature (for the given windows).

    Raises
    ------
    ConfigError
        When no feature has that name for those windows.
    """
    specs = {s.name: s for s in catalogue(windows)}
    if name not in specs:
        raise ConfigError([Violation(name, "is not a feature in the catalogue")])
    return specs[name]


def catalogue_frame(windows: Sequence[int] = DEFAULT_WINDOWS) -> pd.DataFrame:
    """The catalogue as a table (one row per feature: the fields of :class:`FeatureSpec`).

    Parameters
    ----------
    windows : sequence of int, default (3, 6, 12)
        The feature windows in months; per-window features get one row per window.

    Returns
    -------
    DataFrame
        ``name``, ``family``, ``unit``, ``window``, ``en``, ``zh`` (the texts), ``sources``.
    """
    return pd.DataFrame([vars(s) for s in catalogue(windows)])
