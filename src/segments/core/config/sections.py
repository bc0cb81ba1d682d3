"""The sections of an experiment configuration, each validated when it is built.

The ``groups`` section and ``upgrade.model`` hold estimator parameters: their names,
defaults and allowed values come from the estimators themselves (:class:`StrategicGroups`,
:class:`UpgradeModel`: ``__init__`` and ``_parameter_constraints``), so they are declared
once, in the estimator.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from segments.core.config.params import check_params, estimator_defaults
from segments.core.config.presets import FROM_LADDER, check_model_name
from segments.core.drift import THRESHOLDS as PSI_THRESHOLDS
from segments.core.explain.reasons import DIRECTIONS
from segments.core.features import DEFAULT_WINDOWS
from segments.core.features.own import OwnColumn
from segments.core.features.own_checks import parse_columns
from segments.core.groups.algorithms import check_k_range
from segments.core.groups.model import StrategicGroups
from segments.core.upgrade.labels import LABEL_KINDS, POPULATIONS, deploy_problems
from segments.core.upgrade.model import UpgradeModel
from segments.exceptions import ConfigError, Violation

__all__ = [
    "MAX_REASONS",
    "PROMOTION_THRESHOLDS",
    "FeaturesConfig",
    "GroupsConfig",
    "RegistryConfig",
    "ScoringConfig",
    "TiersConfig",
    "UpgradeConfig",
]

#: The most reason codes a customer's row carries (each adds five output columns).
MAX_REASONS = 20


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
        Windows in months for the windowed features. Nothing is added: a feature whose own
        window is longer than the longest is not built, and a training run leaves out the
        features whose window is longer than its panel's history (and says which).
    columns : list of mapping or OwnColumn, default []
        The bank's own panel columns declared as features
        (:mod:`segments.core.features.own`), checked here.
    """

    windows: tuple[int, ...] = DEFAULT_WINDOWS
    columns: tuple[OwnColumn, ...] = ()

    def __post_init__(self) -> None:
        ws = self.windows
        problem = ""
        if (
            not isinstance(ws, list | tuple)
            or not ws
            or any(not isinstance(w, int) or isinstance(w, bool) or w < 2 for w in ws)
        ):
            problem = f"is {ws!r}; expected a list of whole numbers >= 2"
        elif len(set(ws)) != len(ws):
            problem = f"is {list(ws)!r}; each window may appear once"
        if problem:
            raise ConfigError([Violation("features.windows", problem)])
        object.__setattr__(self, "windows", tuple(ws))
        object.__setattr__(self, "columns", parse_columns(self.columns, self.windows))


#: Settings of the ``groups`` section that are not :class:`StrategicGroups` parameters.
_GROUPS_OWN = ("as_of", "names_file", "migration_months", "fit_size")
#: Where the configuration's default differs from the estimator's: a configured run is
#: reproducible (the estimator keeps scikit-learn's ``random_state=None``).
_GROUPS_CONFIG_DEFAULTS: dict[str, Any] = {"random_state": 0}


def _groups_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """StrategicGroups parameters: the estimator's defaults, the configuration's, then
    ``values`` (``k_min``/``k_max`` become ``k_range``)."""
    params = estimator_defaults(StrategicGroups) | _GROUPS_CONFIG_DEFAULTS
    params.update({k: v for k, v in values.items() if k in params and k != "k_range"})
    lo, hi = params["k_range"]
    params["k_range"] = (values.get("k_min", lo), values.get("k_max", hi))
    if params["features"] is not None and isinstance(params["features"], list | tuple):
        params["features"] = tuple(params["features"])
    return params


def whole_number_or_null(
    values: Mapping[str, Any], key: str, section: str, *, minimum: int = 1
) -> list[Violation]:
    """The problem with an optional whole-number setting (``section.key``), if any."""
    value = values.get(key)
    if value is None or (
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    ):
        return []
    return [
        Violation(f"{section}.{key}", f"is {value!r}; expected a whole number >= {minimum} or null")
    ]


@dataclass(frozen=True)
class GroupsConfig:
    """How strategic groups are trained: the ``groups`` section.

    Every parameter of :class:`segments.StrategicGroups` may be set here (defaults: the
    estimator's own, but ``random_state`` 0), checked against the estimator's declared
    constraints, except that ``k_range`` is written ``k_min`` and ``k_max``. The section's
    own settings: ``as_of`` (YYYY-MM, default the panel's last month) is the month features
    are built at; ``names_file`` a YAML that overrides suggested names;
    ``migration_months`` how many months before ``as_of`` the group migration matrix starts
    (0: none); ``fit_size`` (default 250,000) the most customers the groups are fitted on:
    a larger book is fitted on a sample of that size stratified by tier
    (:func:`segments.core.sampling.stratified_sample`), and everyone is assigned (null: fit on
    everyone).

    The estimator parameters read as attributes (``cfg.groups.n_init``, ``cfg.groups.k_max``).
    """

    as_of: str | None = None
    names_file: str | None = None
    migration_months: int = 3
    fit_size: int | None = 250_000
    params: Mapping[str, Any] = field(default_factory=lambda: _groups_params({}))

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("params")
        if params is not None and not name.startswith("_"):
            if name in ("k_min", "k_max"):
                return params["k_range"][name == "k_max"]
            if name in params:
                return params[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> GroupsConfig:
        """The section from YAML values; every unknown key and invalid value at once.

        Raises
        ------
        ConfigError
            Naming the setting (``groups.winsor``), the value and what is allowed.
        """
        problems = check_params(
            StrategicGroups,
            values,
            "groups",
            exclude=("k_range",),
            extra=(*_GROUPS_OWN, "k_min", "k_max"),
        )
        params = _groups_params(values)
        problem = check_k_range(params["k_range"])
        if problem:
            lo, hi = params["k_range"]
            problems.append(
                Violation(
                    "groups.k_min",
                    f"is {lo!r} with groups.k_max {hi!r}; expected whole numbers "
                    "with 2 <= k_min <= k_max",
                )
            )
        months = values.get("migration_months", 3)
        if not isinstance(months, int) or isinstance(months, bool) or months < 0:
            problems.append(
                Violation("groups.migration_months", f"is {months!r}; expected a whole number >= 0")
            )
        problems += whole_number_or_null(values, "fit_size", "groups", minimum=2)
        for key in ("as_of", "names_file"):
            if values.get(key) is not None and not isinstance(values[key], str):
                problems.append(Violation(f"groups.{key}", f"is {values[key]!r}; expected text"))
        if problems:
            raise ConfigError(problems)
        return cls(**{k: values[k] for k in _GROUPS_OWN if k in values}, params=params)

    def as_raw(self) -> dict[str, Any]:
        """The section as YAML values, every default filled in (what a run logs)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in _GROUPS_OWN}
        for key, value in self.params.items():
            if key == "k_range":
                out["k_min"], out["k_max"] = value
            else:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments for :class:`segments.StrategicGroups`."""
        params = dict(self.params)
        params["features"] = list(params["features"]) if params["features"] else None
        return params


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
        Months of history before an as-of month, at most: fewer when the longest feature
        window reads fewer (``features.windows: [2, 3]`` needs 2).
    test_months, valid_months : int, default 2
        The out-of-time split (last months test, the ones before validate).
    features : list of str or None, default None
        None: every feature built plus the tier features.
    model : mapping, default {}
        Parameters of :class:`segments.core.upgrade.model.UpgradeModel` (e.g. ``num_leaves``),
        checked against the estimator's declared constraints; unset ones keep the
        estimator's defaults. ``features`` is set above, not here.
    tier_values : mapping of str to float, default {}
        The bank's value of reaching each tier, for the value-weighted expected gain.
    capacity_per_rm, rms_per_branch : int, default 50, 2
        For the call list.
    reasons_k : int, default 3
        Reason codes per customer.
    reasons_direction : {"up", "down", "both"}, default "up"
        Reasons that raise the probability, hold it back, or both.
    fit_size : int or None, default 500_000
        The most rows each fit uses: more are sampled, stratified by as-of month, near
        band and label; validation and test rows never are (null: every row).
    deploy : {"all_months", "evaluated"}, default "all_months"
        Log and score the evaluated model refitted on every labelled month (calibrated
        on the test months), or the evaluated model itself.
    seasonality : {"auto", true, false}, default "auto"
        The calendar month as a feature (``month_of_year``); ``auto``: when the labelled
        as-of months cover all twelve.
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
    fit_size: int | None = 500_000
    deploy: str = "all_months"
    seasonality: str | bool = "auto"

    def __post_init__(self) -> None:
        problems = []
        problems += deploy_problems(self.deploy, self.seasonality)
        if self.reasons_direction not in DIRECTIONS:
            problems.append(
                Violation(
                    "upgrade.reasons_direction",
                    f"is {self.reasons_direction!r}; expected {' or '.join(DIRECTIONS)}",
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
        problems += whole_number_or_null(
            {"fit_size": self.fit_size}, "fit_size", "upgrade", minimum=2
        )
        if self.population not in POPULATIONS:
            problems.append(
                Violation(
                    "upgrade.population",
                    f"is {self.population!r}; expected {' or '.join(POPULATIONS)}",
                )
            )
        if self.label not in LABEL_KINDS:
            problems.append(
                Violation(
                    "upgrade.label", f"is {self.label!r}; expected {' or '.join(LABEL_KINDS)}"
                )
            )
        if not isinstance(self.model, Mapping):
            problems.append(Violation("upgrade.model", "must be a mapping"))
        else:
            problems += check_params(
                UpgradeModel, self.model, "upgrade.model", exclude=("features",)
            )
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> UpgradeConfig:
        """The section from YAML values; every unknown key and invalid value at once.

        An :class:`UpgradeModel` parameter written at the top of the section (not under
        ``model``) is named as such, with what is wrong with its value.
        """
        fields = set(cls.__dataclass_fields__)
        model_params = set(estimator_defaults(UpgradeModel)) - {"features"}
        problems = []
        for key in [k for k in values if k not in fields]:
            if key in model_params:
                wrong = check_params(UpgradeModel, {key: values[key]}, "upgrade.model")
                problems.append(
                    Violation(
                        f"upgrade.{key}",
                        "is an UpgradeModel parameter: set it under upgrade.model"
                        + (f" ({wrong[0].problem})" if wrong else ""),
                    )
                )
            else:
                problems.append(
                    Violation(
                        f"upgrade.{key}", "is not a known option", hint=f"known: {sorted(fields)}"
                    )
                )
        try:
            section = cls(**{k: v for k, v in values.items() if k in fields})
        except ConfigError as exc:
            problems = exc.violations + problems
            section = None
        except TypeError as exc:
            problems.append(Violation("upgrade", str(exc)))
            section = None
        if problems or section is None:
            raise ConfigError(problems)
        return section


#: Promotion thresholds per model kind: name -> default. Each is checked by
#: :func:`segments.mlops.promotion.promote` against the metrics logged by the training run.
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
    batch_customers : int, default 50_000
        About how many customers a batch (local) or partition (Spark) holds. A local
        worker holds about 1 GB at 50,000 (24 months, every contract column); measured in
        ``BENCHMARKS.md``.
    workers : int or None, default None
        The local engine's worker processes; None: one per core for inputs of 500,000
        rows or more, none (inline) below.
    spark_master : str or None, default None
        A Spark master URL; None: ``SEGMENTS_SPARK_MASTER`` or ``local[2]``.
    psi_warn, psi_alert : float, default 0.1, 0.25
        PSI above ``psi_warn`` is a moderate shift, above ``psi_alert`` significant (a
        warning on the command line).
    fail_on_drift : bool, default False
        Exit non-zero (after writing the output) when any PSI is above ``psi_alert``.
    """

    engine: str = "local"
    batch_customers: int = 50_000
    workers: int | None = None
    spark_master: str | None = None
    psi_warn: float = PSI_THRESHOLDS[0]
    psi_alert: float = PSI_THRESHOLDS[1]
    fail_on_drift: bool = False

    def __post_init__(self) -> None:
        problems = []
        # Which engines exist is the engine registry's to say (segments.engines.ENGINES,
        # checked when a job is prepared); here only the shape of the setting.
        if not isinstance(self.engine, str) or not self.engine.isidentifier():
            problems.append(
                Violation("scoring.engine", f"is {self.engine!r}; expected an engine's name")
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
        problems += whole_number_or_null({"workers": self.workers}, "workers", "scoring")
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
