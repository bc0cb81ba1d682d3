"""Logging a training job's result to MLflow: the explicit step after training.

:func:`segments.train_groups` and :func:`segments.train_upgrade` only compute;
:func:`log_groups` and :func:`log_upgrade` write the run, the model, its card and (when the
config says so) the registry version. The CLI's ``train`` commands and ``make demo`` take
both steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segments.core.config.experiment import ExperimentConfig
from segments.core.data.panel import PanelSummary
from segments.core.features.own import declaring, result_columns
from segments.core.upgrade.labels import CALENDAR_FEATURES
from segments.exceptions import ConfigError, Violation
from segments.jobs.train import GroupsResult
from segments.jobs.train_upgrade import UpgradeResult
from segments.mlops import tags as tag_names

__all__ = ["log_groups", "log_upgrade"]


def _config(result: GroupsResult | UpgradeResult) -> tuple[ExperimentConfig, str]:
    """The config and ladder name a result was trained with."""
    if result.config is None:
        raise ConfigError(
            [Violation("result", "has no config: it was not made by train_groups/train_upgrade")]
        )
    if result.run_id is not None:
        raise ConfigError([Violation("result", f"is already logged as MLflow run {result.run_id}")])
    return result.config, result.ladder


def _summary(result: GroupsResult | UpgradeResult, panel: pd.DataFrame | None) -> PanelSummary:
    """The panel a result was trained on (a result made before it carried one: ``panel``)."""
    if result.panel is not None:
        return result.panel
    if panel is None:
        raise ConfigError(
            [Violation("panel", "is needed: the result does not say what it was trained on")]
        )
    from segments.core.data.digest import panel_digest
    from segments.core.tiers.ladders import load_ladder

    tiers = result.config.tiers  # set: checked by _config
    ladder = load_ladder(tiers.ladder, basis_window=tiers.basis_window, hysteresis=tiers.hysteresis)
    return PanelSummary.of_frame(panel, panel_digest(panel, ladder.columns))


@declaring(result_columns)  # their catalogue text, for the card
def log_groups(result: GroupsResult, panel: pd.DataFrame | None = None) -> GroupsResult:
    """Log a strategic-group training to MLflow, and register its model when configured.

    One run in the experiment named by the result's config: parameters, the panel's data
    digest, metrics, k-selection criteria, profiles, names, tier x group tables, migration,
    the surrogate's explanations, plots, the model (with its drift reference) and the model
    card; then a registry version aliased ``challenger`` when ``registry.register`` is on.

    Parameters
    ----------
    result : GroupsResult
        What :func:`segments.train_groups` returned.
    panel : DataFrame, optional
        Not needed: the result carries the panel's sizes, months and digest
        (``result.panel``); accepted for scripts written before it did.

    Returns
    -------
    GroupsResult
        The same result with ``run_id``, ``model_uri`` (and ``registered_model``,
        ``model_version`` when registered) filled in.
    """
    cfg, ladder = _config(result)
    from segments.mlops.cards import groups_card
    from segments.mlops.tracking import (
        code_version,
        log_card,
        log_dataset,
        log_groups_model,
        mlflow_module,
        start_run,
    )

    mlflow = mlflow_module()
    model = result.model
    summary = _summary(result, panel)
    name = cfg.registry.model_name("groups", cfg.name)
    tags = {
        tag_names.KIND: "groups",
        tag_names.LADDER: ladder,
        tag_names.AS_OF: result.as_of,
        tag_names.DATA_DIGEST: summary.digest,
        tag_names.CODE_VERSION: code_version(),
        "segments.algorithm": model.algorithm,
        "segments.n_groups": str(model.n_groups_),
        tag_names.REGISTERED_MODEL: name if cfg.registry.register else "",
    }
    with start_run(cfg.name, f"groups {result.as_of} k={model.n_groups_}", tags) as run:
        _log_config(mlflow, cfg)
        params = {
            "as_of": result.as_of,
            "n_customers": len(result.features),
            "features.not_built": _not_built(result.features),
        }
        mlflow.log_params(params | _panel_params(result, summary, "groups"))
        log_dataset(result.features.reset_index(), "features")
        mlflow.log_metrics(result.metrics)
        _log_k_selection(mlflow, model)
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
        _log_group_tables(mlflow, result)
        _log_group_plots(mlflow, result)
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
            summary,
            cfg,
            digest=summary.digest,
            ladder=ladder,
            name=name,
            run_id=result.run_id,
            code_version=tags[tag_names.CODE_VERSION],
        )
        log_card(card, f"Model card: {name}", cfg.raw)
    _register(result, "groups", name, cfg, tags)
    return result


def _panel_params(
    result: GroupsResult | UpgradeResult, summary: PanelSummary, kind: str
) -> dict[str, Any]:
    """The panel's size and months, and the rows the fit used (all, or a stratified
    sample), as run parameters."""
    fit = {} if result.fit_sample is None else result.fit_sample.as_params(kind)
    return {"panel_rows": summary.rows, "panel_months": summary.span, **fit}


@declaring(result_columns)  # their catalogue text, for the card
def log_upgrade(result: UpgradeResult, panel: pd.DataFrame | None = None) -> UpgradeResult:
    """Log an upgrade-model training to MLflow, and register its model when configured.

    One run: parameters, the split, the panel's data digest, metrics of the model and its
    baselines per near band, label counts by as-of month, deciles, calibration, SHAP
    importance and plots, samples of reason codes and the call list, the model (with its
    drift reference) and the model card; then a registry version aliased ``challenger``.

    Parameters
    ----------
    result : UpgradeResult
        What :func:`segments.train_upgrade` returned.
    panel : DataFrame, optional
        Not needed: the result carries the panel's sizes, months and digest.

    Returns
    -------
    UpgradeResult
        The same result with ``run_id`` and ``model_uri`` (and the registration) filled in.
    """
    cfg, ladder = _config(result)
    cfg.tracking.id_key()  # samples with hashed ids need the key: refused before any run
    import matplotlib.pyplot as plt

    from segments.mlops.cards import upgrade_card
    from segments.mlops.tracking import (
        code_version,
        log_card,
        log_dataset,
        log_upgrade_model,
        mlflow_module,
        start_run,
    )

    mlflow = mlflow_module()
    up = cfg.upgrade
    summary = _summary(result, panel)
    registered = cfg.registry.model_name("upgrade", cfg.name)
    tags = {
        tag_names.KIND: "upgrade",
        tag_names.LADDER: ladder,
        tag_names.AS_OF: f"{result.split['train'][0]}..{result.split['test'][-1]}",
        tag_names.TEST_MONTHS: ",".join(result.split["test"]),
        tag_names.DATA_DIGEST: summary.digest,
        tag_names.CODE_VERSION: code_version(),
        tag_names.LABEL: f"{up.label} within {up.horizon}m",
        "segments.population": up.population,
        tag_names.REGISTERED_MODEL: registered if cfg.registry.register else "",
    }
    from segments.mlops.review import month_span

    name = f"upgrade {up.label} {up.horizon}m test {month_span(result.split['test'])}"
    with start_run(cfg.name, name, tags) as run:
        _log_config(mlflow, cfg)
        mlflow.log_params({f"split.{k}": ",".join(v) for k, v in result.split.items()})
        deployed = result.deployed if result.deployed is not None else result.model
        mlflow.log_params(_upgrade_params(result, deployed, summary))
        log_dataset(result.data.drop(columns="label"), "upgrade_data")
        _log_evaluation(mlflow, result)
        plt.close("all")
        from segments.core import drift

        test = result.test
        reference = {
            # The calendar month differs between any two months by design: not drift.
            "features": drift.profile(
                test[[c for c in result.model.features_ if c not in CALENDAR_FEATURES]]
            ),
            # The probabilities of the model scoring will run: the deployed one.
            "p_upgrade": drift.profile(
                pd.DataFrame({"p_upgrade": deployed.predict_proba(test)[:, 1]})
            ),
        }
        training = {
            "population": up.population,
            "label": up.label,
            "horizon": up.horizon,
            "ladder": ladder,
            "windows": list(cfg.features.windows),
            "own_columns": [c.as_dict() for c in cfg.features.columns],
        }
        result.model_uri = log_upgrade_model(deployed, result.data, reference, training)
        result.run_id = run.info.run_id
        card = upgrade_card(
            result,
            summary,
            cfg,
            digest=summary.digest,
            ladder=ladder,
            name=registered,
            run_id=result.run_id,
            code_version=tags[tag_names.CODE_VERSION],
        )
        log_card(card, f"Model card: {registered}", cfg.raw)
    _register(result, "upgrade", registered, cfg, tags)
    return result


def _upgrade_params(result: UpgradeResult, deployed: Any, summary: PanelSummary) -> dict:
    """The run's parameters about the models: the deployed one's trees and calibration, the
    chosen candidate, the rows of both fits, the features and the panel."""
    return {
        "best_iteration": deployed.best_iteration_,
        "calibration_a": deployed.calibration_[0],
        "calibration_b": deployed.calibration_[1],
        "calibrated_on": deployed.calibrated_on_,
        "model.chosen": _chosen(result.model),
        "model.kind": result.model.kind_,
        "model.blend_weight": result.model.blend_weight_,
        "model.evaluated_rows": result.model.fitted_rows_,
        "model.deployed_rows": deployed.fitted_rows_,
        "upgrade.deploy": "evaluated" if deployed is result.model else "all_months",
        "n_features": len(result.model.features_),
        "features.not_built": _not_built(result.data),
        **_panel_params(result, summary, "upgrade"),
    }


def _register(
    result: Any, kind: str, name: str, cfg: ExperimentConfig, tags: dict[str, str]
) -> None:
    """Register the run's model as a new version aliased ``challenger`` (when configured)."""
    if not cfg.registry.register or result.model_uri is None:
        return
    from segments.mlops.registry import register_version
    from segments.mlops.tracking import mlflow_module

    keep = (
        tag_names.LADDER,
        tag_names.AS_OF,
        tag_names.TEST_MONTHS,
        tag_names.DATA_DIGEST,
        tag_names.CODE_VERSION,
        tag_names.LABEL,
    )
    version_tags = {k: v for k, v in tags.items() if k in keep}
    version_tags[tag_names.KIND] = kind
    desc = (
        f"{kind} model trained in experiment '{cfg.name}' (run {result.run_id}); "
        f"as of {tags.get(tag_names.AS_OF, '')}; ladder {tags.get(tag_names.LADDER, '')}."
        f" Model card: the run's artifact model_card.html."
    )
    result.registered_model = name
    result.model_version = register_version(
        result.model_uri, name, run_id=result.run_id, kind=kind, tags=version_tags, description=desc
    )
    client = mlflow_module().MlflowClient()
    client.set_tag(result.run_id, tag_names.MODEL_VERSION, result.model_version)


def _log_k_selection(mlflow: Any, model: Any) -> None:
    """The criteria of every k tried, per k (as steps), with the selection report and plot."""
    from segments.mlops import plots
    from segments.mlops.tracking import log_frame

    if model.k_selection_ is None:
        return
    criteria = ("silhouette", "calinski_harabasz", "davies_bouldin", "stability", "bic",
                "min_share")  # fmt: skip
    for _, row in model.k_selection_.iterrows():
        values = {f"k_{c}": float(row[c]) for c in criteria if c in row and pd.notna(row[c])}
        mlflow.log_metrics(values, step=int(row["k"]))  # one request per k
    log_frame(model.k_selection_, "k_selection/criteria.csv", index=False)
    mlflow.log_dict(model.k_selection_report_, "k_selection/report.json")
    mlflow.log_figure(
        plots.k_selection(model.k_selection_, model.n_groups_), "plots/k_selection.png"
    )


def _log_group_tables(mlflow: Any, result: GroupsResult) -> None:
    """Profiles, names, tier x group tables, id matching, migration and the reference."""
    from segments.mlops.tracking import log_frame

    model = result.model
    prof = result.profile
    summary = prof["summary"].join(result.names)
    log_frame(summary, "profiles/summary.csv")
    for key in ("means", "medians", "lift", "z", "tier_mix"):
        if key in prof:
            log_frame(prof[key], f"profiles/{key}.csv")
    log_frame(prof["distinguishing"], "profiles/distinguishing.csv", index=False)
    log_frame(result.names, "names.csv")
    named = {g: _group_label(g, result.names) for g in result.names.index}  # the HTML views
    for key, table in result.tier_group.items():
        log_frame(table, f"tier_group/{key}.csv", html_labels=named)
    if model.match_report_ is not None:
        log_frame(model.match_report_, "id_matching.csv", index=False)
    if result.migration is not None:
        log_frame(result.migration, "group_migration/counts.csv", html_labels=named)
        rates = result.migration.div(result.migration.sum(axis=1), axis=0)
        log_frame(rates, "group_migration/rates.csv", html_labels=named)
    if result.reference_crosstab is not None:
        log_frame(result.reference_crosstab, "reference_crosstab.csv", html_labels=named)


def _log_group_plots(mlflow: Any, result: GroupsResult) -> None:
    """The surrogate's explanations, persona cards and the profile, tier and size plots."""
    from segments.mlops import plots
    from segments.mlops.tracking import log_frame

    prof = result.profile
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
    share = share.rename(columns=lambda g: _group_label(g, result.names))
    mlflow.log_figure(
        plots.heatmap(share * 100, "Tier x group (% of customers)", fmt="{:.1f}", center=False),
        "plots/tier_group.png",
    )
    mlflow.log_figure(plots.group_sizes(prof["summary"], result.names), "plots/group_sizes.png")


def _describer(cfg: Any) -> Any:
    """A feature's description (``.en``, ``.zh``): the catalogue's, but in points for the
    tier features and components of a points or growth ladder."""
    from types import SimpleNamespace

    from segments.core.explain.ladder_phrases import LadderPhrases
    from segments.core.features.registry import describe
    from segments.mlops.evidence import ladder_of

    phrases = LadderPhrases(ladder_of(cfg))

    def described(name: str) -> Any:
        label = phrases.label(name)
        return describe(name) if label is None else SimpleNamespace(en=label[0], zh=label[1])

    return described


def _group_label(group: Any, names: pd.DataFrame) -> str:
    """A group's axis label: its id and English name (the id alone when it has none)."""
    try:
        return f"{group}: {names.loc[group, 'name_en']}"
    except KeyError:
        return str(group)


def _log_evaluation(mlflow: Any, result: UpgradeResult) -> None:
    """Metrics per model and band, label counts by month, tables, SHAP and plots."""
    from segments.mlops import plots
    from segments.mlops.tracking import log_frame

    curves = result.curves
    metrics = {}
    for _, r in result.metrics.iterrows():
        for key, value in r.items():
            if key in ("model", "segment") or not np.isfinite(value):
                continue
            prefix = r["model"] if r["segment"] == "all" else f"{r['model']}.{r['segment']}"
            metrics[f"{prefix}.{key}"] = float(value)
    mlflow.log_metrics(metrics)  # one request, not one per metric
    from segments.mlops.review import log_by_month

    # Step YYYYMM and the month's first day: the chart reads by month on either axis.
    counts = ("population", "positives", "censored", "positive_rate")
    log_by_month(mlflow, "labels", result.label_counts, counts)
    log_frame(result.label_counts, "labels/counts_by_as_of.csv")
    log_frame(result.metrics, "evaluation/metrics.csv", index=False)
    _log_selection(mlflow, result)
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
        mlflow.log_figure(plots.shap_bar(result.shap_importance), "explanations/shap_bar.png")
        for feat in result.shap_importance.index[:4]:
            mlflow.log_figure(
                plots.dependence(phi, result.test[phi.columns], feat),
                f"explanations/dependence_{feat}.png",
            )
    from segments.mlops.samples import log_customer_artifacts

    log_customer_artifacts(result, result.config.tracking, _describer(result.config))
    mlflow.log_figure(plots.roc(curves), "plots/roc.png")
    mlflow.log_figure(plots.precision_recall(curves), "plots/precision_recall.png")
    mlflow.log_figure(plots.gain(curves), "plots/gain.png")
    mlflow.log_figure(plots.lift(curves), "plots/lift.png")
    overall = [k for k in result.calibration if "." not in k]
    mlflow.log_figure(
        plots.calibration({k: result.calibration[k] for k in overall}), "plots/calibration.png"
    )
    mlflow.log_figure(plots.deciles({k: result.deciles[k] for k in overall}), "plots/deciles.png")


def _chosen(model: Any) -> str:
    """The chosen candidate's name (``gbm`` for a model fitted without selection)."""
    sel = getattr(model, "selection_", None)
    return "gbm" if sel is None else str(sel.loc[sel["chosen"], "candidate"].iloc[0])


def _log_selection(mlflow: Any, result: UpgradeResult) -> None:
    """Every candidate's validation metrics (and the chosen one's test metrics), the
    metrics of each test month, and the worst month's calibration error per model."""
    from segments.mlops.tracking import log_frame

    sel = result.model.selection_
    if sel is not None:
        log_frame(sel, "evaluation/model_selection.csv", index=False)
        mlflow.log_metrics(
            {
                f"selection.{r['candidate']}.{key}": float(r[key])
                for _, r in sel.iterrows()
                for key in ("valid_log_loss", "valid_auc")
            }
        )
    if result.by_month is not None and not result.by_month.empty:
        log_frame(result.by_month, "evaluation/by_test_month.csv", index=False)
        worst = result.by_month.groupby("model")["ece"].max()
        mlflow.log_metrics(
            {f"{m}.ece_worst_month": float(v) for m, v in worst.items() if np.isfinite(v)}
        )


def _log_config(mlflow: Any, cfg: ExperimentConfig) -> None:
    """Every configuration setting as a run parameter (values cut to MLflow's 500 chars)."""
    from segments.mlops.tracking import flatten

    params = flatten({k: v for k, v in cfg.raw.items() if k != "name"})
    # The bank's own columns, one line each (their full declarations: config.yaml and
    # own_columns.json).
    params["features.columns"] = "; ".join(_own_column_line(c) for c in cfg.features.columns)
    mlflow.log_params({k: ("" if v is None else str(v))[:500] for k, v in params.items()})
    if cfg.features.columns:
        mlflow.log_dict(
            {"columns": [c.as_dict() for c in cfg.features.columns]}, "own_columns.json"
        )


def _own_column_line(c: Any) -> str:
    """A declared own column in a few words: ``card_bal numeric money: last, mean``."""
    more = {"above": c.above, "order": ",".join(c.order), "state": ",".join(c.state)}
    extra = " ".join(f"{k}={v}" for k, v in more.items() if v not in (None, ""))
    return f"{c.column} {c.kind} {c.unit}: {', '.join(c.aggregations)}" + (
        f" ({extra})" if extra else ""
    )


def _not_built(frame: pd.DataFrame) -> str:
    """The features a run left out because its history is shorter than their window."""
    return ",".join(frame.attrs.get("not_built") or [])[:500]
