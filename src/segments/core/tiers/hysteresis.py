"""Hysteresis: upgrade at once, downgrade only after N consecutive months below.

:class:`Hysteresis` is the rule (YAML ``hysteresis:`` of a ladder, or a preset such as
``ccb``), :func:`parse_hysteresis` reads it, :func:`apply_hysteresis` applies it to a
customer x month grid of qualifying tier ranks. The rule is the same on every kind of
ladder (AUM, points, growth).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from segments.core.config.checks import is_pos_int
from segments.core.config.presets import load_preset
from segments.exceptions import ConfigError, Violation

__all__ = ["Hysteresis", "apply_hysteresis", "parse_hysteresis"]

_DOWNGRADE_TO = ("qualifying", "highest_recent")


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


def parse_hysteresis(raw: Any, problems: list[Violation]) -> Hysteresis | None:
    """The downgrade rule (off, a preset name or a mapping), or None when off or invalid.

    Parameters
    ----------
    raw : None, False, "off", str or mapping
        The YAML value: off, a preset name (``ccb``) or ``{downgrade_after, watch_after,
        downgrade_to, lookback}``.
    problems : list of Violation
        Every problem found is appended (named by its key).

    Returns
    -------
    Hysteresis or None
    """
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
    if not is_pos_int(after):
        problems.append(Violation("hysteresis.downgrade_after", f"is {after!r}; expected >= 1"))
        ok = False
    if not is_pos_int(watch) or (ok and watch > after):
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
    if lookback is not None and (not is_pos_int(lookback) or (ok and lookback > after)):
        # A longer lookback could reach months before the streak below and undo the downgrade.
        problems.append(
            Violation(
                "hysteresis.lookback", f"is {lookback!r}; expected 1 <= lookback <= downgrade_after"
            )
        )
        ok = False
    return Hysteresis(after, watch, to, lookback) if ok else None


def apply_hysteresis(
    qual: np.ndarray, observed: np.ndarray, rule: Hysteresis | None
) -> tuple[np.ndarray, np.ndarray]:
    """Held tier rank and status code (0 active, 1 grace, 2 watch) per cell.

    Parameters
    ----------
    qual : ndarray of int, customers x months
        The rank each cell's basis (or an any-of criterion) qualifies for.
    observed : ndarray of bool, customers x months
        Where the customer has a row; months without one are skipped, not counted below.
    rule : Hysteresis or None
        None: the held tier is the qualifying one, every status active.

    Returns
    -------
    held, status : ndarray
        The rank held and the status code of every cell.
    """
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
