"""The feature catalogue: every feature, declared once with its computation.

Each feature is a :func:`~segments.core.features.registry.feature` declaration (name,
family, unit, English and Chinese text, the panel columns it needs, its window) on the
function that computes it from a :class:`~segments.core.features.history.History`. The
order here is the order of the catalogue and of the columns of
:func:`~segments.core.features.build_features`. A feature may read the features declared
before it through ``h.computed``. See ``docs/features.md`` for adding one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from segments.core.data.panel import AUM, INVESTMENT_COMPONENTS, NET_PURCHASES
from segments.core.features.history import History, Values, nanmean, nansum, ratio
from segments.core.features.registry import HISTORY, LONGEST, PER_WINDOW, Compute, feature
from segments.core.growth.sources import (
    accumulation,
    appreciation,
    investments,
    migration,
    source_columns,
)

__all__ = ["AGE_BANDS", "asset_share", "latest_value", "value_now"]

#: Age bands: left-closed edges in years and their labels.
AGE_BANDS = ([0, 30, 45, 60, 200], ["<30", "30-44", "45-59", "60+"])


def value_now(column: str) -> Compute:
    """A computation: the column's value in the as-of month."""

    def compute(h: History, w: int) -> Values:
        return h.now(column)

    return compute


def latest_value(column: str) -> Compute:
    """A computation: the column's value in each customer's latest month held (dtype kept)."""

    def compute(h: History, w: int) -> Values:
        return h.latest(column)

    return compute


def asset_share(*columns: str) -> Compute:
    """A computation: the share of AUM in ``columns`` (those present) in the as-of month;
    0 when AUM is not positive."""

    def compute(h: History, w: int) -> Values:
        total = h.aum[:, 0]
        part = sum(np.nan_to_num(h.now(c)) for c in columns if h.has(c))
        return np.where(total > 0, ratio(part, total), 0.0)

    return compute


# -- AUM level and trend ------------------------------------------------------------------


@feature("aum", "aum_level", "money", en="AUM in the as-of month", zh="当月日均资产",
         sources=(AUM,))  # fmt: skip
def _aum(h: History, w: int) -> Values:
    return h.aum[:, 0]


@feature("aum_avg_{w}m", "aum_level", "money", en="average AUM over the last {w} months",
         zh="近{w}个月日均资产均值", sources=(AUM,), window=PER_WINDOW)  # fmt: skip
def _aum_avg(h: History, w: int) -> Values:
    return nanmean(h.aum[:, :w])


@feature("aum_growth_{w}m", "aum_trend", "ratio", en="AUM growth over the last {w} months",
         zh="近{w}个月资产增长率", sources=(AUM,), window=PER_WINDOW)  # fmt: skip
def _aum_growth(h: History, w: int) -> Values:
    return np.clip(ratio(h.aum[:, 0] + 1.0, h.aum[:, w] + 1.0) - 1.0, -1, 20)


@feature("aum_slope_6m", "aum_trend", "ratio",
         en="monthly AUM trend over the last 6 months (log-linear slope)",
         zh="近6个月资产月均趋势", sources=(AUM,), window=6)  # fmt: skip
def _aum_slope(h: History, w: int) -> Values:
    x = np.arange(w, dtype="float64")[::-1]  # months before -> time axis increasing to now
    y = h.log_aum[:, :w]
    ok = ~np.isnan(y)
    cnt = ok.sum(axis=1)
    xm = np.where(ok, x, 0).sum(axis=1) / np.maximum(cnt, 1)
    ym = np.where(ok, y, 0).sum(axis=1) / np.maximum(cnt, 1)
    dx = np.where(ok, x - xm[:, None], 0.0)
    dy = np.where(ok, y - ym[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (dx * dy).sum(axis=1) / (dx**2).sum(axis=1)
    slope[cnt < 3] = np.nan
    return slope


@feature("aum_vol_{w}m", "aum_trend", "ratio",
         en="volatility of monthly AUM changes over the last {w} months",
         zh="近{w}个月资产月度波动率", sources=(AUM,), window=LONGEST)  # fmt: skip
def _aum_vol(h: History, w: int) -> Values:
    diffs = h.log_aum[:, : w - 1] - h.log_aum[:, 1:w]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: NaN, set below
        vol = np.nanstd(diffs, axis=1) if diffs.size else np.full(h.n, np.nan)
    vol[(~np.isnan(diffs)).sum(axis=1) < 2] = np.nan
    return vol


@feature("aum_drawdown_{w}m", "aum_trend", "share", en="fall from the {w}-month AUM peak",
         zh="较近{w}个月资产峰值的回撤", sources=(AUM,), window=LONGEST)  # fmt: skip
def _aum_drawdown(h: History, w: int) -> Values:
    recent = h.aum[:, :w]
    peak = np.nanmax(np.where(np.isnan(recent), -np.inf, recent), axis=1)
    return np.clip(1.0 - ratio(h.aum[:, 0], peak), 0, 1)


# -- asset mix and breadth ----------------------------------------------------------------

feature("demand_deposit_share", "asset_mix", "share", en="share of AUM in demand deposits",
        zh="活期存款占比", sources=("dep_demand",))(asset_share("dep_demand"))  # fmt: skip
feature("time_deposit_share", "asset_mix", "share", en="share of AUM in time deposits",
        zh="定期存款占比", sources=("dep_time",))(asset_share("dep_time"))  # fmt: skip
feature("wealth_share", "asset_mix", "share", en="share of AUM in wealth-management products",
        zh="理财产品占比",
        sources=("wealth_products",))(asset_share("wealth_products"))  # fmt: skip
feature("fund_share", "asset_mix", "share", en="share of AUM in funds", zh="基金占比",
        sources=("funds",))(asset_share("funds"))  # fmt: skip
feature("insurance_share", "asset_mix", "share", en="share of AUM in insurance", zh="保险占比",
        sources=("insurance",))(asset_share("insurance"))  # fmt: skip
feature("bond_metal_share", "asset_mix", "share", en="share of AUM in bonds and precious metals",
        zh="债券及贵金属占比", sources=("bonds", "precious_metals"),
        any_source=True)(asset_share("bonds", "precious_metals"))  # fmt: skip


@feature("investment_share", "asset_mix", "share",
         en="share of AUM invested (wealth products, funds, bonds, precious metals)",
         zh="投资类资产占比(理财、基金、债券、贵金属)",
         sources=("wealth_products", "funds"))  # fmt: skip
def _investment_share(h: History, w: int) -> Values:
    return sum(h.computed.get(c, 0.0) for c in ("wealth_share", "fund_share", "bond_metal_share"))


@feature("wealth_share_change_6m", "asset_mix", "ratio",
         en="change in the wealth-product share over the last 6 months",
         zh="近6个月理财占比变化", sources=("wealth_products",), window=6)  # fmt: skip
def _wealth_share_change(h: History, w: int) -> Values:
    aum_then = h.aum[:, w]
    share_then = np.where(aum_then > 0, ratio(h.grid("wealth_products")[:, w], aum_then), 0.0)
    share_then[np.isnan(aum_then)] = np.nan
    return h.computed["wealth_share"] - share_then


feature("n_products", "breadth", "count", en="products held", zh="持有产品数",
        sources=("n_products",))(value_now("n_products"))  # fmt: skip


@feature("n_products_change_6m", "breadth", "count",
         en="change in products held over the last 6 months", zh="近6个月持有产品数变化",
         sources=("n_products",), window=6)  # fmt: skip
def _n_products_change(h: History, w: int) -> Values:
    g = h.grid("n_products")
    return g[:, 0] - g[:, w]


# -- flows (relative to AUM over fixed 3- and 6-month bases) ------------------------------


@feature("net_inflow_ratio_3m", "flows", "ratio",
         en="net inflow over the last 3 months relative to AUM", zh="近3个月净流入占资产比",
         sources=("inflow", "outflow"), window=3)  # fmt: skip
def _net_inflow_ratio(h: History, w: int) -> Values:
    net = nansum(h.grid("inflow")[:, :w]) - nansum(h.grid("outflow")[:, :w])
    return np.clip(ratio(net, w * h.aum_base(w)), -5, 5)


@feature("inflow_turnover_3m", "flows", "share",
         en="monthly inflow relative to AUM over the last 3 months",
         zh="近3个月月均流入与资产之比", sources=("inflow",), window=3, log_scale=True)  # fmt: skip
def _inflow_turnover(h: History, w: int) -> Values:
    return np.clip(ratio(nanmean(h.grid("inflow")[:, :w]), h.aum_base(w)), 0, 50)


@feature("payroll_avg_6m", "flows", "money",
         en="average monthly payroll over the last 6 months", zh="近6个月月均代发工资",
         sources=("payroll_inflow",), window=6)  # fmt: skip
def _payroll_avg(h: History, w: int) -> Values:
    return nanmean(h.grid("payroll_inflow")[:, :w])


@feature("payroll_regularity_6m", "flows", "share",
         en="share of the last 6 months with a payroll credit", zh="近6个月代发工资月份占比",
         sources=("payroll_inflow",), window=6)  # fmt: skip
def _payroll_regularity(h: History, w: int) -> Values:
    pay = h.grid("payroll_inflow")[:, :w]
    seen = (~np.isnan(pay)).sum(axis=1)
    return ratio((pay > 0).sum(axis=1).astype(float), seen.astype(float))


@feature("payroll_ratio_6m", "flows", "share",
         en="average monthly payroll relative to average AUM over the last 6 months",
         zh="近6个月月均代发工资与资产之比", sources=("payroll_inflow",), window=6,
         log_scale=True)  # fmt: skip
def _payroll_ratio(h: History, w: int) -> Values:
    return np.clip(ratio(h.computed["payroll_avg_6m"], h.aum_base(w)), 0, 50)


@feature("transfer_in_ratio_3m", "flows", "share",
         en="money moved in from other banks over the last 3 months relative to AUM",
         zh="近3个月他行转入占资产比", sources=("transfer_in_other_bank",), window=3,
         log_scale=True)  # fmt: skip
def _transfer_in_ratio(h: History, w: int) -> Values:
    moved = nansum(h.grid("transfer_in_other_bank")[:, :w])
    return np.clip(ratio(moved, w * h.aum_base(w)), 0, 20)


@feature("transfer_out_ratio_3m", "flows", "share",
         en="money moved out to other banks over the last 3 months relative to AUM",
         zh="近3个月转出他行占资产比", sources=("transfer_out_other_bank",), window=3,
         log_scale=True)  # fmt: skip
def _transfer_out_ratio(h: History, w: int) -> Values:
    moved = nansum(h.grid("transfer_out_other_bank")[:, :w])
    return np.clip(ratio(moved, w * h.aum_base(w)), 0, 20)


# -- growth sources (segments.core.growth: the same rules) --------------------------------


def _transfers(h: History, w: int) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.nan_to_num(h.grid("transfer_in_other_bank")[:, :w]),
        np.nan_to_num(h.grid("transfer_out_other_bank")[:, :w]),
    )


@feature("growth_accumulation_6m", "growth", "ratio",
         en="own savings (income less spending) over the last 6 months relative to AUM",
         zh="近6个月自身积累（收入减支出）占资产比",
         sources=source_columns("accumulation"),
         window=6)  # fmt: skip
def _growth_accumulation(h: History, w: int) -> Values:
    t_in, t_out = _transfers(h, w)
    own = accumulation(h.grid("inflow")[:, :w], h.grid("outflow")[:, :w], t_in, t_out)
    return np.clip(ratio(nansum(own), h.aum_base(w)), -5, 5)


@feature("growth_migration_6m", "growth", "ratio",
         en="assets moved in from other banks, net, over the last 6 months relative to AUM",
         zh="近6个月他行净转入占资产比",
         sources=source_columns("migration"), window=6)  # fmt: skip
def _growth_migration(h: History, w: int) -> Values:
    return np.clip(ratio(nansum(migration(*_transfers(h, w))), h.aum_base(w)), -5, 5)


@feature("growth_appreciation_6m", "growth", "ratio",
         en="growth in value of the investments held over the last 6 months relative to AUM",
         zh="近6个月投资产品增值占资产比", sources=source_columns("appreciation"),
         window=6)  # fmt: skip
def _growth_appreciation(h: History, w: int) -> Values:
    held = {c: h.grid(c)[:, : w + 1] for c in INVESTMENT_COMPONENTS if h.has(c)}
    if not held:
        return np.full(len(h.aum), np.nan)
    invest = investments(held)
    grew = appreciation(invest[:, :w], invest[:, 1 : w + 1], h.grid(NET_PURCHASES)[:, :w])
    return np.clip(ratio(nansum(grew), h.aum_base(w)), -5, 5)


# -- activity and channels ----------------------------------------------------------------


@feature("txn_count_avg_{w}m", "activity", "per_month",
         en="transactions a month over the last {w} months", zh="近{w}个月月均交易笔数",
         sources=("txn_count",), window=PER_WINDOW)  # fmt: skip
def _txn_count_avg(h: History, w: int) -> Values:
    return nanmean(h.grid("txn_count")[:, :w])


@feature("months_since_txn", "activity", "months",
         en="months since the last month with a transaction", zh="距最近一次交易的月数",
         sources=("txn_count",), window=LONGEST)  # fmt: skip
def _months_since_txn(h: History, w: int) -> Values:
    txn = h.grid("txn_count")[:, :w]
    active = np.where(np.isnan(txn), False, txn > 0)
    return np.where(active.any(axis=1), active.argmax(axis=1), w).astype(float)


@feature("app_logins_avg_3m", "channels", "per_month",
         en="app logins a month over the last 3 months", zh="近3个月月均手机银行登录次数",
         sources=("app_logins",), window=3)  # fmt: skip
def _app_logins_avg(h: History, w: int) -> Values:
    return nanmean(h.grid("app_logins")[:, :w])


@feature("branch_visits_avg_6m", "channels", "per_month",
         en="branch visits a month over the last 6 months", zh="近6个月月均网点到访次数",
         sources=("branch_visits",), window=6)  # fmt: skip
def _branch_visits_avg(h: History, w: int) -> Values:
    return nanmean(h.grid("branch_visits")[:, :w])


@feature("rm_contacts_avg_6m", "channels", "per_month",
         en="relationship-manager contacts a month over the last 6 months",
         zh="近6个月月均客户经理联系次数", sources=("rm_contacts",), window=6)  # fmt: skip
def _rm_contacts_avg(h: History, w: int) -> Values:
    return nanmean(h.grid("rm_contacts")[:, :w])


@feature("digital_share_6m", "channels", "share",
         en="share of app logins among app, branch and RM contacts over the last 6 months",
         zh="近6个月线上渠道占比", sources=("app_logins", "branch_visits", "rm_contacts"),
         window=6)  # fmt: skip
def _digital_share(h: History, w: int) -> Values:
    app = nansum(h.grid("app_logins")[:, :w])
    offline = nansum(h.grid("branch_visits")[:, :w]) + nansum(h.grid("rm_contacts")[:, :w])
    return ratio(app, app + offline)


# -- credit -------------------------------------------------------------------------------

feature("loan_balance", "credit", "money", en="personal and business loan balance",
        zh="贷款余额", sources=("loan_balance",))(value_now("loan_balance"))  # fmt: skip
feature("mortgage_balance", "credit", "money", en="mortgage balance", zh="房贷余额",
        sources=("mortgage_balance",))(value_now("mortgage_balance"))  # fmt: skip


@feature("card_spend_avg_3m", "credit", "money",
         en="monthly card spend over the last 3 months", zh="近3个月月均信用卡消费",
         sources=("card_spend",), window=3)  # fmt: skip
def _card_spend_avg(h: History, w: int) -> Values:
    return nanmean(h.grid("card_spend")[:, :w])


@feature("card_utilisation_3m", "credit", "share",
         en="card spend relative to the card limit over the last 3 months",
         zh="近3个月信用卡额度使用率", sources=("card_spend", "card_limit"), window=3)  # fmt: skip
def _card_utilisation(h: History, w: int) -> Values:
    limit = nanmean(h.grid("card_limit")[:, :w])
    spend = h.computed["card_spend_avg_3m"]
    return np.where(limit > 0, np.clip(ratio(spend, limit), 0, 5), 0.0)


feature("credit_limit", "credit", "money", en="credit card limit", zh="信用卡额度",
        sources=("card_limit",))(value_now("card_limit"))  # fmt: skip


@feature("card_balance_utilisation_3m", "credit", "share",
         en="card balance relative to the card limit over the last 3 months",
         zh="近3个月信用卡账单余额占额度比", sources=("card_balance", "card_limit"),
         window=3)  # fmt: skip
def _card_balance_utilisation(h: History, w: int) -> Values:
    limit = nanmean(h.grid("card_limit")[:, :w])
    balance = nanmean(h.grid("card_balance")[:, :w])
    return np.where(limit > 0, np.clip(ratio(balance, limit), 0, 2), np.nan)  # NaN: no limit


@feature("card_payment_ratio_3m", "credit", "share",
         en="card repayments relative to the balance due over the last 3 months",
         zh="近3个月信用卡还款占应还账单比", sources=("card_payment", "card_balance"),
         window=3)  # fmt: skip
def _card_payment_ratio(h: History, w: int) -> Values:
    paid = h.grid("card_payment")[:, :w]
    due = h.grid("card_balance")[:, 1 : w + 1]  # each month's balance due: the one before
    both = ~np.isnan(paid) & ~np.isnan(due)
    total_paid = np.where(both, paid, 0.0).sum(axis=1)
    total_due = np.where(both, due, 0.0).sum(axis=1)
    return np.clip(ratio(total_paid, total_due), 0, 2)  # NaN: no balance to repay


@feature("months_since_delinquency", "credit", "months",
         en="months since the last month past due", zh="距最近一次逾期的月数",
         sources=("days_past_due",), window=LONGEST)  # fmt: skip
def _months_since_delinquency(h: History, w: int) -> Values:
    # Over the longest window, not all the history held (HISTORY): a model feature of
    # window w needs w months to score, and training leaves it out with a shorter history.
    dpd = h.grid("days_past_due")[:, :w]
    late = np.where(np.isnan(dpd), False, dpd > 0)
    return np.where(late.any(axis=1), late.argmax(axis=1), np.nan)  # NaN: none in w months


@feature("delinquent_months_12m", "credit", "count",
         en="months past due in the last 12 months", zh="近12个月逾期月数",
         sources=("days_past_due",), window=12)  # fmt: skip
def _delinquent_months(h: History, w: int) -> Values:
    dpd = h.grid("days_past_due")[:, :w]
    seen = (~np.isnan(dpd)).sum(axis=1)
    late = np.where(np.isnan(dpd), False, dpd > 0).sum(axis=1)
    return np.where(seen > 0, late, np.nan)


# -- life stage ---------------------------------------------------------------------------

feature("age", "life_stage", "years", en="age", zh="年龄", sources=("age",))(value_now("age"))


@feature("age_band", "life_stage", "category", en="age band", zh="年龄段", sources=("age",))
def _age_band(h: History, w: int) -> Values:
    return pd.cut(h.computed["age"], AGE_BANDS[0], right=False, labels=AGE_BANDS[1])


feature("tenure_months", "life_stage", "months", en="months with the bank", zh="开户时长(月)",
        sources=("tenure_months",))(value_now("tenure_months"))  # fmt: skip
feature("gender", "life_stage", "category", en="gender", zh="性别",
        sources=("gender",))(latest_value("gender"))  # fmt: skip
feature("region", "life_stage", "category", en="region", zh="地区",
        sources=("region",))(latest_value("region"))  # fmt: skip
feature("occupation", "life_stage", "category", en="occupation", zh="职业",
        sources=("occupation",))(latest_value("occupation"))  # fmt: skip


@feature("months_observed", "activity", "months", en="months of history available",
         zh="可用历史月数", sources=(AUM,), window=HISTORY)  # fmt: skip
def _months_observed(h: History, w: int) -> Values:
    return (~np.isnan(h.aum[:, :w])).sum(axis=1).astype(float)
