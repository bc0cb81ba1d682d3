"""The synthetic bank's card accounts: statement balance, repayments and days past due.

Drawn after everything else, from a random stream of their own (:func:`card_stream`, keyed
on the chunk's seed), so that every other column of a seed's bank is what it was before
these columns existed; the card columns read the card limit and spend already drawn.

Each month a card holder repays a share of the previous statement balance: a transactor
nearly all of it, a revolver (``Persona.p_revolve``) a part, the rest carried at
:data:`CARD_INTEREST` a month. The new balance is what was carried plus the month's spend,
up to the limit. A customer with something to repay (a card balance, a loan or a mortgage)
may start a spell of missed payments (``Persona.p_late`` a month): nothing is repaid, the
days past due grow by 30 a month, and the balance may run 10% over the limit; the spell
goes on with probability :data:`SPELL_GOES_ON` for at most :data:`SPELL_MAX` months, and the
month it ends the customer catches up on part of the arrears.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segments.core.data.synthetic.customers import persona_param, substream
from segments.core.data.synthetic.monthly import Credit

__all__ = [
    "CARD_INTEREST",
    "CARD_STREAM",
    "SPELL_GOES_ON",
    "SPELL_MAX",
    "CardAccounts",
    "card_stream",
    "draw_card_accounts",
]

#: The key of the card stream, appended to the chunk's spawn key (fixed: changing it
#: changes the card columns of every bank).
CARD_STREAM = 0xCA4D
#: Monthly interest on a balance carried over (18% a year).
CARD_INTEREST = 0.015
#: The chance a spell of missed payments goes on another month ...
SPELL_GOES_ON = 0.45
#: ... for at most this many months (180 days past due).
SPELL_MAX = 6


@dataclass(frozen=True)
class CardAccounts:
    """The card account columns, (customers, months) grids; 0 for months not present and
    for customers without a card (``days_past_due`` covers loans and mortgages too)."""

    card_balance: np.ndarray  # money: the statement balance
    card_payment: np.ndarray  # money: repaid in the month
    days_past_due: np.ndarray  # int32: the most days past due on any credit product


def card_stream(chunk: np.random.SeedSequence) -> np.random.Generator:
    """The card accounts' generator for a chunk: independent of the chunk's own stream.

    Parameters
    ----------
    chunk : numpy.random.SeedSequence
        The chunk's seed (its generator's ``bit_generator.seed_seq``).

    Returns
    -------
    numpy.random.Generator
        Seeded on the chunk's entropy and spawn key extended by :data:`CARD_STREAM`.
    """
    return substream(chunk, CARD_STREAM)


def _repay_rates(
    rng: np.random.Generator, persona: np.ndarray, n: int, T: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's typical share repaid (1 for transactors) and the shares repaid,
    (months, customers)."""
    revolver = rng.random(n) < persona_param(persona, "p_revolve")
    base = np.where(revolver, rng.uniform(0.2, 0.6, n), 1.0)
    z = rng.standard_normal((T, n), dtype=np.float32)
    # Revolvers vary around their share; transactors repay in full but now and then
    # (about one month in fifteen) a little less.
    spread = np.where(revolver, np.float32(0.25), np.float32(0.2))
    centre = np.where(revolver, np.log(base), 0.3).astype(np.float32)
    rate = np.exp(centre + spread * z)
    np.clip(rate, np.where(revolver, np.float32(0.1), np.float32(0.0)), 1.0, out=rate)
    return base, rate


def draw_card_accounts(
    rng: np.random.Generator, persona: np.ndarray, credit: Credit, present: np.ndarray
) -> CardAccounts:
    """Draw the card balances, repayments and days past due of a chunk's customers.

    Parameters
    ----------
    rng : numpy.random.Generator
        The chunk's card stream (:func:`card_stream`).
    persona : ndarray of int
        Persona codes, one per customer.
    credit : Credit
        The card limits and spend, loans and mortgages already drawn.
    present : ndarray of bool, shape (customers, months)
        The months each customer is in the panel.

    Returns
    -------
    CardAccounts
    """
    n, T = credit.card_spend.shape
    # Month by month over contiguous rows: every grid here is (months, customers).
    spend = np.ascontiguousarray(credit.card_spend.T)
    live_t = np.ascontiguousarray(present.T)
    owes_other = np.ascontiguousarray(((credit.loan_balance > 0) | (credit.mortgage_balance > 0)).T)
    limit, has_card = credit.card_limit, credit.has_card
    base, rate = _repay_rates(rng, persona, n, T)
    p_late = persona_param(persona, "p_late")
    u = rng.random((T, n), dtype=np.float32)  # starts a spell, or keeps one going
    balance, payment = np.zeros((T, n)), np.zeros((T, n))
    dpd = np.zeros((T, n), dtype=np.int32)
    # Customers there from the first month come with a balance near their usual one.
    prev = np.where(live_t[0] & has_card, np.minimum(limit, spend[0] / base), 0.0)
    spell = np.zeros(n, dtype=np.int32)  # months into a spell of missed payments
    first_days = np.zeros(n, dtype=np.int32)
    for t in range(T):
        live, ut, was = live_t[t], u[t], spell
        starts = (spell == 0) & live & ((prev > 0) | owes_other[t]) & (ut < p_late)
        goes_on = (spell > 0) & (spell < SPELL_MAX) & (ut < SPELL_GOES_ON)
        spell = np.where(goes_on, spell + 1, starts.view(np.int8)).astype(np.int32)
        if starts.any():
            days = np.minimum(30, 1 + (30 * ut[starts] / p_late[starts]).astype(np.int32))
            first_days[starts] = days  # 1..30 days past due in a spell's first month
        missed = spell > 0
        share = rate[t]
        cured = (was > 0) & ~missed  # catches up on part of the arrears
        if cured.any():
            share = np.where(cured, np.maximum(share, 0.2 * was), share)
        paid = np.minimum(share, 1.0) * prev
        paid[missed] = 0.0
        carried = prev - paid
        grown = carried * np.where(carried > 0, 1 + CARD_INTEREST, 1.0) + spend[t]
        cap = limit * np.where(missed, 1.1, 1.0)
        card = live & has_card
        balance[t] = np.minimum(grown, cap) * card
        payment[t] = paid * card
        dpd[t] = (30 * (spell - 1) + first_days) * (live & missed)
        prev = balance[t]
    return CardAccounts(_cents(balance), _cents(payment), np.ascontiguousarray(dpd.T))


def _cents(grid: np.ndarray) -> np.ndarray:
    """A (months, customers) grid of money, rounded to cents, as (customers, months)."""
    np.multiply(grid, 100.0, out=grid)
    np.rint(grid, out=grid)
    np.divide(grid, 100.0, out=grid)
    return np.ascontiguousarray(grid.T)
