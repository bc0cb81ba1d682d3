"""Levers: the bank action the evidence points to for each near-tier customer.

The method answers the three sources of asset growth with three actions:

* ``grow_with_customer`` (陪伴成长): the customer's own savings drive their growth;
  keep the relationship and the salary in the bank;
* ``win_assets`` (他行资产引流): assets are moving in from other banks, or large transfers
  out show assets held elsewhere; win them over;
* ``wealth_advice`` (财富规划): investments drive growth, or deposits sit idle with nothing
  invested; advise on wealth products.

:class:`LeverRule` is the configurable rule (``levers:`` in the experiment YAML); it reads
features the catalogue builds (``growth_*_6m``, ``transfer_out_ratio_3m``,
``demand_deposit_share``, ``investment_share``), and every assignment carries its reason in
English and Chinese.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from segments.core.growth.sources import DOMINANT_NONE, SOURCES, dominant_source
from segments.exceptions import ConfigError, Violation

__all__ = ["LEVERS", "LEVER_COLUMNS", "LEVER_LABELS", "LeverRule", "assign_levers", "lever_mix"]

#: The levers, and their names in Chinese.
LEVER_LABELS: dict[str, str] = {
    "grow_with_customer": "陪伴成长",
    "win_assets": "他行资产引流",
    "wealth_advice": "财富规划",
}
LEVERS: tuple[str, ...] = tuple(LEVER_LABELS)
#: The columns :func:`assign_levers` returns.
LEVER_COLUMNS: tuple[str, ...] = ("lever", "lever_reason", "lever_reason_zh")
#: The lever each growth source points to.
_BY_SOURCE = {
    "accumulation": "grow_with_customer",
    "migration": "win_assets",
    "appreciation": "wealth_advice",
}
#: The features the rule reads (absent ones are no evidence).
FEATURES: dict[str, str] = {
    **{s: f"growth_{s}_6m" for s in SOURCES},
    "outflow": "transfer_out_ratio_3m",
    "idle": "demand_deposit_share",
    "invested": "investment_share",
}


@dataclass(frozen=True)
class LeverRule:
    """Which lever the evidence points to (``levers:`` in the experiment YAML).

    Parameters
    ----------
    min_source_share : float, default 0.02
        A growth source is evidence when it is the customer's largest over the last 6 months
        and added at least this share of AUM.
    outflow_share : float, default 0.10
        Transfers out to other banks over the last 3 months of at least this share of AUM
        show assets held elsewhere: evidence for ``win_assets``.
    idle_share : float, default 0.6
        Demand deposits of at least this share of AUM with nothing invested are idle:
        evidence for ``wealth_advice``.
    order : tuple of str, default ("win_assets", "wealth_advice", "grow_with_customer")
        When evidence points to several levers, the first in this order wins.
    default : str, default "grow_with_customer"
        The lever when nothing stands out.
    """

    min_source_share: float = 0.02
    outflow_share: float = 0.10
    idle_share: float = 0.6
    order: tuple[str, ...] = ("win_assets", "wealth_advice", "grow_with_customer")
    default: str = "grow_with_customer"

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", tuple(self.order))
        problems = []
        for name in ("min_source_share", "outflow_share", "idle_share"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                problems.append(Violation(f"levers.{name}", f"is {v!r}; expected 0..1"))
        unknown = [x for x in (*self.order, self.default) if x not in LEVERS]
        if unknown:
            problems.append(
                Violation(
                    "levers.order",
                    f"names {', '.join(map(str, unknown))}; levers are {', '.join(LEVERS)}",
                )
            )
        elif sorted(self.order) != sorted(LEVERS):
            problems.append(
                Violation("levers.order", f"must list each of {', '.join(LEVERS)} once")
            )
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> LeverRule:
        """A rule from the ``levers:`` mapping; an unknown key is a named error."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                [
                    Violation(
                        f"levers.{k}", f"is not a setting; expected {', '.join(sorted(known))}"
                    )
                    for k in unknown
                ]
            )
        return cls(**values)


def _feature(X: pd.DataFrame, key: str) -> np.ndarray:
    name = FEATURES[key]
    if name not in X.columns:
        return np.full(len(X), np.nan)
    return pd.to_numeric(X[name]).to_numpy(dtype="float64", na_value=np.nan)


def assign_levers(X: pd.DataFrame, rule: LeverRule | None = None) -> pd.DataFrame:
    """The lever for each customer and the evidence behind it.

    Parameters
    ----------
    X : DataFrame
        Features (:func:`segments.build_features`), one row per customer.
    rule : LeverRule, optional
        The rule (default :class:`LeverRule()`).

    Returns
    -------
    DataFrame
        Indexed like ``X``: ``lever`` (one of :data:`LEVERS`), ``lever_reason`` and
        ``lever_reason_zh`` (the evidence in words, with its figure).

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame(
    ...     {"growth_migration_6m": [0.12, 0.0], "growth_accumulation_6m": [0.01, 0.05]}
    ... )
    >>> assign_levers(X)["lever"].tolist()
    ['win_assets', 'grow_with_customer']
    """
    rule = rule or LeverRule()
    sums = pd.DataFrame({f"growth_{s}": _feature(X, s) for s in SOURCES})
    main = dominant_source(sums)
    at = np.array([SOURCES.index(m) if m in SOURCES else 0 for m in main], dtype=np.intp)
    top = np.where(main != DOMINANT_NONE, sums.to_numpy()[np.arange(len(X)), at], np.nan)
    strong = (main != DOMINANT_NONE) & (np.nan_to_num(top) >= rule.min_source_share)
    outflow = _feature(X, "outflow")
    idle = _feature(X, "idle")
    invested = _feature(X, "invested")
    elsewhere = np.nan_to_num(outflow) >= max(rule.outflow_share, 1e-12)
    idle_now = (np.nan_to_num(idle) >= max(rule.idle_share, 1e-12)) & (np.nan_to_num(invested) <= 0)
    evidence = {
        "win_assets": (strong & (main == "migration")) | elsewhere,
        "wealth_advice": (strong & (main == "appreciation")) | idle_now,
        "grow_with_customer": strong & (main == "accumulation"),
    }
    lever = np.full(len(X), rule.default, dtype=object)
    chosen = np.zeros(len(X), dtype=bool)
    for name in reversed(rule.order):  # the first in the order is written last and wins
        lever = np.where(evidence[name], name, lever)
        chosen |= evidence[name]
    en, zh = [], []
    for i in range(len(X)):
        a, b = _reason(lever[i], chosen[i], main[i], top[i], outflow[i], idle[i])
        en.append(a)
        zh.append(b)
    return pd.DataFrame({"lever": lever, "lever_reason": en, "lever_reason_zh": zh}, index=X.index)


def _reason(
    lever: str, chosen: bool, main: str, top: float, outflow: float, idle: float
) -> tuple[str, str]:
    """The evidence behind one customer's lever, in English and Chinese."""
    if not chosen:
        return (
            "no source of growth stands out: grow with the customer",
            "暂无突出的资产增长来源：陪伴客户成长",
        )
    if lever == "win_assets" and main == "migration":
        return (
            f"assets moving in from other banks: {top:+.0%} of AUM over 6 months",
            f"他行资产转入：近6个月净转入占资产{top:+.0%}",
        )
    if lever == "win_assets":
        return (
            f"{outflow:.0%} of AUM moved to other banks over 3 months: assets held elsewhere",
            f"近3个月转出他行占资产{outflow:.0%}：他行另有资产",
        )
    if lever == "wealth_advice" and main == "appreciation":
        return (
            f"investments growing in value: {top:+.0%} of AUM over 6 months",
            f"投资产品增值：近6个月占资产{top:+.0%}",
        )
    if lever == "wealth_advice":
        return (
            f"{idle:.0%} of assets idle in demand deposits, nothing invested",
            f"活期存款占资产{idle:.0%}，未持有投资产品",
        )
    return (
        f"own savings growing: {top:+.0%} of AUM over 6 months",
        f"自身积累增长：近6个月占资产{top:+.0%}",
    )


def lever_mix(levers: pd.Series, by: pd.Series | pd.DataFrame) -> pd.DataFrame:
    """The share of each lever per key (e.g. group or branch), and the customers counted.

    Parameters
    ----------
    levers : Series
        Each customer's lever.
    by : Series or DataFrame
        The key(s), aligned with ``levers``.

    Returns
    -------
    DataFrame
        One row per key: ``customers`` and a share column per lever.
    """
    keys = by.to_frame() if isinstance(by, pd.Series) else by
    frame = keys.assign(lever=pd.Categorical(levers, categories=list(LEVERS)))
    names = list(keys.columns)
    counts = frame.groupby([*names, "lever"], observed=False).size().unstack("lever", fill_value=0)
    counts = counts[counts.sum(axis=1) > 0]
    shares = counts.div(counts.sum(axis=1), axis=0)
    shares.columns = [f"share_{c}" for c in shares.columns]
    shares.insert(0, "customers", counts.sum(axis=1))
    return shares
