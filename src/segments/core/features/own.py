"""A bank's own panel columns as declared features (``features.columns``).

Any panel column outside the data contract can be declared in the experiment YAML as a
feature source::

    features:
      windows: [3, 6]
      columns:
        - column: card_bal            # the bank's name, as in the file
          kind: numeric               # numeric | categorical | ordinal
          unit: money
          aggregations: [last, mean, min, max, trend, share_above]
          above: 0                    # for share_above
          en: credit card balance
          zh: 信用卡余额
        - column: risk_grade
          kind: ordinal
          order: [A, B, C, D]         # best to worst
          aggregations: [last, worst, months_in]
          state: D                    # months_in counts months in D
          en: internal risk grade
          zh: 内部风险等级

Each becomes an :class:`OwnColumn` (plain, picklable data), checked when the configuration
is loaded (:func:`~segments.core.features.own_checks.parse_columns`), and one feature per
aggregation and window (:meth:`OwnColumn.declarations`, computed by
:class:`~segments.core.features.own_aggregations.OwnAggregate`): ``card_bal_last``,
``card_bal_mean_3m``, ..., ``risk_grade_worst_3m``, ``risk_grade_months_in_D_3m``.

:func:`own_features` registers them for the duration of a job (and unregisters what it
added on exit), so they are read, validated and built like the packaged features, and
described in the catalogue, reason codes and model cards. Workers register them from the
specs they receive (:func:`active_columns` says what is registered now).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from segments.core.features.own_aggregations import OwnAggregate
from segments.core.features.registry import (
    PER_WINDOW,
    Declaration,
    declarations,
    declared,
)
from segments.exceptions import Violation

#: A job's function, as :func:`declaring` returns it.
Job = TypeVar("Job", bound=Callable[..., Any])

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_AGGREGATIONS",
    "KINDS",
    "OWN_FAMILY",
    "OwnColumn",
    "active_columns",
    "config_columns",
    "declaring",
    "missing_columns",
    "own_features",
    "result_columns",
]

KINDS = ("numeric", "categorical", "ordinal")
#: The aggregations each kind of column may ask for, in the order features are listed.
AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "numeric": ("last", "mean", "min", "max", "trend", "share_above"),
    "categorical": ("last", "months_in"),
    "ordinal": ("last", "worst", "months_in"),
}
DEFAULT_AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "numeric": ("last", "mean"),
    "categorical": ("last",),
    "ordinal": ("last", "worst"),
}
OWN_FAMILY = "own"

#: Each aggregation's text appended to the column's, in English and Chinese ({w}: window).
_TEXT: dict[str, tuple[str, str]] = {
    "last": ("{en}, in the as-of month", "{zh}(当月)"),
    "mean": ("{en}, average over the last {w} months", "{zh}(近{w}个月均值)"),
    "min": ("{en}, lowest over the last {w} months", "{zh}(近{w}个月最低)"),
    "max": ("{en}, highest over the last {w} months", "{zh}(近{w}个月最高)"),
    "trend": ("{en}, trend over the last {w} months (change a month)",
              "{zh}(近{w}个月趋势，每月变化)"),
    "trend_money": ("{en}, trend over the last {w} months (change a month, relative to its "
                    "average)", "{zh}(近{w}个月趋势，每月变化相对均值)"),
    "share_above": ("{en}, share of the last {w} months above {above}",
                    "{zh}(近{w}个月高于{above}的月份占比)"),
    "worst": ("{en}, worst over the last {w} months (position in {order}; 0 = best)",
              "{zh}(近{w}个月最差，在{order}中的位置，0为最好)"),
    "months_in": ("{en}, months in {state} over the last {w} months",
                  "{zh}(近{w}个月处于{state}的月数)"),
}  # fmt: skip


@dataclass(frozen=True)
class OwnColumn:
    """A bank's own panel column declared as a feature source (one ``features.columns``
    entry), checked (:meth:`from_mapping`).

    Attributes
    ----------
    column : str
        The panel column, the bank's name as in the file (outside the data contract).
    kind : {"numeric", "categorical", "ordinal"}
    en, zh : str
        What the column holds, in English and Chinese (each feature appends its
        aggregation and window).
    unit : str
        One of :data:`~segments.core.features.registry.UNITS`; ``category`` for a
        categorical or ordinal column.
    aggregations : tuple of str
        The features to build (:data:`AGGREGATIONS`), in the order they are listed.
    above : float or None
        The value ``share_above`` compares with.
    order : tuple of str
        An ordinal column's states, best first.
    state : tuple of str
        The states ``months_in`` counts.
    family : str, default "own"
        The family the catalogue lists its features under.
    name : str
        The stem of the feature names (default: ``column``).
    """

    column: str
    kind: str
    en: str
    zh: str
    unit: str
    aggregations: tuple[str, ...]
    above: float | None = None
    order: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    family: str = OWN_FAMILY
    name: str = field(default="")

    @property
    def stem(self) -> str:
        """The start of every feature name of the column."""
        return self.name or self.column

    def feature_name(self, aggregation: str) -> str:
        """A feature's name, ``{w}`` standing for the window (``card_bal_mean_{w}m``)."""
        if aggregation == "last":
            return f"{self.stem}_last"
        if aggregation == "months_in":
            return f"{self.stem}_months_in_{'_'.join(self.state)}_{{w}}m"
        return f"{self.stem}_{aggregation}_{{w}}m"

    def feature_names(self, windows: Sequence[int]) -> list[str]:
        """Every feature the column gives with ``windows``, in catalogue order."""
        names = [self.feature_name(a) for a in self._ordered()]
        fixed = [n for n in names if "{w}" not in n]
        per_window = [n for n in names if "{w}" in n]
        return fixed + [n.replace("{w}", str(w)) for w in windows for n in per_window]

    def declarations(self) -> list[Declaration]:
        """The column's feature declarations: ``last`` first (the as-of month), then one
        per-window declaration per other aggregation."""
        out = []
        for agg in self._ordered():
            en, zh = self._texts(agg)
            out.append(
                Declaration(
                    self.feature_name(agg), self.family, self._unit(agg), en, zh,
                    (self.column,), 1 if agg == "last" else PER_WINDOW,
                    OwnAggregate(self, agg), log_scale=self._log_scale(agg),
                )
            )  # fmt: skip
        return out

    def _ordered(self) -> list[str]:
        """The aggregations in :data:`AGGREGATIONS` order (the catalogue's)."""
        return sorted(self.aggregations, key=AGGREGATIONS[self.kind].index)

    def _unit(self, aggregation: str) -> str:
        if aggregation == "trend":
            return "ratio" if self.unit in ("money", "share", "ratio") else "per_month"
        return {"share_above": "share", "worst": "count", "months_in": "months"}.get(
            aggregation, self.unit
        )

    def _log_scale(self, aggregation: str) -> bool | None:
        """Trends (signed) and positions are never on a log scale; the rest follow the unit."""
        return False if aggregation in ("trend", "worst") else None

    def _texts(self, aggregation: str) -> tuple[str, str]:
        key = "trend_money" if aggregation == "trend" and self.unit == "money" else aggregation
        en, zh = _TEXT[key]
        order_en, order_zh = ", ".join(self.order), "、".join(self.order)
        state_en, state_zh = " or ".join(self.state), "或".join(self.state)
        above = "" if self.above is None else f"{self.above:g}"
        return (
            en.format(en=self.en, w="{w}", above=above, order=order_en, state=state_en),
            zh.format(zh=self.zh, w="{w}", above=above, order=order_zh, state=state_zh),
        )

    def as_dict(self) -> dict[str, Any]:
        """The declaration as YAML would write it, defaults filled in (what a run logs;
        :meth:`from_mapping` reads it back to the same declaration)."""
        out: dict[str, Any] = {"column": self.column, "kind": self.kind, "unit": self.unit,
                               "aggregations": list(self.aggregations)}  # fmt: skip
        if self.above is not None:
            out["above"] = self.above
        if self.order:
            out["order"] = list(self.order)
        if self.state:
            out["state"] = self.state[0] if len(self.state) == 1 else list(self.state)
        out.update(en=self.en, zh=self.zh, family=self.family)
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], where: str = "features.columns[0]"
    ) -> OwnColumn:
        """A declaration from its YAML mapping, checked.

        Parameters
        ----------
        values : mapping
            One ``features.columns`` entry.
        where : str
            The setting it is, named in the errors (``features.columns[2]``).

        Raises
        ------
        ConfigError
            Every problem of the entry, each naming ``<where>.<field>``.
        """
        from segments.core.features.own_checks import column_fields

        return values if isinstance(values, OwnColumn) else cls(**column_fields(values, where))


def active_columns() -> tuple[OwnColumn, ...]:
    """The own columns whose features are registered now, in declaration order (what a
    job hands to its worker processes)."""
    found = (d.compute.spec for d in declarations() if isinstance(d.compute, OwnAggregate))
    return tuple(dict.fromkeys(found))


def missing_columns(columns: Iterable[str]) -> list[Violation]:
    """The registered own columns an input lacks, each a violation naming the column.

    Parameters
    ----------
    columns : iterable of str
        The input's columns (the bank's names).
    """
    have = set(columns)
    return [
        Violation(
            s.column,
            "is declared in features.columns but the input has no such column",
            hint="add it to the panel or remove its declaration",
        )
        for s in active_columns()
        if s.column not in have
    ]


@contextlib.contextmanager
def own_features(specs: Iterable[OwnColumn | Mapping[str, Any]]) -> Iterator[tuple[OwnColumn, ...]]:
    """Register the features of declared own columns for the duration of a ``with`` block.

    Re-declaring a column exactly as it is registered already (a job inside a job, a
    notebook cell run twice) adds nothing; on exit only what this block added is removed,
    so the packaged catalogue is as it was.

    Parameters
    ----------
    specs : iterable of OwnColumn or mapping
        ``ExperimentConfig.features.columns`` (or YAML mappings, checked here).

    Yields
    ------
    tuple of OwnColumn
        The declarations in force.

    Raises
    ------
    ConfigError
        A feature of the same name is registered with another definition.

    Examples
    --------
    >>> from segments.core.features import FEATURE_CATALOGUE
    >>> spec = {"column": "card_bal", "kind": "numeric", "unit": "money",
    ...         "en": "credit card balance", "zh": "信用卡余额"}
    >>> with own_features([spec]):
    ...     FEATURE_CATALOGUE["card_bal_mean_3m"].zh
    '信用卡余额(近3个月均值)'
    >>> "card_bal_mean_3m" in FEATURE_CATALOGUE
    False
    """
    from segments.core.features.own_checks import parse_columns
    from segments.core.features.registry import DEFAULT_WINDOWS

    columns = tuple(specs)
    if not all(isinstance(s, OwnColumn) for s in columns):
        columns = parse_columns(list(columns), DEFAULT_WINDOWS)
    with declared(d for s in columns for d in s.declarations()):
        yield columns


def declaring(columns: Callable[..., Iterable[OwnColumn]]) -> Callable[[Job], Job]:
    """Run a job inside :func:`own_features` (a decorator): ``columns(*args, **kwargs)``
    says, from the job's own arguments, which own columns to register.

    Parameters
    ----------
    columns : callable
        Called with the job's arguments; :func:`config_columns` (the job's configuration,
        its second argument) or :func:`result_columns` (a result's configuration).
    """

    def decorate(job: Job) -> Job:
        @functools.wraps(job)
        def run(*args: Any, **kwargs: Any) -> Any:
            with own_features(columns(*args, **kwargs)):
                return job(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


def config_columns(
    first: Any, config: Any = None, *args: Any, **kwargs: Any
) -> Iterable[OwnColumn]:
    """The own columns of a job's configuration (``job(panel, config, ...)``; none when
    ``config`` is None: the packaged defaults declare none)."""
    config = kwargs.get("config", config)
    return () if config is None else config.features.columns


def result_columns(result: Any, *args: Any, **kwargs: Any) -> Iterable[OwnColumn]:
    """The own columns of the configuration a training result was made with."""
    config = getattr(result, "config", None)
    return () if config is None else config.features.columns
