"""A scoring run's drift at a glance (segments.mlops.scoring_runs.drift_summary): the level
tagged, the flags counted, the largest shift named, a reference of the scored month said."""

from __future__ import annotations

import pandas as pd

from segments.mlops.scoring_runs import drift_summary


def _report(flags: list[str], psi: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": ["score"] + ["groups feature"] * (len(flags) - 1),
            "column": ["p_upgrade"] + [f"f{i}" for i in range(1, len(flags))],
            "psi": psi,
            "flag": flags,
        }
    )


def test_the_level_is_the_worst_flag_and_the_largest_shift_is_named():
    rep = _report(["significant", "moderate", "", ""], [0.277, 0.17, 0.01, 0.0])
    level, text = drift_summary(rep, "2025-06", {})
    assert level == "significant"
    assert "drift **significant** (1 significant, 1 moderate PSI of 4)" in text
    assert "Largest shift: score `p_upgrade`, PSI 0.277." in text
    level, text = drift_summary(_report(["", "moderate"], [0.01, 0.12]), "2025-06", {})
    assert level == "moderate" and "Largest shift: groups feature `f1`, PSI 0.120" in text
    assert drift_summary(_report(["", ""], [0.0, 0.01]), "2025-06", {})[0] == "none"


def test_a_reference_holding_the_scored_month_is_said_to_show_no_drift():
    reference = {
        "groups": {"model": "g/1", "months": "2025-06"},
        "upgrade": {"model": "u/1", "months": "2025-02,2025-03"},
    }
    _, text = drift_summary(_report(["", ""], [0.0, 0.0]), "2025-06", reference)
    assert "The groups model's reference is 2025-06, the scored month itself" in text
    assert "upgrade model's reference is" not in text
    _, later = drift_summary(_report(["", ""], [0.0, 0.0]), "2025-07", reference)
    assert "the scored month itself" not in later
