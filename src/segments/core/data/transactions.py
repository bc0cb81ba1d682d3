"""A monthly panel from a transaction table, for banks (and public data) with flows only.

:func:`panel_from_transactions` aggregates one row per transaction to one row per customer
and month, the panel of :mod:`segments.core.data.panel`; validate it with
:func:`~segments.core.data.validation.validate_panel`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from segments.core.data.months import parse_months
from segments.core.data.panel import AUM, ID, MONTH
from segments.core.data.validation import example_ids
from segments.exceptions import PanelValidationError, SegmentsWarning, Violation

__all__ = ["panel_from_transactions"]


def panel_from_transactions(
    transactions: pd.DataFrame,
    *,
    customer: str = "customer_id",
    date: str = "date",
    amount: str = "amount",
    count: str | None = None,
    end: str | pd.Period | None = None,
) -> pd.DataFrame:
    """Aggregate a transaction table to a monthly panel (one row per customer and month).

    Every customer gets a row for each month from their first transaction to ``end`` (the
    last month in the data by default), with zeros in months without transactions: the
    customer is still a customer. ``aum`` is the month's total ``amount`` (a stand-in for a
    balance when only flows exist), ``txn_count`` the number of transactions (or the sum of
    ``count`` when given).

    Parameters
    ----------
    transactions : DataFrame
        One row per transaction.
    customer, date, amount : str
        Column names of the customer id, the date and the money amount.
    count : str, optional
        A column to sum into ``txn_count`` instead of counting rows.
    end : str or Period, optional
        The panel's last month.

    Returns
    -------
    DataFrame
        ``customer_id``, ``month`` (period[M]), ``aum``, ``txn_count``; validate it with
        :func:`~segments.core.data.validation.validate_panel`.

    Raises
    ------
    PanelValidationError
        A column is missing, or holds missing ids, values that are not dates or numbers
        (every problem at once, with counts and example ids).
    """
    missing = [c for c in (customer, date, amount, count) if c and c not in transactions]
    if missing:
        raise PanelValidationError([Violation(c, "is required but missing") for c in missing])
    if transactions.empty:
        raise PanelValidationError([Violation(date, "has no transactions: the table is empty")])
    ids = transactions[customer]
    month = parse_months(transactions[date])
    values = {c: pd.to_numeric(transactions[c], errors="coerce") for c in (amount, count) if c}
    checks = [
        (customer, ids.isna().to_numpy(), "has missing customer ids"),
        (date, month.isna().to_numpy(), "has values that are not dates"),
    ]
    for c, v in values.items():
        given = transactions[c].notna().to_numpy()
        checks.append((c, v.isna().to_numpy() & given, "has values that are not numbers"))
        checks.append((c, ~given, "has missing values"))
    problems = [
        Violation(column, what, int(bad.sum()), example_ids(ids, bad))
        for column, bad, what in checks
        if bad.any()
    ]
    if end is None:  # the data's last month, unless a date lies beyond this month
        now = pd.Timestamp.now().to_period("M")
        ahead = (month > now).to_numpy()
        if ahead.any():
            problems.append(
                Violation(
                    date,
                    f"has dates after {now}: the panel would run to {month.max()}",
                    int(ahead.sum()),
                    example_ids(ids, ahead),
                    hint="give the panel's last month (end, --end), or fix the dates",
                )
            )
    if problems:
        raise PanelValidationError(problems)
    if end is not None:
        after = (month > pd.Period(end, "M")).to_numpy()
        if after.any():
            warnings.warn(
                SegmentsWarning(
                    f"{int(after.sum()):,} transaction(s) after {pd.Period(end, 'M')} (the "
                    f"panel's last month) are left out, e.g. customers "
                    f"{', '.join(example_ids(ids, after))}"
                ),
                stacklevel=2,
            )
    frame = pd.DataFrame(
        {
            ID: ids.astype(str).to_numpy(),
            "m": month.array.asi8,
            AUM: values[amount].to_numpy(dtype=float),
            "txn_count": values[count].to_numpy(dtype=float) if count else np.ones(len(ids)),
        }
    )
    monthly = frame.groupby([ID, "m"], sort=True)[[AUM, "txn_count"]].sum()
    last = pd.Period(end, "M").ordinal if end is not None else int(frame["m"].max())
    first = frame.groupby(ID)["m"].min()
    first = first[first <= last]
    spans = (last - first + 1).to_numpy()
    ids = np.repeat(first.index.to_numpy(), spans)
    starts = np.repeat(first.to_numpy(), spans)
    offsets = np.arange(spans.sum()) - np.repeat(np.cumsum(spans) - spans, spans)
    grid = pd.MultiIndex.from_arrays([ids, starts + offsets], names=[ID, "m"])
    full = monthly.reindex(grid, fill_value=0.0).reset_index()
    full[MONTH] = pd.arrays.PeriodArray(
        full["m"].to_numpy(dtype=np.int64), dtype=pd.PeriodDtype("M")
    )
    return full[[ID, MONTH, AUM, "txn_count"]]
