"""The words groups are described in: name words and needs, keyed by feature and direction.

:func:`segments.core.groups.profiles.suggest_names` names a group from its most distinguishing
features through :data:`NAME_WORDS`; :func:`segments.core.groups.profiles.persona_cards` lists
what it needs through :data:`NEEDS`. Both in English and Chinese.
"""

from __future__ import annotations

__all__ = ["NAME_WORDS", "NEEDS"]

#: (feature, direction) -> (English word, Chinese word) for group names. Direction +1: the
#: group is high on the feature, -1: low.
NAME_WORDS: dict[tuple[str, int], tuple[str, str]] = {
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

#: (feature, direction) -> (need, need in Chinese): what a group with this trait needs.
NEEDS: dict[tuple[str, int], tuple[str, str]] = {
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
