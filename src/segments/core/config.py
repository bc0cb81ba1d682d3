"""Configuration as data: packaged presets and experiment YAML, validated on load.

An experiment file overrides only what it changes; it is deep-merged onto the packaged
``default`` experiment. Every problem in a file is reported at once in a
:class:`~segments.exceptions.ConfigError`. Tracking URIs and secrets never come from YAML:
they come from the environment.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from segments.core.panel import PanelConfig
from segments.exceptions import ConfigError, Violation

__all__ = [
    "ExperimentConfig",
    "FeaturesConfig",
    "GroupsConfig",
    "RegistryConfig",
    "ScoringConfig",
    "TiersConfig",
    "UpgradeConfig",
    "available_presets",
    "check_model_name",
    "check_model_uri",
    "load_config",
    "load_preset",
    "load_yaml",
]

_PRESET_KINDS = ("ladders", "hysteresis")
#: The most reason codes a customer's row carries (each adds five output columns).
MAX_REASONS = 20


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (the last would win
    silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


#: A registered model name: letters, digits, '.', '_' and '-', not starting with a dot
#: (no path separators, so a name can never reach outside the registry's folders).
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}")


def check_model_name(name: str, option: str = "model") -> str:
    """Return ``name`` when it is a valid registered-model name, else raise ConfigError."""
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            [
                Violation(
                    option,
                    f"is {name!r}; a registered model name holds "
                    "only letters, digits, '.', '_' and '-'",
                    hint="e.g. demo-upgrade",
                )
            ]
        )
    return name


def check_model_uri(uri: str, option: str = "model") -> str:
    """Check the registered-model name inside a ``models:/NAME/VERSION`` or
    ``models:/NAME@ALIAS`` URI (other URIs pass as given)."""
    if isinstance(uri, str) and uri.startswith("models:/"):
        body = uri[len("models:/") :]
        name = body.split("@", 1)[0] if "@" in body else body.split("/", 1)[0]
        if not name.startswith("m-"):  # a logged model id (models:/m-...)
            check_model_name(name, option)
    return uri


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping.

    Raises
    ------
    ConfigError
        When the file is missing, is not valid YAML, or does not hold a mapping.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError([Violation(str(path), "file does not exist")])
    if not path.is_file():
        raise ConfigError([Violation(str(path), "is not a file")])
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(
            [Violation(str(path), f"cannot be read as UTF-8 text ({str(exc).splitlines()[0]})")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Violation(str(path), f"is not valid YAML: {exc}")]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Violation(str(path), f"must hold a mapping, got {type(data).__name__}")])
    return data


def available_presets(kind: str) -> list[str]:
    """Names of the packaged presets of one kind (``"ladders"`` or ``"hysteresis"``)."""
    folder = resources.files("segments") / "presets" / kind
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(kind: str, name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a packaged preset by name, or a user's YAML file by path.

    Parameters
    ----------
    kind : {"ladders", "hysteresis"}
        The preset family.
    name_or_path : str or path
        A packaged name such as ``"cmb"``, or a path to a ``.yaml`` file.

    Raises
    ------
    ConfigError
        Naming the known presets when neither a preset nor a file matches.
    """
    if kind not in _PRESET_KINDS:
        raise ConfigError([Violation("preset kind", f"is {kind!r}; expected {_PRESET_KINDS}")])
    text = str(name_or_path)
    if text in available_presets(kind):
        resource = resources.files("segments") / "presets" / kind / f"{text}.yaml"
        with resources.as_file(resource) as path:
            return load_yaml(path)
    if Path(text).suffix.lower() in (".yaml", ".yml") or Path(text).exists():
        return load_yaml(text)
    raise ConfigError(
        [
            Violation(
                kind.rstrip("s"),
                f"{text!r} is neither a packaged preset nor a YAML file",
                hint=f"packaged: {', '.join(available_presets(kind))}",
            )
        ]
    )


#: ``hysteresis`` left at this value means "what the ladder says".
FROM_LADDER = "ladder"


@dataclass(frozen=True)
class TiersConfig:
    """How tiers are assigned.

    Parameters
    ----------
    ladder : str or mapping, default "cmb"
        A packaged ladder name, a path to a ladder YAML, or the ladder inline.
    basis_window : int or None, default None
        Months averaged for the AUM basis; None keeps the ladder's own.
    hysteresis : str, mapping or None, default "ladder"
        ``"ladder"`` keeps the ladder's rule, None or ``"off"`` turns it off, a preset name
        (``"ccb"``) or an inline mapping sets one.
    """

    ladder: str | Mapping[str, Any] = "cmb"
    basis_window: int | None = None
    hysteresis: str | Mapping[str, Any] | None = FROM_LADDER


@dataclass(frozen=True)
class FeaturesConfig:
    """How behavioural features are built.

    Parameters
    ----------
    windows : list of int, default [3, 6, 12]
        Windows in months for the windowed features.
    """

    windows: tuple[int, ...] = (3, 6, 12)

    def __post_init__(self) -> None:
        ws = self.windows
        if (
            not isinstance(ws, list | tuple)
            or not ws
            or any(not isinstance(w, int) or isinstance(w, bool) or w < 2 for w in ws)
        ):
            raise ConfigError(
                [Violation("features.windows", f"is {ws!r}; expected a list of whole numbers >= 2")]
            )
        if len(set(ws)) != len(ws):
            raise ConfigError(
                [Violation("features.windows", f"is {list(ws)!r}; each window may appear once")]
            )
        object.__setattr__(self, "windows", tuple(ws))


@dataclass(frozen=True)
class GroupsConfig:
    """How strategic groups are trained (the parameters of :class:`StrategicGroups`).

    ``as_of`` (YYYY-MM, default the panel's last month) is the month features are built
    at; ``names_file`` a YAML that overrides suggested names; ``migration_months`` how many
    months before ``as_of`` the group migration matrix starts (0: none); the rest are
    estimator parameters (see :class:`segments.StrategicGroups`).
    """

    as_of: str | None = None
    n_groups: int | str = "auto"
    features: tuple[str, ...] | None = None
    algorithm: str = "kmeans"
    k_min: int = 3
    k_max: int = 10
    max_groups: int = 10
    min_group_share: float = 0.01
    min_stability: float = 0.8
    selection_size: int = 50_000
    silhouette_size: int = 5_000
    n_bootstrap: int = 5
    n_init: int = 25
    winsor: float = 0.01
    random_state: int = 0
    names_file: str | None = None
    migration_months: int = 3

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments for :class:`segments.StrategicGroups`."""
        return {
            "n_groups": self.n_groups,
            "features": list(self.features) if self.features else None,
            "algorithm": self.algorithm,
            "k_range": (self.k_min, self.k_max),
            "max_groups": self.max_groups,
            "min_group_share": self.min_group_share,
            "min_stability": self.min_stability,
            "selection_size": self.selection_size,
            "silhouette_size": self.silhouette_size,
            "n_bootstrap": self.n_bootstrap,
            "n_init": self.n_init,
            "winsor": self.winsor,
            "random_state": self.random_state,
        }


@dataclass(frozen=True)
class UpgradeConfig:
    """How the upgrade model is trained and evaluated.

    Parameters
    ----------
    horizon : int, default 3
        Months ahead the label looks at.
    population : {"near_tier", "below_top"}, default "near_tier"
    label : {"reach", "sustain"}, default "reach"
    sustain_months : int, default 3
        Consecutive months at or above the next tier for ``sustain``.
    as_of_months : list of str or None, default None
        As-of months to stack; None: every month with ``min_history`` months before it
        and a full label window after it.
    min_history : int, default 6
    test_months, valid_months : int, default 2
        The out-of-time split (last months test, the ones before validate).
    features : list of str or None, default None
        None: every feature built plus the tier features.
    model : mapping, default {}
        Parameters of :class:`segments.core.upgrade.UpgradeModel` (e.g. ``num_leaves``).
    tier_values : mapping of str to float, default {}
        The bank's value of reaching each tier, for the value-weighted expected gain.
    capacity_per_rm, rms_per_branch : int, default 50, 2
        For the call list.
    reasons_k : int, default 3
        Reason codes per customer.
    reasons_direction : {"up", "down", "both"}, default "up"
        Reasons that raise the probability, hold it back, or both.
    """

    horizon: int = 3
    population: str = "near_tier"
    label: str = "reach"
    sustain_months: int = 3
    as_of_months: tuple[str, ...] | None = None
    min_history: int = 6
    test_months: int = 2
    valid_months: int = 2
    features: tuple[str, ...] | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    tier_values: Mapping[str, float] = field(default_factory=dict)
    capacity_per_rm: int = 50
    rms_per_branch: int = 2
    reasons_k: int = 3
    reasons_direction: str = "up"

    def __post_init__(self) -> None:
        problems = []
        if self.reasons_direction not in ("up", "down", "both"):
            problems.append(
                Violation(
                    "upgrade.reasons_direction",
                    f"is {self.reasons_direction!r}; expected up, down or both",
                )
            )
        for key in (
            "horizon",
            "sustain_months",
            "min_history",
            "test_months",
            "valid_months",
            "capacity_per_rm",
            "rms_per_branch",
            "reasons_k",
        ):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(
                    Violation(f"upgrade.{key}", f"is {value!r}; expected a whole number >= 1")
                )
        if isinstance(self.reasons_k, int) and self.reasons_k > MAX_REASONS:
            problems.append(
                Violation(
                    "upgrade.reasons_k",
                    f"is {self.reasons_k!r}; expected "
                    f"at most {MAX_REASONS} reason codes per customer",
                )
            )
        if self.population not in ("near_tier", "below_top"):
            problems.append(
                Violation(
                    "upgrade.population", f"is {self.population!r}; expected near_tier or below_top"
                )
            )
        if self.label not in ("reach", "sustain"):
            problems.append(
                Violation("upgrade.label", f"is {self.label!r}; expected reach or sustain")
            )
        known = {
            "n_estimators",
            "learning_rate",
            "num_leaves",
            "max_depth",
            "min_child_samples",
            "subsample",
            "colsample_bytree",
            "reg_lambda",
            "class_weight",
            "calibration",
            "early_stopping_rounds",
            "random_state",
        }
        if not isinstance(self.model, Mapping):
            problems.append(Violation("upgrade.model", "must be a mapping"))
        else:
            for key in sorted(set(self.model) - known):
                problems.append(
                    Violation(
                        f"upgrade.model.{key}",
                        "is not a model parameter",
                        hint=f"known: {sorted(known)}",
                    )
                )
        if problems:
            raise ConfigError(problems)


#: Promotion thresholds per model kind: name -> default. Each is checked by
#: :func:`segments.mlops.registry.promote` against the metrics logged by the training run.
PROMOTION_THRESHOLDS: dict[str, dict[str, float]] = {
    "upgrade": {"min_auc": 0.6, "min_auc_gain_over_rule": 0.0, "max_ece": 0.1},
    "groups": {"min_stability": 0.8, "min_group_jaccard": 0.6, "min_surrogate_fidelity": 0.8},
}


@dataclass(frozen=True)
class RegistryConfig:
    """Where trained models are registered and what a promotion to ``champion`` requires.

    Parameters
    ----------
    register : bool, default True
        Register every tracked training as a new model version with the alias
        ``challenger``.
    groups_model, upgrade_model : str or None, default None
        Registered model names; None: ``"<experiment>-groups"`` and
        ``"<experiment>-upgrade"``.
    promotion : mapping, default see :data:`PROMOTION_THRESHOLDS`
        Per model kind (``upgrade``, ``groups``), the thresholds a version's logged
        metrics must meet: ``min_auc`` (out-of-time ROC-AUC), ``min_auc_gain_over_rule``
        (AUC minus the rule of thumb's must be above this), ``max_ece`` (calibration
        error); ``min_stability`` (bootstrap ARI), ``min_group_jaccard`` (smallest group's
        bootstrap Jaccard), ``min_surrogate_fidelity``.
    """

    register: bool = True
    groups_model: str | None = None
    upgrade_model: str | None = None
    promotion: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: copy.deepcopy(PROMOTION_THRESHOLDS)
    )

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.register, bool):
            problems.append(
                Violation("registry.register", f"is {self.register!r}; expected true or false")
            )
        for key in ("groups_model", "upgrade_model"):
            value = getattr(self, key)
            if value is not None:
                try:
                    check_model_name(value, f"registry.{key}")
                except ConfigError as exc:
                    problems.extend(exc.violations)
        merged: dict[str, dict[str, float]] = copy.deepcopy(PROMOTION_THRESHOLDS)
        if not isinstance(self.promotion, Mapping):
            problems.append(Violation("registry.promotion", "must be a mapping"))
        else:
            for kind, values in self.promotion.items():
                if kind not in PROMOTION_THRESHOLDS:
                    problems.append(
                        Violation(
                            f"registry.promotion.{kind}",
                            "is not a model kind",
                            hint="known: groups, upgrade",
                        )
                    )
                    continue
                if not isinstance(values, Mapping):
                    problems.append(Violation(f"registry.promotion.{kind}", "must be a mapping"))
                    continue
                for key, value in values.items():
                    where = f"registry.promotion.{kind}.{key}"
                    if key not in PROMOTION_THRESHOLDS[kind]:
                        problems.append(
                            Violation(
                                where,
                                "is not a threshold",
                                hint=f"known: {sorted(PROMOTION_THRESHOLDS[kind])}",
                            )
                        )
                    elif not isinstance(value, int | float) or isinstance(value, bool):
                        problems.append(Violation(where, f"is {value!r}; expected a number"))
                    else:
                        merged[kind][key] = float(value)
        if problems:
            raise ConfigError(problems)
        object.__setattr__(self, "promotion", merged)

    def model_name(self, kind: str, experiment: str) -> str:
        """The registered model name for ``kind`` (``groups`` or ``upgrade``)."""
        return getattr(self, f"{kind}_model") or f"{experiment}-{kind}"


@dataclass(frozen=True)
class ScoringConfig:
    """How the monthly batch scoring runs and what it flags.

    Parameters
    ----------
    engine : {"local", "spark"}, default "local"
    batch_customers : int, default 100_000
        About how many customers a batch (local) or partition (Spark) holds.
    spark_master : str or None, default None
        A Spark master URL; None: ``SEGMENTS_SPARK_MASTER`` or ``local[2]``.
    psi_warn, psi_alert : float, default 0.1, 0.25
        PSI above ``psi_warn`` is a moderate shift, above ``psi_alert`` significant (a
        warning on the command line).
    fail_on_drift : bool, default False
        Exit non-zero (after writing the output) when any PSI is above ``psi_alert``.
    """

    engine: str = "local"
    batch_customers: int = 100_000
    spark_master: str | None = None
    psi_warn: float = 0.1
    psi_alert: float = 0.25
    fail_on_drift: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.engine not in ("local", "spark"):
            problems.append(
                Violation("scoring.engine", f"is {self.engine!r}; expected local or spark")
            )
        if (
            not isinstance(self.batch_customers, int)
            or isinstance(self.batch_customers, bool)
            or self.batch_customers < 1
        ):
            problems.append(
                Violation(
                    "scoring.batch_customers",
                    f"is {self.batch_customers!r}; expected a whole number >= 1",
                )
            )
        for key in ("psi_warn", "psi_alert"):
            value = getattr(self, key)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value <= 0
            ):
                problems.append(
                    Violation(f"scoring.{key}", f"is {value!r}; expected a positive number")
                )
        if not problems and self.psi_warn >= self.psi_alert:
            problems.append(
                Violation(
                    "scoring.psi_warn",
                    f"is {self.psi_warn!r}, not below "
                    f"scoring.psi_alert ({self.psi_alert!r}); a moderate "
                    "shift must be flagged before a significant one",
                )
            )
        if not isinstance(self.fail_on_drift, bool):
            problems.append(
                Violation(
                    "scoring.fail_on_drift", f"is {self.fail_on_drift!r}; expected true or false"
                )
            )
        if problems:
            raise ConfigError(problems)


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
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


_SECTIONS: dict[str, type] = {
    "panel": PanelConfig,
    "tiers": TiersConfig,
    "features": FeaturesConfig,
    "groups": GroupsConfig,
    "upgrade": UpgradeConfig,
    "registry": RegistryConfig,
    "scoring": ScoringConfig,
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
        file sets ``name``.
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
    if "tiers" in sections:  # the ladder is loaded now, so a bad one fails before any work
        from segments.core.ladders import load_ladder

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
    name = raw.get("name", "default")
    if not isinstance(name, str) or not name:
        problems.append(Violation("name", f"must be a non-empty string, got {name!r}"))
    if problems:
        raise ConfigError(problems, source=str(path) if path else "")
    return ExperimentConfig(name=name, raw=raw, **sections)
