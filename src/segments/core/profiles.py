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

from segments.core.config import load_yaml
from segments.core.features import FEATURE_CATALOGUE, is_log_scale
from segments.core.panel import ID
from segments.exceptions import ConfigError, Violation

__all__ = [
    "group_migration",
    "load_names",
    "persona_cards",
    "profile_groups",
    "suggest_names",
    "tier_group_matrix",
]

# (feature, direction) -> (English word, Chinese word). Direction +1: the group is high.
_VOCAB: dict[tuple[str, int], tuple[str, str]] = {
    ("age", -1): ("young", "年轻"),
    ("age", 1): ("senior", "年长"),
    ("aum_avg_6m", 1): ("affluent", "高资产"),
    ("aum_avg_6m", -1): ("low-balance", "低资产"),
    ("app_logins_avg_3m", 1): ("digital", "数字化"),
    ("digital_share_6m", 1): ("digital", "数字化"),
    ("digital_share_6m", -1): ("offline", "线下"),
    ("branch_visits_avg_6m", 1): ("branch-loyal", "网点偏好"),
    ("rm_contacts_avg_6m", 1): ("RM-served", "客户经理服务"),
    ("time_deposit_share", 1): ("time-deposit", "定期储蓄"),
    ("demand_deposit_share", 1): ("cash-holding", "活期"),
    ("wealth_share", 1): ("wealth-investing", "理财投资"),
    ("fund_share", 1): ("fund-investing", "基金投资"),
    ("card_utilisation_3m", 1): ("credit-reliant", "信用依赖"),
    ("card_spend_avg_3m", 1): ("card-spending", "刷卡消费"),
    ("loan_balance", 1): ("borrowing", "借贷"),
    ("mortgage_balance", 1): ("mortgaged", "房贷"),
    ("inflow_turnover_3m", 1): ("high-flow", "高流水"),
    ("payroll_regularity_6m", 1): ("salaried", "代发工资"),
    ("payroll_regularity_6m", -1): ("non-salaried", "非代发"),
    ("txn_count_avg_6m", 1): ("active", "高活跃"),
    ("txn_count_avg_6m", -1): ("inactive", "低活跃"),
    ("n_products", 1): ("multi-product", "多产品"),
    ("n_products", -1): ("single-product", "单一产品"),
    ("tenure_months", 1): ("long-standing", "老"),
    ("tenure_months", -1): ("new", "新"),
}

# (feature, direction) -> (need, need in Chinese): what a group with this trait needs.
_NEEDS: dict[tuple[str, int], tuple[str, str]] = {
    ("age", 1): (
        "stable-yield products, pension and health cover, patient branch service",
        "稳健收益产品、养老与健康保障、贴心网点服务",
    ),
    ("age", -1): (
        "app-first savings plans and a first step into wealth products",
        "线上储蓄计划与理财入门产品",
    ),
    ("time_deposit_share", 1): (
        "laddered deposits and low-risk wealth products at maturity",
        "定期到期转化为低风险理财",
    ),
    ("wealth_share", 1): (
        "advisory, portfolio reviews and new-issue access",
        "投资顾问、组合检视与新品优先认购",
    ),
    ("fund_share", 1): ("fund advisory and regular investment plans", "基金投顾与定投计划"),
    ("card_utilisation_3m", 1): (
        "debt management, instalments and credit health checks",
        "债务管理、分期与信用健康提醒",
    ),
    ("loan_balance", 1): (
        "business or personal credit lines and cash management",
        "经营或个人授信与现金管理",
    ),
    ("mortgage_balance", 1): (
        "family protection, education savings and mortgage-linked offers",
        "家庭保障、教育储蓄与房贷关联权益",
    ),
    ("inflow_turnover_3m", 1): (
        "cash management, payments and merchant services",
        "现金管理、支付结算与商户服务",
    ),
    ("payroll_regularity_6m", 1): (
        "payroll-linked savings plans that sweep salary into wealth products",
        "代发工资自动转存与理财",
    ),
    ("txn_count_avg_6m", -1): ("activation: a reason to use the account again", "唤醒激活活动"),
    ("rm_contacts_avg_6m", 1): ("dedicated relationship-manager coverage", "专属客户经理服务"),
    ("aum_avg_6m", 1): ("wealth planning and tier privileges", "财富规划与等级权益"),
    ("digital_share_6m", 1): ("digital journeys and in-app offers", "线上旅程与App内权益"),
    ("branch_visits_avg_6m", 1): ("in-branch advice and assisted channels", "网点顾问与协助渠道"),
}


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
            if key in _VOCAB and _VOCAB[key][0] not in [w[0] for w in words]:
                words.append((*_VOCAB[key], f"{feat} {'high' if key[1] > 0 else 'low'}"))
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


def persona_cards(
    profile: dict[str, pd.DataFrame],
    names: pd.DataFrame,
    features: pd.DataFrame,
    labels: np.ndarray,
    *,
    surrogate: Any | None = None,
) -> dict[Any, str]:
    """One Markdown page per group: who they are, what they hold, how they behave, needs.

    With a fitted :class:`segments.core.explain.GroupSurrogate`, each card also says which
    features place customers in the group (mean SHAP of the surrogate) and its fidelity.
    """
    labels = np.asarray(labels)
    med = profile["medians"]
    summ = profile["summary"]
    z = profile["z"]
    cards = {}
    pop_med = features.select_dtypes("number").median()

    def fmt(feat: str, value: float) -> str:
        spec = FEATURE_CATALOGUE.get(feat)
        unit = spec.unit if spec else ""
        if unit == "money":
            return f"{value:,.0f}"
        if unit in ("share", "ratio"):
            return f"{value:.0%}"
        return f"{value:,.1f}"

    def line(gid: Any, feat: str) -> str:
        if feat not in med.columns:
            return ""
        spec = FEATURE_CATALOGUE.get(feat)
        label = spec.en if spec else feat
        return (
            f"- {label}: {fmt(feat, med.loc[gid, feat])} (all customers: "
            f"{fmt(feat, pop_med[feat])})\n"
        )

    for gid in summ.index:
        s = summ.loc[gid]
        name_en, name_zh = names.loc[gid, "name_en"], names.loc[gid, "name_zh"]
        text = [
            f"# Group {gid}: {name_en} / {name_zh}\n\n",
            f"{int(s['customers']):,} customers ({s['share']:.1%})",
        ]
        if "aum_share" in s:
            text.append(f", holding {s['aum_share']:.1%} of AUM (median {s['aum_median']:,.0f})")
        text.append(".\n\n## Who they are\n")
        for feat in ("age", "tenure_months"):
            text.append(line(gid, feat))
        members = features[labels == gid]
        for cat in ("occupation", "region"):
            if cat in members:
                top = members[cat].value_counts(normalize=True).head(2)
                text.append(f"- {cat}: " + ", ".join(f"{k} {v:.0%}" for k, v in top.items()) + "\n")
        text.append("\n## What they hold\n")
        for feat in (
            "aum_avg_6m",
            "demand_deposit_share",
            "time_deposit_share",
            "wealth_share",
            "fund_share",
            "n_products",
            "loan_balance",
            "mortgage_balance",
        ):
            text.append(line(gid, feat))
        text.append("\n## How they behave\n")
        for feat in (
            "txn_count_avg_6m",
            "app_logins_avg_3m",
            "branch_visits_avg_6m",
            "rm_contacts_avg_6m",
            "digital_share_6m",
            "card_utilisation_3m",
            "inflow_turnover_3m",
            "payroll_regularity_6m",
            "aum_growth_6m",
        ):
            text.append(line(gid, feat))
        text.append("\n## What they need\n")
        needs = []
        for feat in z.loc[gid].abs().sort_values(ascending=False).index:
            key = (feat, 1 if z.loc[gid, feat] > 0 else -1)
            if abs(z.loc[gid, feat]) >= 0.3 and key in _NEEDS and _NEEDS[key] not in needs:
                needs.append(_NEEDS[key])
            if len(needs) == 3:
                break
        for en, zh in needs or [("a standard service model", "标准服务模式")]:
            text.append(f"- {en} / {zh}\n")
        dist = profile["distinguishing"]
        top_feats = dist[dist["group_id"] == gid]
        text.append("\n## What sets them apart\n")
        for _, r in top_feats.iterrows():
            text.append(f"- {r['feature']} is {r['direction']} (z = {r['z']:+.2f})\n")
        if surrogate is not None:
            text.append(
                f"\n## Why the model places customers here (surrogate classifier, "
                f"fidelity {surrogate.fidelity_:.1%})\n"
            )
            sur = surrogate.top_features(3)
            for _, r in sur[sur["group_id"] == gid].iterrows():
                spec = FEATURE_CATALOGUE.get(r["feature"])
                label = f"{spec.en} / {spec.zh}" if spec else r["feature"]
                text.append(f"- {label} (mean SHAP {r['mean_shap']:+.2f})\n")
        cards[gid] = "".join(text)
    return cards


def tier_group_matrix(tiers: pd.DataFrame, groups: pd.Series) -> dict[str, pd.DataFrame]:
    """The tier x group matrix for one month: how a bank reads its book.

    Parameters
    ----------
    tiers : DataFrame
        Tier table rows of one month (``customer_id``, ``tier``, ``aum_basis``,
        ``near_tier``).
    groups : Series
        Group id (or name) per ``customer_id`` (its index).

    Returns
    -------
    dict of DataFrame
        ``counts``, ``share`` (of all customers), ``aum_share`` (of all AUM) and
        ``near_tier`` (near-tier customers), each tiers x groups with margins ``All``.
    """
    t = tiers.set_index(ID)
    joined = t.join(groups.rename("group"), how="inner")
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
