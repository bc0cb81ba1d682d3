"""The synthetic bank month by month: AUM path, holdings, credit, flows and activity.

Each step takes the chunk's customers (:mod:`segments.core.data.synthetic.customers`) and draws
(customers, months) grids from the chunk's random generator. :func:`draw_months` runs the
steps in a fixed order, and that order is part of the data: drawing in another order
changes the bank generated for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from segments.core.data.panel import AUM_COMPONENTS
from segments.core.data.synthetic.customers import Customers, Drivers, persona_param
from segments.core.data.synthetic.growth import GrowthDraws, draw_growth, to_cents
from segments.core.data.synthetic.personas import (
    ADOPT_EFFECT,
    ADOPT_JUMP,
    CONSOLIDATE_EFFECT,
    PAYROLL_CAP,
    PERSONAS,
    SAVING_RATE,
)

__all__ = [
    "Activity",
    "AssetPath",
    "Credit",
    "Flows",
    "Holdings",
    "Months",
    "draw_activity",
    "draw_asset_path",
    "draw_credit",
    "draw_flows",
    "draw_holdings",
    "draw_months",
    "product_count",
    "seasonality",
]

#: Position of wealth products among the AUM components.
WEALTH = AUM_COMPONENTS.index("wealth_products")


@dataclass(frozen=True)
class AssetPath:
    """Each customer's target AUM per month and the parts of its growth the truth reports.

    ``payroll_effect`` (extra monthly log growth from payroll), ``payroll_strength`` (that
    effect over its cap) and ``base_trend`` are per customer; ``after_adopt``,
    ``after_cons`` (months from adoption / consolidation on), ``jump_adopt`` (the one-off
    log jump at adoption), ``shock`` (rare large log shocks) and ``aum_target`` are
    (customers, months) grids.
    """

    payroll_effect: np.ndarray
    payroll_strength: np.ndarray
    base_trend: np.ndarray
    after_adopt: np.ndarray
    after_cons: np.ndarray
    jump_adopt: np.ndarray
    shock: np.ndarray
    aum_target: np.ndarray


@dataclass(frozen=True)
class Holdings:
    """Which components each customer holds, their monthly shares, amounts and the AUM."""

    holds: np.ndarray  # (customers, components)
    share_t: np.ndarray  # (customers, months, components)
    components: np.ndarray  # (customers, months, components), money
    aum: np.ndarray  # (customers, months): the sum of the components


@dataclass(frozen=True)
class Credit:
    """Credit card, personal loan and mortgage."""

    has_card: np.ndarray
    card_limit: np.ndarray  # per customer
    card_spend: np.ndarray
    loan_balance: np.ndarray
    mortgage_balance: np.ndarray


@dataclass(frozen=True)
class Flows:
    """Monthly money in and out, consistent with the change in AUM to the cent:
    ``inflow - outflow + appreciation`` is the month's AUM change, where appreciation is the
    investments' change less ``net_purchases`` (all rounded to cents)."""

    payroll_inflow: np.ndarray
    tin: np.ndarray
    tout: np.ndarray
    inflow: np.ndarray
    outflow: np.ndarray
    net_purchases: np.ndarray


@dataclass(frozen=True)
class Activity:
    """Monthly counts of transactions, app logins, branch visits and RM contacts."""

    txn_count: np.ndarray
    app_logins: np.ndarray
    branch_visits: np.ndarray
    rm_contacts: np.ndarray


@dataclass(frozen=True)
class Months:
    """Everything drawn month by month for one chunk of customers."""

    path: AssetPath
    holdings: Holdings
    credit: Credit
    flows: Flows
    activity: Activity
    n_products: np.ndarray


def seasonality(cal_month: np.ndarray, salaried: np.ndarray) -> np.ndarray:
    """Log AUM seasonality: year-end bonus for the salaried, Spring Festival spending."""
    return (
        0.04 * (cal_month == 12) * salaried
        + 0.03 * (cal_month == 1) * salaried
        - 0.035 * (cal_month == 2)
        - 0.01 * (cal_month == 8)
    )


def _ar_noise(rng: np.random.Generator, vol_param: np.ndarray, T: int) -> np.ndarray:
    """Autocorrelated (AR(1), 0.55) log AUM noise, its scale varying by customer."""
    n = len(vol_param)
    vol = 0.75 * vol_param[:, None] * np.exp(rng.normal(0, 0.25, n))[:, None]
    eps = rng.standard_normal((n, T)) * vol
    ar = np.empty((n, T))
    ar[:, 0] = eps[:, 0] / np.sqrt(1 - 0.55**2)
    for t in range(1, T):
        ar[:, t] = 0.55 * ar[:, t - 1] + eps[:, t]
    return ar


def draw_asset_path(
    rng: np.random.Generator, customers: Customers, cal_month: np.ndarray
) -> AssetPath:
    """Draw each customer's AUM level and its month-by-month path (log space).

    A persona level (Pareto tail among affluent investors), trend plus the planted drivers,
    seasonality, autocorrelated noise and rare shocks, centred so the level is mid-panel.
    """
    persona, d = customers.persona, customers.drivers
    n, T = len(persona), len(cal_month)
    t_idx = np.arange(T)
    level = np.log(persona_param(persona, "aum_median")) + persona_param(
        persona, "aum_sigma"
    ) * rng.standard_normal(n)
    tail = (persona == 5) & (rng.random(n) < 0.12)
    level[tail] = np.log(1.5e6) + np.log(rng.pareto(1.5, tail.sum()) + 1.0)
    own_trend = rng.normal(0, 0.008, n)
    payroll_effect = np.minimum(
        PAYROLL_CAP, SAVING_RATE * d.regularity * d.payroll_amt / np.exp(level)
    )
    payroll_strength = payroll_effect / PAYROLL_CAP
    base_trend = persona_param(persona, "trend") + own_trend + payroll_effect
    after_adopt = (d.adopt_month[:, None] >= 0) & (t_idx >= d.adopt_month[:, None])
    after_cons = (d.consolidate_month[:, None] >= 0) & (t_idx >= d.consolidate_month[:, None])
    growth = base_trend[:, None] + ADOPT_EFFECT * after_adopt + CONSOLIDATE_EFFECT * after_cons
    growth[:, 0] = 0.0
    jump_adopt = ADOPT_JUMP * ((d.adopt_month[:, None] >= 0) & (t_idx == d.adopt_month[:, None]))
    season = seasonality(cal_month, d.has_payroll[:, None])
    ar = _ar_noise(rng, persona_param(persona, "vol"), T)
    shock = (rng.random((n, T)) < 0.008) * rng.normal(0, 0.5, (n, T))
    shock[:, 0] = 0.0
    log_aum = (
        level[:, None]
        + np.cumsum(growth + jump_adopt + shock, axis=1)
        - (np.cumsum(growth, axis=1)[:, -1:] * 0.5)  # centre so the level is mid-panel
        + season
        + ar
    )
    aum_target = np.exp(np.clip(log_aum, np.log(10.0), np.log(5e9)))
    return AssetPath(
        payroll_effect,
        payroll_strength,
        base_trend,
        after_adopt,
        after_cons,
        jump_adopt,
        shock,
        aum_target,
    )


def draw_holdings(rng: np.random.Generator, persona: np.ndarray, path: AssetPath) -> Holdings:
    """Split the target AUM into components: per-customer shares, wealth rising on adoption."""
    n, T = path.aum_target.shape
    mix = np.array([p.mix for p in PERSONAS])[persona]
    holds = rng.random((n, len(AUM_COMPONENTS))) < np.array([p.holds for p in PERSONAS])[persona]
    holds[:, 0] = True
    shares = rng.gamma(np.maximum(mix * 20, 0.05), 1.0) * holds
    shares = shares / shares.sum(axis=1, keepdims=True)
    jitter = np.exp(rng.normal(0, 0.06, (n, T, len(AUM_COMPONENTS))))
    share_t = shares[:, None, :] * jitter
    share_t[:, :, WEALTH] += 0.25 * path.after_adopt
    share_t /= share_t.sum(axis=2, keepdims=True)
    components = np.round(path.aum_target[:, :, None] * share_t, 2)
    aum = components.sum(axis=2)
    return Holdings(holds, share_t, components, aum)


def draw_credit(rng: np.random.Generator, persona: np.ndarray, cal_month: np.ndarray) -> Credit:
    """Draw credit cards (limit, seasonal spend), personal loans and mortgages (amortising)."""
    n, T = len(persona), len(cal_month)
    t_idx = np.arange(T)
    has_card = rng.random(n) < persona_param(persona, "p_card")
    card_limit = np.round(
        persona_param(persona, "card_limit") * np.exp(rng.normal(0, 0.5, n)) * has_card, -2
    )
    util = np.clip(persona_param(persona, "card_util") * np.exp(rng.normal(0, 0.4, n)), 0, 1.2)
    shop = 1 + 0.2 * np.isin(cal_month, [11, 12]) + 0.1 * (cal_month == 2)
    card_spend = np.round(
        card_limit[:, None] * util[:, None] * shop * np.exp(rng.normal(0, 0.35, (n, T))), 2
    )
    has_loan = rng.random(n) < persona_param(persona, "p_loan")
    loan0 = persona_param(persona, "loan_median") * np.exp(rng.normal(0, 0.6, n)) * has_loan
    loan_balance = np.round(loan0[:, None] * 0.99**t_idx, 2)
    has_mortgage = rng.random(n) < persona_param(persona, "p_mortgage")
    mort0 = 900_000 * np.exp(rng.normal(0, 0.5, n)) * has_mortgage
    mortgage_balance = np.round(mort0[:, None] * 0.996**t_idx, 2)
    return Credit(has_card, card_limit, card_spend, loan_balance, mortgage_balance)


def draw_flows(
    rng: np.random.Generator,
    persona: np.ndarray,
    drivers: Drivers,
    path: AssetPath,
    aum: np.ndarray,
    card_spend: np.ndarray,
    cal_month: np.ndarray,
    growth: GrowthDraws,
) -> Flows:
    """Draw payroll, transfers and other inflows; outflows follow from the change in AUM.

    The outflow is what makes the month add up, in whole cents: AUM change = inflow -
    outflow + appreciation (``growth``, drawn from its own stream, which also adds the
    regular transfers in from other banks). Where that outflow would fall below the
    transfers out plus half the card spend, inflow and outflow both rise by the shortfall.
    """
    n, T = aum.shape
    salaried = drivers.has_payroll[:, None]
    paid = (rng.random((n, T)) < drivers.regularity[:, None]) & drivers.has_payroll[:, None]
    payroll_inflow = np.round(
        drivers.payroll_amt[:, None]
        * paid
        * np.exp(rng.normal(0, 0.05, (n, T)))
        * (1 + 0.8 * (cal_month == 12) * salaried),
        2,
    )
    tin = np.where(path.after_cons, aum * rng.uniform(0.02, 0.06, (n, T)), 0.0)
    tin += np.where(path.jump_adopt > 0, aum * 0.10, 0.0)
    odd = persona_param(persona, "odd_transfers")[:, None]  # occasional moves, by persona
    tin += (rng.random((n, T)) < 0.04) * aum * rng.uniform(0.01, 0.2, (n, T)) * odd
    tout = (rng.random((n, T)) < 0.05) * aum * rng.uniform(0.01, 0.2, (n, T)) * odd
    tout += np.where(path.shock < -0.2, aum * 0.3, 0.0)
    turnover = persona_param(persona, "turnover")
    other_in = aum * turnover[:, None] * np.exp(rng.normal(0, 0.3, (n, T)))
    tin_c = to_cents(tin) + growth.migrate_in
    inflow = to_cents(payroll_inflow) + tin_c + to_cents(other_in)
    aum_c = to_cents(aum)
    delta = np.diff(aum_c, axis=1, prepend=aum_c[:, :1])
    outflow = inflow - delta + growth.appreciation
    tout_c = to_cents(tout)
    extra = np.maximum(to_cents(tout + card_spend * 0.5) - outflow, 0)
    inflow, outflow = inflow + extra, outflow + extra
    return Flows(
        payroll_inflow,
        tin_c / 100.0,
        tout_c / 100.0,
        inflow / 100.0,
        outflow / 100.0,
        growth.net_purchases / 100.0,
    )


def draw_activity(rng: np.random.Generator, persona: np.ndarray, aum: np.ndarray) -> Activity:
    """Draw monthly activity and channel counts (RMs contact customers at 500k and above)."""
    n, T = aum.shape
    activity = np.exp(rng.normal(0, 0.35, n))[:, None]
    txn_count = rng.poisson(persona_param(persona, "txn")[:, None] * activity, (n, T))
    app_logins = rng.poisson(persona_param(persona, "logins")[:, None] * activity, (n, T))
    branch_visits = rng.poisson(np.broadcast_to(persona_param(persona, "branch")[:, None], (n, T)))
    rm_rate = persona_param(persona, "rm")[:, None] + 0.6 * (aum >= 500_000)
    rm_contacts = rng.poisson(rm_rate)
    return Activity(txn_count, app_logins, branch_visits, rm_contacts)


def product_count(holdings: Holdings, credit: Credit, has_payroll: np.ndarray) -> np.ndarray:
    """Products held per customer and month (no draws)."""
    return (
        holdings.holds.sum(axis=1)[:, None]
        + (holdings.share_t[:, :, WEALTH] > 0.05) * (~holdings.holds[:, WEALTH])[:, None]
        + credit.has_card[:, None]
        + (credit.loan_balance > 0)
        + (credit.mortgage_balance > 0)
        + has_payroll[:, None]
    )


def draw_months(
    rng: np.random.Generator,
    customers: Customers,
    months: pd.PeriodIndex,
    growth_rng: np.random.Generator,
) -> Months:
    """Draw the chunk's monthly series, step by step in a fixed order.

    Parameters
    ----------
    rng : numpy.random.Generator
        The chunk's generator, after :func:`~segments.core.data.synthetic.customers.draw_customers`.
    customers : Customers
        The chunk's customers.
    months : PeriodIndex
        The panel's months.
    growth_rng : numpy.random.Generator
        The chunk's growth stream
        (:func:`~segments.core.data.synthetic.growth.growth_stream`).

    Returns
    -------
    Months
    """
    persona = customers.persona
    cal_month = np.array([m.month for m in months])
    path = draw_asset_path(rng, customers, cal_month)
    holdings = draw_holdings(rng, persona, path)
    credit = draw_credit(rng, persona, cal_month)
    growth = draw_growth(growth_rng, persona, holdings.components, holdings.aum)
    flows = draw_flows(
        rng, persona, customers.drivers, path, holdings.aum, credit.card_spend, cal_month, growth
    )
    activity = draw_activity(rng, persona, holdings.aum)
    n_products = product_count(holdings, credit, customers.drivers.has_payroll)
    return Months(path, holdings, credit, flows, activity, n_products)
