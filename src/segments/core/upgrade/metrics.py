"""Evaluation of upgrade scores: discrimination, calibration, lift, decile and calibration
tables (the same for the model and both baselines, on the same held-out months)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)

__all__ = [
    "REPORTED",
    "calibration_table",
    "decile_table",
    "evaluate",
    "expected_calibration_error",
    "monthly_metrics",
]

#: The metrics reports show for a model, in order (the CLI, the model card).
REPORTED: tuple[str, ...] = (
    "n",
    "positives",
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "ece",
    "lift_top5",
    "lift_top10",
    "lift_top20",
    "capture_top10",
)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the share-weighted gap between the mean predicted and
    the observed rate in ``bins`` equal-count bins of ``p``."""
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(err)


def _lift_capture(y: np.ndarray, score: np.ndarray, top: float) -> tuple[float, float]:
    n = max(1, int(np.ceil(top * len(y))))
    order = np.argsort(-score, kind="stable")[:n]
    rate = y.mean()
    hit = y[order].mean()
    return (
        float(hit / rate) if rate > 0 else np.nan,
        float(y[order].sum() / y.sum()) if y.sum() > 0 else np.nan,
    )


def evaluate(y: Any, p: Any, score: Any | None = None) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier, log loss, ECE, lift and capture at the top 5/10/20%.

    Parameters
    ----------
    y : array-like of {0, 1}
    p : array-like of float
        Probabilities (for the calibration metrics).
    score : array-like, optional
        The ranking score (default ``p``), for AUCs, lift and capture.
    """
    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    s = p if score is None else np.asarray(score, dtype=float)
    out: dict[str, float] = {
        "n": float(len(y)),
        "positives": float(y.sum()),
        "positive_rate": float(y.mean()) if len(y) else np.nan,
    }
    if len(np.unique(y)) < 2:
        return out
    out.update(
        {
            "roc_auc": float(roc_auc_score(y, s)),
            "pr_auc": float(average_precision_score(y, s)),
            "brier": float(brier_score_loss(y, p)),
            "log_loss": float(log_loss(y, p, labels=[0, 1])),
            "ece": expected_calibration_error(y, p),
        }
    )
    for top in (0.05, 0.10, 0.20):
        lift, capture = _lift_capture(y, s, top)
        out[f"lift_top{int(top * 100)}"] = lift
        out[f"capture_top{int(top * 100)}"] = capture
    return out


def decile_table(y: Any, score: Any, p: Any | None = None) -> pd.DataFrame:
    """Customers ranked by score in ten equal bins (1 = highest): counts, rates, lift."""
    y = np.asarray(y).astype(int)
    s = np.asarray(score, dtype=float)
    order = np.argsort(-s, kind="stable")
    decile = np.empty(len(s), dtype=int)
    decile[order] = np.arange(len(s)) * 10 // max(len(s), 1) + 1
    df = pd.DataFrame(
        {"decile": decile, "y": y, "p": np.asarray(p if p is not None else s, dtype=float)}
    )
    t = df.groupby("decile").agg(
        customers=("y", "size"), upgrades=("y", "sum"), mean_p=("p", "mean")
    )
    t["upgrade_rate"] = t["upgrades"] / t["customers"]
    t["lift"] = t["upgrade_rate"] / y.mean() if y.mean() > 0 else np.nan
    t["cumulative_capture"] = t["upgrades"].cumsum() / max(y.sum(), 1)
    return t


def calibration_table(y: Any, p: Any, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed upgrade rate in ``bins`` equal-size bins of p."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    q = pd.qcut(pd.Series(p).rank(method="first"), bins, labels=False)
    df = pd.DataFrame({"bin": q, "y": y, "p": p})
    return df.groupby("bin").agg(
        customers=("y", "size"), mean_p=("p", "mean"), observed=("y", "mean")
    )


def monthly_metrics(test: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Per model and as-of month of ``test`` (its ``label`` and ``p_<model>`` columns): rows,
    upgrades, observed and mean predicted upgrade rate, ROC AUC and expected calibration
    error, so a model calibrated on average but not month by month shows.

    Parameters
    ----------
    test : DataFrame
        ``as_of``, ``label`` and one ``p_<model>`` column per model.
    models : sequence of str

    Returns
    -------
    DataFrame
        ``model``, ``as_of``, ``n``, ``positives``, ``positive_rate``, ``mean_p``,
        ``roc_auc``, ``ece``.
    """
    rows = []
    for name in models:
        for month, part in test.groupby(test["as_of"].astype(str), sort=True):
            y = part["label"].to_numpy().astype(int)
            p = part[f"p_{name}"].to_numpy(dtype=float)
            two = len(np.unique(y)) == 2
            rows.append(
                {
                    "model": name,
                    "as_of": month,
                    "n": len(y),
                    "positives": int(y.sum()),
                    "positive_rate": float(y.mean()),
                    "mean_p": float(p.mean()),
                    "roc_auc": float(roc_auc_score(y, p)) if two else np.nan,
                    "ece": expected_calibration_error(y, p) if len(y) >= 10 else np.nan,
                }
            )
    return pd.DataFrame(rows)
