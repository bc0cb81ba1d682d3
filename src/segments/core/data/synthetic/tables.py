"""The synthetic bank's tables: the panel (long format, the data contract) and the truth.

No random draws here: the tables are assembled from what
:mod:`segments.core.data.synthetic.customers`, :mod:`segments.core.data.synthetic.monthly` and
:mod:`segments.core.data.synthetic.cards` drew.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from segments.core.data.panel import AUM_COMPONENTS
from segments.core.data.synthetic.cards import CardAccounts
from segments.core.data.synthetic.customers import Customers
from segments.core.data.synthetic.monthly import Months
from segments.core.data.synthetic.personas import (
    ADOPT_EFFECT,
    CONSOLIDATE_EFFECT,
    N_BRANCHES,
    PERSONAS,
    REGIONS,
)

__all__ = ["customer_ids", "panel_table", "truth_frame"]


def customer_ids(first_id: int, n: int) -> np.ndarray:
    """Ids ``C00000001``... of customers ``first_id .. first_id + n - 1``."""
    return np.array([f"C{first_id + k:08d}" for k in range(n)], dtype=object)


def panel_table(
    ids: np.ndarray,
    customers: Customers,
    monthly: Months,
    months: pd.PeriodIndex,
    *,
    cards: CardAccounts | None = None,
) -> pa.Table:
    """The panel over the months each customer is present, as an Arrow table.

    Parameters
    ----------
    ids : ndarray of str
        Customer ids, one per customer.
    customers : Customers
        The chunk's customers.
    monthly : Months
        Their monthly series.
    months : PeriodIndex
        The panel's months.
    cards : CardAccounts, optional
        Their card accounts: ``card_balance``, ``card_payment`` and ``days_past_due``
        follow ``card_spend`` (left out when not given).

    Returns
    -------
    pyarrow.Table
        One row per present (customer, month), in customer then month order.
    """
    T = len(months)
    n = len(ids)
    st, hold, credit, flows, act = (
        customers.statics,
        monthly.holdings,
        monthly.credit,
        monthly.flows,
        monthly.activity,
    )
    present = customers.presence.present
    ci, ti = np.nonzero(present)  # the panel's rows: customer then month order
    keep = present.reshape(-1)

    def rows(grid: np.ndarray) -> np.ndarray:
        """A (customers, months) grid's values in the panel's rows."""
        return np.ascontiguousarray(grid).reshape(-1)[keep]

    tenure = st.tenure_end[ci] - (T - 1 - ti)
    epoch = dt.date(1970, 1, 1)
    month_days = np.array([(dt.date(m.year, m.month, 1) - epoch).days for m in months])
    columns: dict[str, pa.Array] = {
        "customer_id": pa.array(ids[ci], pa.string()),
        "month": pa.array(month_days[ti].astype(np.int32), pa.date32()),
        "aum": pa.array(np.round(rows(hold.aum), 2)),
    }
    components = hold.components.reshape(n * T, len(AUM_COMPONENTS))[keep]
    for j, name in enumerate(AUM_COMPONENTS):
        columns[name] = pa.array(np.ascontiguousarray(components[:, j]))
    del components
    for name, values in (
        ("loan_balance", rows(credit.loan_balance)),
        ("mortgage_balance", rows(credit.mortgage_balance)),
        ("card_limit", credit.card_limit[ci]),
        ("card_spend", rows(credit.card_spend)),
        *(
            (("card_balance", rows(cards.card_balance)), ("card_payment", rows(cards.card_payment)))
            if cards is not None
            else ()
        ),
    ):
        columns[name] = pa.array(values)
    if cards is not None:
        columns["days_past_due"] = pa.array(rows(cards.days_past_due))
    for name, grid in (
        ("inflow", flows.inflow),
        ("outflow", flows.outflow),
        ("payroll_inflow", flows.payroll_inflow),
        ("transfer_in_other_bank", flows.tin),
        ("transfer_out_other_bank", flows.tout),
        ("investment_net_purchases", flows.net_purchases),
    ):
        columns[name] = pa.array(rows(grid))
    for name, grid in (
        ("txn_count", act.txn_count),
        ("app_logins", act.app_logins),
        ("branch_visits", act.branch_visits),
        ("rm_contacts", act.rm_contacts),
        ("n_products", monthly.n_products),
    ):
        columns[name] = pa.array(rows(grid).astype(np.int32))
    columns["age"] = pa.array((st.age0[ci] - (T - 1 - ti) // 12).astype(np.int32))
    columns["tenure_months"] = pa.array(tenure.astype(np.int32))
    columns["gender"] = pa.array(st.gender[ci], pa.string())
    columns["region"] = pa.array(np.array(REGIONS, dtype=object)[st.region[ci]], pa.string())
    columns["occupation"] = pa.array(st.occupation[ci], pa.string())
    columns["branch_id"] = pa.array(
        np.array([f"B{b:03d}" for b in range(N_BRANCHES)], dtype=object)[st.branch[ci]],
        pa.string(),
    )
    return pa.table(columns)


def truth_frame(
    ids: np.ndarray, customers: Customers, monthly: Months, months: pd.PeriodIndex
) -> pd.DataFrame:
    """The planted truth, one row per customer (see :func:`segments.make_bank`).

    Parameters are as for :func:`panel_table`.
    """
    d, path, pres = customers.drivers, monthly.path, customers.presence
    return pd.DataFrame(
        {
            "customer_id": ids,
            "persona": pd.Categorical.from_codes(customers.persona, [p.name for p in PERSONAS]),
            "upgrade_propensity": path.payroll_effect
            + ADOPT_EFFECT * d.adopt
            + CONSOLIDATE_EFFECT * d.consolidate,
            "trend_monthly": path.base_trend,
            "has_payroll": d.has_payroll,
            "payroll_regularity": d.regularity,
            "payroll_strength": path.payroll_strength,
            "wealth_adoption_month": pd.array(
                [str(months[m]) if m >= 0 else None for m in d.adopt_month], dtype="str"
            ),
            "consolidation_month": pd.array(
                [str(months[m]) if m >= 0 else None for m in d.consolidate_month], dtype="str"
            ),
            "growth_source": pd.array(
                [PERSONAS[p].growth_source or None for p in customers.persona], dtype="str"
            ),
            "first_month": [str(months[s]) for s in pres.start_idx],
            "last_month": [str(months[e]) for e in pres.end_idx],
        }
    )
