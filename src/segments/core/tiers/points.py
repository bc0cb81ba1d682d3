"""Points ladders: a score per customer-month from weighted, capped components.

Besides AUM, banks and platforms tier on points:

* **points (star) ladders** (``kind: points``, e.g. a seven-star rating): each component
  turns one panel column, combined over a window of months, into points,
  ``min(cap, points x floor(value / per))``; the score is their sum;
* **growth (accumulation) ladders** (``kind: growth``, e.g. member growth): activities earn
  points each month the same way (capped per month); the balance is what was earned over
  the last ``expiry_months`` months (older points expire), or decays by ``decay`` a month.

The score or balance is the ladder's basis (the tier table's ``aum_basis``, in points);
each component's share of it is the tier table's ``points_<name>`` column, the upgrade
model's view of "which component is closest to adding points". :class:`Component` is one
rule, :func:`parse_components` reads them from YAML (every problem named) and
:func:`component_points` computes them on a customer x month grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from segments.core.config.checks import is_number, is_pos_int
from segments.core.data.panel import NUMERIC_COLUMNS
from segments.exceptions import Violation

__all__ = [
    "KINDS",
    "POINTS_PREFIX",
    "POINTS_UNIT",
    "Component",
    "component_points",
    "parse_components",
    "window_agg",
]

#: What a ladder tiers on: AUM (money), a points score, or an accumulated points balance.
KINDS = ("aum", "points", "growth")
#: The basis unit of points and growth ladders.
POINTS_UNIT = "points"
#: A component's points in the tier table (and among the upgrade model's features).
POINTS_PREFIX = "points_"
#: How the months of a window are combined (components and any-of criteria).
AGGS = ("mean", "sum", "last", "max")
#: Floor with a tolerance, so that 0.3 / 0.1 makes 3 steps, not 2.
_EPS = 1e-9


@dataclass(frozen=True)
class Component:
    """One way to earn points: ``min(cap, points x floor(value / per))``.

    Parameters
    ----------
    name : str
        Short name; the tier table's column is ``points_<name>``.
    column : str
        A numeric contract column, e.g. ``n_products`` or ``app_logins``.
    points : float
        Points per step (a weight >= 0).
    per : float, default 1
        The step, in the column's unit: 10,000 CNY, 1 product, 12 months of tenure.
    cap : float or None, default None
        Most points the component gives (a points ladder), or earns in a month (a growth
        ladder); None for no cap.
    agg : {"last", "mean", "sum", "max"}, default "last"
        How a points ladder combines the months of ``window`` (growth ladders read each
        month on its own).
    window : int, default 1
        Calendar months ending at the scored month; missing months are skipped.
    unit, unit_zh : str, default ""
        The column's unit in a reason code ("products", "个产品").
    label_zh : str, default ""
    """

    name: str
    column: str
    points: float
    per: float = 1.0
    cap: float | None = None
    agg: str = "last"
    window: int = 1
    unit: str = ""
    unit_zh: str = ""
    label_zh: str = ""

    @property
    def feature(self) -> str:
        """The tier table's column of this component's points."""
        return POINTS_PREFIX + self.name

    def score(self, values: np.ndarray) -> np.ndarray:
        """Points for values of the column (missing or negative values earn none)."""
        pts = np.fmax(np.asarray(values, dtype="float64"), 0.0)  # a new array; NaN -> 0
        pts /= self.per
        pts += _EPS
        np.floor(pts, out=pts)
        pts *= self.points
        if self.cap is not None:
            np.minimum(pts, self.cap, out=pts)
        return pts

    def more(self, points_now: float, gap: float) -> tuple[float, float] | None:
        """How much more of the column adds points towards a gap: ``(more, added)``.

        The steps that close ``gap`` (at least one), as far as the cap allows; None when
        the component is at its cap or gives no points. On a growth ladder ``points_now``
        is taken as this month's points, so the cap is the month's.
        """
        if self.points <= 0:
            return None
        room = math.inf if self.cap is None else self.cap - max(points_now, 0.0)
        if room <= 0:
            return None
        steps = max(1, math.ceil(gap / self.points - _EPS)) if gap > 0 else 1
        steps = min(steps, max(1, math.ceil(room / self.points - _EPS)))
        return steps * self.per, min(steps * self.points, room)


_KEYS = ("name", "column", "points", "per", "cap", "agg", "window", "unit", "unit_zh", "label_zh")


def parse_components(
    raw: Any, key: str, problems: list[Violation], *, monthly: bool = False
) -> list[Component]:
    """A ladder's components from YAML, every problem appended to ``problems``.

    Parameters
    ----------
    raw : list of mapping
        ``{name, column, points, per, cap, agg, window, unit, unit_zh, label_zh}`` each.
    key : {"components", "activities"}
        The YAML key, for the problems' names.
    problems : list of Violation
    monthly : bool, default False
        A growth ladder's activities: each month counts alone (no ``agg`` or ``window``).

    Returns
    -------
    list of Component
    """
    where0 = f"ladder.{key}"
    if not isinstance(raw, list) or not raw:
        problems.append(Violation(where0, "must be a non-empty list of {name, column, points}"))
        return []
    out: list[Component] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"{where0}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Violation(where, "must be a mapping {name, column, points, ...}"))
            continue
        known = [k for k in _KEYS if not (monthly and k in ("agg", "window"))]
        for k in sorted(set(item) - set(known)):
            why = "is not used by growth ladders (activities count each month)" if monthly else ""
            problems.append(
                Violation(f"{where}.{k}", why or "is not a known key", hint=f"known: {known}")
            )
        name, column = item.get("name"), item.get("column")
        if not isinstance(name, str) or not name.isidentifier():
            problems.append(Violation(f"{where}.name", f"is {name!r}; expected a short name"))
            name = f"c{i}"
        if name in seen:
            problems.append(Violation(f"{where}.name", f"{name!r} is used twice"))
        seen.add(name)
        if column not in NUMERIC_COLUMNS:
            problems.append(
                Violation(
                    f"{where}.column",
                    f"is {column!r}; expected a numeric contract column",
                    hint="e.g. aum, loan_balance, n_products, tenure_months, app_logins",
                )
            )
        pts, per, cap = item.get("points"), item.get("per", 1), item.get("cap")
        agg, window = item.get("agg", "last"), item.get("window", 1)
        if not is_number(pts) or pts < 0:
            problems.append(Violation(f"{where}.points", f"is {pts!r}; expected a weight >= 0"))
            pts = 0
        if not is_number(per) or per <= 0:
            problems.append(Violation(f"{where}.per", f"is {per!r}; expected a step > 0"))
            per = 1
        if cap is not None and (not is_number(cap) or cap < 0):
            problems.append(Violation(f"{where}.cap", f"is {cap!r}; expected points >= 0"))
            cap = None
        if agg not in AGGS:
            problems.append(Violation(f"{where}.agg", f"is {agg!r}; expected one of {AGGS}"))
            agg = "last"
        if not is_pos_int(window):
            problems.append(Violation(f"{where}.window", f"is {window!r}; expected months >= 1"))
            window = 1
        text = {k: str(item.get(k, "")) for k in ("unit", "unit_zh", "label_zh")}
        cap = None if cap is None else float(cap)
        out.append(
            Component(name, str(column), float(pts), float(per), cap, str(agg), int(window), **text)
        )
    return out


def window_agg(grid: np.ndarray, window: int, agg: str) -> np.ndarray:
    """Combine each cell with the ``window - 1`` calendar months before it, skipping NaN.

    Parameters
    ----------
    grid : ndarray, customers x months
        NaN where a customer has no row.
    window : int
        Months, ending at each cell's month; a window longer than the history combines what
        there is.
    agg : {"mean", "sum", "last", "max"}

    Returns
    -------
    ndarray
        Same shape; NaN where the window holds no value. ``last`` and one-month windows
        return ``grid`` itself.
    """
    if agg == "last" or window == 1:
        return grid
    if agg == "max":
        out = np.full(grid.shape, -np.inf)
        for lag in range(min(window, grid.shape[1])):
            shifted = grid[:, : grid.shape[1] - lag] if lag else grid
            out[:, lag:] = np.fmax(out[:, lag:], shifted)
        out[np.isneginf(out)] = np.nan
        return out
    present = ~np.isnan(grid)
    filled = np.where(present, grid, 0.0)
    total = filled.copy()
    count = present.astype(np.int32)
    n = grid.shape[1]
    for lag in range(1, min(window, n)):
        total[:, lag:] += filled[:, : n - lag]
        count[:, lag:] += present[:, : n - lag]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count if agg == "mean" else total
    out[count == 0] = np.nan
    return out


def component_points(
    components: Sequence[Component],
    grids: Mapping[str, np.ndarray],
    observed: np.ndarray,
    *,
    growth: bool = False,
    expiry_months: int | None = None,
    decay: float | None = None,
) -> dict[str, np.ndarray]:
    """Each component's points on a customer x month grid (NaN where not observed).

    Parameters
    ----------
    components : sequence of Component
    grids : mapping of column to ndarray
        Each component's column as a customer x month grid (NaN: no row).
    observed : ndarray of bool
        Where a customer has a row.
    growth : bool, default False
        A growth ladder: points earned each month, accumulated over ``expiry_months`` or
        decayed by ``decay`` (exactly one is set). A month without a row earns nothing.
    """
    out: dict[str, np.ndarray] = {}
    for comp in components:
        grid = grids[comp.column]
        if not growth:
            pts = comp.score(window_agg(grid, comp.window, comp.agg))
        else:
            earned = np.where(observed, comp.score(grid), 0.0)
            if decay is not None:
                pts = np.empty_like(earned)
                balance = np.zeros(earned.shape[0])
                for t in range(earned.shape[1]):
                    balance = balance * (1.0 - decay) + earned[:, t]
                    pts[:, t] = balance
            else:
                assert expiry_months is not None
                csum = np.cumsum(earned, axis=1)
                pts = csum.copy()
                pts[:, expiry_months:] -= csum[:, :-expiry_months]
                pts = np.round(pts, 6)  # the running sums' float residue
        pts[~observed] = np.nan
        out[comp.feature] = pts
    return out
