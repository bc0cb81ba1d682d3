"""Checking ``features.columns`` (a bank's own columns declared as features) when the
configuration is loaded: each entry (:func:`column_fields`) and the entries together
(:func:`parse_columns`), every problem at once, each naming ``features.columns[i].<field>``.
The declarations themselves are :mod:`segments.core.features.own`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from segments.core.data.panel import CONTRACT_COLUMNS
from segments.core.features.own import (
    AGGREGATIONS,
    DEFAULT_AGGREGATIONS,
    KINDS,
    OWN_FAMILY,
    OwnColumn,
)
from segments.core.features.own_aggregations import OwnAggregate
from segments.core.features.registry import TIER_SPECS, UNITS, plan
from segments.exceptions import ConfigError, Violation

__all__ = ["column_fields", "parse_columns"]

#: The settings of an entry.
KEYS = ("column", "kind", "unit", "aggregations", "above", "order", "state", "en", "zh",
        "family", "name")  # fmt: skip
_WORD = re.compile(r"\w+")


def column_fields(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The fields of an :class:`~segments.core.features.own.OwnColumn` from one entry.

    Parameters
    ----------
    values : mapping
        One ``features.columns`` entry, as YAML gives it.
    where : str
        The setting it is (``features.columns[2]``), named in the errors.

    Raises
    ------
    ConfigError
        Every problem of the entry, each naming ``<where>.<field>``.
    """
    if not isinstance(values, Mapping):
        raise ConfigError([Violation(where, f"is {values!r}; expected a mapping")])
    problems = [
        Violation(f"{where}.{k}", "is not a known option", hint=f"known: {', '.join(KEYS)}")
        for k in values
        if k not in KEYS
    ]
    fields = _check_fields(values, where, problems)
    if problems:
        raise ConfigError(problems)
    return fields


def _text(values: Mapping[str, Any], key: str, where: str, problems: list[Violation]) -> str:
    """A required text setting, or "" with the problem noted."""
    value = values.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    what = "is missing" if value is None else f"is {value!r}"
    problems.append(Violation(f"{where}.{key}", f"{what}; expected text"))
    return ""


def _states(value: Any) -> tuple[str, ...] | None:
    """A state or a list of states as texts; None when it is neither."""
    items = value if isinstance(value, list | tuple) else [value]
    if not items or any(not isinstance(v, str | int | float) or isinstance(v, bool) for v in items):
        return None
    return tuple(str(v) for v in items)


def _check_fields(values: Mapping[str, Any], where: str, problems: list[Violation]) -> dict:
    """The fields of an :class:`OwnColumn` from its mapping; problems are appended."""
    column = _text(values, "column", where, problems)
    kind = values.get("kind", "numeric")
    if kind not in KINDS:
        problems.append(Violation(f"{where}.kind", f"is {kind!r}; expected one of {KINDS}"))
        kind = "numeric"
    en, zh = _text(values, "en", where, problems), _text(values, "zh", where, problems)
    family = values.get("family", OWN_FAMILY)
    if not isinstance(family, str) or not family:
        problems.append(Violation(f"{where}.family", f"is {family!r}; expected text"))
    name = values.get("name") or ""
    if name and (not isinstance(name, str) or not _WORD.fullmatch(name)):
        problems.append(
            Violation(f"{where}.name", f"is {name!r}; expected letters, digits and _ only")
        )
    elif not name and column and not _WORD.fullmatch(column):
        problems.append(
            Violation(f"{where}.column", f"is {column!r}, which cannot start a feature name",
                      hint="set `name:` to a stem of letters, digits and _ (e.g. card_bal)")
        )  # fmt: skip
    default_unit = "count" if kind == "numeric" else "category"
    unit = values.get("unit", default_unit)
    if unit not in UNITS or (kind != "numeric" and unit != "category"):
        allowed = UNITS if kind == "numeric" else ("category",)
        problems.append(
            Violation(
                f"{where}.unit", f"is {unit!r}; expected one of {allowed} for a {kind} column"
            )
        )
    aggs = _check_aggregations(values, kind, where, problems)
    above = _check_above(values, aggs, where, problems)
    order = _check_order(values, kind, where, problems)
    state = _check_state(values, kind, aggs, order, where, problems)
    return dict(column=column, kind=kind, en=en, zh=zh, unit=unit, aggregations=aggs,
                above=above, order=order, state=state, family=family, name=name)  # fmt: skip


def _check_aggregations(
    values: Mapping[str, Any], kind: str, where: str, problems: list[Violation]
) -> tuple[str, ...]:
    value = values.get("aggregations", list(DEFAULT_AGGREGATIONS[kind]))
    allowed = AGGREGATIONS[kind]
    if (
        not isinstance(value, list | tuple)
        or not value
        or any(a not in allowed for a in value)
        or len(set(value)) != len(value)
    ):
        problems.append(
            Violation(
                f"{where}.aggregations",
                f"is {value!r}; expected a list of distinct names of {allowed} for a {kind} column",
            )
        )
        return DEFAULT_AGGREGATIONS[kind]
    return tuple(sorted(value, key=allowed.index))


def _check_above(
    values: Mapping[str, Any], aggs: tuple[str, ...], where: str, problems: list[Violation]
) -> float | None:
    above = values.get("above")
    if "share_above" not in aggs:
        if above is not None:
            problems.append(Violation(f"{where}.above", "is set but share_above is not asked"))
        return None
    if not isinstance(above, int | float) or isinstance(above, bool):
        what = "is missing" if above is None else f"is {above!r}"
        problems.append(
            Violation(f"{where}.above", f"{what}; share_above needs the number to compare with")
        )
        return None
    return float(above)


def _check_order(
    values: Mapping[str, Any], kind: str, where: str, problems: list[Violation]
) -> tuple[str, ...]:
    order = values.get("order")
    if kind != "ordinal":
        if order is not None:
            problems.append(Violation(f"{where}.order", f"is set for a {kind} column"))
        return ()
    states = _states(order) if isinstance(order, list | tuple) else None
    if states is None or len(states) < 2 or len(set(states)) != len(states):
        what = "is missing" if order is None else f"is {order!r}"
        problems.append(
            Violation(
                f"{where}.order",
                f"{what}; an ordinal column needs its distinct states, best first",
            )
        )
        return ()
    return states


def _check_state(
    values: Mapping[str, Any],
    kind: str,
    aggs: tuple[str, ...],
    order: tuple[str, ...],
    where: str,
    problems: list[Violation],
) -> tuple[str, ...]:
    state = values.get("state")
    if "months_in" not in aggs:
        if state is not None:
            problems.append(Violation(f"{where}.state", "is set but months_in is not asked"))
        return ()
    states = _states(state) if state is not None else None
    if not states or len(set(states)) != len(states):
        what = "is missing" if state is None else f"is {state!r}"
        problems.append(
            Violation(f"{where}.state", f"{what}; months_in needs the state(s) to count")
        )
        return ()
    bad = [s for s in states if not _WORD.fullmatch(s)]
    if bad:
        problems.append(
            Violation(f"{where}.state", f"names {bad!r}, which cannot be part of a feature "
                      "name; expected letters, digits and _")
        )  # fmt: skip
    outside = [s for s in states if order and s not in order]
    if kind == "ordinal" and outside:
        problems.append(Violation(f"{where}.state", f"names {outside!r}, not in the order"))
    return states


def parse_columns(values: Any, windows: Sequence[int]) -> tuple[OwnColumn, ...]:
    """The ``features.columns`` section: every entry checked, and the entries together.

    Parameters
    ----------
    values : list of mapping or OwnColumn
        The entries as YAML gives them (or declarations already made).
    windows : sequence of int
        The feature windows (``features.windows``): the names built with them must not
        clash with the packaged features'.

    Returns
    -------
    tuple of OwnColumn

    Raises
    ------
    ConfigError
        Every problem at once, each naming ``features.columns[i].<field>``: an unknown
        kind, aggregation or unit, a missing ``en`` or ``zh``, an ordinal column without
        ``order``, ``months_in`` without ``state``, ``share_above`` without ``above``, a
        column declared twice, a contract column, a feature name a packaged feature (or
        another declared column) has.
    """
    if values is None:
        return ()
    if not isinstance(values, list | tuple):
        raise ConfigError([Violation("features.columns", f"is {values!r}; expected a list")])
    specs: list[OwnColumn] = []
    problems: list[Violation] = []
    for i, v in enumerate(values):
        try:
            specs.append(OwnColumn.from_mapping(v, f"features.columns[{i}]"))
        except ConfigError as exc:
            problems += exc.violations
    if not problems:
        problems += _clashes(specs, windows)
    if problems:
        raise ConfigError(problems)
    return tuple(specs)


def _clashes(specs: Sequence[OwnColumn], windows: Sequence[int]) -> list[Violation]:
    """Columns declared twice or in the contract; feature names taken."""
    packaged = {s.name for d, s in plan(windows) if not isinstance(d.compute, OwnAggregate)}
    packaged |= {s.name for s in TIER_SPECS}
    problems: list[Violation] = []
    seen: dict[str, int] = {}
    names: dict[str, int] = {}
    for i, s in enumerate(specs):
        where = f"features.columns[{i}]"
        if s.column in seen:
            first = f"features.columns[{seen[s.column]}]"
            problems.append(
                Violation(f"{where}.column", f"declares `{s.column}` again (first at {first})")
            )
            continue
        seen[s.column] = i
        if s.column in CONTRACT_COLUMNS:
            problems.append(
                Violation(f"{where}.column", f"is `{s.column}`, a contract column: its "
                          "features are built in", hint="declare columns outside the contract")
            )  # fmt: skip
        for name in s.feature_names(windows):
            if name in packaged:
                problems.append(
                    Violation(f"{where}.column", f"gives the feature `{name}`, the name of a "
                              "packaged feature", hint="set `name:` to another stem")
                )  # fmt: skip
            elif name in names:
                problems.append(
                    Violation(f"{where}.column", f"gives the feature `{name}`, as "
                              f"features.columns[{names[name]}] does")
                )  # fmt: skip
            names.setdefault(name, i)
    return problems
