"""Who to call: the expected gain of working a customer and each branch's call list.

The scores come from :mod:`segments.core.upgrade.model`; the ranks within a band from
:mod:`segments.core.upgrade.ranks`. This is the first step of the service plan: relationship
managers' capacity decides how many of the best-ranked customers each branch works.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segments.core.data.panel import ID
from segments.exceptions import ConfigError, Violation

__all__ = ["call_list", "expected_gain"]


def expected_gain(
    p: Any, gap: Any, *, next_tier: Any | None = None, tier_values: dict[str, float] | None = None
) -> pd.DataFrame:
    """Expected gain ``p x gap``, and ``p x value of the next tier`` when values are given.

    Returns
    -------
    DataFrame
        ``expected_gain`` (in the ladder's basis unit: money on an AUM ladder, points on a
        points ladder) and, with ``tier_values``, ``expected_value``.
    """
    p = np.asarray(p, dtype=float)
    out = pd.DataFrame({"expected_gain": p * np.asarray(gap, dtype=float)})
    if tier_values and next_tier is not None:
        values = pd.Series(next_tier).astype(str).map(tier_values).astype(float).to_numpy()
        out["expected_value"] = p * np.nan_to_num(values)
    return out


def call_list(
    scored: pd.DataFrame,
    *,
    capacity_per_rm: int = 50,
    rms_per_branch: int = 2,
    by: str = "expected_gain",
) -> pd.DataFrame:
    """The customers relationship managers should call, within each branch's capacity.

    Parameters
    ----------
    scored : DataFrame
        ``customer_id``, ``p_upgrade``, ``expected_gain`` and, when present, ``branch_id``.
    capacity_per_rm : int, default 50
        Customers one RM works in the period.
    rms_per_branch : int, default 2
    by : str, default "expected_gain"
        What to rank on.

    Returns
    -------
    DataFrame
        The selected customers with ``rank_in_branch`` and ``rm_slot`` (1..rms_per_branch),
        best first within each branch.
    """
    if capacity_per_rm < 1 or rms_per_branch < 1:
        raise ConfigError(
            [Violation("upgrade.call_list", "capacity_per_rm and rms_per_branch must be >= 1")]
        )
    df = scored.copy()
    branch = df["branch_id"].astype(str) if "branch_id" in df else pd.Series("all", index=df.index)
    df["branch"] = branch.to_numpy()
    df = df.sort_values(["branch", by, ID], ascending=[True, False, True], kind="stable")
    df["rank_in_branch"] = df.groupby("branch").cumcount() + 1
    cap = capacity_per_rm * rms_per_branch
    df = df[df["rank_in_branch"] <= cap].copy()
    df["rm_slot"] = (df["rank_in_branch"] - 1) % rms_per_branch + 1
    return df.drop(columns="branch").reset_index(drop=True)
