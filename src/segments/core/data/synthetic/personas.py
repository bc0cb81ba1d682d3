"""The synthetic bank's personas and the parameters of its planted truth.

Seven behavioural personas (the truth the strategic groups should recover), the regions and
branches customers live in, and the sizes of the planted upgrade drivers (the truth the
upgrade model should find). Changing any value changes the bank generated for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ADOPT_EFFECT",
    "ADOPT_JUMP",
    "CONSOLIDATE_EFFECT",
    "N_BRANCHES",
    "PAYROLL_CAP",
    "PERSONAS",
    "REGIONS",
    "REGION_P",
    "SAVING_RATE",
    "Persona",
]


@dataclass(frozen=True)
class Persona:
    """The generating parameters of one behavioural persona (monthly figures).

    Attributes
    ----------
    name : str
        The persona's name, as in the truth table's ``persona`` column.
    weight : float
        Relative share of customers.
    aum_median, aum_sigma : float
        Median AUM and the sd of log AUM across the persona's customers.
    trend : float
        Monthly log growth of AUM, before the planted drivers.
    vol : float
        Monthly innovation sd of log AUM.
    mix : tuple of float
        Mean shares of the AUM components (``segments.core.data.panel.AUM_COMPONENTS``).
    holds : tuple of float
        Probability of holding each component (demand deposits are always held).
    age, tenure : tuple of int
        Inclusive ranges of age (years) and tenure (months, at the panel's last month).
    occupations : tuple of str
        Occupations, drawn uniformly.
    p_payroll, payroll_median : float
        Probability of a salary paid into the account, and its median.
    p_card, card_limit, card_util : float
        Probability of a credit card, its median limit and typical utilisation.
    p_loan, loan_median, p_mortgage : float
        Probability of a personal loan, its median balance, probability of a mortgage.
    turnover : float
        Other monthly inflow as a share of AUM.
    txn, logins, branch, rm : float
        Mean monthly transactions, app logins, branch visits and RM contacts.
    p_adopt : float
        Probability of adopting wealth products during the panel.
    p_consolidate : float
        Probability of starting to move money in from other banks during the panel.
    p_revolve : float, default 0.3
        Probability that a card holder revolves (repays part of the statement balance each
        month) rather than repaying it in full.
    p_late : float, default 0.004
        Monthly probability that a customer with something to repay starts a spell of
        missed payments (days past due); higher for the financially stretched.

    invest_return, invest_vol : float, default 0.002, 0.01
        Mean and sd of the monthly return on investment balances (wealth products, funds,
        bonds, insurance, precious metals): their appreciation.
    market_beta : float, default 0.0
        How much of the AUM path's monthly change is the market moving the investments: the
        investments' return is ``invest_return + invest_vol * z + market_beta * (AUM_t /
        AUM_t-1 - 1)`` (an investor's assets move with their portfolio).
    odd_transfers : float, default 1.0
        The size of the occasional transfers to and from other banks (a scale on the
        1-20% of AUM every persona moves now and then).
    migrate_in : float, default 0.0
        Mean monthly transfers in from other banks as a share of AUM, beyond the occasional
        ones every persona has (a business owner's receipts paid in at other banks).
    growth_source : str, default ""
        The source the persona's assets are planted to grow from (``accumulation``,
        ``migration`` or ``appreciation``; "" for a mix), as in the truth table.

    ``p_revolve`` and ``p_late`` drive only the card account columns (``card_balance``,
    ``card_payment``, ``days_past_due``), drawn from a random stream of their own
    (:mod:`~segments.core.data.synthetic.cards`): changing them changes no other column.
    Likewise ``invest_return``, ``invest_vol`` and ``migrate_in`` are drawn from the growth
    stream (:mod:`~segments.core.data.synthetic.growth`) and change only the flow columns
    and ``investment_net_purchases``: never AUM or its components.
    """

    name: str
    weight: float
    aum_median: float
    aum_sigma: float
    trend: float  # monthly log growth, before drivers
    vol: float  # monthly innovation sd of log AUM
    mix: tuple[float, ...]  # mean shares of AUM_COMPONENTS
    holds: tuple[float, ...]  # probability of holding each component (demand always held)
    age: tuple[int, int]
    tenure: tuple[int, int]
    occupations: tuple[str, ...]
    p_payroll: float
    payroll_median: float
    p_card: float
    card_limit: float
    card_util: float
    p_loan: float
    loan_median: float
    p_mortgage: float
    turnover: float  # other monthly inflow as a share of AUM
    txn: float
    logins: float
    branch: float
    rm: float
    p_adopt: float  # probability of adopting wealth products during the panel
    p_consolidate: float
    p_revolve: float = 0.3  # card holders who repay part of the balance, not all of it
    p_late: float = 0.004  # monthly chance of starting a spell of missed payments
    invest_return: float = 0.002  # mean monthly return on investment balances
    invest_vol: float = 0.01  # its sd
    market_beta: float = 0.0  # how much of the AUM path's change is market movement
    odd_transfers: float = 1.0  # scale of the occasional transfers with other banks
    migrate_in: float = 0.0  # regular monthly transfers in from other banks, share of AUM
    growth_source: str = ""  # the planted source of growth ("" = a mix)


_OCC_EMP = ("employee", "civil_servant", "professional")

#: The personas, in the order of their codes in the truth table's ``persona`` column.
PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="young_digital_saver",
        weight=0.22,
        aum_median=9_000,
        aum_sigma=1.0,
        trend=0.006,
        vol=0.09,
        mix=(0.72, 0.08, 0.12, 0.06, 0.01, 0.0, 0.01),
        holds=(1, 0.3, 0.5, 0.2, 0.05, 0.01, 0.05),
        age=(20, 31),
        tenure=(1, 72),
        occupations=("employee", "student", "freelancer"),
        p_payroll=0.88,
        payroll_median=8_000,
        p_card=0.92,
        card_limit=20_000,
        card_util=0.15,
        p_loan=0.05,
        loan_median=40_000,
        p_mortgage=0.04,
        turnover=0.1,
        txn=45,
        logins=32,
        branch=0.05,
        rm=0.02,
        p_adopt=0.1,
        p_consolidate=0.04,
        p_revolve=0.3,
        p_late=0.004,
    ),
    Persona(
        name="salaried_family",
        weight=0.22,
        aum_median=28_000,
        aum_sigma=0.95,
        trend=0.003,
        vol=0.07,
        mix=(0.35, 0.25, 0.2, 0.07, 0.1, 0.02, 0.01),
        holds=(1, 0.7, 0.6, 0.2, 0.6, 0.1, 0.05),
        age=(32, 50),
        tenure=(12, 200),
        occupations=_OCC_EMP,
        p_payroll=0.92,
        payroll_median=14_000,
        p_card=0.92,
        card_limit=40_000,
        card_util=0.3,
        p_loan=0.1,
        loan_median=80_000,
        p_mortgage=0.9,
        turnover=0.08,
        txn=35,
        logins=14,
        branch=0.35,
        rm=0.05,
        p_adopt=0.1,
        p_consolidate=0.05,
        p_revolve=0.35,
        p_late=0.003,
        growth_source="accumulation",
    ),
    Persona(
        name="credit_reliant_spender",
        weight=0.12,
        aum_median=3_500,
        aum_sigma=1.0,
        trend=-0.004,
        vol=0.12,
        mix=(0.92, 0.04, 0.02, 0.01, 0.01, 0.0, 0.0),
        holds=(1, 0.15, 0.1, 0.05, 0.05, 0.0, 0.0),
        age=(22, 42),
        tenure=(6, 120),
        occupations=("employee", "freelancer", "worker"),
        p_payroll=0.85,
        payroll_median=7_000,
        p_card=1.0,
        card_limit=30_000,
        card_util=0.85,
        p_loan=0.85,
        loan_median=60_000,
        p_mortgage=0.05,
        turnover=0.05,
        txn=70,
        logins=24,
        branch=0.25,
        rm=0.02,
        p_adopt=0.02,
        p_consolidate=0.01,
        p_revolve=0.85,
        p_late=0.015,
    ),
    Persona(
        name="retired_depositor",
        weight=0.15,
        aum_median=55_000,
        aum_sigma=1.05,
        trend=0.001,
        vol=0.04,
        mix=(0.15, 0.62, 0.12, 0.02, 0.05, 0.03, 0.01),
        holds=(1, 0.95, 0.45, 0.1, 0.35, 0.25, 0.1),
        age=(58, 82),
        tenure=(60, 400),
        occupations=("retired",),
        p_payroll=0.85,
        payroll_median=4_500,
        p_card=0.15,
        card_limit=10_000,
        card_util=0.08,
        p_loan=0.02,
        loan_median=20_000,
        p_mortgage=0.02,
        turnover=0.04,
        txn=8,
        logins=1.0,
        branch=2.6,
        rm=0.3,
        p_adopt=0.05,
        p_consolidate=0.02,
        p_revolve=0.05,
        p_late=0.0005,
    ),
    Persona(
        name="business_owner",
        weight=0.07,
        aum_median=95_000,
        aum_sigma=1.15,
        trend=0.002,
        vol=0.16,
        mix=(0.62, 0.14, 0.14, 0.05, 0.03, 0.01, 0.01),
        holds=(1, 0.5, 0.5, 0.3, 0.3, 0.1, 0.05),
        age=(32, 58),
        tenure=(12, 240),
        occupations=("business_owner", "self_employed"),
        p_payroll=0.2,
        payroll_median=20_000,
        p_card=0.9,
        card_limit=80_000,
        card_util=0.2,
        p_loan=0.85,
        loan_median=800_000,
        p_mortgage=0.3,
        turnover=0.7,
        txn=130,
        logins=12,
        branch=1.1,
        rm=0.6,
        p_adopt=0.08,
        p_consolidate=0.06,
        p_revolve=0.3,
        p_late=0.004,
        migrate_in=0.05,
        growth_source="migration",
    ),
    Persona(
        name="affluent_investor",
        weight=0.02,
        aum_median=330_000,
        aum_sigma=0.95,
        trend=0.004,
        vol=0.06,
        mix=(0.1, 0.15, 0.34, 0.2, 0.09, 0.08, 0.04),
        holds=(1, 0.8, 0.95, 0.85, 0.7, 0.5, 0.3),
        age=(35, 68),
        tenure=(24, 320),
        occupations=("professional", "executive", "business_owner"),
        p_payroll=0.2,  # salaries mostly paid at other banks
        payroll_median=40_000,
        p_card=0.9,
        card_limit=150_000,
        card_util=0.1,
        p_loan=0.1,
        loan_median=300_000,
        p_mortgage=0.3,
        turnover=0.12,
        txn=22,
        logins=9,
        branch=0.6,
        rm=2.2,
        p_adopt=0.0,
        p_consolidate=0.03,
        p_revolve=0.05,
        p_late=0.001,
        invest_return=0.008,
        invest_vol=0.012,
        market_beta=1.0,
        odd_transfers=0.4,
        growth_source="appreciation",
    ),
    Persona(
        name="basic_inactive",
        weight=0.2,
        aum_median=1_800,
        aum_sigma=1.2,
        trend=-0.005,
        vol=0.1,
        mix=(0.86, 0.12, 0.01, 0.0, 0.01, 0.0, 0.0),
        holds=(1, 0.2, 0.03, 0.0, 0.05, 0.0, 0.0),
        age=(18, 75),
        tenure=(1, 300),
        occupations=("worker", "farmer", "student", "unknown"),
        p_payroll=0.15,
        payroll_median=4_000,
        p_card=0.1,
        card_limit=8_000,
        card_util=0.05,
        p_loan=0.03,
        loan_median=20_000,
        p_mortgage=0.02,
        turnover=0.05,
        txn=3,
        logins=0.4,
        branch=0.15,
        rm=0.01,
        p_adopt=0.02,
        p_consolidate=0.01,
        p_revolve=0.3,
        p_late=0.006,
    ),
)

#: Regions, and the share of customers in each (the affluent lean east and south).
REGIONS = ("east", "south", "north", "central", "southwest", "northeast", "northwest")
REGION_P = (0.30, 0.20, 0.16, 0.13, 0.10, 0.06, 0.05)
#: Branches, spread evenly over the regions.
N_BRANCHES = 210

# Planted upgrade drivers: extra monthly log growth.
# Payroll: a share of the salary is saved, so the lift in log growth is larger the smaller
# the balance relative to the salary (an interaction a linear model does not see).
SAVING_RATE = 0.14
PAYROLL_CAP = 0.07
ADOPT_EFFECT = 0.045  # from the adoption month on
ADOPT_JUMP = 0.12  # one-off money moved in at adoption (log)
CONSOLIDATE_EFFECT = 0.05
