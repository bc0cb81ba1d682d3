"""Tier ladders: tiers with their thresholds, near-tier bands, the AUM basis and hysteresis.

A ladder is data (YAML): tiers with an AUM threshold each, optionally reachable by other
criteria too (any-of, e.g. CCB's loans or card spend), near-tier bands just under a
threshold, the AUM basis (the month, or an average of the last N months), and an optional
hysteresis rule (upgrade at once, downgrade only after N consecutive months below, with a
watch status in between). :func:`load_ladder` reads one (a packaged name, a YAML file or a
mapping) and validates it, listing every problem at once; :mod:`segments.core.tiers.assign`
assigns its tiers to a panel.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from segments.core.config.presets import FROM_LADDER, load_preset
from segments.core.data.panel import AUM, NUMERIC_COLUMNS
from segments.exceptions import ConfigError, Violation

__all__ = [
    "Criterion",
    "Hysteresis",
    "Ladder",
    "NearBand",
    "Tier",
    "load_ladder",
]

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

    @property
    def columns(self) -> tuple[str, ...]:
        """The panel columns the ladder reads: ``aum`` and any criterion's column."""
        named = [c.column for t in self.tiers for c in t.any_of]
        return tuple(dict.fromkeys([AUM, *named]))

    @property
    def months_needed(self) -> int | None:
        """Months up to a month that its tier, status and change depend on: the longest of
        the basis and criteria windows, plus the month before (for the change). None with
        hysteresis: a held tier can depend on every month before."""
        if self.hysteresis is not None:
            return None
        windows = [self.basis_window, *(c.window for t in self.tiers for c in t.any_of)]
        return max(windows) + 1

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
    """A whole number >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _parse_tiers(raw: Any, problems: list[Violation]) -> list[Tier]:
    """The ladder's tiers, lowest first; every problem appended to ``problems``."""
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
    """The near-tier bands, each under a tier above the lowest, none overlapping."""
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
    """The downgrade rule (off, a preset name or a mapping), or None when off or invalid."""
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
