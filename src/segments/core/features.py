"""Point-in-time behavioural features and the feature catalogue.

:func:`build_features` turns a validated panel into one row per customer as of a month,
using months up to and including that month only, so a feature can never see the future.
Every feature it can produce is described in :data:`FEATURE_CATALOGUE` (name, family, unit,
window, English and Chinese descriptions): the single source for documentation, group
profiles and reason codes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segments.core.panel import AUM, ID, MONTH
from segments.exceptions import ConfigError, PanelValidationError, Violation

__all__ = [
    "FEATURE_CATALOGUE",
    "FeatureSpec",
    "build_features",
    "catalogue_frame",
    "feature_spec",
    "is_log_scale",
]

#: Units: how a value is read and shown.
UNITS = ("money", "ratio", "share", "count", "months", "years", "flag", "category", "per_month")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of the catalogue.

    Attributes
    ----------
    name : str
        Column name; carries its window (``aum_avg_3m``) where it has one.
    family : str
        ``aum_level``, ``aum_trend``, ``asset_mix``, ``breadth``, ``flows``, ``activity``,
        ``channels``, ``credit``, ``life_stage``.
    unit : str
        One of ``money``, ``ratio`` (a change, shown as a percentage), ``share`` (0..1),
        ``count``, ``per_month``, ``months``, ``years``, ``flag``, ``category``. A share is a
        proportion shown as a percentage (it may exceed 100% for flows relative to AUM).
    window : int
        Months of history it summarises (1 = the as-of month only).
    en, zh : str
        What it measures, in English and Chinese.
    sources : tuple of str
        Panel columns it needs; it is built only when all are present.
    """

    name: str
    family: str
    unit: str
    window: int
    en: str
    zh: str
    sources: tuple[str, ...]


def _catalogue(windows: Sequence[int]) -> list[FeatureSpec]:
    """The catalogue for a set of windows (names of windowed features depend on them)."""
    S = FeatureSpec
    specs: list[S] = [
        S("aum", "aum_level", "money", 1, "AUM in the as-of month", "当月日均资产", (AUM,))
    ]
    for w in windows:
        specs.append(
            S(
                f"aum_avg_{w}m",
                "aum_level",
                "money",
                w,
                f"average AUM over the last {w} months",
                f"近{w}个月日均资产均值",
                (AUM,),
            )
        )
        specs.append(
            S(
                f"aum_growth_{w}m",
                "aum_trend",
                "ratio",
                w,
                f"AUM growth over the last {w} months",
                f"近{w}个月资产增长率",
                (AUM,),
            )
        )
    long = max(windows)
    specs += [
        S(
            "aum_slope_6m",
            "aum_trend",
            "ratio",
            6,
            "monthly AUM trend over the last 6 months (log-linear slope)",
            "近6个月资产月均趋势",
            (AUM,),
        ),
        S(
            f"aum_vol_{long}m",
            "aum_trend",
            "ratio",
            long,
            f"volatility of monthly AUM changes over the last {long} months",
            f"近{long}个月资产月度波动率",
            (AUM,),
        ),
        S(
            f"aum_drawdown_{long}m",
            "aum_trend",
            "share",
            long,
            f"fall from the {long}-month AUM peak",
            f"较近{long}个月资产峰值的回撤",
            (AUM,),
        ),
        S(
            "demand_deposit_share",
            "asset_mix",
            "share",
            1,
            "share of AUM in demand deposits",
            "活期存款占比",
            ("dep_demand",),
        ),
        S(
            "time_deposit_share",
            "asset_mix",
            "share",
            1,
            "share of AUM in time deposits",
            "定期存款占比",
            ("dep_time",),
        ),
        S(
            "wealth_share",
            "asset_mix",
            "share",
            1,
            "share of AUM in wealth-management products",
            "理财产品占比",
            ("wealth_products",),
        ),
        S("fund_share", "asset_mix", "share", 1, "share of AUM in funds", "基金占比", ("funds",)),
        S(
            "insurance_share",
            "asset_mix",
            "share",
            1,
            "share of AUM in insurance",
            "保险占比",
            ("insurance",),
        ),
        S(
            "bond_metal_share",
            "asset_mix",
            "share",
            1,
            "share of AUM in bonds and precious metals",
            "债券及贵金属占比",
            ("bonds", "precious_metals"),
        ),
        S(
            "investment_share",
            "asset_mix",
            "share",
            1,
            "share of AUM invested (wealth products, funds, bonds, precious metals)",
            "投资类资产占比(理财、基金、债券、贵金属)",
            ("wealth_products", "funds"),
        ),
        S(
            "wealth_share_change_6m",
            "asset_mix",
            "ratio",
            6,
            "change in the wealth-product share over the last 6 months",
            "近6个月理财占比变化",
            ("wealth_products",),
        ),
        S("n_products", "breadth", "count", 1, "products held", "持有产品数", ("n_products",)),
        S(
            "n_products_change_6m",
            "breadth",
            "count",
            6,
            "change in products held over the last 6 months",
            "近6个月持有产品数变化",
            ("n_products",),
        ),
        S(
            "net_inflow_ratio_3m",
            "flows",
            "ratio",
            3,
            "net inflow over the last 3 months relative to AUM",
            "近3个月净流入占资产比",
            ("inflow", "outflow"),
        ),
        S(
            "inflow_turnover_3m",
            "flows",
            "share",
            3,
            "monthly inflow relative to AUM over the last 3 months",
            "近3个月月均流入与资产之比",
            ("inflow",),
        ),
        S(
            "payroll_avg_6m",
            "flows",
            "money",
            6,
            "average monthly payroll over the last 6 months",
            "近6个月月均代发工资",
            ("payroll_inflow",),
        ),
        S(
            "payroll_regularity_6m",
            "flows",
            "share",
            6,
            "share of the last 6 months with a payroll credit",
            "近6个月代发工资月份占比",
            ("payroll_inflow",),
        ),
        S(
            "payroll_ratio_6m",
            "flows",
            "share",
            6,
            "average monthly payroll relative to average AUM over the last 6 months",
            "近6个月月均代发工资与资产之比",
            ("payroll_inflow",),
        ),
        S(
            "transfer_in_ratio_3m",
            "flows",
            "share",
            3,
            "money moved in from other banks over the last 3 months relative to AUM",
            "近3个月他行转入占资产比",
            ("transfer_in_other_bank",),
        ),
        S(
            "transfer_out_ratio_3m",
            "flows",
            "share",
            3,
            "money moved out to other banks over the last 3 months relative to AUM",
            "近3个月转出他行占资产比",
            ("transfer_out_other_bank",),
        ),
    ]
    for w in windows:
        specs.append(
            S(
                f"txn_count_avg_{w}m",
                "activity",
                "per_month",
                w,
                f"transactions a month over the last {w} months",
                f"近{w}个月月均交易笔数",
                ("txn_count",),
            )
        )
    specs += [
        S(
            "months_since_txn",
            "activity",
            "months",
            long,
            "months since the last month with a transaction",
            "距最近一次交易的月数",
            ("txn_count",),
        ),
        S(
            "app_logins_avg_3m",
            "channels",
            "per_month",
            3,
            "app logins a month over the last 3 months",
            "近3个月月均手机银行登录次数",
            ("app_logins",),
        ),
        S(
            "branch_visits_avg_6m",
            "channels",
            "per_month",
            6,
            "branch visits a month over the last 6 months",
            "近6个月月均网点到访次数",
            ("branch_visits",),
        ),
        S(
            "rm_contacts_avg_6m",
            "channels",
            "per_month",
            6,
            "relationship-manager contacts a month over the last 6 months",
            "近6个月月均客户经理联系次数",
            ("rm_contacts",),
        ),
        S(
            "digital_share_6m",
            "channels",
            "share",
            6,
            "share of app logins among app, branch and RM contacts over the last 6 months",
            "近6个月线上渠道占比",
            ("app_logins", "branch_visits", "rm_contacts"),
        ),
        S(
            "loan_balance",
            "credit",
            "money",
            1,
            "personal and business loan balance",
            "贷款余额",
            ("loan_balance",),
        ),
        S(
            "mortgage_balance",
            "credit",
            "money",
            1,
            "mortgage balance",
            "房贷余额",
            ("mortgage_balance",),
        ),
        S(
            "card_spend_avg_3m",
            "credit",
            "money",
            3,
            "monthly card spend over the last 3 months",
            "近3个月月均信用卡消费",
            ("card_spend",),
        ),
        S(
            "card_utilisation_3m",
            "credit",
            "share",
            3,
            "card spend relative to the card limit over the last 3 months",
            "近3个月信用卡额度使用率",
            ("card_spend", "card_limit"),
        ),
        S("age", "life_stage", "years", 1, "age", "年龄", ("age",)),
        S("age_band", "life_stage", "category", 1, "age band", "年龄段", ("age",)),
        S(
            "tenure_months",
            "life_stage",
            "months",
            1,
            "months with the bank",
            "开户时长(月)",
            ("tenure_months",),
        ),
        S("gender", "life_stage", "category", 1, "gender", "性别", ("gender",)),
        S("region", "life_stage", "category", 1, "region", "地区", ("region",)),
        S("occupation", "life_stage", "category", 1, "occupation", "职业", ("occupation",)),
        S(
            "months_observed",
            "activity",
            "months",
            long + 1,
            "months of history available",
            "可用历史月数",
            (AUM,),
        ),
    ]
    return specs


#: Tier-table columns that models also use (known at the as-of month).
TIER_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "gap_ratio",
        "tier",
        "share",
        1,
        "AUM as a share of the next tier's threshold",
        "资产达到下一等级门槛的比例",
        (AUM,),
    ),
    FeatureSpec(
        "gap_to_next",
        "tier",
        "money",
        1,
        "money still needed to reach the next tier",
        "距下一等级门槛的差额",
        (AUM,),
    ),
    FeatureSpec(
        "tier_rank", "tier", "count", 1, "current tier (0 = lowest)", "当前等级(0为最低)", (AUM,)
    ),
    FeatureSpec("near_band", "tier", "category", 1, "near-tier band", "临界区间", (AUM,)),
)


DEFAULT_WINDOWS: tuple[int, ...] = (3, 6, 12)
#: The catalogue for the default windows (3, 6, 12 months).
FEATURE_CATALOGUE: dict[str, FeatureSpec] = {
    s.name: s for s in (*_catalogue(DEFAULT_WINDOWS), *TIER_SPECS)
}
_AGE_BANDS = ([0, 30, 45, 60, 200], ["<30", "30-44", "45-59", "60+"])


#: Units shown and modelled on a log scale (heavy right tails).
LOG_UNITS = ("money", "count", "per_month")
#: Ratios with heavy right tails, also taken on a log scale.
_LOG_RATIOS = frozenset(
    {"inflow_turnover_3m", "transfer_in_ratio_3m", "transfer_out_ratio_3m", "payroll_ratio_6m"}
)


def is_log_scale(name: str) -> bool:
    """Whether a feature is heavy-tailed enough to cluster and profile on ``log1p``."""
    spec = FEATURE_CATALOGUE.get(name)
    return name in _LOG_RATIOS or (spec is not None and spec.unit in LOG_UNITS)


def feature_spec(name: str, windows: Sequence[int] = DEFAULT_WINDOWS) -> FeatureSpec:
    """The catalogue entry of a feature (for the given windows)."""
    specs = {s.name: s for s in (*_catalogue(windows), *TIER_SPECS)}
    if name not in specs:
        raise ConfigError([Violation(name, "is not a feature in the catalogue")])
    return specs[name]


def catalogue_frame(windows: Sequence[int] = DEFAULT_WINDOWS) -> pd.DataFrame:
    """The catalogue as a table (one row per feature)."""
    return pd.DataFrame([vars(s) for s in (*_catalogue(windows), *TIER_SPECS)])


def _check_windows(windows: Sequence[int]) -> tuple[int, ...]:
    ws = tuple(sorted(set(windows)))
    if not ws or any(not isinstance(w, int) or isinstance(w, bool) or w < 2 for w in ws):
        raise ConfigError(
            [Violation("features.windows", f"is {list(windows)!r}; expected whole numbers >= 2")]
        )
    if max(ws) < 6:
        ws = (*ws, 6)  # the 6-month trend and channel features need 6 months
    return ws


def _nanmean(grid: np.ndarray) -> np.ndarray:
    count = (~np.isnan(grid)).sum(axis=1)
    total = np.nansum(grid, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    out[count == 0] = np.nan
    return out


def _nansum(grid: np.ndarray) -> np.ndarray:
    out = np.nansum(grid, axis=1)
    out[np.isnan(grid).all(axis=1)] = np.nan
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~np.isfinite(out)] = np.nan
    return out


def build_features(
    panel: pd.DataFrame,
    as_of: str | pd.Period | None = None,
    *,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    active_only: bool = True,
) -> pd.DataFrame:
    """Behavioural features per customer as of a month, from months <= ``as_of`` only.

    Parameters
    ----------
    panel : DataFrame
        A validated panel (:func:`segments.validate_panel`).
    as_of : str or Period, optional
        The as-of month (``"2025-06"``); the panel's last month by default.
    windows : sequence of int, default (3, 6, 12)
        Windows in months for the windowed features (``aum_avg_{w}m``, ...).
    active_only : bool, default True
        Keep only customers with a row in the as-of month; otherwise every customer seen
        in the longest window.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``, one row per customer, with the features of the
        catalogue whose source columns the panel has (see :data:`FEATURE_CATALOGUE`);
        ``attrs["as_of"]`` holds the month. Missing history gives NaN, never a guess.

    Raises
    ------
    PanelValidationError
        When the panel is not validated or has no rows at or before ``as_of``.

    Examples
    --------
    >>> from segments import make_bank, validate_panel, build_features
    >>> panel = validate_panel(make_bank(300, 12, seed=0)[0])
    >>> X = build_features(panel, "2024-09")
    >>> X.attrs["as_of"], "aum_avg_3m" in X.columns
    ('2024-09', True)
    """
    ws = _check_windows(windows)
    if MONTH not in panel.columns or not isinstance(panel[MONTH].dtype, pd.PeriodDtype):
        raise PanelValidationError(
            [Violation(MONTH, "is not a monthly period", hint="run segments.validate_panel first")]
        )
    as_of = pd.Period(as_of, "M") if as_of is not None else panel[MONTH].max()
    L = max(ws) + 1  # the growth over the longest window needs one month more
    ordinals = panel[MONTH].array.asi8
    lag_all = as_of.ordinal - ordinals
    keep = (lag_all >= 0) & (lag_all < L)
    if not keep.any():
        raise PanelValidationError(
            [
                Violation(
                    MONTH,
                    f"has no rows at or before {as_of}",
                    hint=f"months present: {panel[MONTH].min()} .. {panel[MONTH].max()}",
                )
            ]
        )
    sub = panel.loc[keep]
    lag = lag_all[keep]
    codes, ids = pd.factorize(sub[ID], sort=False)
    n = len(ids)

    def grid(col: str) -> np.ndarray:
        g = np.full((n, L), np.nan)
        g[codes, lag] = sub[col].to_numpy(dtype="float64")
        return g  # column 0 is the as-of month, column k is k months before

    def has(*cols: str) -> bool:
        return all(c in sub.columns for c in cols)

    f: dict[str, np.ndarray] = {}
    aum = grid(AUM)
    f["aum"] = aum[:, 0]
    for w in ws:
        f[f"aum_avg_{w}m"] = _nanmean(aum[:, :w])
        f[f"aum_growth_{w}m"] = np.clip(_ratio(aum[:, 0] + 1.0, aum[:, w] + 1.0) - 1.0, -1, 20)
    log_aum = np.log1p(aum)
    x = np.arange(6, dtype="float64")[::-1]  # months before -> time axis increasing to now
    y = log_aum[:, :6]
    ok = ~np.isnan(y)
    cnt = ok.sum(axis=1)
    xm = np.where(ok, x, 0).sum(axis=1) / np.maximum(cnt, 1)
    ym = np.where(ok, y, 0).sum(axis=1) / np.maximum(cnt, 1)
    dx = np.where(ok, x - xm[:, None], 0.0)
    dy = np.where(ok, y - ym[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (dx * dy).sum(axis=1) / (dx**2).sum(axis=1)
    slope[cnt < 3] = np.nan
    f["aum_slope_6m"] = slope
    long = max(ws)
    diffs = log_aum[:, : long - 1] - log_aum[:, 1:long]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: NaN, set below
        vol = np.nanstd(diffs, axis=1) if diffs.size else np.full(n, np.nan)
    vol[(~np.isnan(diffs)).sum(axis=1) < 2] = np.nan
    f[f"aum_vol_{long}m"] = vol
    peak = np.nanmax(np.where(np.isnan(aum[:, :long]), -np.inf, aum[:, :long]), axis=1)
    f[f"aum_drawdown_{long}m"] = np.clip(1.0 - _ratio(aum[:, 0], peak), 0, 1)
    total = aum[:, 0]
    for name, cols in (
        ("demand_deposit_share", ("dep_demand",)),
        ("time_deposit_share", ("dep_time",)),
        ("wealth_share", ("wealth_products",)),
        ("fund_share", ("funds",)),
        ("insurance_share", ("insurance",)),
        ("bond_metal_share", ("bonds", "precious_metals")),
    ):
        present = [c for c in cols if c in sub.columns]
        if present:
            part = sum(np.nan_to_num(grid(c)[:, 0]) for c in present)
            f[name] = np.where(total > 0, _ratio(part, total), 0.0)
    if has("wealth_products", "funds"):
        f["investment_share"] = sum(
            f.get(c, 0.0) for c in ("wealth_share", "fund_share", "bond_metal_share")
        )
    if has("wealth_products"):
        wp = grid("wealth_products")
        share_then = np.where(aum[:, 6] > 0, _ratio(wp[:, 6], aum[:, 6]), 0.0)
        share_then[np.isnan(aum[:, 6])] = np.nan
        f["wealth_share_change_6m"] = f["wealth_share"] - share_then
    if has("n_products"):
        npg = grid("n_products")
        f["n_products"] = npg[:, 0]
        f["n_products_change_6m"] = npg[:, 0] - npg[:, 6]
    avg3 = _nanmean(aum[:, :3]) + 1.0  # flows relative to AUM use fixed 3- and 6-month bases
    if has("inflow", "outflow"):
        net = _nansum(grid("inflow")[:, :3]) - _nansum(grid("outflow")[:, :3])
        f["net_inflow_ratio_3m"] = np.clip(_ratio(net, 3 * avg3), -5, 5)
    if has("inflow"):
        f["inflow_turnover_3m"] = np.clip(_ratio(_nanmean(grid("inflow")[:, :3]), avg3), 0, 50)
    if has("payroll_inflow"):
        pay = grid("payroll_inflow")[:, :6]
        f["payroll_avg_6m"] = _nanmean(pay)
        seen = (~np.isnan(pay)).sum(axis=1)
        f["payroll_regularity_6m"] = _ratio((pay > 0).sum(axis=1).astype(float), seen.astype(float))
        f["payroll_ratio_6m"] = np.clip(
            _ratio(f["payroll_avg_6m"], _nanmean(aum[:, :6]) + 1.0), 0, 50
        )
    if has("transfer_in_other_bank"):
        f["transfer_in_ratio_3m"] = np.clip(
            _ratio(_nansum(grid("transfer_in_other_bank")[:, :3]), 3 * avg3), 0, 20
        )
    if has("transfer_out_other_bank"):
        f["transfer_out_ratio_3m"] = np.clip(
            _ratio(_nansum(grid("transfer_out_other_bank")[:, :3]), 3 * avg3), 0, 20
        )
    if has("txn_count"):
        txn = grid("txn_count")
        for w in ws:
            f[f"txn_count_avg_{w}m"] = _nanmean(txn[:, :w])
        active = np.where(np.isnan(txn[:, :long]), False, txn[:, :long] > 0)
        first = np.where(active.any(axis=1), active.argmax(axis=1), long).astype(float)
        f["months_since_txn"] = first
    if has("app_logins"):
        f["app_logins_avg_3m"] = _nanmean(grid("app_logins")[:, :3])
    if has("branch_visits"):
        f["branch_visits_avg_6m"] = _nanmean(grid("branch_visits")[:, :6])
    if has("rm_contacts"):
        f["rm_contacts_avg_6m"] = _nanmean(grid("rm_contacts")[:, :6])
    if has("app_logins", "branch_visits", "rm_contacts"):
        app = _nansum(grid("app_logins")[:, :6])
        offline = _nansum(grid("branch_visits")[:, :6]) + _nansum(grid("rm_contacts")[:, :6])
        f["digital_share_6m"] = _ratio(app, app + offline)
    for col in ("loan_balance", "mortgage_balance"):
        if has(col):
            f[col] = grid(col)[:, 0]
    if has("card_spend"):
        spend = _nanmean(grid("card_spend")[:, :3])
        f["card_spend_avg_3m"] = spend
        if has("card_limit"):
            limit = _nanmean(grid("card_limit")[:, :3])
            f["card_utilisation_3m"] = np.where(limit > 0, np.clip(_ratio(spend, limit), 0, 5), 0.0)
    for col in ("age", "tenure_months"):
        if has(col):
            f[col] = grid(col)[:, 0]
    f["months_observed"] = (~np.isnan(aum)).sum(axis=1).astype(float)

    out = pd.DataFrame(f, index=pd.Index(ids, name=ID))
    if "age" in out.columns:
        out["age_band"] = pd.cut(out["age"], _AGE_BANDS[0], right=False, labels=_AGE_BANDS[1])
    at_as_of = np.zeros(n, dtype=bool)
    at_as_of[codes[lag == 0]] = True
    cats = [c for c in ("gender", "region", "occupation") if c in sub.columns]
    if cats:
        latest = sub.assign(_lag=lag).sort_values([ID, "_lag"], kind="stable")
        latest = latest.drop_duplicates(ID).set_index(ID)
        for c in cats:
            out[c] = latest[c].reindex(out.index)
    if active_only:
        out = out.loc[at_as_of]
        if out.empty:
            raise PanelValidationError(
                [
                    Violation(
                        MONTH,
                        f"has no customer in {as_of}",
                        hint=f"months present: {panel[MONTH].min()} .. {panel[MONTH].max()}",
                    )
                ]
            )
    order = [s.name for s in _catalogue(ws) if s.name in out.columns]
    out = out[order].sort_index()
    out.attrs["as_of"] = str(as_of)
    out.attrs["windows"] = list(ws)
    return out
