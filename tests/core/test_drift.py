"""PSI: hand-computed values, bins from the reference, counts that add across batches."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from segments.core import drift


def test_psi_by_hand():
    # expected 50/50, observed 30/70:
    # (0.3 - 0.5) ln(0.3 / 0.5) + (0.7 - 0.5) ln(0.7 / 0.5)
    by_hand = -0.2 * math.log(0.6) + 0.2 * math.log(1.4)
    assert by_hand == pytest.approx(0.16946, abs=1e-5)
    assert drift.psi([0.5, 0.5], [30, 70]) == pytest.approx(by_hand, rel=1e-12)
    assert drift.psi([0.5, 0.5], [50, 50]) == 0.0
    # an empty bin is floored at EPS, not infinite
    assert drift.psi([0.5, 0.5, 0.0], [50, 40, 10]) == pytest.approx(
        (0.5 - 0.5) * 0
        + (0.4 - 0.5) * math.log(0.4 / 0.5)
        + (0.1 - drift.EPS) * math.log(0.1 / drift.EPS)
    )
    assert drift.flag(0.05) == "stable" and drift.flag(0.1) == "moderate"
    assert drift.flag(0.25) == "moderate" and drift.flag(0.2501) == "significant"


def test_profile_bins_and_counts():
    ref = pd.DataFrame(
        {
            "x": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.nan, np.nan],
            "c": ["a", "a", "b", "b", "b", "b", None, "a", "a", "b", "a", "b"],
        }
    )
    prof = drift.profile(ref, bins=2)
    assert prof["x"]["edges"] == [5.5]  # the median of 1..10
    assert prof["x"]["expected"] == pytest.approx([5 / 12, 5 / 12, 2 / 12])
    assert prof["c"]["categories"] == ["a", "b"]
    assert prof["c"]["expected"] == pytest.approx([5 / 12, 6 / 12, 0, 1 / 12])
    now = pd.DataFrame({"x": [0.0, 5.5, 100, np.inf], "c": ["a", "z", None, "b"]})
    counts = drift.bin_counts(now, prof)
    assert counts["x"] == [1, 2, 1]  # 5.5 falls right of the edge; inf counts as missing
    assert counts["c"] == [1, 1, 1, 1]  # a, b, other (z), missing
    # counts of two batches add up to the counts of both together
    a = drift.bin_counts(now.iloc[:2], prof)
    b = drift.bin_counts(now.iloc[2:], prof)
    assert drift.add_counts(a, b) == counts
    table = drift.psi_table(prof, counts, "feature")
    assert list(table["column"]) == ["x", "c"]
    assert table.loc[0, "psi"] == pytest.approx(drift.psi(prof["x"]["expected"], counts["x"]))


def test_a_column_empty_in_training_gets_no_profile_and_no_psi():
    """A feature empty in every training row (a window longer than the history) has no
    distribution to compare with: it is left out, not flagged as drift when scoring has
    the months (it showed a PSI of 18)."""
    train = pd.DataFrame({"aum_avg_3m": np.arange(100.0), "aum_growth_12m": np.nan})
    ref = drift.profile(train)
    assert list(ref) == ["aum_avg_3m"]
    later = pd.DataFrame({"aum_avg_3m": np.arange(100.0), "aum_growth_12m": np.arange(100.0)})
    table = drift.psi_table(ref, drift.bin_counts(later, ref), "feature")
    assert list(table["column"]) == ["aum_avg_3m"]
