"""Tier ladders: tiers with their thresholds, near-tier bands, the basis and hysteresis.

A ladder is data (YAML): tiers with a threshold each on the ladder's basis, optionally
reachable by other criteria too (any-of, e.g. CCB's loans or card spend), near-tier bands
just under a threshold (in the basis unit, or as a share of the threshold), and an optional
hysteresis rule (upgrade at once, downgrade only after N consecutive months below, with a
watch status in between). The basis is AUM (``kind: aum``, the month or an average of the
last N months), a points score (``kind: points``, a star rating) or an accumulated points
balance (``kind: growth``, member growth), see :mod:`segments.core.tiers.points`.
:func:`load_ladder` reads one (a packaged name, a YAML file or a mapping) and validates it,
listing every problem at once; :mod:`segments.core.tiers.assign` assigns its tiers to a panel.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from segments.core.config.checks import is_number, is_pos_int
from segments.core.config.presets import FROM_LADDER, load_preset
from segments.core.data.panel import AUM, NUMERIC_COLUMNS
from segments.core.tiers.hysteresis import Hysteresis, parse_hysteresis
from segments.core.tiers.points import AGGS, KINDS, POINTS_UNIT, Component, parse_components
from segments.exceptions import ConfigError, Violation

__all__ = [
    "Criterion",
    "Hysteresis",
    "Ladder",
    "NearBand",
    "Tier",
    "load_ladder",
]


@dataclass(frozen=True)
class Criterion:
    """An alternative way to qualify for a tier: ``agg`` of ``column`` over ``window`` >= ``min``.

    Parameters
    ----------
    column : str
        A numeric contract column, e.g. ``loan_balance`` or ``card_spend``.
    min : float
        The threshold, in the column's unit.
    agg : {"mean", "sum", "last", "max"}, default "mean"
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
    """One rung of a ladder: reached when the basis >= ``threshold`` or any criterion holds.

    ``threshold`` is in the ladder's basis unit (YAML ``min_aum`` on an AUM ladder,
    ``min_points`` on a points or growth ladder).
    """

    name: str
    threshold: float
    label_zh: str = ""
    any_of: tuple[Criterion, ...] = ()

    @property
    def min_aum(self) -> float:
        """The threshold (the name AUM ladders give it)."""
        return self.threshold


@dataclass(frozen=True)
class NearBand:
    """Customers with ``lower`` <= basis < the threshold of ``tier``, below that tier
    (``ratio``: ``lower`` was given as this share of the threshold)."""

    name: str
    tier: str
    lower: float
    ratio: float | None = None


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
    kind : {"aum", "points", "growth"}, default "aum"
        What the basis is: AUM, a points score, or an accumulated points balance.
    components : tuple of Component, default ()
        The points components (``points``) or activities (``growth``).
    expiry_months : int or None, default None
        Growth ladders: points expire this many months after the month they were earned.
    decay : float or None, default None
        Growth ladders: the share of the balance lost each month (instead of expiry).
    """

    name: str
    tiers: tuple[Tier, ...]
    near_bands: tuple[NearBand, ...] = ()
    basis_window: int = 1
    hysteresis: Hysteresis | None = None
    currency: str = "CNY"
    description: str = ""
    kind: str = "aum"
    components: tuple[Component, ...] = ()
    expiry_months: int | None = None
    decay: float | None = None

    @property
    def tier_names(self) -> list[str]:
        """Tier names, lowest first."""
        return [t.name for t in self.tiers]

    @property
    def thresholds(self) -> np.ndarray:
        """Thresholds of the tiers in the basis unit, lowest first."""
        return np.array([t.threshold for t in self.tiers], dtype="float64")

    @property
    def basis_unit(self) -> str:
        """The unit of the basis and thresholds: the currency, or ``points``."""
        return self.currency if self.kind == "aum" else POINTS_UNIT

    @property
    def columns(self) -> tuple[str, ...]:
        """The panel columns the ladder reads: ``aum``, any criterion's and component's."""
        named = [c.column for t in self.tiers for c in t.any_of]
        return tuple(dict.fromkeys([AUM, *named, *(c.column for c in self.components)]))

    @property
    def points_columns(self) -> list[str]:
        """The tier table's per-component points columns (empty on an AUM ladder)."""
        return [c.feature for c in self.components]

    @property
    def windows(self) -> list[int]:
        """Months each part of the basis reads back (the basis or components, criteria)."""
        basis = [self.basis_window] if self.kind == "aum" else [w for _, w in self._basis_windows()]
        return [*basis, *(c.window for t in self.tiers for c in t.any_of)]

    @property
    def months_needed(self) -> int | None:
        """Months up to a month that its tier, status and change depend on: the longest
        window, plus the month before (for the change). None with hysteresis or a decaying
        balance: a tier can depend on every month before."""
        if self.hysteresis is not None or self.decay is not None:
            return None
        return max(self.windows, default=1) + 1

    def history_problems(self, n_months: int) -> list[Violation]:
        """The basis windows longer than ``n_months`` of history: a points component's
        window or a growth ladder's expiry (an AUM ladder's windows average what there is).
        """
        return [
            Violation(where, f"is {w} months; the panel holds {n_months}")
            for where, w in self._basis_windows()
            if w > n_months
        ]

    @property
    def warmup_months(self) -> int:
        """Months of history a basis needs before it is whole: the longest points window
        or growth expiry, less one (0 on an AUM ladder, whose averages need no warm-up)."""
        return max((w for _, w in self._basis_windows()), default=1) - 1

    def _basis_windows(self) -> list[tuple[str, int]]:
        """(YAML key, months) of a points or growth basis (none on an AUM ladder)."""
        if self.kind == "growth":
            return [("ladder.expiry_months", self.expiry_months)] if self.expiry_months else []
        return [(f"ladder.components[{i}].window", c.window) for i, c in enumerate(self.components)]

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
        kind = data.get("kind", "aum")
        if kind not in KINDS:
            problems.append(Violation("ladder.kind", f"is {kind!r}; expected one of {KINDS}"))
            kind = "aum"
        known = {"name", "tiers", "near_bands", "hysteresis", "currency", "description", "kind"}
        known |= _KIND_KEYS[kind]
        for key in data:
            if key not in known:
                why = "is not a known ladder key"
                if any(key in keys for keys in _KIND_KEYS.values()):
                    why = f"is not used by a {kind} ladder"
                problems.append(Violation(f"ladder.{key}", why, hint=f"known: {sorted(known)}"))
        name = str(data.get("name") or source or "ladder")
        tiers = _parse_tiers(data.get("tiers"), problems, _THRESHOLD_KEY[kind])
        names = [t.name for t in tiers]
        bands = _parse_bands(data.get("near_bands") or [], tiers, problems)
        basis_window = data.get("basis_window", 1)
        if not is_pos_int(basis_window):
            problems.append(
                Violation(
                    "ladder.basis_window", f"is {basis_window!r}; expected a whole number >= 1"
                )
            )
            basis_window = 1
        components, expiry, decay = _parse_basis(kind, data, problems)
        hyst = parse_hysteresis(data.get("hysteresis"), problems)
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
            kind=kind,
            components=tuple(components),
            expiry_months=expiry,
            decay=decay,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` reads back (for logging and YAML)."""
        key = _THRESHOLD_KEY[self.kind]
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "currency": self.currency,
        }
        if self.kind == "aum":
            out["basis_window"] = self.basis_window
        else:
            parts = [
                {k: v for k, v in vars(c).items() if v not in ("", None)} for c in self.components
            ]
            if self.kind == "growth":
                for part in parts:
                    part.pop("agg", None), part.pop("window", None)
                out["activities"] = parts
                out.update(
                    {"expiry_months": self.expiry_months}
                    if self.decay is None
                    else {"decay": self.decay}
                )
            else:
                out["components"] = parts
        out["tiers"] = [
            {
                "name": t.name,
                "label_zh": t.label_zh,
                key: t.threshold,
                **({"any_of": [vars(c) for c in t.any_of]} if t.any_of else {}),
            }
            for t in self.tiers
        ]
        out["near_bands"] = [
            {
                "name": b.name,
                "tier": b.tier,
                **({"ratio": b.ratio} if b.ratio is not None else {"lower": b.lower}),
            }
            for b in self.near_bands
        ]
        out["hysteresis"] = vars(self.hysteresis) if self.hysteresis else None
        return out


#: The keys each kind of ladder has beyond the common ones.
_KIND_KEYS: dict[str, set[str]] = {
    "aum": {"basis_window"},
    "points": {"components"},
    "growth": {"activities", "expiry_months", "decay"},
}
#: The tier threshold's key in YAML, by kind.
_THRESHOLD_KEY = {"aum": "min_aum", "points": "min_points", "growth": "min_points"}


def _parse_basis(
    kind: str, data: Mapping[str, Any], problems: list[Violation]
) -> tuple[list[Component], int | None, float | None]:
    """A points or growth ladder's components, expiry and decay (nothing for AUM)."""
    if kind == "aum":
        return [], None, None
    if kind == "points":
        return parse_components(data.get("components"), "components", problems), None, None
    comps = parse_components(data.get("activities"), "activities", problems, monthly=True)
    expiry, decay = data.get("expiry_months"), data.get("decay")
    if (expiry is None) == (decay is None):
        problems.append(
            Violation(
                "ladder.expiry_months",
                "a growth ladder needs exactly one of expiry_months and decay",
                hint="expiry_months: 12 (points expire after a year) or decay: 0.05 (5% a month)",
            )
        )
        return comps, None, None
    if expiry is not None and not is_pos_int(expiry):
        problems.append(
            Violation("ladder.expiry_months", f"is {expiry!r}; expected whole months >= 1")
        )
    if decay is not None and not (is_number(decay) and 0 < decay < 1):
        problems.append(Violation("ladder.decay", f"is {decay!r}; expected a share in (0, 1)"))
    return comps, expiry, None if decay is None else float(decay)


def _parse_tiers(raw: Any, problems: list[Violation], key: str = "min_aum") -> list[Tier]:
    """The ladder's tiers, lowest first (thresholds under ``key``); every problem appended
    to ``problems``."""
    if not isinstance(raw, list) or not raw:
        problems.append(Violation("ladder.tiers", "must be a non-empty list of tiers"))
        return []
    unit = "money" if key == "min_aum" else "points"
    tiers: list[Tier] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"ladder.tiers[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Violation(where, f"must be a mapping with name and {key}"))
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problems.append(Violation(f"{where}.name", "must be a non-empty string"))
            name = f"tier_{i}"
        if name in seen:
            problems.append(Violation(f"{where}.name", f"{name!r} is used twice"))
        seen.add(name)
        threshold = item.get(key)
        if not is_number(threshold) or threshold < 0:
            problems.append(Violation(f"{where}.{key}", f"is {threshold!r}; expected {unit} >= 0"))
            threshold = 0.0
        criteria = [
            _parse_criterion(crit, f"{where}.any_of[{j}]", problems)
            for j, crit in enumerate(item.get("any_of") or [])
        ]
        unknown = set(item) - {"name", key, "label_zh", "any_of"}
        for k in sorted(unknown):
            hint = f"this ladder's thresholds are {key}" if k in _THRESHOLD_KEY.values() else None
            problems.append(Violation(f"{where}.{k}", "is not a known tier key", hint=hint))
        tiers.append(
            Tier(
                name, float(threshold), str(item.get("label_zh", "")), tuple(filter(None, criteria))
            )
        )
    if tiers and tiers[0].threshold != 0:
        problems.append(
            Violation(
                f"ladder.tiers[0].{key}",
                f"is {tiers[0].threshold:g}; the lowest tier must start at 0",
            )
        )
    mins = [t.threshold for t in tiers]
    if any(b <= a for a, b in itertools.pairwise(mins)):
        problems.append(Violation("ladder.tiers", f"{key} must increase strictly, got {mins}"))
    return tiers


def _parse_criterion(crit: Any, cw: str, problems: list[Violation]) -> Criterion | None:
    """One any-of criterion (None when it is not a mapping)."""
    if not isinstance(crit, Mapping):
        problems.append(Violation(cw, "must be a mapping {column, min, agg, window}"))
        return None
    col, cmin = crit.get("column"), crit.get("min")
    agg, window = crit.get("agg", "mean"), crit.get("window", 1)
    if col not in NUMERIC_COLUMNS or col == AUM:
        problems.append(
            Violation(
                f"{cw}.column",
                f"is {col!r}; expected a numeric contract column other than aum",
            )
        )
    if not is_number(cmin) or cmin <= 0:
        problems.append(Violation(f"{cw}.min", f"is {cmin!r}; expected a number > 0"))
    if agg not in AGGS:
        problems.append(Violation(f"{cw}.agg", f"is {agg!r}; expected one of {AGGS}"))
    if not is_pos_int(window):
        problems.append(Violation(f"{cw}.window", f"is {window!r}; expected >= 1"))
    return Criterion(str(col), float(cmin or 0), str(agg), int(window or 1))


def _parse_bands(raw: Any, tiers: list[Tier], problems: list[Violation]) -> list[NearBand]:
    """The near-tier bands, each under a tier above the lowest, none overlapping: ``lower``
    in the basis unit or ``ratio``, a share of the tier's threshold."""
    if not isinstance(raw, list):
        problems.append(Violation("ladder.near_bands", "must be a list"))
        return []
    by_name = {t.name: t for t in tiers}
    bands: list[NearBand] = []
    for i, item in enumerate(raw):
        where = f"ladder.near_bands[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Violation(where, "must be a mapping {name, tier, lower or ratio}"))
            continue
        name, tier = item.get("name"), item.get("tier")
        lower, ratio = item.get("lower"), item.get("ratio")
        for k in sorted(set(item) - {"name", "tier", "lower", "ratio"}):
            problems.append(Violation(f"{where}.{k}", "is not a known near-band key"))
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
        top = by_name[tier].threshold
        if (lower is None) == (ratio is None):
            problems.append(Violation(where, "needs exactly one of lower and ratio"))
            continue
        if ratio is not None:
            if not is_number(ratio) or not 0 <= ratio < 1:
                problems.append(
                    Violation(f"{where}.ratio", f"is {ratio!r}; expected a share in [0, 1)")
                )
                continue
            lower = round(ratio * top, 9)  # 0.9 x 110 is 99, not 99.00000000000001
        elif not is_number(lower) or not 0 <= lower < top:
            problems.append(
                Violation(f"{where}.lower", f"is {lower!r}; expected a value in [0, {top:g})")
            )
            continue
        bands.append(NearBand(str(name), str(tier), float(lower), ratio))
    spans = sorted((b.lower, by_name[b.tier].threshold, b.name) for b in bands)
    for (_, hi, a), (lo, _, b) in itertools.pairwise(spans):
        if lo < hi:
            problems.append(Violation("ladder.near_bands", f"bands {a!r} and {b!r} overlap"))
    return bands


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
        ``cmb``, ``ccb``, ``spdb``, ``bos`` (AUM), ``stars7`` (points), ``member_growth``
        (growth), a path to a ladder YAML, or the ladder as data.
    basis_window : int, optional
        Override the months averaged for the AUM basis (AUM ladders only).
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
        if not is_pos_int(basis_window):
            raise ConfigError(
                [
                    Violation(
                        "tiers.basis_window", f"is {basis_window!r}; expected a whole number >= 1"
                    )
                ]
            )
        if ladder.kind != "aum":
            raise ConfigError(
                [
                    Violation(
                        "tiers.basis_window",
                        f"applies to AUM ladders; {ladder.name} is a {ladder.kind} ladder "
                        "(each component has its own window)",
                    )
                ]
            )
        ladder = replace(ladder, basis_window=int(basis_window))
    if not (isinstance(hysteresis, str) and hysteresis == FROM_LADDER):
        rule = parse_hysteresis(hysteresis, problems)
        if problems:
            raise ConfigError(problems)
        ladder = replace(ladder, hysteresis=rule)
    return ladder
