"""Who the synthetic customers are: persona, static attributes, presence, planted drivers.

Each step draws from the chunk's random generator; :func:`draw_customers` runs them in a
fixed order, and that order is part of the data: drawing in another order changes the bank
generated for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segments.core.data.synthetic.personas import N_BRANCHES, PERSONAS, REGION_P, REGIONS

__all__ = [
    "Customers",
    "Drivers",
    "Presence",
    "Statics",
    "draw_customers",
    "draw_drivers",
    "draw_personas",
    "draw_presence",
    "draw_statics",
    "persona_param",
    "substream",
]


@dataclass(frozen=True)
class Statics:
    """Static attributes, one value per customer.

    ``age0`` is the age at the panel's last month, ``tenure_end`` the tenure (months) then;
    ``region`` and ``branch`` are codes into ``REGIONS`` and the ``N_BRANCHES`` branches.
    """

    age0: np.ndarray
    tenure_end: np.ndarray
    gender: np.ndarray
    region: np.ndarray
    branch: np.ndarray
    occupation: np.ndarray


@dataclass(frozen=True)
class Presence:
    """The months each customer is in the panel (joiners and leavers).

    ``start_idx`` and ``end_idx`` are the first and last month positions; ``present`` is
    the (customers, months) mask between them.
    """

    start_idx: np.ndarray
    end_idx: np.ndarray
    present: np.ndarray


@dataclass(frozen=True)
class Drivers:
    """The planted upgrade drivers, one value per customer.

    Adoption and consolidation months are month positions, -1 for customers without them.
    """

    has_payroll: np.ndarray
    payroll_amt: np.ndarray
    regularity: np.ndarray
    adopt: np.ndarray
    adopt_month: np.ndarray
    consolidate: np.ndarray
    consolidate_month: np.ndarray


@dataclass(frozen=True)
class Customers:
    """One chunk's customers: persona codes (into ``PERSONAS``) and what was drawn for them."""

    persona: np.ndarray
    statics: Statics
    presence: Presence
    drivers: Drivers


def substream(chunk: np.random.SeedSequence, key: int) -> np.random.Generator:
    """A generator of its own for some columns of a chunk, independent of the chunk's stream:
    seeded on the chunk's entropy and spawn key extended by ``key``.

    Parameters
    ----------
    chunk : numpy.random.SeedSequence
        The chunk's seed (its generator's ``bit_generator.seed_seq``).
    key : int
        The stream's fixed key (changing it changes those columns of every bank).

    Returns
    -------
    numpy.random.Generator
    """
    spawn = (*chunk.spawn_key, key)
    return np.random.default_rng(np.random.SeedSequence(chunk.entropy, spawn_key=spawn))


def persona_param(persona: np.ndarray, name: str) -> np.ndarray:
    """Each customer's value of the numeric persona parameter ``name``.

    Parameters
    ----------
    persona : ndarray of int
        Persona codes, one per customer.
    name : str
        A numeric field of :class:`~segments.core.data.synthetic.personas.Persona`.

    Returns
    -------
    ndarray of float64
    """
    return np.array([getattr(p, name) for p in PERSONAS], dtype="float64")[persona]


def draw_personas(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` persona codes by the personas' weights."""
    weights = np.array([p.weight for p in PERSONAS])
    return rng.choice(len(PERSONAS), size=n, p=weights / weights.sum())


def draw_statics(rng: np.random.Generator, persona: np.ndarray) -> Statics:
    """Draw age, tenure, gender, region, branch and occupation from each persona."""
    n = len(persona)
    age_lo, age_hi = (np.array([p.age[k] for p in PERSONAS])[persona] for k in (0, 1))
    age0 = rng.integers(age_lo, age_hi + 1)
    ten_lo, ten_hi = (np.array([p.tenure[k] for p in PERSONAS])[persona] for k in (0, 1))
    tenure_end = rng.integers(ten_lo, ten_hi + 1)  # tenure at the panel's last month
    gender = np.where(rng.random(n) < 0.5, "F", "M")
    rich = np.isin(persona, [4, 5])
    region_p = np.array(REGION_P)
    region_rich = region_p * np.array([1.6, 1.4, 1.0, 0.7, 0.6, 0.5, 0.4])
    region_rich /= region_rich.sum()
    region = np.where(
        rich, rng.choice(len(REGIONS), n, p=region_rich), rng.choice(len(REGIONS), n, p=region_p)
    )
    branch = region * (N_BRANCHES // len(REGIONS)) + rng.integers(0, N_BRANCHES // len(REGIONS), n)
    occupation = np.empty(n, dtype=object)
    for k, p in enumerate(PERSONAS):
        idx = persona == k
        occupation[idx] = rng.choice(p.occupations, idx.sum())
    return Statics(age0, tenure_end, gender, region, branch, occupation)


def draw_presence(rng: np.random.Generator, tenure_end: np.ndarray, T: int) -> Presence:
    """Draw leavers; customers whose tenure is shorter than the panel join during it."""
    n = len(tenure_end)
    start_idx = np.maximum(0, T - tenure_end)
    leave = rng.random(n) < 0.05
    end_idx = np.where(leave, rng.integers(np.minimum(start_idx + 1, T - 1), T, n), T - 1)
    end_idx = np.maximum(end_idx, start_idx)
    t_idx = np.arange(T)
    present = (t_idx >= start_idx[:, None]) & (t_idx <= end_idx[:, None])
    return Presence(start_idx, end_idx, present)


def draw_drivers(rng: np.random.Generator, persona: np.ndarray, T: int) -> Drivers:
    """Draw the planted drivers: payroll, wealth adoption and consolidation."""
    n = len(persona)
    has_payroll = rng.random(n) < persona_param(persona, "p_payroll")
    payroll_amt = (
        persona_param(persona, "payroll_median") * np.exp(rng.normal(0, 0.45, n)) * has_payroll
    )
    regularity = np.where(has_payroll, rng.uniform(0.55, 1.0, n), 0.0)
    # adoption needs a month after the first
    adopt = (rng.random(n) < persona_param(persona, "p_adopt")) & (T > 1)
    adopt_month = np.where(adopt, rng.integers(1, max(T, 2), n), -1)
    consolidate = (rng.random(n) < persona_param(persona, "p_consolidate")) & (T > 1)
    consolidate_month = np.where(consolidate, rng.integers(1, max(T, 2), n), -1)
    return Drivers(
        has_payroll, payroll_amt, regularity, adopt, adopt_month, consolidate, consolidate_month
    )


def draw_customers(rng: np.random.Generator, n: int, T: int) -> Customers:
    """Draw ``n`` customers for a panel of ``T`` months: persona, statics, presence, drivers.

    Parameters
    ----------
    rng : numpy.random.Generator
        The chunk's generator (advanced by the draws).
    n : int
        Customers in the chunk.
    T : int
        Months in the panel.

    Returns
    -------
    Customers
    """
    persona = draw_personas(rng, n)
    statics = draw_statics(rng, persona)
    presence = draw_presence(rng, statics.tenure_end, T)
    drivers = draw_drivers(rng, persona, T)
    return Customers(persona, statics, presence, drivers)
