"""Group ids that stay put across refits: a new fit's clusters take the ids of the
previous model's groups they match."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

__all__ = ["match_groups"]


def match_groups(
    previous: Any,
    X: pd.DataFrame,
    raw_labels: np.ndarray,
    fresh_ids: np.ndarray,
    *,
    min_jaccard: float = 0.5,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Give a new fit's clusters the ids of the previous model's groups they match.

    The previous model assigns the same customers; clusters and previous groups are paired
    by the Hungarian algorithm on their overlap (Jaccard). A pair at or below
    ``min_jaccard`` is not a match: the cluster is ``new`` and gets an unused id; previous
    groups left unpaired are ``vanished``; a new cluster holding most of two or more
    previous groups is flagged ``merged``.

    Returns
    -------
    group_ids : ndarray
        The id of each new cluster.
    report : DataFrame
        One row per new group and per vanished previous group: ``group_id``, ``status``
        (``kept``, ``new``, ``merged``, ``vanished``), ``previous_id``, ``jaccard``,
        ``share``.
    """
    prev_ids = np.sort(previous.group_ids_)
    prev = np.searchsorted(prev_ids, previous.predict(X))  # column of each previous id
    k = len(fresh_ids)
    table = np.zeros((k, len(prev_ids)))
    np.add.at(table, (raw_labels, prev), 1)
    union = table.sum(axis=1)[:, None] + table.sum(axis=0)[None, :] - table
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, table / union, 0.0)
    rows_i, cols_i = linear_sum_assignment(-jac)
    ids = np.full(k, -1, dtype=np.int64)
    report = []
    used: set[int] = set()
    for r, c in zip(rows_i, cols_i, strict=True):
        if jac[r, c] > min_jaccard:  # strictly: an even split or merge is not a match
            ids[r] = prev_ids[c]
            used.add(int(prev_ids[c]))
    next_id = int(prev_ids.max()) + 1
    n = len(raw_labels)
    for r in np.argsort(fresh_ids):
        share = table[r].sum() / max(n, 1)
        holds = table[r] / np.maximum(table.sum(axis=0), 1)
        merged = [int(p) for p in prev_ids[holds >= 0.5]]
        if ids[r] < 0:
            ids[r] = next_id
            next_id += 1
            status = "merged" if len(merged) >= 2 else "new"
            best = int(np.argmax(jac[r])) if len(prev_ids) else -1
            report.append(
                {
                    "group_id": int(ids[r]),
                    "status": status,
                    "previous_id": merged if status == "merged" else None,
                    "jaccard": float(jac[r, best]) if best >= 0 else 0.0,
                    "share": share,
                }
            )
        else:
            status = "merged" if len(merged) >= 2 else "kept"
            c = int(np.searchsorted(prev_ids, ids[r]))
            report.append(
                {
                    "group_id": int(ids[r]),
                    "status": status,
                    "previous_id": merged if status == "merged" else int(ids[r]),
                    "jaccard": float(jac[r, c]),
                    "share": share,
                }
            )
    for col, p in enumerate(prev_ids):
        if int(p) not in used:
            report.append(
                {
                    "group_id": int(p),
                    "status": "vanished",
                    "previous_id": int(p),
                    "jaccard": float(jac[:, col].max()) if k else 0.0,
                    "share": float(table[:, col].sum() / max(n, 1)),
                }
            )
    return ids, pd.DataFrame(report)
