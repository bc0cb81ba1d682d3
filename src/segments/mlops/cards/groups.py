"""The model card of a strategic-groups training, one function per section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from segments.core.data.panel import PanelSummary
from segments.mlops.cards.markdown import bullets, markdown_table
from segments.mlops.cards.sections import config_section, data_section, features_section, header

__all__ = ["groups_card"]


def _groupsheader(
    result: Any, cfg: Any, ladder: str, name: str, run_id: str | None, code_version: str
) -> str:
    return header(
        name,
        "Strategic groups (clustering)",
        {
            "MLflow run": f"`{run_id}`" if run_id else "",
            "Experiment": cfg.name,
            "Ladder": ladder,
            "Code version": code_version,
            "As-of month": result.as_of,
            "Algorithm": result.model.algorithm,
        },
    )


_GROUPS_PURPOSE = (
    "## Purpose\n\nGroup customers by behaviour and needs (not assets alone), so each "
    "tier can be served by strategy per group: persona cards for marketing and RMs, the "
    "tier x group matrix for planning. Not for credit decisions."
)


def _groups_definition(result: Any) -> str:
    return "## Population and definition\n\n" + bullets(
        [
            f"Every customer present in the as-of month {result.as_of}.",
            "No label: groups are clusters of the behavioural features below; each customer "
            "is assigned to the nearest group centre (or the most probable component).",
            "Ids are matched to the previous model's groups when one is given, so a group "
            "keeps its id across refits.",
        ]
    )


def _groups_table(result: Any) -> str:
    """Each group's names, size, share and bootstrap Jaccard."""
    summary = result.profile["summary"].join(result.names)
    jaccard = result.model.stability_["jaccard"]
    groups = pd.DataFrame(
        {
            "name": summary["name_en"],
            "名称": summary["name_zh"],
            "customers": summary["customers"].astype(int),
            "share": summary["share"],
            "bootstrap Jaccard": [jaccard.get(g, np.nan) for g in summary.index],
        }
    )
    groups.index.name = "group"
    return "## Groups\n\n" + markdown_table(groups)


def _groups_metrics(result: Any) -> str:
    """The chosen k, the criteria, the reference ARI and the surrogate's fidelity."""
    model, m = result.model, result.metrics
    rep = model.k_selection_report_ or {}
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
    return (
        "## Metrics and baselines\n\n"
        + bullets(quality)
        + "\n\nSelection criteria for every k tried (silhouette on a stratified sample, "
        "Calinski-Harabasz, Davies-Bouldin, bootstrap ARI):\n\n"
        + (
            markdown_table(model.k_selection_, index=False)
            if model.k_selection_ is not None
            else "k was fixed by configuration."
        )
    )


def _groups_calibration(metrics: Mapping[str, float]) -> str:
    return "## Calibration\n\nNot applicable: groups are assignments, not probabilities. " + (
        f"Membership is explained by a surrogate with fidelity {metrics['surrogate_fidelity']:.1%}."
        if "surrogate_fidelity" in metrics
        else ""
    )


def _groups_stability(result: Any, cfg: Any) -> str:
    """Bootstrap ARI and, with a migration window, the share staying in their group."""
    stab, m = result.model.stability_, result.metrics
    stability = [f"Bootstrap refits: ARI mean {stab['ari_mean']:.3f}, min {stab['ari_min']:.3f}."]
    if "group_stay_rate" in m and np.isfinite(m["group_stay_rate"]):
        stability.append(
            f"Customers in the same group {cfg.groups.migration_months} months "
            f"earlier (same model): {m['group_stay_rate']:.1%}."
        )
    return "## Stability\n\n" + bullets(stability)


def _groups_limits(result: Any, cfg: Any) -> str:
    """Known limits, naming the groups that are less reproducible."""
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
    small = [g for g, v in result.model.stability_["jaccard"].items() if v < 0.75]
    if small:
        limits.append(
            "Groups with a bootstrap Jaccard under 0.75 (less reproducible): "
            + ", ".join(str(g) for g in small)
            + "."
        )
    return "## Known limits\n\n" + bullets(limits)


def groups_card(
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
    """The Markdown model card of a strategic-groups training.

    Parameters are as for :func:`upgrade_card`, with ``result`` a ``GroupsResult``.

    Returns
    -------
    str
        The card's Markdown, one section per reviewer question.
    """
    parts = [
        _groupsheader(result, cfg, ladder, name, run_id, code_version),
        _GROUPS_PURPOSE,
        data_section(
            panel,
            digest,
            [f"Customers grouped: {len(result.features):,} (active in {result.as_of})"],
        ),
        _groups_definition(result),
        features_section(result.model.features_, cfg.features.windows),
        _groups_table(result),
        _groups_metrics(result),
        _groups_calibration(result.metrics),
        _groups_stability(result, cfg),
        _groups_limits(result, cfg),
        "## Customer data in this run\n\nNo customer-level rows: profiles, names and the "
        "tier x group tables are aggregates, and the model's input example is made of column "
        "quantiles.",
        config_section(cfg.raw),
    ]
    return "\n\n".join(parts) + "\n"
