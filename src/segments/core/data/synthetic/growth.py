"""The synthetic bank's growth sources: returns on investments and regular cross-bank money.

Drawn from a random stream of their own (:func:`growth_stream`, keyed on the chunk's seed)
after the AUM path and its components, so AUM and every component are what they would be
without these draws. What they change is how the path is paid for: each month

* investment balances (wealth products, funds, bonds, insurance, precious metals) earn a
  return (``Persona.invest_return`` and ``invest_vol``, and for an investor whose assets
  move with markets ``market_beta`` times the AUM path's own move): their *appreciation*;
  the rest of their change is *net purchases* (``investment_net_purchases``);
* some customers are paid regularly from other banks (``Persona.migrate_in``, a business
  owner's receipts): *migration*, on top of the occasional transfers every persona has.

:func:`~segments.core.data.synthetic.monthly.draw_flows` then sets the outflow so that the
month's AUM change is exactly inflow - outflow + appreciation, in cents, so
:func:`segments.core.growth.growth_sources` splits it with a zero residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segments.core.data.panel import AUM_COMPONENTS, INVESTMENT_COMPONENTS
from segments.core.data.synthetic.customers import persona_param, substream

__all__ = ["GROWTH_STREAM", "GrowthDraws", "draw_growth", "growth_stream", "to_cents"]

#: The key of the growth stream, appended to the chunk's spawn key (fixed: changing it
#: changes the flow columns of every bank).
GROWTH_STREAM = 0x6407
_INVEST = [AUM_COMPONENTS.index(c) for c in INVESTMENT_COMPONENTS]


@dataclass(frozen=True)
class GrowthDraws:
    """(customers, months) grids in integer cents: ``appreciation`` of the investment
    balances (0 in the first month), ``net_purchases`` of investment products, and
    ``migrate_in`` (regular transfers in from other banks)."""

    appreciation: np.ndarray
    net_purchases: np.ndarray
    migrate_in: np.ndarray


def growth_stream(chunk: np.random.SeedSequence) -> np.random.Generator:
    """The growth draws' generator for a chunk: independent of the chunk's own stream.

    Parameters
    ----------
    chunk : numpy.random.SeedSequence
        The chunk's seed (its generator's ``bit_generator.seed_seq``).

    Returns
    -------
    numpy.random.Generator
        Seeded on the chunk's entropy and spawn key extended by :data:`GROWTH_STREAM`.
    """
    return substream(chunk, GROWTH_STREAM)


def to_cents(money: np.ndarray) -> np.ndarray:
    """Money as whole cents (int64)."""
    return np.rint(np.asarray(money, dtype="float64") * 100.0).astype(np.int64)


def draw_growth(
    rng: np.random.Generator, persona: np.ndarray, components: np.ndarray, aum: np.ndarray
) -> GrowthDraws:
    """Draw the returns on investments and the regular transfers in from other banks.

    Parameters
    ----------
    rng : numpy.random.Generator
        The chunk's growth stream (:func:`growth_stream`).
    persona : ndarray of int
        Persona codes, one per customer.
    components : ndarray, shape (customers, months, components)
        The AUM components (money, in cents already).
    aum : ndarray, shape (customers, months)
        AUM.

    Returns
    -------
    GrowthDraws
    """
    n, T = aum.shape
    invest = to_cents(components[:, :, _INVEST].sum(axis=2))
    mean = persona_param(persona, "invest_return")[:, None]
    sd = persona_param(persona, "invest_vol")[:, None]
    returns = mean + sd * rng.standard_normal((n, T))
    beta = persona_param(persona, "market_beta")[:, None]
    moved = np.zeros((n, T))
    moved[:, 1:] = aum[:, 1:] / np.maximum(aum[:, :-1], 1.0) - 1.0
    returns += beta * np.clip(moved, -0.5, 0.5)
    appreciation = np.zeros((n, T), dtype=np.int64)
    appreciation[:, 1:] = np.rint(invest[:, :-1] * returns[:, 1:]).astype(np.int64)
    net_purchases = np.zeros((n, T), dtype=np.int64)
    net_purchases[:, 1:] = np.diff(invest, axis=1) - appreciation[:, 1:]
    share = persona_param(persona, "migrate_in")[:, None]
    paid = rng.random((n, T)) < 0.8
    amount = aum * share * rng.uniform(0.5, 1.5, (n, T)) / 0.8
    migrate_in = to_cents(np.where(paid & (share > 0), amount, 0.0))
    return GrowthDraws(appreciation, net_purchases, migrate_in)
