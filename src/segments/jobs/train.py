"""Training the strategic groups: features, the fit, profiles, names, the surrogate and
migration (the upgrade model: :mod:`segments.jobs.train_upgrade`).

The jobs have no side effects; :mod:`segments.jobs.log_training` logs their results."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from segments.core.config.experiment import ExperimentConfig, load_config
from segments.core.data.digest import panel_digest
from segments.core.data.panel import ID, MONTH, PanelSummary, inspect_panel
from segments.core.features import build_features
from segments.core.features.builder import check_as_of, check_history, check_windows
from segments.core.features.own import config_columns, declaring
from segments.core.groups.model import StrategicGroups
from segments.core.groups.profiles import (
    load_names,
    persona_cards,
    profile_groups,
    suggest_names,
    tier_group_matrix,
)
from segments.core.sampling import FitSample, stratified_sample
from segments.core.tiers.assign import assign_tiers, check_ladder_history
from segments.core.tiers.ladders import load_ladder
from segments.jobs.batched import concat_frames, run_validated, training_columns

__all__ = [
    "GroupsInputs",
    "GroupsResult",
    "GroupsWork",
    "check_history",
    "groups_summary_json",
    "train_groups",
]


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
    panel : PanelSummary
        The panel trained on: rows, customers, months, digest.
    fit_sample : FitSample
        The customers the groups were fitted on (all, or a stratified sample).
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
    panel: PanelSummary | None = None
    fit_sample: FitSample | None = None
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


@dataclass(frozen=True)
class GroupsInputs:
    """What a groups training reads from the panel: the features at the as-of month, the
    tier table's rows of that month, and the features at the migration month (None when
    there is none). Each is per customer, so a batch's inputs are the whole's rows."""

    features: pd.DataFrame | None
    tiers: pd.DataFrame | None
    then: pd.DataFrame | None = None


@dataclass(frozen=True)
class GroupsWork:
    """A batch's (or the whole panel's) :class:`GroupsInputs`."""

    month: str
    then: str | None
    windows: tuple[int, ...]
    ladder: Any

    def __call__(self, frame: pd.DataFrame) -> GroupsInputs:
        month = pd.Period(self.month, "M")
        months = frame[MONTH]
        if not (months == month).any():
            return GroupsInputs(None, None)
        X = build_features(frame, month, windows=self.windows)
        tiers = assign_tiers(frame, self.ladder, check_history=False)  # checked before
        now = tiers[tiers[MONTH] == month].reset_index(drop=True)
        then = None
        if self.then is not None and (months == pd.Period(self.then, "M")).any():
            then = build_features(frame, pd.Period(self.then, "M"), windows=self.windows)
        return GroupsInputs(X, now, then)


@declaring(config_columns)  # the bank's own columns registered while it runs
def train_groups(
    panel: pd.DataFrame | str | os.PathLike[str],
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
    panel : DataFrame or path
        A validated panel, or a panel file (Parquet file, folder of parts, CSV): a file is
        validated and its features built in batches of whole customers on every core
        (``scoring.batch_customers``, ``scoring.workers``), never held whole.
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
        With ``fit_sample``: the customers the groups were fitted on. Up to
        ``groups.fit_size`` customers, everyone; above it, a sample of that size
        stratified by tier. Every customer is assigned, profiled and counted either way.

    Raises
    ------
    PanelValidationError
        A panel file breaks the data contract (every problem of every batch).
    ConfigError
        The as-of month has less history than the shortest feature window.
    """
    cfg = config or load_config()
    ladder = load_ladder(
        cfg.tiers.ladder, basis_window=cfg.tiers.basis_window, hysteresis=cfg.tiers.hysteresis
    )
    inputs, summary, month = _groups_inputs(panel, cfg, ladder, as_of)
    X, tiers_now = inputs.features, inputs.tiers
    assert X is not None and tiers_now is not None
    rs = cfg.groups.random_state
    strata = tiers_now.set_index(ID)["tier"].reindex(X.index).rename("tier")
    rows = stratified_sample(strata, cfg.groups.fit_size or len(X), rs)
    fit_sample = FitSample(len(rows), len(X), ("tier",))
    model = StrategicGroups(**cfg.groups.estimator_params())
    if fit_sample.sampled:
        model.fit(X.iloc[rows], previous=previous)
        labels = model.predict(X)
    else:
        labels = model.fit(X, previous=previous).labels_
    groups = pd.Series(labels, index=X.index, name="group_id")
    profile = profile_groups(X, labels, tiers=tiers_now)
    names = suggest_names(profile["z"])
    if cfg.groups.names_file:
        names = load_names(cfg.groups.names_file, names)
    from segments.core.explain.reasons import GroupSurrogate

    rng = np.random.default_rng(rs)
    sample = (
        np.arange(len(X))
        if len(X) <= cfg.groups.selection_size
        else np.sort(rng.choice(len(X), cfg.groups.selection_size, replace=False))
    )
    surrogate = GroupSurrogate(random_state=rs).fit(X.iloc[sample][model.features_], labels[sample])
    from segments.core.plan import service_mix

    service = service_mix(tiers_now, groups, cfg.service.load())
    cards = persona_cards(profile, names, X, labels, surrogate=surrogate, service=service)
    tg = tier_group_matrix(tiers_now, groups, aum=X["aum"])  # money, on any ladder
    metrics = _metrics(model, profile["summary"])
    metrics["surrogate_fidelity"] = surrogate.fidelity_
    migration = _migration(inputs.then, model, groups, metrics)
    crosstab = _against_reference(reference, X, labels, groups, metrics)
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
        panel=summary,
        fit_sample=fit_sample,
    )
    if track:
        from segments.jobs.log_training import log_groups

        log_groups(result)
    return result


def _groups_inputs(
    panel: pd.DataFrame | str | os.PathLike[str],
    cfg: ExperimentConfig,
    ladder: Any,
    as_of: str | None,
) -> tuple[GroupsInputs, PanelSummary, pd.Period]:
    """The features, tiers and migration features of a frame, or of a file in batches;
    the panel's summary; the as-of month. Refuses an as-of month without enough history
    before reading any row of a file."""
    windows = tuple(cfg.features.windows)
    if isinstance(panel, pd.DataFrame):
        months = sorted(pd.unique(panel[MONTH]))
        summary = PanelSummary.of_frame(panel, panel_digest(panel, ladder.columns))
    else:
        found = inspect_panel(panel, cfg.panel, months=True)
        months = list(found.months or ())
    month = pd.Period(as_of or cfg.groups.as_of or max(months), "M")
    check_ladder_history(ladder, (month - pd.Period(min(months), "M")).n + 1)
    left_out = check_history(months, month, windows)
    start = month - cfg.groups.migration_months
    then = str(start) if cfg.groups.migration_months > 0 and start >= min(months) else None
    work = GroupsWork(str(month), then, windows, ladder)
    if isinstance(panel, pd.DataFrame):
        return _without(work(panel), left_out), summary, month
    check_as_of(months, month, str(panel))
    sc = cfg.scoring
    parts, summary = run_validated(
        panel,
        found,
        cfg.panel,
        training_columns(found, cfg.panel, ladder.columns),
        work,
        batch_customers=sc.batch_customers,
        workers=sc.workers,
        ladder_columns=ladder.columns,
    )
    X = concat_frames([p.features for p in parts])
    X.attrs.update(as_of=str(month), windows=list(check_windows(windows)))
    tiers = concat_frames([p.tiers for p in parts], by=[ID])
    X_then = None
    if then is not None:
        X_then = concat_frames([p.then for p in parts])
    return _without(GroupsInputs(X, tiers, X_then), left_out), summary, month


def _without(inputs: GroupsInputs, features: list[str]) -> GroupsInputs:
    """The inputs without ``features`` (left out: longer than the history); the features
    table names them in ``attrs["not_built"]``."""
    if inputs.features is not None:
        inputs.features.attrs["not_built"] = list(features)
    if not features:
        return inputs
    X, then = (
        None if f is None else f.drop(columns=[c for c in features if c in f.columns])
        for f in (inputs.features, inputs.then)
    )
    return replace(inputs, features=X, then=then)


def _migration(
    X_then: pd.DataFrame | None,
    model: StrategicGroups,
    groups: pd.Series,
    metrics: dict[str, float],
) -> pd.DataFrame | None:
    """Group transitions (same model) from the features ``groups.migration_months`` before
    the as-of month; adds ``group_stay_rate`` to ``metrics``. None when the panel does not
    reach back."""
    if X_then is None:
        return None
    from segments.core.groups.profiles import group_migration

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
    labels: np.ndarray,
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
    metrics["reference_ari"] = float(adjusted_rand_score(ref[known].astype(str), labels[known]))
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
