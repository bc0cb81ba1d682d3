"""Service models: what service the bank owes each tier x strategic group.

A service map (a packaged preset such as ``tiered``, or a bank's own YAML) names service
models (a capacity in customers per manager, a contact cadence, the near-tier prospects a
manager works a month) and which model each tier gets: by tier name, else by tier rank,
with exceptions for a tier x group. See ``docs/growth-and-service.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from segments.core.config.presets import load_preset
from segments.exceptions import ConfigError, Violation

__all__ = ["ServiceMap", "ServiceModel", "load_service_map", "service_map_from", "service_mix"]


@dataclass(frozen=True)
class ServiceModel:
    """One service model.

    Attributes
    ----------
    name, label_zh, description : str
    capacity : int or None
        Customers one manager serves; None: served without a manager (digital).
    cadence_months : int
        A contact every this many months.
    prospects_per_manager : int
        Near-tier customers one manager works a month, beyond the book.
    """

    name: str
    label_zh: str = ""
    description: str = ""
    capacity: int | None = None
    cadence_months: int = 3
    prospects_per_manager: int = 0

    @property
    def has_managers(self) -> bool:
        """Whether the model is served by managers (a capacity is set)."""
        return self.capacity is not None


@dataclass(frozen=True)
class ServiceMap:
    """Service models and the model each tier (x group) gets.

    Attributes
    ----------
    name : str
    models : dict of str to ServiceModel
    by_rank : tuple of str
        The model of tier rank 0, 1, ...; ranks above the last get the last.
    tiers : dict of str to str
        The model of a tier by name (wins over ``by_rank``).
    groups : tuple of dict
        Exceptions: ``{tier, group, model}``.
    """

    name: str
    models: dict[str, ServiceModel]
    by_rank: tuple[str, ...] = ()
    tiers: dict[str, str] = field(default_factory=dict)
    groups: tuple[dict[str, str], ...] = ()

    def model_for(self, tier: str, rank: int, group: str | None = None) -> str:
        """The service model of a tier (and group)."""
        for g in self.groups:
            if g["tier"] == tier and group is not None and g["group"] == group:
                return g["model"]
        if tier in self.tiers:
            return self.tiers[tier]
        return self.by_rank[min(int(rank), len(self.by_rank) - 1)]

    def check_against(
        self, tier_names: Sequence[str], group_names: Sequence[str] | None = None
    ) -> None:
        """Refuse a map naming a tier the ladder does not have, or a group the groups model
        does not have (``group_names``; unchecked when None).

        Raises
        ------
        ConfigError
            Naming the entry and what is known.
        """
        problems = []
        known = ", ".join(tier_names)
        for t in self.tiers:
            if t not in tier_names:
                problems.append(
                    Violation(f"service.tiers.{t}", f"is not a tier of the ladder ({known})")
                )
        for i, g in enumerate(self.groups):
            if g["tier"] not in tier_names:
                problems.append(
                    Violation(
                        f"service.groups[{i}].tier",
                        f"is {g['tier']!r}, not a tier of the ladder ({known})",
                    )
                )
            if group_names is not None and g["group"] not in group_names:
                problems.append(
                    Violation(
                        f"service.groups[{i}].group",
                        f"is {g['group']!r}, not a group of the model "
                        f"({', '.join(map(str, group_names))})",
                    )
                )
        if problems:
            raise ConfigError(problems)


_MODEL_KEYS = {"label_zh", "description", "capacity", "cadence_months", "prospects_per_manager"}


def _whole(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _model(name: str, spec: Any, problems: list[Violation]) -> ServiceModel | None:
    where = f"service.models.{name}"
    if not isinstance(spec, Mapping):
        problems.append(Violation(where, "must be a mapping"))
        return None
    unknown = sorted(set(spec) - _MODEL_KEYS)
    problems += [Violation(f"{where}.{k}", "is not a known setting") for k in unknown]
    capacity = spec.get("capacity")
    if capacity is not None and not _whole(capacity, 1):
        problems.append(
            Violation(
                f"{where}.capacity",
                f"is {capacity!r}; expected customers per manager >= 1 (null: no manager)",
            )
        )
    cadence = spec.get("cadence_months", 3)
    if not _whole(cadence, 1):
        problems.append(Violation(f"{where}.cadence_months", f"is {cadence!r}; expected >= 1"))
    prospects = spec.get("prospects_per_manager", 0)
    if not _whole(prospects, 0):
        problems.append(
            Violation(f"{where}.prospects_per_manager", f"is {prospects!r}; expected >= 0")
        )
    values = {k: spec[k] for k in _MODEL_KEYS & set(spec)}
    return ServiceModel(name=str(name), **values)


def service_map_from(data: Mapping[str, Any], source: str = "") -> ServiceMap:
    """A service map from its YAML mapping, every problem reported at once.

    Raises
    ------
    ConfigError
        Unknown keys, a capacity or cadence below 1, a model named but not defined, no rule
        for some tier.
    """
    problems: list[Violation] = []
    known = {"name", "description", "models", "by_rank", "tiers", "groups"}
    problems += [
        Violation(f"service.{k}", "is not a known setting") for k in data if k not in known
    ]
    raw_models = data.get("models") or {}
    if not isinstance(raw_models, Mapping) or not raw_models:
        problems.append(Violation("service.models", "must name at least one service model"))
        raw_models = {}
    models = {}
    for name, spec in raw_models.items():
        m = _model(str(name), spec, problems)
        if m is not None:
            models[str(name)] = m
    by_rank = tuple(data.get("by_rank") or ())
    tiers = dict(data.get("tiers") or {})
    groups = tuple(dict(g) if isinstance(g, Mapping) else g for g in data.get("groups") or ())
    if not by_rank and not tiers:
        problems.append(Violation("service.by_rank", "is empty and no tier is named in tiers"))
    for where, name in [
        *((f"service.by_rank[{i}]", m) for i, m in enumerate(by_rank)),
        *((f"service.tiers.{t}", m) for t, m in tiers.items()),
    ]:
        if name not in models:
            problems.append(
                Violation(where, f"is {name!r}, not a service model ({', '.join(models)})")
            )
    for i, g in enumerate(groups):
        if not isinstance(g, dict) or set(g) != {"tier", "group", "model"}:
            problems.append(
                Violation(f"service.groups[{i}]", "must be {tier: ..., group: ..., model: ...}")
            )
        elif g["model"] not in models:
            problems.append(
                Violation(
                    f"service.groups[{i}].model",
                    f"is {g['model']!r}, not a service model ({', '.join(models)})",
                )
            )
    if problems:
        raise ConfigError(problems, source=source)
    return ServiceMap(str(data.get("name", "service")), models, by_rank, tiers, groups)


def load_service_map(name_or_path: str | os.PathLike[str] = "tiered") -> ServiceMap:
    """Load a packaged service map by name (``tiered``) or a bank's own YAML by path.

    Examples
    --------
    >>> m = load_service_map("tiered")
    >>> [m.model_for(t, r) for r, t in enumerate(["mass", "gold", "sunflower", "diamond"])]
    ['digital', 'remote_rm', 'dedicated_rm', 'team_1n']
    """
    return service_map_from(load_preset("service", name_or_path), source=str(name_or_path))


def service_mix(tiers: pd.DataFrame, groups: pd.Series, service: ServiceMap) -> pd.DataFrame:
    """The share of each group served by each service model, by the tiers its customers hold.

    Parameters
    ----------
    tiers : DataFrame
        Tier table rows of one month: ``customer_id``, ``tier``, ``tier_rank``.
    groups : Series
        The group of each customer (indexed by ``customer_id``).
    service : ServiceMap

    Returns
    -------
    DataFrame
        Group x service model (columns ``"name (label_zh)"``, in the map's order): shares
        that sum to 1 per group.

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": ["a", "b"], "tier": ["mass", "gold"], "tier_rank": [0, 1]})
    >>> service_mix(t, pd.Series({"a": 0, "b": 0}), load_service_map()).iloc[0].to_dict()
    {'digital (数字化服务)': 0.5, 'remote_rm (远程客户经理)': 0.5}
    """
    t = tiers.set_index("customer_id")
    g = groups.reindex(t.index)
    models = [
        service.model_for(str(tier), int(rank), None if pd.isna(grp) else grp)
        for tier, rank, grp in zip(t["tier"], t["tier_rank"], g, strict=True)
    ]
    mix = pd.crosstab(g.rename("group"), pd.Series(models, index=t.index, name="model"))
    mix = mix.div(mix.sum(axis=1), axis=0)
    order = [m for m in service.models if m in mix.columns]
    mix = mix[order]
    mix.columns = [f"{m} ({service.models[m].label_zh})" for m in order]
    return mix
