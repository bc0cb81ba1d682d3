"""The built-in synthetic bank: a realistic monthly customer panel with planted truth.

Customers belong to one of seven behavioural personas (the truth the strategic groups should
recover) and carry planted upgrade drivers (the truth the upgrade model should find):

* ``payroll``: a regular salary paid into the account lifts the asset trend;
* ``wealth adoption``: a customer who starts buying wealth products moves money in from other
  banks and grows faster from that month on;
* ``consolidation``: a customer who starts moving money in from other banks every month.

AUM is heavy-tailed (log-normal body per persona, Pareto tail among the affluent) and moves
month by month with a persona and customer trend, seasonality (year-end bonus, Spring
Festival spending), autocorrelated noise and rare large shocks, so that some customers rise
across thresholds, some fall and some hover. Customers join and leave during the panel.

Generation runs in fixed chunks of customers, each from its own seed derived from the
master seed, so output depends only on ``(n_customers, n_months, seed, start)`` and memory
is bounded by the chunk, not the bank.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.panel import AUM_COMPONENTS
from segments.exceptions import ConfigError, Violation

__all__ = ["PERSONAS", "Persona", "iter_bank", "make_bank", "write_bank"]

#: Customers generated per chunk (fixed: changing it changes the data for a seed).
CHUNK = 50_000


@dataclass(frozen=True)
class Persona:
    """The generating parameters of one behavioural persona (monthly figures)."""

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


_OCC_EMP = ("employee", "civil_servant", "professional")
PERSONAS: tuple[Persona, ...] = (
    Persona(
        "young_digital_saver",
        0.22,
        9_000,
        1.0,
        0.006,
        0.09,
        (0.72, 0.08, 0.12, 0.06, 0.01, 0.0, 0.01),
        (1, 0.3, 0.5, 0.2, 0.05, 0.01, 0.05),
        (20, 31),
        (1, 72),
        ("employee", "student", "freelancer"),
        0.88,
        8_000,
        0.92,
        20_000,
        0.15,
        0.05,
        40_000,
        0.04,
        0.10,
        45,
        32,
        0.05,
        0.02,
        0.10,
        0.04,
    ),
    Persona(
        "salaried_family",
        0.22,
        28_000,
        0.95,
        0.003,
        0.07,
        (0.35, 0.25, 0.20, 0.07, 0.10, 0.02, 0.01),
        (1, 0.7, 0.6, 0.2, 0.6, 0.1, 0.05),
        (32, 50),
        (12, 200),
        _OCC_EMP,
        0.92,
        14_000,
        0.92,
        40_000,
        0.30,
        0.10,
        80_000,
        0.9,
        0.08,
        35,
        14,
        0.35,
        0.05,
        0.10,
        0.05,
    ),
    Persona(
        "credit_reliant_spender",
        0.12,
        3_500,
        1.0,
        -0.004,
        0.12,
        (0.92, 0.04, 0.02, 0.01, 0.01, 0.0, 0.0),
        (1, 0.15, 0.1, 0.05, 0.05, 0.0, 0.0),
        (22, 42),
        (6, 120),
        ("employee", "freelancer", "worker"),
        0.85,
        7_000,
        1.0,
        30_000,
        0.85,
        0.85,
        60_000,
        0.05,
        0.05,
        70,
        24,
        0.25,
        0.02,
        0.02,
        0.01,
    ),
    Persona(
        "retired_depositor",
        0.15,
        55_000,
        1.05,
        0.001,
        0.04,
        (0.15, 0.62, 0.12, 0.02, 0.05, 0.03, 0.01),
        (1, 0.95, 0.45, 0.1, 0.35, 0.25, 0.1),
        (58, 82),
        (60, 400),
        ("retired",),
        0.85,
        4_500,
        0.15,
        10_000,
        0.08,
        0.02,
        20_000,
        0.02,
        0.04,
        8,
        1.0,
        2.6,
        0.30,
        0.05,
        0.02,
    ),
    Persona(
        "business_owner",
        0.07,
        95_000,
        1.15,
        0.002,
        0.16,
        (0.62, 0.14, 0.14, 0.05, 0.03, 0.01, 0.01),
        (1, 0.5, 0.5, 0.3, 0.3, 0.1, 0.05),
        (32, 58),
        (12, 240),
        ("business_owner", "self_employed"),
        0.2,
        20_000,
        0.9,
        80_000,
        0.2,
        0.85,
        800_000,
        0.3,
        0.7,
        130,
        12,
        1.1,
        0.6,
        0.08,
        0.06,
    ),
    Persona(
        "affluent_investor",
        0.02,
        330_000,
        0.95,
        0.004,
        0.06,
        (0.10, 0.15, 0.34, 0.20, 0.09, 0.08, 0.04),
        (1, 0.8, 0.95, 0.85, 0.7, 0.5, 0.3),
        (35, 68),
        (24, 320),
        ("professional", "executive", "business_owner"),
        0.5,
        40_000,
        0.9,
        150_000,
        0.1,
        0.1,
        300_000,
        0.3,
        0.12,
        22,
        9,
        0.6,
        2.2,
        0.0,
        0.03,
    ),
    Persona(
        "basic_inactive",
        0.2,
        1_800,
        1.2,
        -0.005,
        0.10,
        (0.86, 0.12, 0.01, 0.0, 0.01, 0.0, 0.0),
        (1, 0.2, 0.03, 0.0, 0.05, 0.0, 0.0),
        (18, 75),
        (1, 300),
        ("worker", "farmer", "student", "unknown"),
        0.15,
        4_000,
        0.1,
        8_000,
        0.05,
        0.03,
        20_000,
        0.02,
        0.05,
        3,
        0.4,
        0.15,
        0.01,
        0.02,
        0.01,
    ),
)
_REGIONS = ("east", "south", "north", "central", "southwest", "northeast", "northwest")
_REGION_P = (0.30, 0.20, 0.16, 0.13, 0.10, 0.06, 0.05)
_N_BRANCHES = 210
# Planted upgrade drivers: extra monthly log growth.
# Payroll: a share of the salary is saved, so the lift in log growth is larger the smaller
# the balance relative to the salary (an interaction a linear model does not see).
_SAVING_RATE = 0.14
_PAYROLL_CAP = 0.07
_ADOPT_EFFECT = 0.045  # from the adoption month on
_ADOPT_JUMP = 0.12  # one-off money moved in at adoption (log)
_CONSOLIDATE_EFFECT = 0.05


def _month_start(start: str | pd.Period, n_months: int) -> pd.PeriodIndex:
    try:
        first = pd.Period(start, freq="M")
    except (ValueError, TypeError) as exc:
        raise ConfigError([Violation("start", f"is {start!r}; expected a month YYYY-MM")]) from exc
    return pd.period_range(first, periods=n_months, freq="M")


def _check_sizes(n_customers: int, n_months: int) -> None:
    problems = []
    if not isinstance(n_customers, int | np.integer) or n_customers < 1:
        problems.append(Violation("customers", f"is {n_customers!r}; expected a whole number >= 1"))
    if not isinstance(n_months, int | np.integer) or not 1 <= n_months <= 240:
        problems.append(Violation("months", f"is {n_months!r}; expected 1..240"))
    if problems:
        raise ConfigError(problems)


def _chunk(
    rng: np.random.Generator, first_id: int, n: int, months: pd.PeriodIndex
) -> tuple[pa.Table, pd.DataFrame]:
    """Generate customers ``first_id .. first_id + n - 1`` over ``months``."""
    T = len(months)
    P = len(PERSONAS)
    weights = np.array([p.weight for p in PERSONAS])
    persona = rng.choice(P, size=n, p=weights / weights.sum())

    def attr(name: str) -> np.ndarray:
        return np.array([getattr(p, name) for p in PERSONAS], dtype="float64")[persona]

    # --- static attributes
    age_lo, age_hi = (np.array([p.age[k] for p in PERSONAS])[persona] for k in (0, 1))
    age0 = rng.integers(age_lo, age_hi + 1)
    ten_lo, ten_hi = (np.array([p.tenure[k] for p in PERSONAS])[persona] for k in (0, 1))
    tenure_end = rng.integers(ten_lo, ten_hi + 1)  # tenure at the panel's last month
    gender = np.where(rng.random(n) < 0.5, "F", "M")
    rich = np.isin(persona, [4, 5])
    region_p = np.array(_REGION_P)
    region_rich = region_p * np.array([1.6, 1.4, 1.0, 0.7, 0.6, 0.5, 0.4])
    region_rich /= region_rich.sum()
    region = np.where(
        rich, rng.choice(len(_REGIONS), n, p=region_rich), rng.choice(len(_REGIONS), n, p=region_p)
    )
    branch = region * (_N_BRANCHES // len(_REGIONS)) + rng.integers(
        0, _N_BRANCHES // len(_REGIONS), n
    )
    occupation = np.empty(n, dtype=object)
    for k, p in enumerate(PERSONAS):
        idx = persona == k
        occupation[idx] = rng.choice(p.occupations, idx.sum())

    # --- presence: joiners (tenure shorter than the panel) and leavers
    start_idx = np.maximum(0, T - tenure_end)
    leave = rng.random(n) < 0.05
    end_idx = np.where(leave, rng.integers(np.minimum(start_idx + 1, T - 1), T, n), T - 1)
    end_idx = np.maximum(end_idx, start_idx)
    t_idx = np.arange(T)
    present = (t_idx >= start_idx[:, None]) & (t_idx <= end_idx[:, None])

    # --- planted drivers
    has_payroll = rng.random(n) < attr("p_payroll")
    payroll_amt = attr("payroll_median") * np.exp(rng.normal(0, 0.45, n)) * has_payroll
    regularity = np.where(has_payroll, rng.uniform(0.55, 1.0, n), 0.0)
    adopt = (rng.random(n) < attr("p_adopt")) & (T > 1)  # adoption needs a month after the first
    adopt_month = np.where(adopt, rng.integers(1, max(T, 2), n), -1)
    consolidate = (rng.random(n) < attr("p_consolidate")) & (T > 1)
    consolidate_month = np.where(consolidate, rng.integers(1, max(T, 2), n), -1)

    # --- AUM level and dynamics (log space)
    level = np.log(attr("aum_median")) + attr("aum_sigma") * rng.standard_normal(n)
    tail = (persona == 5) & (rng.random(n) < 0.12)
    level[tail] = np.log(1.5e6) + np.log(rng.pareto(1.5, tail.sum()) + 1.0)
    own_trend = rng.normal(0, 0.008, n)
    payroll_effect = np.minimum(
        _PAYROLL_CAP, _SAVING_RATE * regularity * payroll_amt / np.exp(level)
    )
    payroll_strength = payroll_effect / _PAYROLL_CAP
    base_trend = attr("trend") + own_trend + payroll_effect
    after_adopt = (adopt_month[:, None] >= 0) & (t_idx >= adopt_month[:, None])
    after_cons = (consolidate_month[:, None] >= 0) & (t_idx >= consolidate_month[:, None])
    growth = base_trend[:, None] + _ADOPT_EFFECT * after_adopt + _CONSOLIDATE_EFFECT * after_cons
    growth[:, 0] = 0.0
    jump_adopt = _ADOPT_JUMP * ((adopt_month[:, None] >= 0) & (t_idx == adopt_month[:, None]))
    cal_month = np.array([m.month for m in months])
    salaried = has_payroll[:, None]
    season = (
        0.04 * (cal_month == 12) * salaried
        + 0.03 * (cal_month == 1) * salaried
        - 0.035 * (cal_month == 2)
        - 0.01 * (cal_month == 8)
    )
    vol = 0.75 * attr("vol")[:, None] * np.exp(rng.normal(0, 0.25, n))[:, None]
    eps = rng.standard_normal((n, T)) * vol
    ar = np.empty((n, T))
    ar[:, 0] = eps[:, 0] / np.sqrt(1 - 0.55**2)
    for t in range(1, T):
        ar[:, t] = 0.55 * ar[:, t - 1] + eps[:, t]
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

    # --- composition: per-customer shares, wealth share rising after adoption
    mix = np.array([p.mix for p in PERSONAS])[persona]
    holds = rng.random((n, len(AUM_COMPONENTS))) < np.array([p.holds for p in PERSONAS])[persona]
    holds[:, 0] = True
    shares = rng.gamma(np.maximum(mix * 20, 0.05), 1.0) * holds
    shares = shares / shares.sum(axis=1, keepdims=True)
    W = AUM_COMPONENTS.index("wealth_products")
    jitter = np.exp(rng.normal(0, 0.06, (n, T, len(AUM_COMPONENTS))))
    share_t = shares[:, None, :] * jitter
    share_t[:, :, W] += 0.25 * after_adopt
    share_t /= share_t.sum(axis=2, keepdims=True)
    components = np.round(aum_target[:, :, None] * share_t, 2)
    aum = components.sum(axis=2)

    # --- credit
    has_card = rng.random(n) < attr("p_card")
    card_limit = np.round(attr("card_limit") * np.exp(rng.normal(0, 0.5, n)) * has_card, -2)
    util = np.clip(attr("card_util") * np.exp(rng.normal(0, 0.4, n)), 0, 1.2)
    shop = 1 + 0.2 * np.isin(cal_month, [11, 12]) + 0.1 * (cal_month == 2)
    card_spend = np.round(
        card_limit[:, None] * util[:, None] * shop * np.exp(rng.normal(0, 0.35, (n, T))), 2
    )
    has_loan = rng.random(n) < attr("p_loan")
    loan0 = attr("loan_median") * np.exp(rng.normal(0, 0.6, n)) * has_loan
    loan_balance = np.round(loan0[:, None] * 0.99**t_idx, 2)
    has_mortgage = rng.random(n) < attr("p_mortgage")
    mort0 = 900_000 * np.exp(rng.normal(0, 0.5, n)) * has_mortgage
    mortgage_balance = np.round(mort0[:, None] * 0.996**t_idx, 2)

    # --- flows, consistent with the change in AUM
    paid = (rng.random((n, T)) < regularity[:, None]) & has_payroll[:, None]
    payroll_inflow = np.round(
        payroll_amt[:, None]
        * paid
        * np.exp(rng.normal(0, 0.05, (n, T)))
        * (1 + 0.8 * (cal_month == 12) * salaried),
        2,
    )
    tin = np.where(after_cons, aum * rng.uniform(0.02, 0.06, (n, T)), 0.0)
    tin += np.where(jump_adopt > 0, aum * 0.10, 0.0)
    tin += (rng.random((n, T)) < 0.04) * aum * rng.uniform(0.01, 0.2, (n, T))
    tout = (rng.random((n, T)) < 0.05) * aum * rng.uniform(0.01, 0.2, (n, T))
    tout += np.where(shock < -0.2, aum * 0.3, 0.0)
    other_in = aum * attr("turnover")[:, None] * np.exp(rng.normal(0, 0.3, (n, T)))
    inflow = payroll_inflow + tin + other_in
    delta = np.diff(aum, axis=1, prepend=aum[:, :1])
    outflow = inflow - delta
    short = outflow < tout + card_spend * 0.5
    extra = np.where(short, tout + card_spend * 0.5 - outflow, 0.0)
    inflow, outflow = np.round(inflow + extra, 2), np.round(outflow + extra, 2)

    # --- activity and channels
    activity = np.exp(rng.normal(0, 0.35, n))[:, None]
    txn_count = rng.poisson(attr("txn")[:, None] * activity, (n, T))
    app_logins = rng.poisson(attr("logins")[:, None] * activity, (n, T))
    branch_visits = rng.poisson(np.broadcast_to(attr("branch")[:, None], (n, T)))
    rm_rate = attr("rm")[:, None] + 0.6 * (aum >= 500_000)
    rm_contacts = rng.poisson(rm_rate)
    n_products = (
        holds.sum(axis=1)[:, None]
        + (share_t[:, :, W] > 0.05) * (~holds[:, W])[:, None]
        + has_card[:, None]
        + (loan_balance > 0)
        + (mortgage_balance > 0)
        + has_payroll[:, None]
    )

    # --- assemble long format over present cells
    ci, ti = np.nonzero(present)
    ids = np.array([f"C{first_id + k:08d}" for k in range(n)], dtype=object)
    tenure = tenure_end[ci] - (T - 1 - ti)
    month_dates = np.array([dt.date(m.year, m.month, 1) for m in months], dtype=object)
    columns: dict[str, pa.Array] = {
        "customer_id": pa.array(ids[ci], pa.string()),
        "month": pa.array(month_dates[ti], pa.date32()),
        "aum": pa.array(np.round(aum[ci, ti], 2)),
    }
    for j, name in enumerate(AUM_COMPONENTS):
        columns[name] = pa.array(components[ci, ti, j])
    for name, grid in (
        ("loan_balance", loan_balance),
        ("mortgage_balance", mortgage_balance),
        ("card_limit", np.broadcast_to(card_limit[:, None], (n, T))),
        ("card_spend", card_spend),
        ("inflow", inflow),
        ("outflow", outflow),
        ("payroll_inflow", payroll_inflow),
        ("transfer_in_other_bank", np.round(tin, 2)),
        ("transfer_out_other_bank", np.round(tout, 2)),
    ):
        columns[name] = pa.array(grid[ci, ti])
    for name, grid in (
        ("txn_count", txn_count),
        ("app_logins", app_logins),
        ("branch_visits", branch_visits),
        ("rm_contacts", rm_contacts),
        ("n_products", n_products),
    ):
        columns[name] = pa.array(grid[ci, ti].astype(np.int32))
    columns["age"] = pa.array((age0[ci] - (T - 1 - ti) // 12).astype(np.int32))
    columns["tenure_months"] = pa.array(tenure.astype(np.int32))
    columns["gender"] = pa.array(gender[ci], pa.string())
    columns["region"] = pa.array(np.array(_REGIONS, dtype=object)[region[ci]], pa.string())
    columns["occupation"] = pa.array(occupation[ci], pa.string())
    columns["branch_id"] = pa.array(
        np.array([f"B{b:03d}" for b in range(_N_BRANCHES)], dtype=object)[branch[ci]], pa.string()
    )
    panel = pa.table(columns)

    truth = pd.DataFrame(
        {
            "customer_id": ids,
            "persona": pd.Categorical.from_codes(persona, [p.name for p in PERSONAS]),
            "upgrade_propensity": payroll_effect
            + _ADOPT_EFFECT * adopt
            + _CONSOLIDATE_EFFECT * consolidate,
            "trend_monthly": base_trend,
            "has_payroll": has_payroll,
            "payroll_regularity": regularity,
            "payroll_strength": payroll_strength,
            "wealth_adoption_month": pd.array(
                [str(months[m]) if m >= 0 else None for m in adopt_month], dtype="str"
            ),
            "consolidation_month": pd.array(
                [str(months[m]) if m >= 0 else None for m in consolidate_month], dtype="str"
            ),
            "first_month": [str(months[s]) for s in start_idx],
            "last_month": [str(months[e]) for e in end_idx],
        }
    )
    return panel, truth


def iter_bank(
    n_customers: int, n_months: int = 24, *, seed: int = 0, start: str = "2024-01"
) -> Iterator[tuple[pa.Table, pd.DataFrame]]:
    """Yield the synthetic bank chunk by chunk as (panel Arrow table, truth frame).

    Parameters
    ----------
    n_customers : int
        Customers in the bank.
    n_months : int, default 24
        Calendar months in the panel.
    seed : int, default 0
        Master seed; the same seed gives the same bank.
    start : str, default "2024-01"
        The first month.
    """
    _check_sizes(n_customers, n_months)
    months = _month_start(start, n_months)
    n_chunks = -(-n_customers // CHUNK)
    seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    for c, child in enumerate(seeds):
        first = c * CHUNK
        size = min(CHUNK, n_customers - first)
        yield _chunk(np.random.default_rng(child), first + 1, size, months)


def make_bank(
    n_customers: int = 10_000, n_months: int = 24, *, seed: int = 0, start: str = "2024-01"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate the synthetic bank in memory.

    Parameters
    ----------
    n_customers : int, default 10_000
        Customers in the bank.
    n_months : int, default 24
        Calendar months in the panel.
    seed : int, default 0
        The same seed gives identical output.
    start : str, default "2024-01"
        The first month.

    Returns
    -------
    panel : DataFrame
        One row per (customer, month) in the data contract (``month`` as dates, the first
        of each month, as read from ``panel.parquet``); validate it with
        :func:`segments.validate_panel`.
    truth : DataFrame
        One row per customer: ``customer_id``, ``persona``, ``upgrade_propensity`` (the
        planted extra monthly log growth from the drivers), ``trend_monthly``, and the
        drivers ``has_payroll``, ``payroll_regularity``, ``payroll_strength``,
        ``wealth_adoption_month``, ``consolidation_month``; plus ``first_month`` and
        ``last_month`` present.

    Examples
    --------
    >>> from segments import make_bank
    >>> panel, truth = make_bank(200, 6, seed=1)
    >>> panel["customer_id"].nunique() == len(truth) == 200
    True
    """
    panels, truths = zip(*iter_bank(n_customers, n_months, seed=seed, start=start), strict=True)
    panel = pa.concat_tables(panels).to_pandas()
    truth = pd.concat(truths, ignore_index=True)
    return panel, truth


def _marked(schema: pa.Schema, kind: str) -> pa.Schema:
    from segments.core.outputs import OUTPUT_KEY

    return schema.with_metadata({**(schema.metadata or {}), OUTPUT_KEY: kind.encode()})


def write_bank(
    out_dir: str | os.PathLike[str],
    n_customers: int,
    n_months: int = 24,
    *,
    seed: int = 0,
    start: str = "2024-01",
) -> dict[str, Path]:
    """Write ``panel.parquet`` and ``truth.parquet`` into ``out_dir``, chunk by chunk.

    Memory is bounded by one chunk of customers. Both files are written under temporary
    names and renamed into place only when complete, so a failure leaves no partial file.

    Returns
    -------
    dict
        ``{"panel": path, "truth": path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=out))
    try:
        writer: pq.ParquetWriter | None = None
        truth_writer: pq.ParquetWriter | None = None
        for panel, truth in iter_bank(n_customers, n_months, seed=seed, start=start):
            truth_table = pa.Table.from_pandas(truth, preserve_index=False)
            if writer is None:  # marked as segments' own, so --overwrite may replace them
                writer = pq.ParquetWriter(
                    tmp / "panel.parquet", _marked(panel.schema, "synthetic panel")
                )
                truth_writer = pq.ParquetWriter(
                    tmp / "truth.parquet", _marked(truth_table.schema, "synthetic truth")
                )
            writer.write_table(panel, row_group_size=1_000_000)
            assert truth_writer is not None
            truth_writer.write_table(truth_table)
        assert writer is not None and truth_writer is not None
        writer.close()
        truth_writer.close()
        paths = {}
        for name in ("truth", "panel"):
            target = out / f"{name}.parquet"
            os.replace(tmp / f"{name}.parquet", target)
            paths[name] = target
        return paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
