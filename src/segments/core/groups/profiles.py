"""Group profiles, suggested names, persona cards, the tier x group matrix, migration.

Tables only (plots live in :mod:`segments.mlops.plots`). Names come from each group's most
distinguishing features, through a small vocabulary keyed by feature and direction, in
English and Chinese; a YAML naming file overrides them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from segments.core.config.presets import load_yaml
from segments.core.data.panel import ID
from segments.core.features import FEATURE_CATALOGUE, is_log_scale
from segments.core.groups.vocabulary import NAME_WORDS, NEEDS
from segments.exceptions import ConfigError, Violation

__all__ = [
    "group_migration",
    "load_names",
    "persona_cards",
    "profile_groups",
    "suggest_names",
    "tier_group_matrix",
]


def _scaled_lift(features: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Per group and numeric feature: (group mean - population mean) / population sd,
    on log scale for money and counts, so a few rich customers do not dominate."""
    num = features.select_dtypes("number").copy()
    for c in num.columns:
        if is_log_scale(c):
            num[c] = np.log1p(num[c].clip(lower=0))
    lo, hi = num.quantile(0.01), num.quantile(0.99)
    num = num.clip(lo, hi, axis=1)
    sd = num.std().replace(0, np.nan)
    return (num.groupby(labels).mean() - num.mean()) / sd


def profile_groups(
    features: pd.DataFrame,
    labels: np.ndarray | pd.Series,
    *,
    tiers: pd.DataFrame | None = None,
    top: int = 5,
) -> dict[str, pd.DataFrame]:
    """Profile each group against the population.

    Parameters
    ----------
    features : DataFrame
        The feature table the groups were assigned on (indexed by ``customer_id``).
    labels : array-like
        The group id of each row.
    tiers : DataFrame, optional
        The tier table rows of the same month (``customer_id``, ``tier``), for the tier mix.
    top : int, default 5
        Distinguishing features listed per group.

    Returns
    -------
    dict of DataFrame
        ``summary`` (per group: customers, share, AUM total and share, median AUM),
        ``means`` and ``medians`` (group x feature), ``lift`` (group mean / population
        mean), ``z`` (standardised difference, the basis of names), ``distinguishing``
        (top features per group with direction), and ``tier_mix`` when tiers are given.
    """
    labels = np.asarray(labels)
    num = features.select_dtypes("number")
    aum = features["aum_avg_3m"] if "aum_avg_3m" in features else features.get("aum")
    g = pd.Series(labels, index=features.index, name="group_id")
    summary = pd.DataFrame({"customers": g.value_counts().sort_index()})
    summary["share"] = summary["customers"] / len(g)
    if aum is not None:
        total = aum.groupby(g).sum()
        summary["aum_total"] = total
        summary["aum_share"] = total / aum.sum()
        summary["aum_median"] = aum.groupby(g).median()
    means = num.groupby(g).mean()
    medians = num.groupby(g).median()
    pop = num.mean().replace(0, np.nan)
    lift = means / pop
    z = _scaled_lift(features, labels)
    rows = []
    for gid, zrow in z.iterrows():
        order = zrow.abs().sort_values(ascending=False).index[:top]
        for rank, feat in enumerate(order, start=1):
            rows.append(
                {
                    "group_id": gid,
                    "rank": rank,
                    "feature": feat,
                    "direction": "high" if zrow[feat] > 0 else "low",
                    "z": float(zrow[feat]),
                    "group_median": float(medians.loc[gid, feat]),
                    "population_median": float(num[feat].median()),
                }
            )
    out = {
        "summary": summary,
        "means": means,
        "medians": medians,
        "lift": lift,
        "z": z,
        "distinguishing": pd.DataFrame(rows),
    }
    if tiers is not None:
        t = tiers.set_index(ID)["tier"].reindex(features.index)
        mix = pd.crosstab(g, t, normalize="index")
        out["tier_mix"] = mix
    return out


def suggest_names(z: pd.DataFrame, *, max_words: int = 2) -> pd.DataFrame:
    """Suggest an English and a Chinese name per group from its distinguishing features.

    Parameters
    ----------
    z : DataFrame
        Group x feature standardised differences (``profile_groups(...)["z"]``).
    max_words : int, default 2
        Descriptive words per name (a third is added when two groups would share a name).

    Returns
    -------
    DataFrame
        Indexed by group id: ``name_en``, ``name_zh``, ``basis`` (the features used).
    """
    candidates: dict[Any, list[tuple[str, str, str]]] = {}
    for gid, row in z.iterrows():
        words = []
        for feat in row.abs().sort_values(ascending=False).index:
            if abs(row[feat]) < 0.3:
                break
            key = (feat, 1 if row[feat] > 0 else -1)
            if key in NAME_WORDS and NAME_WORDS[key][0] not in [w[0] for w in words]:
                words.append((*NAME_WORDS[key], f"{feat} {'high' if key[1] > 0 else 'low'}"))
        candidates[gid] = words or [("typical", "普通", "no strong trait")]
    n_words = dict.fromkeys(candidates, max_words)
    for _ in range(4):
        names = {g: " ".join(w[0] for w in ws[: n_words[g]]) for g, ws in candidates.items()}
        dup = pd.Series(names)
        clash = dup[dup.duplicated(keep=False)].index
        if len(clash) == 0:
            break
        for g in clash:
            n_words[g] += 1
    rows = {}
    for g, ws in candidates.items():
        used = ws[: n_words[g]]
        rows[g] = {
            "name_en": " ".join(w[0] for w in used) + " customers",
            "name_zh": "".join(w[1] for w in used) + "客群",
            "basis": "; ".join(w[2] for w in used),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "group_id"
    dup = out["name_en"].duplicated(keep="first")
    out.loc[dup, "name_en"] = out.loc[dup, "name_en"] + " " + out.index[dup].astype(str)
    out.loc[dup, "name_zh"] = out.loc[dup, "name_zh"] + out.index[dup].astype(str)
    return out


def load_names(
    path: str | os.PathLike[str] | Mapping[str, Any], suggested: pd.DataFrame
) -> pd.DataFrame:
    """Override suggested names from a YAML naming file.

    The file maps group ids to names::

        groups:
          0: {name_en: digital young savers, name_zh: 数字化年轻储蓄客群}
          3: {name_en: retired depositors}

    Raises
    ------
    ConfigError
        For an id the model does not have, or an unknown key.
    """
    data = path if isinstance(path, Mapping) else load_yaml(path)
    groups = data.get("groups", {})
    problems = []
    out = suggested.copy()
    for gid, entry in (groups or {}).items():
        if gid not in out.index:
            problems.append(
                Violation(
                    f"groups.{gid}",
                    f"is not a group id of this model ({', '.join(map(str, out.index))})",
                )
            )
            continue
        if not isinstance(entry, Mapping):
            entry = {"name_en": str(entry)}
        for key, value in entry.items():
            if key not in ("name_en", "name_zh"):
                problems.append(Violation(f"groups.{gid}.{key}", "expected name_en or name_zh"))
                continue
            out.loc[gid, key] = str(value)
            out.loc[gid, "basis"] = "naming file"
    if problems:
        raise ConfigError(problems, source=str(path) if not isinstance(path, Mapping) else "")
    return out


#: The features each persona card lists, by section: (heading, features).
_CARD_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "What they hold",
        (
            "aum_avg_6m",
            "demand_deposit_share",
            "time_deposit_share",
            "wealth_share",
            "fund_share",
            "n_products",
            "loan_balance",
            "mortgage_balance",
        ),
    ),
    (
        "How they behave",
        (
            "txn_count_avg_6m",
            "app_logins_avg_3m",
            "branch_visits_avg_6m",
            "rm_contacts_avg_6m",
            "digital_share_6m",
            "card_utilisation_3m",
            "inflow_turnover_3m",
            "payroll_regularity_6m",
            "aum_growth_6m",
        ),
    ),
)


def _card_value(feat: str, value: float) -> str:
    """A feature value as a card shows it: money whole, shares as percentages."""
    spec = FEATURE_CATALOGUE.get(feat)
    unit = spec.unit if spec else ""
    if unit == "money":
        return f"{value:,.0f}"
    if unit in ("share", "ratio"):
        return f"{value:.0%}"
    return f"{value:,.1f}"


def _median_lines(
    medians: pd.DataFrame, pop_med: pd.Series, gid: Any, feats: tuple[str, ...]
) -> list[str]:
    """One bullet per feature the model has: the group's median against everyone's."""
    lines = []
    for feat in feats:
        if feat not in medians.columns:
            lines.append("")
            continue
        spec = FEATURE_CATALOGUE.get(feat)
        label = spec.en if spec else feat
        lines.append(
            f"- {label}: {_card_value(feat, medians.loc[gid, feat])} (all customers: "
            f"{_card_value(feat, pop_med[feat])})\n"
        )
    return lines


def _card_title(gid: Any, names: pd.DataFrame, s: pd.Series) -> list[str]:
    """The title, the group's size and its share of AUM."""
    name_en, name_zh = names.loc[gid, "name_en"], names.loc[gid, "name_zh"]
    text = [
        f"# Group {gid}: {name_en} / {name_zh}\n\n",
        f"{int(s['customers']):,} customers ({s['share']:.1%})",
    ]
    if "aum_share" in s:
        text.append(f", holding {s['aum_share']:.1%} of AUM (median {s['aum_median']:,.0f})")
    text.append(".\n")
    return text


def _who_section(
    medians: pd.DataFrame, pop_med: pd.Series, gid: Any, members: pd.DataFrame
) -> list[str]:
    """Who they are: age, tenure, and the two commonest occupations and regions."""
    text = ["\n## Who they are\n", *_median_lines(medians, pop_med, gid, ("age", "tenure_months"))]
    for cat in ("occupation", "region"):
        if cat in members:
            top = members[cat].value_counts(normalize=True).head(2)
            text.append(f"- {cat}: " + ", ".join(f"{k} {v:.0%}" for k, v in top.items()) + "\n")
    return text


def _needs_section(zrow: pd.Series) -> list[str]:
    """What they need: up to three needs of the group's strongest traits (|z| >= 0.3)."""
    needs: list[tuple[str, str]] = []
    for feat in zrow.abs().sort_values(ascending=False).index:
        key = (feat, 1 if zrow[feat] > 0 else -1)
        if abs(zrow[feat]) >= 0.3 and key in NEEDS and NEEDS[key] not in needs:
            needs.append(NEEDS[key])
        if len(needs) == 3:
            break
    return [
        "\n## What they need\n",
        *(f"- {en} / {zh}\n" for en, zh in needs or [("a standard service model", "标准服务模式")]),
    ]


def _growth_section(group: pd.DataFrame, everyone: pd.DataFrame) -> list[str]:
    """Where their assets come from: the share of the group whose main source of growth over
    6 months each is (against everyone), from the ``growth_*_6m`` features."""
    from segments.core.growth.sources import DOMINANT_NONE, SOURCES, dominant_source

    cols = {f"growth_{s}": f"growth_{s}_6m" for s in SOURCES}
    if not any(c in everyone.columns for c in cols.values()):
        return []

    def shares(frame: pd.DataFrame) -> pd.Series:
        sums = pd.DataFrame(
            {k: frame[v] if v in frame.columns else np.nan for k, v in cols.items()},
            index=frame.index,
        )
        return pd.Series(dominant_source(sums)).value_counts(normalize=True)

    mine, all_ = shares(group), shares(everyone)
    return [
        "\n## Where their assets come from\n",
        *(
            f"- main source over 6 months {s}: {mine.get(s, 0.0):.0%} of the group "
            f"(all customers: {all_.get(s, 0.0):.0%})\n"
            for s in (*SOURCES, DOMINANT_NONE)
        ),
    ]


def _service_section(service: pd.DataFrame | None, gid: Any) -> list[str]:
    """The service they get: the share of the group in each service model (by tier)."""
    if service is None or gid not in service.index:
        return []
    row = service.loc[gid]
    return [
        "\n## The service they get (by their tiers)\n",
        *(f"- {model}: {share:.0%}\n" for model, share in row.items() if share > 0),
    ]


def _apart_section(distinguishing: pd.DataFrame, gid: Any) -> list[str]:
    """What sets them apart: the group's distinguishing features and their z-scores."""
    top_feats = distinguishing[distinguishing["group_id"] == gid]
    return [
        "\n## What sets them apart\n",
        *(
            f"- {r['feature']} is {r['direction']} (z = {r['z']:+.2f})\n"
            for _, r in top_feats.iterrows()
        ),
    ]


def _surrogate_section(surrogate: Any, top: pd.DataFrame, gid: Any) -> list[str]:
    """Why the model places customers here: the surrogate's top features by mean SHAP."""
    text = [
        f"\n## Why the model places customers here (surrogate classifier, "
        f"fidelity {surrogate.fidelity_:.1%})\n"
    ]
    for _, r in top[top["group_id"] == gid].iterrows():
        spec = FEATURE_CATALOGUE.get(r["feature"])
        label = f"{spec.en} / {spec.zh}" if spec else r["feature"]
        text.append(f"- {label} (mean SHAP {r['mean_shap']:+.2f})\n")
    return text


def persona_cards(
    profile: dict[str, pd.DataFrame],
    names: pd.DataFrame,
    features: pd.DataFrame,
    labels: np.ndarray,
    *,
    surrogate: Any | None = None,
    service: pd.DataFrame | None = None,
) -> dict[Any, str]:
    """One Markdown page per group: who they are, what they hold, how they behave, where
    their assets come from, the service they get, needs.

    With a fitted :class:`segments.core.explain.reasons.GroupSurrogate`, each card also says which
    features place customers in the group (mean SHAP of the surrogate) and its fidelity.

    Parameters
    ----------
    profile : dict of DataFrame
        :func:`profile_groups` of the groups (``summary``, ``medians``, ``z``,
        ``distinguishing``).
    names : DataFrame
        Group names (``name_en``, ``name_zh``) by group id, from :func:`suggest_names`.
    features : DataFrame
        The feature table the groups were assigned on.
    labels : ndarray
        The group id of each row of ``features``.
    surrogate : GroupSurrogate, optional
        A fitted surrogate classifier of the groups.
    service : DataFrame, optional
        Group id x service model: the share of the group each model serves
        (:func:`segments.core.plan.service_mix`).

    Returns
    -------
    dict
        Group id -> the card's Markdown.
    """
    labels = np.asarray(labels)
    med = profile["medians"]
    pop_med = features.select_dtypes("number").median()
    top = surrogate.top_features(3) if surrogate is not None else None
    cards = {}
    for gid in profile["summary"].index:
        text = _card_title(gid, names, profile["summary"].loc[gid])
        text += _who_section(med, pop_med, gid, features[labels == gid])
        for heading, feats in _CARD_SECTIONS:
            text += [f"\n## {heading}\n", *_median_lines(med, pop_med, gid, feats)]
        text += _growth_section(features[labels == gid], features)
        text += _service_section(service, gid)
        text += _needs_section(profile["z"].loc[gid])
        text += _apart_section(profile["distinguishing"], gid)
        if surrogate is not None:
            text += _surrogate_section(surrogate, top, gid)
        cards[gid] = "".join(text)
    return cards


def tier_group_matrix(
    tiers: pd.DataFrame, groups: pd.Series, aum: pd.Series | None = None
) -> dict[str, pd.DataFrame]:
    """The tier x group matrix for one month: how a bank reads its book.

    Parameters
    ----------
    tiers : DataFrame
        Tier table rows of one month (``customer_id``, ``tier``, ``aum_basis``,
        ``near_tier``).
    groups : Series
        Group id (or name) per ``customer_id`` (its index).
    aum : Series, optional
        The month's AUM per ``customer_id``; by default ``aum_basis`` (AUM on an AUM
        ladder). Required when the tier table's basis is in points.

    Returns
    -------
    dict of DataFrame
        ``counts``, ``share`` (of all customers), ``aum_share`` (of all AUM) and
        ``near_tier`` (near-tier customers), each tiers x groups with margins ``All``.
    """
    t = tiers.set_index(ID)
    joined = t.join(groups.rename("group"), how="inner")
    if aum is not None:
        joined["aum_basis"] = aum.reindex(joined.index).to_numpy()
    elif "basis_unit" in joined and (joined["basis_unit"].astype(str) == "points").any():
        raise ConfigError(
            [
                Violation(
                    "aum",
                    "is needed for the AUM shares: the tier table's basis is in points",
                    hint="pass aum=, the month's AUM per customer_id",
                )
            ]
        )
    if joined.empty:
        raise ConfigError(
            [Violation("customer_id", "no customer is in both the tier table and the groups")]
        )
    kw = {"margins": True, "margins_name": "All"}
    counts = pd.crosstab(joined["tier"], joined["group"], **kw)
    aum = pd.crosstab(
        joined["tier"], joined["group"], values=joined["aum_basis"], aggfunc="sum", **kw
    ).fillna(0.0)
    near = (
        pd.crosstab(
            joined["tier"],
            joined["group"],
            values=joined["near_tier"].astype(int),
            aggfunc="sum",
            **kw,
        )
        .fillna(0)
        .astype(int)
    )
    return {
        "counts": counts,
        "share": counts / len(joined),
        "aum_share": aum / joined["aum_basis"].sum(),
        "near_tier": near,
    }


def group_migration(
    before: pd.Series, after: pd.Series, *, normalize: bool = False
) -> pd.DataFrame:
    """Group transition matrix between two as-of months (customers in both).

    Parameters
    ----------
    before, after : Series
        Group id per ``customer_id`` at two as-of months, from the same model.
    normalize : bool, default False
        Row rates instead of counts.
    """
    both = pd.concat([before.rename("before"), after.rename("after")], axis=1, join="inner")
    return pd.crosstab(both["before"], both["after"], normalize="index" if normalize else False)
