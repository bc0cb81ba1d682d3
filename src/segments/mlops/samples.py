"""What a training run writes about customers into MLflow.

By default nothing customer-level: the call list and the reason codes are logged as
aggregates (per branch and near band; per reason), and the model's input example is built
from column-wise quantiles, not from anyone's row. ``tracking.log_samples: true`` adds
samples of both, their ids pseudonymised by HMAC-SHA256 with the bank's key
(``SEGMENTS_ID_KEY``) unless ``tracking.hash_ids: false``; the model card says which.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import numpy as np
import pandas as pd

from segments.core.config.tracking import TrackingConfig
from segments.core.data.panel import ID

__all__ = [
    "OTHER_BRANCHES",
    "REVIEW_COLUMNS",
    "call_list_summary",
    "example_rows",
    "log_customer_artifacts",
    "pseudonymise",
    "reason_summary",
    "what_was_logged",
]

#: The call-list columns a reviewer reads, in order (those present are shown).
REVIEW_COLUMNS = (
    ID,
    "as_of",
    "branch_id",
    "rank_in_branch",
    "rm_slot",
    "tier",
    "next_tier",
    "near_band",
    "gap_to_next",
    "p_upgrade",
    "expected_gain",
    "expected_value",
    "reason_1_text",
    "reason_1_text_zh",
)
#: Quantiles of each column the input example's rows are made of.
EXAMPLE_QUANTILES = (0.1, 0.5, 0.9)


def pseudonymise(ids: pd.Series, key: bytes) -> pd.Series:
    """Each id replaced by ``h`` + the first 16 hex digits of its HMAC-SHA256 under
    ``key``: the same id and key give the same pseudonym in every run; without the key
    it cannot be reversed or recomputed."""
    digest = ["h" + hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest()[:16] for v in ids]
    return pd.Series(digest, index=ids.index, name=ids.name)


#: The branch label of a band's pooled small cells.
OTHER_BRANCHES = "other branches"


def call_list_summary(calls: pd.DataFrame, min_cell: int = 1) -> pd.DataFrame:
    """The call list as aggregates: per branch (``all`` without branches) and near band,
    the customers on it, their mean probability, the expected gain in total, and how many
    get each lever (when the call list has levers).

    A branch with fewer than ``min_cell`` customers in a band is pooled into that band's
    :data:`OTHER_BRANCHES` row; where even the pool is smaller, its statistics are blank
    (the count stays): no row describes fewer than ``min_cell`` customers.
    """
    branch = calls["branch_id"].astype(str) if "branch_id" in calls else "all"
    frame = calls.assign(branch=branch, near_band=calls["near_band"].astype(str))
    size = frame.groupby(["branch", "near_band"], observed=True)[ID].transform("size")
    frame.loc[size < min_cell, "branch"] = OTHER_BRANCHES
    agg = {"customers": (ID, "size"), "mean_p_upgrade": ("p_upgrade", "mean")}
    if "expected_gain" in frame:
        agg["expected_gain"] = ("expected_gain", "sum")
    if "lever" in frame:
        from segments.core.growth.levers import LEVERS

        for lever in LEVERS:
            frame[f"lever_{lever}"] = frame["lever"] == lever
            agg[f"lever_{lever}"] = (f"lever_{lever}", "sum")
    out = frame.groupby(["branch", "near_band"], observed=True, sort=True).agg(**agg)
    stats = [c for c in out.columns if c != "customers"]
    out[stats] = out[stats].astype(float)
    out.loc[out["customers"] < min_cell, stats] = np.nan
    return out.reset_index()


def reason_summary(test: pd.DataFrame, describe: Any = None, min_cell: int = 1) -> pd.DataFrame:
    """How often each feature is among a customer's reason codes on the test rows: rows
    naming it, as the first reason, their share of the rows, and the mean contribution
    (log-odds), with the feature's English and Chinese description (``describe``: a
    name -> catalogue entry lookup). The mean contribution of fewer than ``min_cell``
    rows is left blank."""
    ks = sorted(int(c.split("_")[1]) for c in test.columns if c.endswith("_feature"))
    parts = [
        pd.DataFrame(
            {
                "feature": test[f"reason_{k}_feature"],
                "first": k == 1,
                "contribution": test.get(f"reason_{k}_contribution", np.nan),
            }
        )
        for k in ks
    ]
    if not parts:
        return pd.DataFrame(columns=["feature", "rows", "as_first", "share", "contribution"])
    long = pd.concat(parts, ignore_index=True).dropna(subset=["feature"])
    long = long[long["feature"].astype(str) != ""]
    out = long.groupby("feature", sort=False).agg(
        rows=("feature", "size"), as_first=("first", "sum"), contribution=("contribution", "mean")
    )
    out["share"] = out["rows"] / max(len(test), 1)
    out.loc[out["rows"] < min_cell, "contribution"] = np.nan
    out = out.sort_values(["rows", "as_first"], ascending=False)[
        ["rows", "as_first", "share", "contribution"]
    ]
    if describe is not None:
        specs = [describe(str(f)) for f in out.index]
        out["description"] = [s.en if s else "" for s in specs]
        out["description_zh"] = [s.zh if s else "" for s in specs]
    return out.reset_index()


def example_rows(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """An input example for a logged model that is nobody's row: each numeric column at
    :data:`EXAMPLE_QUANTILES` (a value the column takes, kept in its dtype), each
    categorical column at its most frequent categories."""
    out = {}
    n = len(EXAMPLE_QUANTILES)
    for c in features:
        col = frame[c]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            top = col.value_counts().index.tolist() or [None]
            values = [top[i % len(top)] for i in range(n)]
            out[c] = pd.Series(values, dtype=col.dtype)
        else:
            q = col.quantile(list(EXAMPLE_QUANTILES), interpolation="nearest")
            out[c] = pd.Series(q.to_numpy(), dtype=col.dtype)
    return pd.DataFrame(out)


def what_was_logged(tracking: TrackingConfig) -> str:
    """One sentence for the model card: the customer-level data in the run's artifacts."""
    if not tracking.log_samples:
        return (
            "No customer-level rows: the call list and the reason codes are logged as "
            f"aggregates of at least {tracking.min_cell:,} customers each (smaller branch "
            "cells pooled, smaller statistics left blank; `tracking.min_cell`), and the "
            "model's input example is made of column quantiles (`tracking.log_samples: false`)."
        )
    ids = (
        "ids pseudonymised by HMAC-SHA256 with the bank's key"
        if tracking.hash_ids
        else "the bank's ids as they are (`tracking.hash_ids: false`)"
    )
    return (
        f"Samples of up to {tracking.sample_rows:,} customers (the call list and the "
        f"reason codes), {ids} (`tracking.log_samples: true`)."
    )


def log_customer_artifacts(
    result: Any, tracking: TrackingConfig, describe: Any = None
) -> list[str]:
    """Log the call list and the reason codes of an upgrade training run: aggregates,
    and samples when ``tracking`` asks for them; return the artifact paths written."""
    from segments.mlops.tracking import log_frame

    written = ["call_list_summary.csv", "explanations/reason_codes_summary.csv"]
    cell = tracking.min_cell
    log_frame(call_list_summary(result.call_list, cell), written[0], index=False)
    log_frame(reason_summary(result.test, describe, cell), written[1], index=False)
    if not tracking.log_samples:
        return written
    key, n = tracking.id_key(), tracking.sample_rows
    reasons = [c for c in result.test.columns if c.startswith("reason_")]
    samples = {
        "call_list_sample.csv": result.call_list.head(n).copy(),
        "explanations/reason_codes_sample.csv": result.test[[ID, "as_of", "p_upgrade", *reasons]]
        .head(n)
        .copy(),
    }
    for path, frame in samples.items():
        if key is not None:
            frame[ID] = pseudonymise(frame[ID], key).to_numpy()
        review = [c for c in REVIEW_COLUMNS if c in frame] if path.startswith("call") else None
        log_frame(frame, path, index=False, html_columns=review)
        written.append(path)
    return written
