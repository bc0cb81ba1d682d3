"""Build the feature table: every declared feature the panel has the columns for."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from segments.core.data.panel import AUM, AUM_COMPONENTS, ID, MONTH, PanelConfig
from segments.core.data.validation import typed_own_columns
from segments.core.features.history import History
from segments.core.features.own import active_columns, missing_columns
from segments.core.features.registry import (
    DEFAULT_WINDOWS,
    Declaration,
    FeatureSpec,
    declarations,
    plan,
)
from segments.exceptions import ConfigError, PanelValidationError, SegmentsWarning, Violation

__all__ = [
    "beyond_history",
    "build_features",
    "check_as_of",
    "check_history",
    "check_windows",
    "feature_columns",
]


def check_windows(windows: Sequence[int]) -> tuple[int, ...]:
    """The feature windows as built: sorted, each once. Nothing is added: a feature whose
    own window is longer than the longest of them (the 6-month trend with windows
    ``[2, 3, 4]``) is not built (:func:`~segments.core.features.registry.not_built`).

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
    return ws


def beyond_history(
    windows: Sequence[int], history: int, month: str | pd.Period
) -> tuple[list[str], list[str]]:
    """The features a run leaves out when the panel holds ``history`` months up to its
    (last) as-of ``month``, and notes saying so, for the run to report.

    A feature whose window is longer than the history would summarise fewer months than
    its name says, or be empty in every row (a growth over 12 months with 8 months of
    history), and then show as drift once scoring has the months: it is not built. The
    features over all the history held (``months_observed``) stay. The features' names
    stay those of the configured windows, the contract the models are checked against. A
    change over ``w`` months reads ``w + 1`` months: with exactly ``w`` months of history
    it is kept but empty, which the models ignore and the drift reference skips.

    Parameters
    ----------
    windows : sequence of int
        The configured feature windows (``features.windows``).
    history : int
        Months the panel holds up to ``month``.
    month : str or Period
        The (last) as-of month of the run.

    Returns
    -------
    names : list of str
        The features left out, in catalogue order.
    notes : list of str
        What is left out and why (empty when nothing is).

    Raises
    ------
    ConfigError
        When not even the shortest window fits in the history.
    """
    from segments.core.features.registry import HISTORY, not_built

    ws = check_windows(windows)
    if history < min(ws):
        raise ConfigError(
            [
                Violation(
                    "--as-of",
                    f"{month}: the panel has {history} month(s) up to it, fewer than the "
                    f"shortest feature window ({min(ws)} months)",
                    hint="train on a later month, or set shorter features.windows",
                )
            ]
        )
    names = [s.name for d, s in plan(ws) if d.window != HISTORY and s.window > history]
    notes = []
    if names:
        notes.append(
            f"{len(names)} feature(s) have a window longer than the {history} month(s) of "
            f"history up to {month} and are not built: {', '.join(names)}"
        )
    lost = not_built(ws)
    if lost:
        notes.append(
            f"features.windows {list(ws)}: {len(lost)} feature(s) need more months than the "
            f"longest window and are not built: {', '.join(lost)}"
        )
    return names, notes


def check_history(
    panel: pd.DataFrame | Sequence[pd.Period],
    month: pd.Period,
    windows: tuple[int, ...],
) -> list[str]:
    """The features a run as of ``month`` leaves out because the panel's history up to it
    is shorter than their window (:func:`beyond_history`); what is left out is reported
    as a :class:`~segments.exceptions.SegmentsWarning`.

    History is the number of months the panel (a frame, or its distinct months) holds up
    to ``month``, as scoring counts it.

    Raises
    ------
    ConfigError
        Naming ``--as-of``, the month and the history it has, when no window fits.
    """
    months = panel[MONTH].drop_duplicates() if isinstance(panel, pd.DataFrame) else panel
    history = sum(1 for m in months if m <= month)
    if history == 0:  # not a month of the panel: check_as_of names it
        return []
    names, notes = beyond_history(windows, history, month)
    for note in notes:
        warnings.warn(SegmentsWarning(note), stacklevel=2)
    return names


def feature_columns(
    available: Sequence[str], panel: PanelConfig | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """The input columns a feature table reads (the bank's names), in the input's order.

    The id, the month, ``aum`` and its components (to derive or check it), every declared
    feature's sources (the bank's own columns declared in ``features.columns`` too, while
    registered: :func:`~segments.core.features.own.own_features`), and ``extra``
    (contract names, e.g. a ladder's columns). Other columns are not read.

    Parameters
    ----------
    available : sequence of str
        The input's columns.
    panel : PanelConfig, optional
        The column map (the bank's names).
    extra : sequence of str, default ()

    Raises
    ------
    PanelValidationError
        A declared own column is not among ``available`` (before any row is read).
    """
    missing = missing_columns(available)
    if missing:
        raise PanelValidationError(missing)
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


def _own_typed(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with the declared own columns typed as validation types them (a panel
    validated before they were declared has them as read).

    Raises
    ------
    PanelValidationError
        A declared own column is missing, or holds values its kind does not allow.
    """
    if not active_columns():
        return rows
    rows = rows.copy(deep=False)
    errors: list[Violation] = []
    typed_own_columns(rows, rows[ID], errors)
    if errors:
        raise PanelValidationError(errors)
    return rows


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
    rows = _own_typed(rows)
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
