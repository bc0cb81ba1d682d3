"""Configuration as data: packaged presets and experiment YAML, validated on load.

An experiment file overrides only what it changes; it is deep-merged onto the packaged
``default`` experiment. The sections are in :mod:`segments.core.config.sections`, reading YAML
and presets in :mod:`segments.core.config.presets` (both re-exported here). Every problem in a
file is reported at once in a :class:`~segments.exceptions.ConfigError`. Tracking URIs
and secrets never come from YAML: they come from the environment.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from segments.core.config.presets import (
    FROM_LADDER,
    available_presets,
    check_model_name,
    check_model_uri,
    load_preset,
    load_yaml,
)
from segments.core.config.sections import (
    MAX_REASONS,
    PROMOTION_THRESHOLDS,
    FeaturesConfig,
    GroupsConfig,
    RegistryConfig,
    ScoringConfig,
    TiersConfig,
    UpgradeConfig,
)
from segments.core.config.service import ServiceConfig
from segments.core.config.tracking import TrackingConfig
from segments.core.data.panel import PanelConfig
from segments.core.growth.levers import LeverRule
from segments.exceptions import ConfigError, Violation

__all__ = [
    "FROM_LADDER",
    "MAX_REASONS",
    "PROMOTION_THRESHOLDS",
    "ExperimentConfig",
    "FeaturesConfig",
    "GroupsConfig",
    "RegistryConfig",
    "ScoringConfig",
    "TiersConfig",
    "TrackingConfig",
    "UpgradeConfig",
    "available_presets",
    "check_model_name",
    "check_model_uri",
    "load_config",
    "load_preset",
    "load_yaml",
]


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment configuration.

    Attributes
    ----------
    name : str
        The experiment's name (its MLflow experiment is named after it).
    panel : PanelConfig
        Column map and validation policies.
    tiers : TiersConfig
        Ladder, basis and hysteresis.
    features : FeaturesConfig
        Feature windows.
    groups : GroupsConfig
        Strategic-group training.
    upgrade : UpgradeConfig
        Upgrade-model training and evaluation.
    registry : RegistryConfig
        Registered model names and promotion thresholds.
    scoring : ScoringConfig
        Batch scoring engine, batch size and drift thresholds.
    tracking : TrackingConfig
        What runs log about customers (aggregates only by default).
    levers : LeverRule
        Which bank action the evidence points to for a near-tier customer.
    service : ServiceConfig
        The service map and the managers available (``segments plan``).
    raw : dict
        The merged configuration as plain data (for logging).
    """

    name: str = "default"
    panel: PanelConfig = field(default_factory=PanelConfig)
    tiers: TiersConfig = field(default_factory=TiersConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    groups: GroupsConfig = field(default_factory=GroupsConfig)
    upgrade: UpgradeConfig = field(default_factory=UpgradeConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    levers: LeverRule = field(default_factory=LeverRule)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


_SECTIONS: dict[str, type] = {
    "panel": PanelConfig,
    "tiers": TiersConfig,
    "features": FeaturesConfig,
    "groups": GroupsConfig,
    "upgrade": UpgradeConfig,
    "registry": RegistryConfig,
    "scoring": ScoringConfig,
    "tracking": TrackingConfig,
    "levers": LeverRule,
    "service": ServiceConfig,
}


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict) and key != "column_map":
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _default_raw() -> dict[str, Any]:
    resource = resources.files("segments") / "presets" / "default.yaml"
    with resources.as_file(resource) as path:
        return load_yaml(path)


#: The settings that name a file, and the preset family a bare name may be instead.
PATH_SETTINGS: dict[tuple[str, str], str | None] = {
    ("tiers", "ladder"): "ladders",
    ("tiers", "hysteresis"): "hysteresis",
    ("groups", "names_file"): None,
    ("service", "map"): "service",
    ("service", "managers"): None,
}


def _resolve_paths(user: dict[str, Any], folder: Path) -> None:
    """Make the relative file paths an experiment YAML names relative to its own folder
    (not to where the command runs), in place. Packaged preset names stay names."""
    for (section, key), kind in PATH_SETTINGS.items():
        values = user.get(section)
        value = values.get(key) if isinstance(values, dict) else None
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            continue
        looks_like_a_file = Path(value).suffix.lower() in (".yaml", ".yml") or "/" in value
        if kind is not None and (value in available_presets(kind) or not looks_like_a_file):
            continue  # a preset's name (or a word the setting reports as unknown)
        values[key] = str(folder / value)


def _ladder_problems(sections: Mapping[str, Any]) -> list[Violation]:
    """The ladder loaded now, so a bad one fails before any work; the tiers that
    ``upgrade.tier_values`` names must be its own."""
    problems: list[Violation] = []
    if "tiers" not in sections:
        return problems
    from segments.core.tiers.ladders import load_ladder

    t = sections["tiers"]
    try:
        ladder = load_ladder(t.ladder, basis_window=t.basis_window, hysteresis=t.hysteresis)
        values = getattr(sections.get("upgrade"), "tier_values", None) or {}
        unknown = sorted(str(k) for k in values if k not in ladder.tier_names)
        if unknown:
            problems.append(
                Violation(
                    "upgrade.tier_values",
                    f"names {', '.join(unknown)}, "
                    f"not a tier of the ladder {ladder.name} "
                    f"({', '.join(ladder.tier_names)})",
                )
            )
    except ConfigError as exc:
        where = f" {t.ladder!r}" if isinstance(t.ladder, str) else ""
        problems.extend(
            Violation(
                "tiers.ladder",
                f"{where.strip() or '(inline)'} cannot be loaded: `{v.column}` {v.problem}",
                hint=v.hint,
            )
            for v in exc.violations
        )
    return problems


def _own_column_problems(sections: Mapping[str, Any]) -> list[Violation]:
    """A declared own column (``features.columns``) the column map renames onto the
    contract: it is then no longer in the panel under its name."""
    features, panel = sections.get("features"), sections.get("panel")
    if features is None or panel is None:
        return []
    return [
        Violation(
            f"features.columns[{i}].column",
            f"is `{c.column}`, which panel.column_map maps onto `{panel.column_map[c.column]}`",
            hint="declare columns outside the contract, by the name they have in the file",
        )
        for i, c in enumerate(features.columns)
        if c.column in panel.column_map
    ]


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """Load an experiment YAML merged onto the packaged defaults, and validate it.

    Parameters
    ----------
    path : str or path, optional
        An experiment YAML; omitted, the packaged defaults are used. The experiment is
        named after the file (``experiments/near_gold.yaml`` -> ``near_gold``) unless the
        file sets ``name``. Relative file paths in it (``tiers.ladder``,
        ``tiers.hysteresis``, ``groups.names_file``) are relative to its folder.
    overrides : mapping, optional
        Applied last, e.g. from command-line options.

    Returns
    -------
    ExperimentConfig

    Raises
    ------
    ConfigError
        Listing every unknown key and invalid value at once.
    """
    raw = _default_raw()
    if path is not None:
        user = load_yaml(path)
        user.setdefault("name", Path(path).stem)
        _resolve_paths(user, Path(path).resolve().parent)  # absolute: as logged
        raw = _deep_merge(raw, user)
    if overrides:
        raw = _deep_merge(raw, overrides)
    problems: list[Violation] = []
    known = {"name", *_SECTIONS}
    for key in raw:
        if key not in known:
            problems.append(
                Violation(str(key), "is not a known section", hint=f"known: {sorted(known)}")
            )
    sections: dict[str, Any] = {}
    for key, cls in _SECTIONS.items():
        values = raw.get(key) or {}
        if not isinstance(values, Mapping):
            problems.append(Violation(key, f"must be a mapping, got {type(values).__name__}"))
            continue
        from_mapping = getattr(cls, "from_mapping", None)
        if from_mapping is not None:  # built from an estimator's parameters
            try:
                sections[key] = from_mapping(values)
            except ConfigError as exc:
                problems.extend(exc.violations)
            continue
        allowed = set(cls.__dataclass_fields__)
        unknown = [k for k in values if k not in allowed]
        for k in unknown:
            problems.append(
                Violation(f"{key}.{k}", "is not a known option", hint=f"known: {sorted(allowed)}")
            )
        try:
            sections[key] = cls(**{k: v for k, v in values.items() if k in allowed})
        except ConfigError as exc:
            problems.extend(exc.violations)
        except TypeError as exc:
            problems.append(Violation(key, str(exc)))
    problems += _ladder_problems(sections) + _own_column_problems(sections)
    name = raw.get("name", "default")
    if not isinstance(name, str) or not name:
        problems.append(Violation("name", f"must be a non-empty string, got {name!r}"))
    if problems:
        raise ConfigError(problems, source=str(path) if path else "")
    raw["groups"] = sections["groups"].as_raw()  # every parameter a run used, logged
    raw["features"] = {  # the own columns with their defaults filled in, as logged
        **(raw.get("features") or {}),
        "columns": [c.as_dict() for c in sections["features"].columns],
    }
    return ExperimentConfig(name=name, raw=raw, **sections)
