"""Population stability: reference distributions saved at training, PSI at scoring.

A *profile* describes a column's training distribution: for a number, the bin edges (the
reference deciles, de-duplicated) and the share of rows in each bin plus a bin for missing
values; for a category, the share of each category plus "other" and missing. Scoring counts
rows into the same bins batch by batch (counts add up, so memory stays bounded and Spark
partitions combine), and the population stability index compares the two:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

with shares floored at ``EPS`` so an empty bin does not give an infinite value. The usual
reading: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a significant shift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["EPS", "add_counts", "bin_counts", "flag", "profile", "psi", "psi_table"]

EPS = 1e-4
#: PSI thresholds: (moderate, significant).
THRESHOLDS = (0.1, 0.25)


def _is_category(s: pd.Series) -> bool:
    return (
        isinstance(s.dtype, pd.CategoricalDtype)
        or s.dtype == object
        or pd.api.types.is_string_dtype(s.dtype)
        or pd.api.types.is_bool_dtype(s.dtype)
    )


def profile(frame: pd.DataFrame, bins: int = 10) -> dict[str, dict[str, Any]]:
    """The reference profile of every column of ``frame`` (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        Training rows (features, a score, group ids).
    bins : int, default 10
        Quantile bins for numeric columns (fewer when values repeat).

    Returns
    -------
    dict
        Column -> ``{"kind": "numeric", "edges": [...], "expected": [...]}`` or
        ``{"kind": "category", "categories": [...], "expected": [...]}``; ``expected`` are
        shares that sum to 1 (the last one is the missing-value bin). A column with no value
        in any row has no profile: drift is not computed for it.
    """
    out: dict[str, dict[str, Any]] = {}
    for col in frame.columns:
        s = frame[col]
        if len(s) and s.isna().all():
            continue  # empty in training (a window longer than the history): nothing to compare
        if _is_category(s):
            values = s.astype(object).where(s.notna(), None)
            cats = sorted({str(v) for v in values if v is not None})
            spec = {"kind": "category", "categories": cats}
        else:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            x = x[np.isfinite(x)]
            edges = (
                np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
                if len(x)
                else np.array([])
            )
            spec = {"kind": "numeric", "edges": [float(e) for e in edges]}
        counts = bin_counts(frame[[col]], {col: spec})[col]
        total = sum(counts)
        spec["expected"] = [c / total if total else 0.0 for c in counts]
        out[col] = spec
    return out


def bin_counts(
    frame: pd.DataFrame, profiles: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[int]]:
    """Count the rows of ``frame`` into each profiled column's bins.

    Columns of ``profiles`` missing from ``frame`` are skipped.
    """
    out: dict[str, list[int]] = {}
    for col, spec in profiles.items():
        if col not in frame:
            continue
        s = frame[col]
        if spec["kind"] == "category":
            cats = list(spec["categories"])
            index = {c: i for i, c in enumerate(cats)}
            counts = np.zeros(len(cats) + 2, dtype=np.int64)  # categories, other, missing
            values = s.astype(object)
            missing = s.isna().to_numpy()
            counts[-1] = int(missing.sum())
            for v, n in pd.Series(values[~missing].astype(str)).value_counts().items():
                counts[index.get(v, len(cats))] += int(n)
        else:
            edges = np.asarray(spec["edges"], dtype=float)
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
            missing = ~np.isfinite(x)
            counts = np.zeros(len(edges) + 2, dtype=np.int64)
            counts[-1] = int(missing.sum())
            idx = np.searchsorted(edges, x[~missing], side="right")
            counts[: len(edges) + 1] = np.bincount(idx, minlength=len(edges) + 1)
        out[col] = counts.tolist()
    return out


def add_counts(total: dict[str, list[int]], more: Mapping[str, list[int]]) -> dict[str, list[int]]:
    """Add one batch's counts into a running total (in place; returned for chaining)."""
    for col, counts in more.items():
        if col in total:
            total[col] = [a + b for a, b in zip(total[col], counts, strict=True)]
        else:
            total[col] = list(counts)
    return total


def psi(expected: Any, actual_counts: Any) -> float:
    """Population stability index of observed counts against expected shares."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual_counts, dtype=float)
    if a.sum() == 0:
        return float("nan")
    a = a / a.sum()
    e, a = np.maximum(e, EPS), np.maximum(a, EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def flag(value: float, thresholds: tuple[float, float] = THRESHOLDS) -> str:
    """``stable`` (< 0.1), ``moderate`` (0.1 to 0.25) or ``significant`` (> 0.25)."""
    if not np.isfinite(value):
        return "no data"
    return (
        "stable"
        if value < thresholds[0]
        else "moderate"
        if value <= thresholds[1]
        else "significant"
    )


def psi_table(
    profiles: Mapping[str, Mapping[str, Any]],
    counts: Mapping[str, list[int]],
    what: str,
    thresholds: tuple[float, float] = THRESHOLDS,
) -> pd.DataFrame:
    """PSI, flag and row count per profiled column that was counted.

    Parameters
    ----------
    profiles : mapping
        Reference profiles (:func:`profile`).
    counts : mapping
        Observed counts (:func:`bin_counts`, summed over batches).
    what : str
        A label for the rows (``feature``, ``score``, ``group``).
    thresholds : (float, float)
        Moderate and significant PSI.
    """
    rows = []
    for col, spec in profiles.items():
        if col not in counts:
            continue
        value = psi(spec["expected"], counts[col])
        rows.append(
            {
                "kind": what,
                "column": col,
                "psi": value,
                "flag": flag(value, thresholds),
                "n": int(sum(counts[col])),
            }
        )
    return pd.DataFrame(rows, columns=["kind", "column", "psi", "flag", "n"])
