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

Modules: :mod:`~segments.core.data.synthetic.personas` (the personas and the planted drivers'
sizes), :mod:`~segments.core.data.synthetic.customers` (who the customers are),
:mod:`~segments.core.data.synthetic.monthly` (their months: AUM, holdings, credit, flows,
activity), :mod:`~segments.core.data.synthetic.cards` (card balances, repayments and days
past due, from a random stream of their own), :mod:`~segments.core.data.synthetic.tables`
(the panel and truth tables),
:mod:`~segments.core.data.synthetic.bank` (chunks, :func:`make_bank`) and
:mod:`~segments.core.data.synthetic.writer` (:func:`write_bank`). The random draws happen in a
fixed order across them; that order is part of the data. The card accounts' stream is
apart: they were added without changing any other column of a seed's bank.
"""

from __future__ import annotations

from segments.core.data.synthetic.bank import CHUNK, iter_bank, make_bank
from segments.core.data.synthetic.personas import PERSONAS, Persona
from segments.core.data.synthetic.writer import write_bank

__all__ = ["CHUNK", "PERSONAS", "Persona", "iter_bank", "make_bank", "write_bank"]
