"""Build the feature table: every declared feature the panel has the columns for."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from segments.core.data.panel import AUM, AUM_COMPONENTS, ID, MONTH, PanelConfig
from segments.core.features.history import History
from segments.core.features.registry import (
    DEFAULT_WINDOWS,
    Declaration,
    FeatureSpec,
    declarations,
    plan,
)
from segments.exceptions import ConfigError, PanelValidationError, Violation

__all__ = ["build_features", "check_as_of", "check_windows", "feature_columns"]


def check_windows(windows: Sequence[int]) -> tuple[int, ...]:
    """The feature windows as built: sorted, each once, and the longest at least as long as
    any fixed-window feature's window (6 months for the catalogue as shipped; the window is
    added when shorter), so that every feature sees the months its window names.

    Raises
    ------
    ConfigError
        When a window is not a whole number >= 2, or there is none.
    """
    ws = tuple(sorted(set(windows)))
    if not ws or any(not isinstance(w, int) or isinstance(w, bool) or w < 2 for w in ws):
        raise ConfigError(
            [Violation("features.windows", f"is {list(windows)!r}; expected whole numbers >= 2")]
        )
    need = max((d.window for d in declarations() if isinstance(d.window, int)), default=1)
    if max(ws) < need:
        ws = (*ws, need)  # e.g. the 6-month trend and channel features need 6 months
    return ws


def feature_columns(
    available: Sequence[str], panel: PanelConfig | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """The input columns a feature table reads (the bank's names), in the input's order.

    The id, the month, ``aum`` and its components (to derive or check it), every declared
    feature's sources, and ``extra`` (contract names, e.g. a ladder's columns). Columns
    outside the data contract are not read.

    Parameters
    ----------
    available : sequence of str
        The input's columns.
    panel : PanelConfig, optional
        The column map (the bank's names).
    extra : sequence of str, default ()
    """
    panel = panel or PanelConfig()
    needed = {ID, MONTH, AUM, *AUM_COMPONENTS, *extra}
    needed.update(c for d in declarations() for c in d.sources)
    wanted = {panel.source_name(c) for c in needed}
    return [c for c in available if c in wanted]


def check_as_of(months: Sequence[pd.Period], as_of: pd.Period, source: str = "") -> None:
    """Refuse an as-of month nobody is in, from a panel's distinct months alone (before any
    row is read), with the error :func:`build_features` gives on the rows.

    Raises
    ------
    PanelValidationError
        The month is before the panel's first (no rows at or before it) or not in it.
    """
    if not months or as_of in set(months):
        return
    first, last = min(months), max(months)
    problem = (
        f"has no rows at or before {as_of}" if as_of < first else f"has no customer in {as_of}"
    )
    raise PanelValidationError(
        [Violation(MONTH, problem, hint=f"months present: {first} .. {last}")], source=source
    )


def _months_before(
    panel: pd.DataFrame, as_of: str | pd.Period | None, months: int
) -> tuple[pd.Period, pd.DataFrame, np.ndarray]:
    """The as-of month, the panel rows of the ``months`` months up to it and their lags."""
    if MONTH not in panel.columns or not isinstance(panel[MONTH].dtype, pd.PeriodDtype):
        raise PanelValidationError(
            [Violation(MONTH, "is not a monthly period", hint="run segments.validate_panel first")]
        )
    as_of = pd.Period(as_of, "M") if as_of is not None else panel[MONTH].max()
    lag = as_of.ordinal - panel[MONTH].array.asi8
    keep = (lag >= 0) & (lag < months)
    if not keep.any():
        raise PanelValidationError(
            [
                Violation(
                    MONTH,
                    f"has no rows at or before {as_of}",
                    hint=f"months present: {panel[MONTH].min()} .. {panel[MONTH].max()}",
                )
            ]
        )
    return as_of, panel.loc[keep], lag[keep]


def _compute(h: History, todo: list[tuple[Declaration, FeatureSpec]]) -> None:
    """Compute ``todo`` in order into ``h.computed``, dropping each column's grid after the
    last feature that reads it."""
    last_use: dict[str, int] = {}
    for i, (d, _) in enumerate(todo):
        last_use.update(dict.fromkeys(d.sources, i))
    for i, (d, spec) in enumerate(todo):
        h.computed[spec.name] = d.compute(h, spec.window)
        h.release({c for c, j in last_use.items() if j > i} | {AUM})


def build_features(
    panel: pd.DataFrame,
    as_of: str | pd.Period | None = None,
    *,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    active_only: bool = True,
) -> pd.DataFrame:
    """Behavioural features per customer as of a month, from months <= ``as_of`` only.

    Parameters
    ----------
    panel : DataFrame
        A validated panel (:func:`segments.validate_panel`).
    as_of : str or Period, optional
        The as-of month (``"2025-06"``); the panel's last month by default.
    windows : sequence of int, default (3, 6, 12)
        Windows in months for the windowed features (``aum_avg_{w}m``, ...).
    active_only : bool, default True
        Keep only customers with a row in the as-of month; otherwise every customer seen
        in the longest window.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``, one row per customer, with the features of the
        catalogue whose source columns the panel has (see :data:`FEATURE_CATALOGUE`), in
        catalogue order; ``attrs["as_of"]`` holds the month. Missing history gives NaN,
        never a guess.

    Raises
    ------
    PanelValidationError
        When the panel is not validated or has no rows at or before ``as_of``.

    Examples
    --------
    >>> from segments import make_bank, validate_panel, build_features
    >>> panel = validate_panel(make_bank(300, 12, seed=0)[0])
    >>> X = build_features(panel, "2024-09")
    >>> X.attrs["as_of"], "aum_avg_3m" in X.columns
    ('2024-09', True)
    """
    ws = check_windows(windows)
    as_of, rows, lag = _months_before(panel, as_of, max(ws) + 1)
    h = History(rows, lag, ws)
    _compute(h, [(d, s) for d, s in plan(ws) if d.available(rows.columns)])
    out = pd.DataFrame(h.computed, index=h.index)
    if active_only:
        at_as_of = np.zeros(h.n, dtype=bool)
        at_as_of[h.codes[lag == 0]] = True
        out = out.loc[at_as_of]
        if out.empty:
            raise PanelValidationError(
                [
                    Violation(
                        MONTH,
                        f"has no customer in {as_of}",
                        hint=f"months present: {panel[MONTH].min()} .. {panel[MONTH].max()}",
                    )
                ]
            )
    out = out.sort_index()
    out.attrs["as_of"] = str(as_of)
    out.attrs["windows"] = list(ws)
    return out
