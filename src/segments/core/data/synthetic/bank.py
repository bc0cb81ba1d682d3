"""Generating the synthetic bank: chunk by chunk, each from its own seed.

Generation runs in fixed chunks of customers, each from its own seed derived from the
master seed, so output depends only on ``(n_customers, n_months, seed, start)`` and memory
is bounded by the chunk, not the bank.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from segments.core.data.synthetic.cards import card_stream, draw_card_accounts
from segments.core.data.synthetic.customers import draw_customers
from segments.core.data.synthetic.growth import growth_stream
from segments.core.data.synthetic.monthly import draw_months
from segments.core.data.synthetic.tables import customer_ids, panel_table, truth_frame
from segments.exceptions import ConfigError, Violation

__all__ = ["CHUNK", "generate_chunk", "iter_bank", "make_bank"]

#: Customers generated per chunk (fixed: changing it changes the data for a seed).
CHUNK = 50_000


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


def generate_chunk(
    rng: np.random.Generator, first_id: int, n: int, months: pd.PeriodIndex
) -> tuple[pa.Table, pd.DataFrame]:
    """Generate customers ``first_id .. first_id + n - 1`` over ``months``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The chunk's own generator. The card accounts and the growth sources are drawn from
        streams of their own, derived from its seed
        (:func:`~segments.core.data.synthetic.cards.card_stream`,
        :func:`~segments.core.data.synthetic.growth.growth_stream`).
    first_id : int
        The number in the first customer's id.
    n : int
        Customers in the chunk.
    months : PeriodIndex
        The panel's months.

    Returns
    -------
    panel : pyarrow.Table
        One row per present (customer, month).
    truth : DataFrame
        One row per customer.
    """
    customers = draw_customers(rng, n, len(months))
    seed_seq = rng.bit_generator.seed_seq
    monthly = draw_months(rng, customers, months, growth_stream(seed_seq))  # type: ignore[arg-type]
    cards = draw_card_accounts(
        card_stream(seed_seq),  # type: ignore[arg-type]
        customers.persona,
        monthly.credit,
        customers.presence.present,
    )
    ids = customer_ids(first_id, n)
    panel = panel_table(ids, customers, monthly, months, cards=cards)
    return panel, truth_frame(ids, customers, monthly, months)


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

    Yields
    ------
    panel : pyarrow.Table
        One chunk's panel rows.
    truth : DataFrame
        The same chunk's truth rows.
    """
    _check_sizes(n_customers, n_months)
    months = _month_start(start, n_months)
    n_chunks = -(-n_customers // CHUNK)
    seeds = np.random.SeedSequence(seed).spawn(n_chunks)
    for c, child in enumerate(seeds):
        first = c * CHUNK
        size = min(CHUNK, n_customers - first)
        yield generate_chunk(np.random.default_rng(child), first + 1, size, months)


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
        :func:`segments.validate_panel`. Card holders have a statement balance
        (``card_balance``, mostly within ``card_limit``), repayments (``card_payment``)
        and, in rare spells of missed payments (more often for stretched personas),
        ``days_past_due`` above 0 (on any credit product).
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
