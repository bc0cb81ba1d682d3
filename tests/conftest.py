"""Shared fixtures: a small seeded synthetic bank and tiny hand-written panels."""

from __future__ import annotations

import pandas as pd
import pytest

from segments import make_bank, validate_panel


@pytest.fixture(scope="session")
def small_bank() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A 4,000-customer, 24-month synthetic bank (raw panel, truth)."""
    return make_bank(4_000, 24, seed=11)


@pytest.fixture(scope="session")
def small_panel(small_bank) -> pd.DataFrame:
    """The small bank's panel, validated."""
    return validate_panel(small_bank[0])


def panel_of(rows: list[tuple[str, str, float]], **extra: list) -> pd.DataFrame:
    """A raw panel from (customer_id, month, aum) tuples plus extra columns."""
    df = pd.DataFrame(rows, columns=["customer_id", "month", "aum"])
    for name, values in extra.items():
        df[name] = values
    return df
