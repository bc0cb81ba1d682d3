"""Training the strategic groups: features, the fit, profiles, names, the surrogate and
migration (the upgrade model: :mod:`segments.jobs.train_upgrade`).

The jobs have no side effects; :mod:`segments.jobs.log_training` logs their results."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from segments.core.config.experiment import ExperimentConfig, load_config
from segments.core.data.panel import MONTH
from segments.core.features import build_features
from segments.core.groups.model import StrategicGroups
from segments.core.groups.profiles import (
    load_names,
    persona_cards,
    profile_groups,
    suggest_names,
    tier_group_matrix,
)
from segments.core.tiers.assign import assign_tiers
from segments.core.tiers.ladders import load_ladder

__all__ = ["GroupsResult", "check_history", "groups_summary_json", "train_groups"]


@dataclass
class GroupsResult:
    """Everything a strategic-group training produced.

    Attributes
    ----------
    model : StrategicGroups
    as_of : str
    features : DataFrame
        The feature table (one row per customer) the model was fitted on.
    groups : Series
        Group id per customer.
    profile : dict of DataFrame
        See :func:`segments.core.groups.profiles.profile_groups`.
    names : DataFrame
        ``name_en``, ``name_zh`` per group id.
    cards : dict
        Persona card (Markdown) per group id.
    surrogate : GroupSurrogate
        The classifier that explains membership, with its fidelity.
    migration : DataFrame or None
        Group transition matrix (same model) from ``groups.migration_months`` before the
        as-of month to the as-of month.
    tier_group : dict of DataFrame
        See :func:`segments.core.groups.profiles.tier_group_matrix`.
    config : ExperimentConfig
        The configuration the model was trained with.
    ladder : str
        The tier ladder's name.
    run_id, model_uri : str or None
        The MLflow run and logged model, once logged.
    registered_model, model_version : str or None
        The registered model and the version (aliased ``challenger``), when registered.
    """

    model: StrategicGroups
    as_of: str
    features: pd.DataFrame
    groups: pd.Series
    profile: dict[str, pd.DataFrame]
    names: pd.DataFrame
    cards: dict[Any, str]
    tier_group: dict[str, pd.DataFrame]
    metrics: dict[str, float] = field(default_factory=dict)
    reference_crosstab: pd.DataFrame | None = None
    surrogate: Any = None
    migration: pd.DataFrame | None = None
    config: ExperimentConfig | None = None
    ladder: str = ""
    run_id: str | None = None
    model_uri: str | None = None
    registered_model: str | None = None
    model_version: str | None = None


def _metrics(model: StrategicGroups, summary: pd.DataFrame) -> dict[str, float]:
    m: dict[str, float] = {
        "n_groups": float(model.n_groups_),
        "stability_ari_mean": model.stability_["ari_mean"],
        "stability_ari_min": model.stability_["ari_min"],
    }
    jac = model.stability_["jaccard"]
    if jac:
        m["stability_jaccard_min"] = float(min(jac.values()))
        m.update({f"stability_jaccard_group_{g}": float(v) for g, v in jac.items()})
    m.update({f"share_group_{g}": float(v) for g, v in summary["share"].items()})
    m["smallest_group_share"] = float(summary["share"].min())
    if model.k_selection_ is not None:
        chosen = model.k_selection_.set_index("k").loc[model.n_groups_]
        for c in ("silhouette", "calinski_harabasz", "davies_bouldin", "stability", "bic"):
            if c in chosen and pd.notna(chosen[c]):
                m[f"chosen_{c}"] = float(chosen[c])
    return m


def train_groups(
    panel: pd.DataFrame,
    config: ExperimentConfig | None = None,
    *,
    as_of: str | None = None,
    previous: StrategicGroups | None = None,
    reference: pd.Series | None = None,
    track: bool = False,
) -> GroupsResult:
    """Build features, fit the strategic groups, profile and name them.

    Nothing is written: logging the run to MLflow is an explicit step,
    :func:`segments.log_groups` (or ``track=True``).

    Parameters
    ----------
    panel : DataFrame
        A validated panel.
    config : ExperimentConfig, optional
        Default: the packaged defaults.
    as_of : str, optional
        Overrides ``config.groups.as_of`` (default: the panel's last month).
    previous : StrategicGroups, optional
        A previous model whose ids matching groups keep.
    reference : Series, optional
        Known labels per ``customer_id`` (e.g. the synthetic bank's planted personas), used
        only after fitting to report the adjusted Rand index (``reference_ari``) and a
        crosstab; never seen by the estimator.
    track : bool, default False
        Also log the run to MLflow (params, data digest, metrics, plots, tables, model,
        registration), as :func:`segments.log_groups` does.

    Returns
    -------
    GroupsResult
    """
    cfg = config or load_config()
    month = pd.Period(as_of or cfg.groups.as_of or panel[MONTH].max(), "M")
    check_history(panel, month, cfg.features.windows)
    X = build_features(panel, month, windows=cfg.features.windows)
    model = StrategicGroups(**cfg.groups.estimator_params()).fit(X, previous=previous)
    groups = pd.Series(model.labels_, index=X.index, name="group_id")
    ladder = load_ladder(
        cfg.tiers.ladder, basis_window=cfg.tiers.basis_window, hysteresis=cfg.tiers.hysteresis
    )
    tiers = assign_tiers(panel, ladder)
    tiers_now = tiers[tiers[MONTH] == month]
    profile = profile_groups(X, model.labels_, tiers=tiers_now)
    names = suggest_names(profile["z"])
    if cfg.groups.names_file:
        names = load_names(cfg.groups.names_file, names)
    from segments.core.explain.reasons import GroupSurrogate

    rng = np.random.default_rng(cfg.groups.random_state)
    sample = (
        np.arange(len(X))
        if len(X) <= cfg.groups.selection_size
        else np.sort(rng.choice(len(X), cfg.groups.selection_size, replace=False))
    )
    surrogate = GroupSurrogate(random_state=cfg.groups.random_state).fit(
        X.iloc[sample][model.features_], model.labels_[sample]
    )
    cards = persona_cards(profile, names, X, model.labels_, surrogate=surrogate)
    tg = tier_group_matrix(tiers_now, groups)
    metrics = _metrics(model, profile["summary"])
    metrics["surrogate_fidelity"] = surrogate.fidelity_
    migration = _migration(panel, model, groups, month, cfg, metrics)
    crosstab = _against_reference(reference, X, model, groups, metrics)
    result = GroupsResult(
        model,
        str(month),
        X,
        groups,
        profile,
        names,
        cards,
        tg,
        metrics,
        reference_crosstab=crosstab,
        surrogate=surrogate,
        migration=migration,
        config=cfg,
        ladder=ladder.name,
    )
    if track:
        from segments.jobs.log_training import log_groups

        log_groups(result, panel)
    return result


def check_history(panel: pd.DataFrame, month: pd.Period, windows: tuple[int, ...]) -> None:
    """Refuse an as-of month with fewer months of history than the shortest feature window
    (every windowed feature would be empty); warn below the longest.

    History is the number of months the panel holds up to ``month``, as scoring counts it.

    Raises
    ------
    ConfigError
        Naming ``--as-of``, the month and the history it has.
    """
    from segments.exceptions import ConfigError, SegmentsWarning, Violation

    history = int((panel[MONTH].drop_duplicates() <= month).sum())
    if 0 < history < min(windows):  # every windowed feature would be empty
        raise ConfigError(
            [
                Violation(
                    "--as-of",
                    f"{month}: the panel has {history} month(s) "
                    f"up to it, fewer than the shortest feature window "
                    f"({min(windows)} months)",
                    hint="train on a later month",
                )
            ]
        )
    if 0 < history < max(windows):
        warnings.warn(
            SegmentsWarning(
                f"the panel has {history} month(s) up to {month}: features over "
                f"{', '.join(str(w) for w in windows if w > history)} months summarise only "
                "those"
            ),
            stacklevel=2,
        )


def _migration(
    panel: pd.DataFrame,
    model: StrategicGroups,
    groups: pd.Series,
    month: pd.Period,
    cfg: ExperimentConfig,
    metrics: dict[str, float],
) -> pd.DataFrame | None:
    """Group transitions (same model) from ``groups.migration_months`` before ``month``;
    adds ``group_stay_rate`` to ``metrics``. None when the panel does not reach back."""
    start = month - cfg.groups.migration_months
    if not (cfg.groups.migration_months > 0 and start >= panel[MONTH].min()):
        return None
    from segments.core.groups.profiles import group_migration

    X_then = build_features(panel, start, windows=cfg.features.windows)
    then = pd.Series(model.predict(X_then), index=X_then.index)
    migration = group_migration(then, groups)
    moved = migration.to_numpy()
    metrics["group_stay_rate"] = (
        float(np.trace(moved) / moved.sum())
        if moved.sum() and migration.shape[0] == migration.shape[1]
        else float("nan")
    )
    return migration


def _against_reference(
    reference: pd.Series | None,
    X: pd.DataFrame,
    model: StrategicGroups,
    groups: pd.Series,
    metrics: dict[str, float],
) -> pd.DataFrame | None:
    """Adjusted Rand index against known labels (``reference_ari`` in ``metrics``) and the
    crosstab; never seen by the estimator. None without a reference."""
    if reference is None:
        return None
    from sklearn.metrics import adjusted_rand_score

    ref = reference.reindex(X.index)
    known = ref.notna().to_numpy()
    metrics["reference_ari"] = float(
        adjusted_rand_score(ref[known].astype(str), model.labels_[known])
    )
    crosstab = pd.crosstab(ref[known].rename("reference"), groups[known].rename("group_id"))
    return crosstab


def groups_summary_json(result: GroupsResult) -> str:
    """A compact JSON summary of a groups training (for logs and the CLI)."""
    s = result.profile["summary"].join(result.names)
    return json.dumps(
        {
            "as_of": result.as_of,
            "n_groups": int(result.model.n_groups_),
            "groups": {
                int(g): {"name": r["name_en"], "share": float(r["share"])} for g, r in s.iterrows()
            },
            "metrics": {k: float(v) for k, v in result.metrics.items() if np.isfinite(v)},
        },
        indent=2,
    )
