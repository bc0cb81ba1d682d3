"""The model card of an upgrade-model training, one function per section."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segments.core.data.panel import SENSITIVE_COLUMNS, PanelSummary
from segments.core.upgrade.metrics import REPORTED
from segments.mlops.cards.markdown import bullets, markdown_table
from segments.mlops.cards.sections import config_section, data_section, features_section, header
from segments.mlops.samples import what_was_logged

__all__ = ["upgrade_card"]


def _upgrade_population(up: Any) -> tuple[str, str]:
    """The upgrade model's population and what its label 1 means, in words."""
    what = (
        f"reach the next tier (its basis, AUM or a points ladder's points, at or above the "
        f"next threshold) in any of "
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
    return population, what


def _calibrated_on(model: Any) -> str:
    """What the model's Platt scaling was fitted on, in words."""
    return {
        "eval": "the validation months",
        "recent": "the test months (the most recent labelled months), from the evaluated "
        "model's out-of-time margins there",
        "train": "the training rows (no validation months were given: overconfident)",
        None: "nothing (uncalibrated: raw LightGBM margins)",
    }.get(getattr(model, "calibrated_on_", "eval"), "months not recorded (older model)")


def _upgradeheader(
    result: Any, cfg: Any, ladder: str, name: str, run_id: str | None, code_version: str
) -> str:
    return header(
        name,
        "Upgrade potential: P(reach the next tier)",
        {
            "MLflow run": f"`{run_id}`" if run_id else "",
            "Experiment": cfg.name,
            "Ladder": _ladder_words(cfg, ladder),
            "Code version": code_version,
            "Test (out-of-time) months": ", ".join(result.split["test"]),
        },
    )


def _ladder_words(cfg: Any, ladder: str) -> str:
    """The ladder's name, its kind and the basis unit (gaps and expected gains are in it)."""
    from segments.mlops.evidence import ladder_of

    lad = ladder_of(cfg)
    if lad.kind == "aum":
        return f"{ladder} (AUM; gaps and expected gains in {lad.basis_unit})"
    return f"{ladder} ({lad.kind} ladder; gaps and expected gains in points)"


def _upgrade_purpose(horizon: int) -> str:
    return (
        "## Purpose\n\nRank customers just under a tier threshold by their probability of "
        f"reaching the next tier within {horizon} months, so relationship managers work the "
        "customers most likely to move up (call list by branch and capacity, with reason "
        "codes). Not for credit decisions or pricing."
    )


def _upgrade_data(result: Any, panel: PanelSummary, digest: str) -> str:
    split, counts = result.split, result.label_counts
    labelled = int(counts["positives"].sum() + counts["negatives"].sum())
    return data_section(
        panel,
        digest,
        [
            f"As-of months: train {', '.join(split['train'])}; validation (early stopping, "
            f"model choice, calibration) {', '.join(split['valid'])}; test "
            f"{', '.join(split['test'])}",
            *_refit_lines(result),
            f"Labelled customer-months: {labelled:,} ({int(counts['positives'].sum()):,} "
            "upgrades); censored "
            f"{int(counts['censored'].sum()):,}",
        ],
    )


def _refit_lines(result: Any) -> list[str]:
    """Which months the evaluated and the deployed model were fitted on."""
    split, lines = result.split, []
    if "refit" in split:
        lines.append(
            f"The evaluated model (its metrics below) was refitted on "
            f"{split['refit'][0]}..{split['refit'][-1]}: every as-of month whose label "
            "window ends before the first test month"
        )
    deployed = getattr(result, "deployed", None)
    if deployed is not None and deployed is not result.model and "deploy" in split:
        lines.append(
            f"The deployed model (the logged one) is the same candidate refitted on every "
            f"labelled month, {split['deploy'][0]}..{split['deploy'][-1]} "
            f"({deployed.fitted_rows_:,} rows{_trees(deployed, result.model)}), calibrated "
            "on the test months; no month is left to test it out of time, so its metrics "
            "are the evaluated model's"
        )
    return lines


def _trees(deployed: Any, evaluated: Any) -> str:
    """The deployed fit's trees beside the evaluated fit's, when both are tree models."""
    if getattr(deployed, "kind_", None) == "spline":
        return ""
    mine, theirs = getattr(deployed, "best_iteration_", 0), getattr(evaluated, "best_iteration_", 0)
    if not (mine and theirs):
        return ""
    return f"; {mine:,} trees: the evaluated fit's {theirs:,} scaled to the rows"


def _upgrade_selection(result: Any) -> str:
    """The candidates compared on the validation months, and why the winner won."""
    sel = getattr(result.model, "selection_", None)
    if sel is None:
        return (
            "## Model selection\n\nNone: the configured trees were fitted without "
            "validation months."
        )
    win = sel[sel["chosen"]].iloc[0]
    rest = sel[~sel["chosen"]]
    margin = (
        f", {rest['valid_log_loss'].iloc[0] - win['valid_log_loss']:.4f} below the next "
        f"best ({rest['candidate'].iloc[0]})"
        if len(rest)
        else ""
    )
    kinds = {
        "gbm": "gradient-boosted trees",
        "spline": "a spline logistic regression",
        "blend": "a blend ({:g} trees, the rest splines) in log-odds",
    }
    kind = kinds[win["kind"]]
    if win["kind"] == "blend":
        kind = kind.format(win["blend_weight"])
    cols = ["candidate", "kind", "trees", "blend_weight", "valid_log_loss", "valid_auc",
            "fit_seconds", "params"]  # fmt: skip
    return (
        "## Model selection\n\n"
        f"Chosen: **{win['candidate']}**, {kind}, for the lowest calibrated log "
        f"loss on the validation months ({win['valid_log_loss']:.4f}{margin}) among "
        f"{len(sel)} candidates fitted on the training months (validation AUC "
        f"{win['valid_auc']:.3f}). Every candidate, best first:\n\n"
        + markdown_table(sel[[c for c in cols if c in sel]], index=False)
    )


def _upgrade_label(result: Any, cfg: Any, ladder: str) -> str:
    population, what = _upgrade_population(cfg.upgrade)
    return (
        "## Population and label\n\n"
        + bullets(
            [
                f"Population at each as-of month: {population} (ladder `{ladder}`).",
                f"Label 1: the customer does {what}; 0: a complete window without it.",
                "Out-of-time split with an embargo: no training label window reaches into the "
                "validation or test months.",
            ]
        )
        + "\n\n"
        + markdown_table(result.label_counts)
    )


def _upgrade_features(result: Any, cfg: Any) -> str:
    imp = result.shap_importance
    return features_section(
        result.model.features_,
        cfg.features.windows,
        imp["mean_abs_shap"] if imp is not None and "mean_abs_shap" in imp else None,
    )


def _upgrade_sensitive(result: Any) -> str:
    """How much the model leans on features built from sensitive attributes: each one's
    rank by mean |SHAP| and the share of test customers it is a reason code for."""
    from segments.core.features import FEATURE_CATALOGUE

    features = list(result.model.features_)
    used = [
        f
        for f in features
        if f in FEATURE_CATALOGUE and set(FEATURE_CATALOGUE[f].sources) & set(SENSITIVE_COLUMNS)
    ]
    if not used:
        return ""
    imp = result.shap_importance
    ranks = (
        imp["mean_abs_shap"].rank(ascending=False, method="min")
        if imp is not None and "mean_abs_shap" in imp
        else pd.Series(dtype=float)
    )
    test = result.test
    reasons = [c for c in test.columns if c.startswith("reason_") and c.endswith("_feature")]
    rows = []
    for f in used:
        named = test[reasons].eq(f).any(axis=1).mean() if reasons and len(test) else np.nan
        rank = ranks.get(f, np.nan)
        rows.append(
            {
                "feature": f,
                "built from": ", ".join(FEATURE_CATALOGUE[f].sources),
                "rank by mean |SHAP|": f"{int(rank)} of {len(features)}"
                if np.isfinite(rank)
                else "-",
                "reason code for (share of test customers)": f"{named:.1%}"
                if np.isfinite(named)
                else "-",
            }
        )
    return (
        "## Sensitive attributes\n\nFeatures built from personal attributes "
        f"({', '.join(SENSITIVE_COLUMNS)}) that the model uses, how much it leans on each, "
        "and how often each is a customer's reason code. A bank that must not use one "
        "lists the features the model may use in `upgrade.features`, without it.\n\n"
        + markdown_table(pd.DataFrame(rows), index=False)
    )


def _upgrade_metrics(result: Any, comp: pd.DataFrame) -> str:
    """Metrics against the baselines: the comparison table and ROC-AUC per near band."""
    bands = result.metrics[result.metrics["segment"] != "all"].pivot_table(
        index="segment", columns="model", values="roc_auc"
    )
    auc = comp.loc["roc_auc"]
    gain = auc["model"] - auc["rule_of_thumb"]
    return (
        "## Metrics against the baselines (out of time)\n\n"
        f"The rule of thumb ranks by closeness to the threshold (gap ratio); the logistic "
        f"regression uses the same features. ROC-AUC {auc['model']:.3f} vs the rule's "
        f"{auc['rule_of_thumb']:.3f} ({gain:+.3f}).\n\n"
        + markdown_table(comp)
        + "\n\nROC-AUC per near band:\n\n"
        + markdown_table(bands)
    )


def _affine(ab: tuple[float, float]) -> str:
    """``logit(p) = a x margin + b`` with the sign of ``b`` written once."""
    a, b = ab
    return f"logit(p) = {a:.4f} × margin {'-' if b < 0 else '+'} {abs(b):.4f}"


def _calibration_verdict(calib: pd.DataFrame | None) -> str:
    """What the calibration bins say when the observed rate sits on one side of the
    predicted one in most of them (a base rate the calibration did not follow)."""
    if calib is None or calib.empty:
        return ""
    above = int((calib["observed"] > calib["mean_p"]).sum())
    n = len(calib)
    if above >= 0.7 * n:
        side, more = "above", "under-predicts"
    elif n - above >= 0.7 * n:
        side, more, above = "below", "over-predicts", n - above
    else:
        return ""
    return (
        f" **The observed rate is {side} the predicted one in {above} of {n} bins: the model "
        f"{more} on the test months** (the base rate moved after the calibration months; "
        "the Stability section shows it month by month, and `upgrade.model.prior_shift` "
        "the corrections on offer)."
    )


def _upgrade_calibration(result: Any, comp: pd.DataFrame) -> str:
    calib = result.calibration.get("model")
    deployed = getattr(result, "deployed", None)
    carried = (
        f" The deployed model's map, on {_calibrated_on(deployed)}: "
        f"{_affine(deployed.calibration_)}."
        if deployed is not None and deployed is not result.model
        else ""
    )
    return (
        "## Calibration\n\n"
        f"Platt scaling on {_calibrated_on(result.model)}: {_affine(result.model.calibration_)}."
        f"{carried} Expected calibration error on the test months: "
        f"{float(comp.loc['ece', 'model']):.4f}.{_calibration_verdict(calib)}"
        + (" In 10 bins:\n\n" + markdown_table(calib, index=False) if calib is not None else "")
    )


def _upgrade_stability(result: Any) -> str:
    """Per test month and model: customers, upgrade rate, mean probability, ROC-AUC, ECE."""
    months = getattr(result, "by_month", None)
    if months is None or months.empty:
        return "## Stability\n\nNo per-month metrics were recorded."
    table = months.pivot_table(
        index="as_of", columns="model", values=["roc_auc", "ece", "mean_p"], sort=True
    )
    table.columns = [f"{m} {v}" for v, m in table.columns]
    rates = months.drop_duplicates("as_of").set_index("as_of")[["n", "positive_rate"]]
    table = rates.join(table)
    return (
        "## Stability\n\nPer test month (each month's customers; ECE: expected calibration "
        "error, 10 bins; mean_p against the observed positive_rate shows a base rate the "
        "calibration did not follow):\n\n" + markdown_table(table)
    )


def _upgrade_limits(result: Any, cfg: Any, comp: pd.DataFrame) -> str:
    """Known limits, with the baselines' verdicts on these months."""
    population, _ = _upgrade_population(cfg.upgrade)
    auc = comp.loc["roc_auc"]
    gain = auc["model"] - auc["rule_of_thumb"]
    split = result.split
    fitted = split.get("deploy") or split.get("refit") or split["train"]
    deployed = getattr(result, "deployed", None) or result.model
    limits = [
        f"Learnt from {len(fitted)} as-of months of one bank's history ({fitted[0]}.."
        f"{fitted[-1]}; the model was chosen on {len(split['train'])} training and "
        f"{len(split['valid'])} validation months); "
        "behaviour shifts (rates, campaigns, a new ladder) need a retrain and are watched by "
        "the scoring run's drift report (PSI).",
        f"Only {population} are scored meaningfully; other customers are outside the "
        "population the model learnt from.",
        "Customers whose label window is incomplete (closed accounts, missing months) are "
        f"censored, not counted as non-upgrades ({int(result.label_counts['censored'].sum()):,} "
        "customer-months here); the model is silent on why customers leave.",
        f"The probability is calibrated by Platt scaling: the evaluated model's on "
        f"{_calibrated_on(result.model)}"
        + (
            f", the deployed model's on {_calibrated_on(deployed)}"
            if deployed is not result.model
            else ""
        )
        + "; calibration drifts with the base rate, so check the calibration table after "
        "each retrain.",
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
    return "## Known limits\n\n" + bullets(limits)


def _upgrade_levers(result: Any, cfg: Any) -> str:
    """The levers on the call list (what the bank does about each customer), and the rule."""
    calls = getattr(result, "call_list", None)
    if calls is None or "lever" not in calls or calls.empty:
        return ""
    from segments.core.growth.levers import LEVER_LABELS

    shares = calls["lever"].value_counts(normalize=True)
    rule = cfg.levers
    lines = [
        "## Levers on the call list",
        "",
        "Each customer on the call list gets the bank action the evidence points to, from "
        "where their assets came from over 6 months (`docs/growth-and-service.md`): "
        f"a source counts when it is the largest and added >= {rule.min_source_share:.0%} of "
        f"AUM; transfers out >= {rule.outflow_share:.0%} of AUM over 3 months show assets "
        f"held elsewhere; demand deposits >= {rule.idle_share:.0%} with nothing invested are "
        f"idle; order {', '.join(rule.order)}.",
        "",
        *(
            f"- {lever} ({zh}): {shares.get(lever, 0.0):.0%} of {len(calls):,} customers"
            for lever, zh in LEVER_LABELS.items()
        ),
    ]
    return "\n".join(lines) + "\n"


def upgrade_card(
    result: Any,
    panel: PanelSummary,
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
    panel : PanelSummary
        The panel it was trained on: sizes, months, digest.
    cfg : ExperimentConfig
    digest : str
        The panel's data digest.
    ladder : str
        The ladder's name.
    name : str
        The registered model name.
    run_id, code_version : str, optional

    Returns
    -------
    str
        The card's Markdown, one section per reviewer question.
    """
    comp = result.comparison()
    comp = comp.reindex([r for r in REPORTED if r in comp.index])
    parts = [
        _upgradeheader(result, cfg, ladder, name, run_id, code_version),
        _upgrade_purpose(cfg.upgrade.horizon),
        _upgrade_data(result, panel, digest),
        _upgrade_label(result, cfg, ladder),
        _upgrade_features(result, cfg),
        _upgrade_sensitive(result),
        _upgrade_selection(result),
        _upgrade_metrics(result, comp),
        _upgrade_calibration(result, comp),
        _upgrade_stability(result),
        _upgrade_levers(result, cfg),
        _upgrade_limits(result, cfg, comp),
        "## Customer data in this run\n\n" + what_was_logged(cfg.tracking),
        config_section(cfg.raw),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _auc(frame: pd.DataFrame, column: str) -> float:
    from sklearn.metrics import roc_auc_score

    y = frame["label"].to_numpy()
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, frame[column].to_numpy()))
