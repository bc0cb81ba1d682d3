"""Every figure segments draws (matplotlib only, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["group_sizes", "heatmap", "k_selection"]


def k_selection(table: pd.DataFrame, chosen: int) -> Figure:
    """Criteria per k (silhouette, Calinski-Harabasz, Davies-Bouldin, stability, BIC)."""
    metrics = [c for c in ("silhouette", "calinski_harabasz", "davies_bouldin", "stability",
                           "bic", "min_share") if c in table]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), squeeze=False)
    better = {"davies_bouldin": "lower", "bic": "lower"}
    for ax, m in zip(axes[0], metrics, strict=True):
        ax.plot(table["k"], table[m], marker="o")
        ax.axvline(chosen, color="tab:red", linestyle="--", linewidth=1)
        ax.set_title(f"{m} ({better.get(m, 'higher')} is better)", fontsize=9)
        ax.set_xlabel("k")
    fig.suptitle(f"Choosing the number of groups (chosen k = {chosen})", fontsize=10)
    fig.tight_layout()
    return fig


def heatmap(frame: pd.DataFrame, title: str, *, fmt: str = "{:.2f}", center: bool = True
            ) -> Figure:
    """A labelled heatmap of a small table (e.g. group x feature z-scores, tier x group)."""
    values = frame.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * frame.shape[1] + 2),
                                    max(3, 0.45 * frame.shape[0] + 1.5)))
    vmax = np.nanmax(np.abs(values)) if values.size else 1.0
    cmap = "RdBu_r" if center else "Blues"
    im = ax.imshow(values, cmap=cmap, vmin=-vmax if center else 0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(frame.shape[1]), [str(c) for c in frame.columns], rotation=45,
                  ha="right", fontsize=8)
    ax.set_yticks(range(frame.shape[0]), [str(i) for i in frame.index], fontsize=8)
    if frame.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def group_sizes(summary: pd.DataFrame, names: pd.DataFrame) -> Figure:
    """Customers and AUM share per group."""
    labels = [f"{g}: {names.loc[g, 'name_en']}" for g in summary.index]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(summary) + 1.5))
    y = np.arange(len(summary))
    ax.barh(y - 0.2, summary["share"], height=0.4, label="share of customers")
    if "aum_share" in summary:
        ax.barh(y + 0.2, summary["aum_share"], height=0.4, label="share of AUM")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.set_title("Group sizes", fontsize=10)
    fig.tight_layout()
    return fig
