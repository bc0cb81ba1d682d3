"""Model cards: what a model is for, what it was trained on, how good it is, where it fails.

Each tracked training logs ``model_card.md`` and ``model_card.html`` (the same content, the
HTML for the MLflow UI's artifact viewer). The sections follow what a model-risk reviewer
asks for: purpose; data (panel months, customers, digest); population and label
definition; features; metrics against the baselines; calibration; stability; known limits;
and the configuration that produced the model.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import yaml

from segments.core.features import catalogue_frame
from segments.core.panel import ID, MONTH

__all__ = ["groups_card", "markdown_table", "render_html", "upgrade_card"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, "Noto Sans CJK SC",
       sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328;
       line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f6f8fa; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.3rem; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, index: bool = True) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (numbers formatted for reading)."""
    frame = df.reset_index() if index else df
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def render_html(markdown: str, title: str) -> str:
    """A standalone HTML page of a Markdown card (CommonMark with tables)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n{body}</body></html>\n"
    )


def _bullets(items: Iterable[str]) -> str:
    return "\n".join(f"- {x}" for x in items)


def _data_section(panel: pd.DataFrame, digest: str, extra: Iterable[str] = ()) -> str:
    months = f"{panel[MONTH].min()} to {panel[MONTH].max()}"
    return "## Data\n\n" + _bullets(
        [
            f"Panel months: {months} ({panel[MONTH].nunique()} months)",
            f"Customer-months: {len(panel):,}; customers: {panel[ID].nunique():,}",
            f"Panel digest (SHA-256 of content, columns and dtypes): `{digest}`",
            *extra,
        ]
    )


def _features_section(
    features: Iterable[str], windows: Iterable[int], importance: pd.Series | None = None
) -> str:
    cat = catalogue_frame(tuple(windows)).set_index("name")
    names = list(features)
    if importance is not None:
        order = [f for f in importance.index if f in names]
        names = order + [f for f in names if f not in order]
    table = pd.DataFrame(
        {
            "feature": names,
            "family": [cat["family"].get(f, "-") for f in names],
            "unit": [cat["unit"].get(f, "-") for f in names],
            "description": [cat["en"].get(f, "-") for f in names],
        }
    )
    if importance is not None:
        table.insert(1, "mean abs SHAP", [float(importance.get(f, np.nan)) for f in names])
    note = " (most important first)" if importance is not None else ""
    return (
        f"## Features used\n\n{len(names)} features{note}; definitions from the feature "
        f"catalogue, all built point in time from months up to the as-of month.\n\n"
        + markdown_table(table, index=False)
    )


def _config_section(raw: Mapping[str, Any]) -> str:
    text = yaml.safe_dump(dict(raw), sort_keys=False, allow_unicode=True)
    return f"## Configuration\n\nThe merged experiment configuration:\n\n```yaml\n{text}```"


def _header(title: str, kind: str, meta: Mapping[str, str]) -> str:
    lines = [f"# Model card: {title}", "", f"*{kind}*", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items() if v]
    return "\n".join(lines)


def upgrade_card(
    result: Any,
    panel: pd.DataFrame,
    cfg: Any,
    *,
    digest: str,
    ladder: str,
    name: str,
    run_id: str | None = None,
    code_version: str = "",
) -> str:
    """The Markdown model card of an upgrade-model training.

    Parameters
    ----------
    result : UpgradeResult
    panel : DataFrame
        The validated panel it was trained on.
    cfg : ExperimentConfig
    digest : str
        The panel's data digest.
    ladder : str
        The ladder's name.
    name : str
        The registered model name.
    run_id, code_version : str, optional
    """
    up = cfg.upgrade
    split = result.split
    counts = result.label_counts
    what = (
        f"reach the next tier (its AUM basis at or above the next threshold) in any of "
        f"the {up.horizon} months after the as-of month"
        if up.label == "reach"
        else f"hold the next tier (qualifying tier, after the ladder's hysteresis) for "
        f"{up.sustain_months} consecutive months starting within {up.horizon} months"
    )
    population = (
        "customers in a near-tier band (just under a threshold)"
        if up.population == "near_tier"
        else "every customer below the top tier"
    )
    labelled = int(counts["positives"].sum() + counts["negatives"].sum())
    comp = result.comparison()
    rows = [
        "n",
        "positives",
        "roc_auc",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
        "lift_top5",
        "lift_top10",
        "lift_top20",
        "capture_top10",
    ]
    comp = comp.reindex([r for r in rows if r in comp.index])
    bands = result.metrics[result.metrics["segment"] != "all"].pivot_table(
        index="segment", columns="model", values="roc_auc"
    )
    auc = comp.loc["roc_auc"]
    gain = auc["model"] - auc["rule_of_thumb"]
    test = result.test
    by_month = pd.DataFrame(
        {
            m: {
                "n": int((test["as_of"] == m).sum()),
                "upgrade rate": float(test.loc[test["as_of"] == m, "label"].mean()),
                "model AUC": _auc(test[test["as_of"] == m], "p_model"),
                "rule AUC": _auc(test[test["as_of"] == m], "p_rule_of_thumb"),
            }
            for m in split["test"]
        }
    ).T
    calib = result.calibration.get("model")
    a, b = result.model.calibration_
    calibrated_on = {
        "eval": "the validation months",
        "train": "the training rows (no validation months were given: overconfident)",
        None: "nothing (uncalibrated: raw LightGBM margins)",
    }.get(getattr(result.model, "calibrated_on_", "eval"), "months not recorded (older model)")
    limits = [
        f"Trained on {len(split['train'])} as-of months of one bank's history; behaviour "
        "shifts (rates, campaigns, a new ladder) need a retrain and are watched by the "
        "scoring run's drift report (PSI).",
        f"Only {population} are scored meaningfully; other customers are outside the "
        "population the model learnt from.",
        "Customers whose label window is incomplete (closed accounts, missing months) are "
        f"censored, not counted as non-upgrades ({int(counts['censored'].sum()):,} "
        "customer-months here); the model is silent on why customers leave.",
        f"The probability is calibrated on {calibrated_on} (Platt); calibration drifts "
        "with the base rate, so check the calibration table after each retrain.",
        "Reason codes are exact SHAP values of this model, not causal effects: they say what "
        "the model used, not what an RM action would change.",
    ]
    if "logistic" in auc and auc["logistic"] >= auc["model"]:
        limits.append(
            f"On these months the logistic baseline's AUC ({auc['logistic']:.3f}) "
            f"is not below the model's ({auc['model']:.3f}): the extra complexity "
            "is not paying for itself in ranking here."
        )
    if gain <= 0:
        limits.append(f"The model does not beat the rule of thumb on AUC ({gain:+.3f}).")
    parts = [
        _header(
            name,
            "Upgrade potential: P(reach the next tier)",
            {
                "MLflow run": f"`{run_id}`" if run_id else "",
                "Experiment": cfg.name,
                "Ladder": ladder,
                "Code version": code_version,
                "Test (out-of-time) months": ", ".join(split["test"]),
            },
        ),
        "## Purpose\n\nRank customers just under a tier threshold by their probability of "
        f"reaching the next tier within {up.horizon} months, so relationship managers work the "
        "customers most likely to move up (call list by branch and capacity, with reason "
        "codes). Not for credit decisions or pricing.",
        _data_section(
            panel,
            digest,
            [
                f"As-of months: train {', '.join(split['train'])}; validation (early stopping, "
                f"calibration) {', '.join(split['valid'])}; test {', '.join(split['test'])}",
                f"Labelled customer-months: {labelled:,} ({int(counts['positives'].sum()):,} "
                "upgrades); censored "
                f"{int(counts['censored'].sum()):,}",
            ],
        ),
        "## Population and label\n\n"
        + _bullets(
            [
                f"Population at each as-of month: {population} (ladder `{ladder}`).",
                f"Label 1: the customer does {what}; 0: a complete window without it.",
                "Out-of-time split with an embargo: no training label window reaches into the "
                "validation or test months.",
            ]
        )
        + "\n\n"
        + markdown_table(counts),
        _features_section(
            result.model.features_,
            cfg.features.windows,
            result.shap_importance["mean_abs_shap"]
            if result.shap_importance is not None and "mean_abs_shap" in result.shap_importance
            else None,
        ),
        "## Metrics against the baselines (out of time)\n\n"
        f"The rule of thumb ranks by closeness to the threshold (gap ratio); the logistic "
        f"regression uses the same features. ROC-AUC {auc['model']:.3f} vs the rule's "
        f"{auc['rule_of_thumb']:.3f} ({gain:+.3f}).\n\n"
        + markdown_table(comp)
        + "\n\nROC-AUC per near band:\n\n"
        + markdown_table(bands),
        "## Calibration\n\n"
        f"Platt scaling on {calibrated_on}: logit(p) = {a:.4f} x margin + {b:.4f}. "
        f"Expected calibration error on the test months: {float(comp.loc['ece', 'model']):.4f}"
        + (" (10 bins):\n\n" + markdown_table(calib, index=False) if calib is not None else "."),
        "## Stability\n\nPer test month (the same model, each month's customers):\n\n"
        + markdown_table(by_month),
        "## Known limits\n\n" + _bullets(limits),
        _config_section(cfg.raw),
    ]
    return "\n\n".join(parts) + "\n"


def _auc(frame: pd.DataFrame, column: str) -> float:
    from sklearn.metrics import roc_auc_score

    y = frame["label"].to_numpy()
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, frame[column].to_numpy()))


def groups_card(
    result: Any,
    panel: pd.DataFrame,
    cfg: Any,
    *,
    digest: str,
    ladder: str,
    name: str,
    run_id: str | None = None,
    code_version: str = "",
) -> str:
    """The Markdown model card of a strategic-groups training.

    Parameters are as for :func:`upgrade_card`, with ``result`` a ``GroupsResult``.
    """
    model = result.model
    rep = model.k_selection_report_ or {}
    summary = result.profile["summary"].join(result.names)
    groups = pd.DataFrame(
        {
            "name": summary["name_en"],
            "名称": summary["name_zh"],
            "customers": summary["customers"].astype(int),
            "share": summary["share"],
            "bootstrap Jaccard": [
                model.stability_["jaccard"].get(g, np.nan) for g in summary.index
            ],
        }
    )
    groups.index.name = "group"
    m = result.metrics
    baseline = [
        "Selection criteria for every k tried (silhouette on a stratified sample, "
        "Calinski-Harabasz, Davies-Bouldin, bootstrap ARI):"
    ]
    quality = [f"Chosen k = {model.n_groups_} ({rep.get('rule', 'fixed')})."]
    if rep.get("criteria_disagree"):
        best = rep.get("best_k_by_criterion", {})
        quality.append(
            "Criteria that disagree: "
            + ", ".join(f"{c} prefers k = {best.get(c)}" for c in rep["criteria_disagree"])
            + "."
        )
    if "reference_ari" in m:
        quality.append(
            f"Against the reference labels supplied: adjusted Rand index {m['reference_ari']:.3f}."
        )
    if "surrogate_fidelity" in m:
        quality.append(
            f"Surrogate classifier fidelity {m['surrogate_fidelity']:.1%}: how "
            "well a tree model reproduces membership (it explains the groups)."
        )
    stab = model.stability_
    stability = [f"Bootstrap refits: ARI mean {stab['ari_mean']:.3f}, min {stab['ari_min']:.3f}."]
    if "group_stay_rate" in m and np.isfinite(m["group_stay_rate"]):
        stability.append(
            f"Customers in the same group {cfg.groups.migration_months} months "
            f"earlier (same model): {m['group_stay_rate']:.1%}."
        )
    limits = [
        "Groups describe behaviour at one month; customers move between groups, so reassign "
        "every month with the same model and watch group shares for drift.",
        "Names are suggested from each group's most distinctive features (z-scores) and "
        "should be reviewed by the business (override with groups.names_file).",
        "Distances use log scales for money and counts and robust scaling; features with "
        "mostly missing values are filled before clustering.",
        f"Groups under {cfg.groups.min_group_share:.0%} of customers are not allowed, so a "
        "real but rarer behaviour may be merged into a larger group.",
    ]
    small = [g for g, v in stab["jaccard"].items() if v < 0.75]
    if small:
        limits.append(
            "Groups with a bootstrap Jaccard under 0.75 (less reproducible): "
            + ", ".join(str(g) for g in small)
            + "."
        )
    parts = [
        _header(
            name,
            "Strategic groups (clustering)",
            {
                "MLflow run": f"`{run_id}`" if run_id else "",
                "Experiment": cfg.name,
                "Ladder": ladder,
                "Code version": code_version,
                "As-of month": result.as_of,
                "Algorithm": model.algorithm,
            },
        ),
        "## Purpose\n\nGroup customers by behaviour and needs (not assets alone), so each "
        "tier can be served by strategy per group: persona cards for marketing and RMs, the "
        "tier x group matrix for planning. Not for credit decisions.",
        _data_section(
            panel,
            digest,
            [f"Customers grouped: {len(result.features):,} (active in {result.as_of})"],
        ),
        "## Population and definition\n\n"
        + _bullets(
            [
                f"Every customer present in the as-of month {result.as_of}.",
                "No label: groups are clusters of the behavioural features below; each customer "
                "is assigned to the nearest group centre (or the most probable component).",
                "Ids are matched to the previous model's groups when one is given, so a group "
                "keeps its id across refits.",
            ]
        ),
        _features_section(model.features_, cfg.features.windows),
        "## Groups\n\n" + markdown_table(groups),
        "## Metrics and baselines\n\n"
        + _bullets(quality)
        + "\n\n"
        + baseline[0]
        + "\n\n"
        + (
            markdown_table(model.k_selection_, index=False)
            if model.k_selection_ is not None
            else "k was fixed by configuration."
        ),
        "## Calibration\n\nNot applicable: groups are assignments, not probabilities. "
        + (
            f"Membership is explained by a surrogate with fidelity {m['surrogate_fidelity']:.1%}."
            if "surrogate_fidelity" in m
            else ""
        ),
        "## Stability\n\n" + _bullets(stability),
        "## Known limits\n\n" + _bullets(limits),
        _config_section(cfg.raw),
    ]
    return "\n\n".join(parts) + "\n"
