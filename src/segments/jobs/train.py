"""Training jobs: from a validated panel and a config to fitted, profiled, tracked models."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from segments.core.config import ExperimentConfig, load_config
from segments.core.features import build_features
from segments.core.groups import StrategicGroups
from segments.core.panel import ID, MONTH
from segments.core.profiles import (
    load_names,
    persona_cards,
    profile_groups,
    suggest_names,
    tier_group_matrix,
)
from segments.core.tiers import assign_tiers, load_ladder

__all__ = ["GroupsResult", "train_groups"]


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
        See :func:`segments.core.profiles.profile_groups`.
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
        See :func:`segments.core.profiles.tier_group_matrix`.
    run_id, model_uri : str or None
        The MLflow run and logged model, when tracked.
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
    track: bool = True,
) -> GroupsResult:
    """Build features, fit the strategic groups, profile and name them, and track the run.

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
    track : bool, default True
        Log the run to MLflow (params, data digest, metrics, plots, tables, model).

    Returns
    -------
    GroupsResult
    """
    cfg = config or load_config()
    month = pd.Period(as_of or cfg.groups.as_of or panel[MONTH].max(), "M")
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
    from segments.core.explain import GroupSurrogate

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
    migration = None
    start = month - cfg.groups.migration_months
    if cfg.groups.migration_months > 0 and start >= panel[MONTH].min():
        from segments.core.profiles import group_migration

        X_then = build_features(panel, start, windows=cfg.features.windows)
        then = pd.Series(model.predict(X_then), index=X_then.index)
        migration = group_migration(then, groups)
        moved = migration.to_numpy()
        metrics["group_stay_rate"] = (
            float(np.trace(moved) / moved.sum())
            if moved.sum() and migration.shape[0] == migration.shape[1]
            else float("nan")
        )
    crosstab = None
    if reference is not None:
        from sklearn.metrics import adjusted_rand_score

        ref = reference.reindex(X.index)
        known = ref.notna().to_numpy()
        metrics["reference_ari"] = float(
            adjusted_rand_score(ref[known].astype(str), model.labels_[known])
        )
        crosstab = pd.crosstab(ref[known].rename("reference"), groups[known].rename("group_id"))
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
    )
    if track:
        _track_groups(result, panel, cfg, ladder.name)
    return result


def _track_groups(
    result: GroupsResult, panel: pd.DataFrame, cfg: ExperimentConfig, ladder: str
) -> None:
    from segments.mlops import plots
    from segments.mlops.cards import groups_card
    from segments.mlops.tracking import (
        _mlflow,
        code_version,
        data_digest,
        flatten,
        log_card,
        log_frame,
        log_groups_model,
        start_run,
    )

    mlflow = _mlflow()
    model = result.model
    digest = data_digest(panel)
    name = cfg.registry.model_name("groups", cfg.name)
    tags = {
        "segments.model_kind": "groups",
        "segments.ladder": ladder,
        "segments.as_of": result.as_of,
        "segments.data_digest": digest,
        "segments.code_version": code_version(),
        "segments.algorithm": model.algorithm,
        "segments.n_groups": str(model.n_groups_),
        "segments.registered_model": name if cfg.registry.register else "",
    }
    with start_run(cfg.name, f"groups {result.as_of} k={model.n_groups_}", tags) as run:
        params = flatten({k: v for k, v in cfg.raw.items() if k != "name"})
        mlflow.log_params({k: ("" if v is None else str(v))[:500] for k, v in params.items()})
        mlflow.log_params(
            {
                "as_of": result.as_of,
                "n_customers": len(result.features),
                "panel_rows": len(panel),
                "panel_months": f"{panel[MONTH].min()}..{panel[MONTH].max()}",
            }
        )
        with _quiet():
            ds = mlflow.data.from_pandas(
                result.features.reset_index(),
                name="features",
                digest=data_digest(result.features)[:32],
            )
            mlflow.log_input(ds, context="training")
        mlflow.log_metrics(result.metrics)
        if model.k_selection_ is not None:
            for _, row in model.k_selection_.iterrows():
                for c in (
                    "silhouette",
                    "calinski_harabasz",
                    "davies_bouldin",
                    "stability",
                    "bic",
                    "min_share",
                ):
                    if c in row and pd.notna(row[c]):
                        mlflow.log_metric(f"k_{c}", float(row[c]), step=int(row["k"]))
            log_frame(model.k_selection_, "k_selection/criteria.csv", index=False)
            mlflow.log_dict(model.k_selection_report_, "k_selection/report.json")
            mlflow.log_figure(
                plots.k_selection(model.k_selection_, model.n_groups_), "plots/k_selection.png"
            )
        mlflow.log_dict(
            {
                "stability": {
                    "ari_mean": model.stability_["ari_mean"],
                    "ari_min": model.stability_["ari_min"],
                    "jaccard": {str(k): v for k, v in model.stability_["jaccard"].items()},
                }
            },
            "stability.json",
        )
        prof = result.profile
        summary = prof["summary"].join(result.names)
        log_frame(summary, "profiles/summary.csv")
        for key in ("means", "medians", "lift", "z", "tier_mix"):
            if key in prof:
                log_frame(prof[key], f"profiles/{key}.csv")
        log_frame(prof["distinguishing"], "profiles/distinguishing.csv", index=False)
        log_frame(result.names, "names.csv")
        for key, table in result.tier_group.items():
            log_frame(table, f"tier_group/{key}.csv")
        if model.match_report_ is not None:
            log_frame(model.match_report_, "id_matching.csv", index=False)
        if result.migration is not None:
            log_frame(result.migration, "group_migration/counts.csv")
            rates = result.migration.div(result.migration.sum(axis=1), axis=0)
            log_frame(rates, "group_migration/rates.csv")
        if result.reference_crosstab is not None:
            log_frame(result.reference_crosstab, "reference_crosstab.csv")
        if result.surrogate is not None:
            log_frame(
                result.surrogate.top_features(5), "explanations/group_top_features.csv", index=False
            )
            log_frame(result.surrogate.group_importance_, "explanations/group_mean_shap.csv")
            imp = result.surrogate.group_importance_
            top = imp.abs().max().sort_values(ascending=False).index[:15]
            labelled = imp[top].rename(index=lambda g: f"{g}: {result.names.loc[g, 'name_en']}")
            mlflow.log_figure(
                plots.heatmap(
                    labelled,
                    "What places customers in each group "
                    f"(surrogate mean SHAP, fidelity "
                    f"{result.surrogate.fidelity_:.1%})",
                ),
                "explanations/group_shap_heatmap.png",
            )
        mlflow.log_text(
            "\n\n---\n\n".join(result.cards[g] for g in sorted(result.cards)), "persona_cards.md"
        )
        top = prof["z"].abs().max().sort_values(ascending=False).index[:15]
        labelled = prof["z"][top].rename(index=lambda g: f"{g}: {result.names.loc[g, 'name_en']}")
        mlflow.log_figure(
            plots.heatmap(labelled, "Group profiles (standardised difference from all customers)"),
            "plots/profile_heatmap.png",
        )
        share = result.tier_group["share"].drop(index="All", columns="All", errors="ignore")
        mlflow.log_figure(
            plots.heatmap(share * 100, "Tier x group (% of customers)", fmt="{:.1f}", center=False),
            "plots/tier_group.png",
        )
        mlflow.log_figure(plots.group_sizes(prof["summary"], result.names), "plots/group_sizes.png")
        import matplotlib.pyplot as plt

        plt.close("all")
        from segments.core import drift

        reference = {
            "features": drift.profile(result.features),
            "groups": drift.profile(result.groups.astype(str).to_frame("group_id")),
        }
        result.model_uri = log_groups_model(model, result.names, result.features, reference)
        result.run_id = run.info.run_id
        card = groups_card(
            result,
            panel,
            cfg,
            digest=digest,
            ladder=ladder,
            name=name,
            run_id=result.run_id,
            code_version=tags["segments.code_version"],
        )
        log_card(card, f"Model card: {name}", cfg.raw)
    _register(result, "groups", name, cfg, tags)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow's warnings while it logs a dataset input."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


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


@dataclass
class UpgradeResult:
    """Everything an upgrade-model training produced.

    Attributes
    ----------
    model : UpgradeModel
    baselines : dict
        ``rule_of_thumb`` and ``logistic``, fitted on the same training months.
    split : dict
        The as-of months of ``train``, ``valid`` and ``test``.
    label_counts : DataFrame
        Per as-of month: population, positives, negatives, censored, positive rate.
    metrics : DataFrame
        Out-of-time metrics: one row per (model, segment), segment ``all`` or a near band.
    deciles, calibration : dict of DataFrame
        Per model (``"model"``) and per model and near band (``"model.near_gold"``), on
        the test months.
    test : DataFrame
        Test rows with each model's probability, expected gain and ranks.
    call_list : DataFrame
        The last test month's call list by branch and RM capacity.
    importance : Series
        Gain importance of the model's features.
    explainer : UpgradeExplainer
        Exact SHAP values and reason codes of the model.
    shap_importance : DataFrame
        Mean |SHAP| per feature on the test months (largest first).
    contributions : DataFrame
        SHAP values (calibrated log-odds) of every test row.
    run_id, model_uri : str or None
        The MLflow run and logged model, when tracked.
    registered_model, model_version : str or None
        The registered model and the version (aliased ``challenger``), when registered.
    """

    model: Any
    baselines: dict[str, Any]
    split: dict[str, list[str]]
    label_counts: pd.DataFrame
    metrics: pd.DataFrame
    deciles: dict[str, pd.DataFrame]
    calibration: dict[str, pd.DataFrame]
    test: pd.DataFrame
    call_list: pd.DataFrame
    importance: pd.Series
    data: pd.DataFrame
    explainer: Any = None
    shap_importance: pd.DataFrame | None = None
    contributions: pd.DataFrame | None = None
    run_id: str | None = None
    model_uri: str | None = None
    registered_model: str | None = None
    model_version: str | None = None

    def comparison(self, segment: str = "all") -> pd.DataFrame:
        """Model vs baselines side by side for one segment (``all`` or a near band)."""
        m = self.metrics[self.metrics["segment"] == segment].set_index("model")
        return m.drop(columns="segment").T


def default_as_of_months(panel: pd.DataFrame, horizon: int, min_history: int) -> list[str]:
    """Months with ``min_history`` months before them and a full label window after."""
    first, last = panel[MONTH].min(), panel[MONTH].max()
    months = pd.period_range(first + min_history, last - horizon, freq="M")
    return [str(m) for m in months]


def train_upgrade(
    panel: pd.DataFrame,
    config: ExperimentConfig | None = None,
    *,
    track: bool = True,
) -> UpgradeResult:
    """Labels, features, the upgrade model and both baselines, evaluated out of time.

    Parameters
    ----------
    panel : DataFrame
        A validated panel.
    config : ExperimentConfig, optional
        ``tiers`` (ladder), ``features`` (windows) and ``upgrade`` sections are used.
    track : bool, default True
        Log the run to MLflow.

    Returns
    -------
    UpgradeResult
    """
    from segments.core.upgrade import (
        LogisticBaseline,
        RuleOfThumb,
        UpgradeModel,
        build_training_set,
        calibration_table,
        call_list,
        decile_table,
        evaluate,
        expected_gain,
        oot_split,
        rank_within,
    )

    cfg = config or load_config()
    up = cfg.upgrade
    ladder = load_ladder(
        cfg.tiers.ladder, basis_window=cfg.tiers.basis_window, hysteresis=cfg.tiers.hysteresis
    )
    tiers = assign_tiers(panel, ladder)
    # Months a label reads ahead: H for "reach", H + M - 1 for "sustain"; the embargo and
    # the last usable as-of month follow it.
    span = up.horizon + (up.sustain_months - 1 if up.label == "sustain" else 0)
    months = (
        list(up.as_of_months)
        if up.as_of_months
        else default_as_of_months(panel, span, up.min_history)
    )
    split = oot_split(
        months, horizon=span, test_months=up.test_months, valid_months=up.valid_months
    )
    used = split["train"] + split["valid"] + split["test"]
    data, counts = build_training_set(
        panel,
        tiers,
        used,
        horizon=up.horizon,
        population=up.population,
        kind=up.label,
        sustain_months=up.sustain_months,
        windows=cfg.features.windows,
    )
    part = {k: data[data["as_of"].isin(v)] for k, v in split.items()}
    for k, v in part.items():
        if v.empty or v["label"].nunique() < 2:
            from segments.core.upgrade import NotEnoughDataError

            raise NotEnoughDataError(
                f"upgrade: the {k} months ({', '.join(split[k])}) have "
                f"{len(v)} labelled customers and "
                f"{int(v['label'].sum()) if len(v) else 0} upgrades; "
                "both classes are needed"
            )
    feats = list(up.features) if up.features else None
    model = UpgradeModel(feats, **dict(up.model)).fit(
        part["train"], part["train"]["label"], eval_set=(part["valid"], part["valid"]["label"])
    )
    # The rule has nothing to learn but its probability scale: map it on the validation
    # months, as the model's calibration is, so Brier and ECE compare like with like.
    rule = RuleOfThumb().fit(part["valid"], part["valid"]["label"])
    logistic = LogisticBaseline(model.features_).fit(part["train"], part["train"]["label"])
    test = part["test"].copy()
    y = test["label"].to_numpy()
    systems = {"model": model, "rule_of_thumb": rule, "logistic": logistic}
    rows, deciles, calib, curves = [], {}, {}, {}
    for name, est in systems.items():
        p = est.predict_proba(test)[:, 1]
        s = est.decision_function(test)
        test[f"p_{name}"] = p
        curves[name] = (y, s)
        rows.append({"model": name, "segment": "all", **evaluate(y, p, s)})
        deciles[name] = decile_table(y, s, p)
        calib[name] = calibration_table(y, p)
        for band in test["near_band"].dropna().unique():
            m = (test["near_band"] == band).to_numpy()
            rows.append({"model": name, "segment": str(band), **evaluate(y[m], p[m], s[m])})
            if m.sum() >= 20 and len(np.unique(y[m])) == 2:
                deciles[f"{name}.{band}"] = decile_table(y[m], s[m], p[m])
                calib[f"{name}.{band}"] = calibration_table(
                    y[m], p[m], bins=min(10, int(m.sum()) // 2)
                )
    metrics = pd.DataFrame(rows)
    test["p_upgrade"] = test["p_model"]
    gains = expected_gain(
        test["p_upgrade"],
        test["gap_to_next"],
        next_tier=_next_tier(test, ladder),
        tier_values=dict(up.tier_values),
    )
    for c in gains:
        test[c] = gains[c].to_numpy()
    band = (
        test["near_band"]
        .astype(object)
        .where(test["near_band"].notna(), "tier " + test["tier_rank"].astype(str))
    )
    band_rank = rank_within(test["p_upgrade"], test["as_of"].astype(str) + "|" + band.astype(str))
    test["upgrade_decile"] = band_rank["decile"].to_numpy()
    test["upgrade_percentile"] = band_rank["percentile"].to_numpy()
    test["upgrade_permille"] = band_rank["permille"].to_numpy()
    if "branch_id" in panel.columns:
        # Each row's branch in its own as-of month.
        at = panel[[ID, MONTH, "branch_id"]].assign(as_of=panel[MONTH].astype(str))
        test = test.merge(at[[ID, "as_of", "branch_id"]], on=[ID, "as_of"], how="left")
        test["branch_id"] = test["branch_id"].astype(str)
        br = rank_within(
            test["p_upgrade"], test["as_of"].astype(str) + "|" + test["branch_id"].astype(str)
        )
        test["branch_permille"] = br["permille"].to_numpy()
    last = test[test["as_of"] == split["test"][-1]]
    calls = call_list(last, capacity_per_rm=up.capacity_per_rm, rms_per_branch=up.rms_per_branch)
    from segments.core.explain import UpgradeExplainer

    explainer = UpgradeExplainer(model)
    contributions = explainer.contributions(test)
    reasons = explainer.reason_codes(
        test, k=up.reasons_k, direction=up.reasons_direction, contributions=contributions
    )
    test = test.join(reasons)
    calls = calls.merge(test[[ID, "as_of", *reasons.columns]], on=[ID, "as_of"], how="left")
    result = UpgradeResult(
        model,
        {"rule_of_thumb": rule, "logistic": logistic},
        split,
        counts,
        metrics,
        deciles,
        calib,
        test,
        calls,
        model.feature_importance(),
        data,
        explainer,
        explainer.global_importance(contributions=contributions),
        contributions,
    )
    if track:
        _track_upgrade(result, panel, cfg, ladder.name, curves)
    return result


def _next_tier(test: pd.DataFrame, ladder: Any) -> pd.Series:
    names = ladder.tier_names
    ranks = test["tier_rank"].to_numpy().astype(int) + 1
    return pd.Series([names[r] if r < len(names) else None for r in ranks], index=test.index)


def _track_upgrade(
    result: UpgradeResult,
    panel: pd.DataFrame,
    cfg: ExperimentConfig,
    ladder: str,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
) -> None:
    import matplotlib.pyplot as plt

    from segments.mlops import plots
    from segments.mlops.cards import upgrade_card
    from segments.mlops.tracking import (
        _mlflow,
        code_version,
        data_digest,
        flatten,
        log_card,
        log_frame,
        log_upgrade_model,
        start_run,
    )

    mlflow = _mlflow()
    up = cfg.upgrade
    digest = data_digest(panel)
    registered = cfg.registry.model_name("upgrade", cfg.name)
    tags = {
        "segments.model_kind": "upgrade",
        "segments.ladder": ladder,
        "segments.as_of": f"{result.split['train'][0]}..{result.split['test'][-1]}",
        "segments.test_months": ",".join(result.split["test"]),
        "segments.data_digest": digest,
        "segments.code_version": code_version(),
        "segments.label": f"{up.label} within {up.horizon}m",
        "segments.population": up.population,
        "segments.registered_model": registered if cfg.registry.register else "",
    }
    name = f"upgrade {up.label} {up.horizon}m test {result.split['test'][0]}"
    with start_run(cfg.name, name, tags) as run:
        params = flatten({k: v for k, v in cfg.raw.items() if k != "name"})
        mlflow.log_params({k: ("" if v is None else str(v))[:500] for k, v in params.items()})
        mlflow.log_params({f"split.{k}": ",".join(v) for k, v in result.split.items()})
        mlflow.log_params(
            {
                "best_iteration": result.model.best_iteration_,
                "calibration_a": result.model.calibration_[0],
                "calibration_b": result.model.calibration_[1],
                "n_features": len(result.model.features_),
            }
        )
        with _quiet():
            ds = mlflow.data.from_pandas(
                result.data.drop(columns="label"),
                name="upgrade_data",
                targets=None,
                digest=data_digest(result.data)[:32],
            )
            mlflow.log_input(ds, context="training")
        for _, r in result.metrics.iterrows():
            for key, value in r.items():
                if key in ("model", "segment") or not np.isfinite(value):
                    continue
                prefix = r["model"] if r["segment"] == "all" else f"{r['model']}.{r['segment']}"
                mlflow.log_metric(f"{prefix}.{key}", float(value))
        for as_of, row in result.label_counts.iterrows():
            step = pd.Period(as_of, "M").ordinal
            for key in ("population", "positives", "censored", "positive_rate"):
                mlflow.log_metric(f"labels.{key}", float(row[key]), step=step)
        log_frame(result.label_counts, "labels/counts_by_as_of.csv")
        log_frame(result.metrics, "evaluation/metrics.csv", index=False)
        log_frame(result.comparison(), "evaluation/comparison_all.csv")
        for nm, t in result.deciles.items():
            log_frame(t, f"evaluation/deciles_{nm}.csv")
        for nm, t in result.calibration.items():
            log_frame(t, f"evaluation/calibration_{nm}.csv")
        log_frame(result.importance.rename("gain").to_frame(), "evaluation/importance.csv")
        if result.shap_importance is not None:
            log_frame(result.shap_importance, "explanations/global_importance.csv")
            phi = result.contributions
            mlflow.log_figure(
                plots.beeswarm(phi, result.test[phi.columns]), "explanations/beeswarm.png"
            )
            for feat in result.shap_importance.index[:4]:
                mlflow.log_figure(
                    plots.dependence(phi, result.test[phi.columns], feat),
                    f"explanations/dependence_{feat}.png",
                )
            cols = [c for c in result.test.columns if c.startswith("reason_")]
            log_frame(
                result.test[[ID, "as_of", "p_upgrade", *cols]].head(500),
                "explanations/reason_codes_sample.csv",
                index=False,
            )
        log_frame(result.call_list.head(1000), "call_list_sample.csv", index=False)
        mlflow.log_figure(plots.roc(curves), "plots/roc.png")
        mlflow.log_figure(plots.precision_recall(curves), "plots/precision_recall.png")
        mlflow.log_figure(plots.gain(curves), "plots/gain.png")
        overall = [k for k in result.calibration if "." not in k]
        mlflow.log_figure(
            plots.calibration({k: result.calibration[k] for k in overall}), "plots/calibration.png"
        )
        mlflow.log_figure(
            plots.deciles({k: result.deciles[k] for k in overall}), "plots/deciles.png"
        )
        plt.close("all")
        from segments.core import drift

        test = result.test
        reference = {
            "features": drift.profile(test[list(result.model.features_)]),
            "p_upgrade": drift.profile(test[["p_upgrade"]]),
        }
        training = {
            "population": up.population,
            "label": up.label,
            "horizon": up.horizon,
            "ladder": ladder,
            "windows": list(cfg.features.windows),
        }
        result.model_uri = log_upgrade_model(result.model, result.data, reference, training)
        result.run_id = run.info.run_id
        card = upgrade_card(
            result,
            panel,
            cfg,
            digest=digest,
            ladder=ladder,
            name=registered,
            run_id=result.run_id,
            code_version=tags["segments.code_version"],
        )
        log_card(card, f"Model card: {registered}", cfg.raw)
    _register(result, "upgrade", registered, cfg, tags)


def _register(
    result: Any, kind: str, name: str, cfg: ExperimentConfig, tags: dict[str, str]
) -> None:
    """Register the run's model as a new version aliased ``challenger`` (when configured)."""
    if not cfg.registry.register or result.model_uri is None:
        return
    from segments.mlops.registry import register_version
    from segments.mlops.tracking import _mlflow

    keep = (
        "segments.ladder",
        "segments.as_of",
        "segments.test_months",
        "segments.data_digest",
        "segments.code_version",
        "segments.label",
    )
    version_tags = {k: v for k, v in tags.items() if k in keep}
    version_tags["segments.model_kind"] = kind
    desc = (
        f"{kind} model trained in experiment '{cfg.name}' (run {result.run_id}); "
        f"as of {tags.get('segments.as_of', '')}; ladder {tags.get('segments.ladder', '')}."
        f" Model card: the run's artifact model_card.html."
    )
    result.registered_model = name
    result.model_version = register_version(
        result.model_uri, name, run_id=result.run_id, kind=kind, tags=version_tags, description=desc
    )
    client = _mlflow().MlflowClient()
    client.set_tag(result.run_id, "segments.model_version", result.model_version)
