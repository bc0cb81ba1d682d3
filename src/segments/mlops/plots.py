"""Every figure segments draws (matplotlib only, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "beeswarm",
    "calibration",
    "deciles",
    "dependence",
    "gain",
    "group_sizes",
    "heatmap",
    "k_selection",
    "precision_recall",
    "roc",
]


def k_selection(table: pd.DataFrame, chosen: int) -> Figure:
    """Criteria per k (silhouette, Calinski-Harabasz, Davies-Bouldin, stability, BIC)."""
    metrics = [
        c
        for c in (
            "silhouette",
            "calinski_harabasz",
            "davies_bouldin",
            "stability",
            "bic",
            "min_share",
        )
        if c in table
    ]
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


def _ink(rgba: tuple[float, ...]) -> str:
    """Black or white, whichever reads on a cell of colour ``rgba`` (by its luminance)."""
    r, g, b = rgba[:3]
    return "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5 else "black"


def heatmap(frame: pd.DataFrame, title: str, *, fmt: str = "{:.2f}", center: bool = True) -> Figure:
    """A labelled heatmap of a small table (e.g. group x feature z-scores, tier x group)."""
    values = frame.to_numpy(dtype=float)
    fig, ax = plt.subplots(
        figsize=(max(5, 0.6 * frame.shape[1] + 2), max(3, 0.45 * frame.shape[0] + 1.5))
    )
    vmax = np.nanmax(np.abs(values)) if values.size else 1.0
    cmap = "RdBu_r" if center else "Blues"
    im = ax.imshow(values, cmap=cmap, vmin=-vmax if center else 0, vmax=vmax, aspect="auto")
    ax.set_xticks(
        range(frame.shape[1]), [str(c) for c in frame.columns], rotation=45, ha="right", fontsize=8
    )
    ax.set_yticks(range(frame.shape[0]), [str(i) for i in frame.index], fontsize=8)
    if frame.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                color = _ink(im.cmap(im.norm(v)))
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color=color)
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


def _curves(scores: dict[str, tuple[np.ndarray, np.ndarray]], kind: str) -> Figure:
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, ax = plt.subplots(figsize=(5, 4.2))
    for name, (y, s) in scores.items():
        if kind == "roc":
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, label=name)
        else:
            prec, rec, _ = precision_recall_curve(y, s)
            ax.plot(rec, prec, label=name)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, out of time")
    else:
        base = next(iter(scores.values()))[0].mean()
        ax.axhline(base, color="grey", linewidth=0.8, linestyle=":")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, out of time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def roc(scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """ROC curves, one per model: ``{name: (y, score)}``."""
    return _curves(scores, "roc")


def precision_recall(scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Precision-recall curves, one per model."""
    return _curves(scores, "pr")


def gain(scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Cumulative gain: share of upgrades captured vs share of customers contacted."""
    fig, ax = plt.subplots(figsize=(5, 4.2))
    for name, (y, s) in scores.items():
        order = np.argsort(-np.asarray(s), kind="stable")
        captured = np.cumsum(np.asarray(y)[order]) / max(np.sum(y), 1)
        ax.plot(np.arange(1, len(y) + 1) / len(y), captured, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
    ax.set(
        xlabel="share of customers contacted",
        ylabel="share of upgrades captured",
        title="Cumulative gain, out of time",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def calibration(tables: dict[str, pd.DataFrame]) -> Figure:
    """Observed vs predicted upgrade rate per bin: ``{name: calibration_table(...)}``."""
    fig, ax = plt.subplots(figsize=(5, 4.2))
    top = 0.0
    for name, t in tables.items():
        ax.plot(t["mean_p"], t["observed"], marker="o", label=name)
        top = max(top, t["mean_p"].max(), t["observed"].max())
    ax.plot([0, top], [0, top], color="grey", linewidth=0.8, linestyle=":")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed upgrade rate",
        title="Calibration, out of time",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def deciles(tables: dict[str, pd.DataFrame]) -> Figure:
    """Upgrade rate by score decile (1 = highest), one bar group per model."""
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(tables), 1)
    for i, (name, t) in enumerate(tables.items()):
        ax.bar(
            t.index + (i - (len(tables) - 1) / 2) * width,
            t["upgrade_rate"],
            width=width,
            label=name,
        )
    ax.set(
        xlabel="decile (1 = highest score)",
        ylabel="upgrade rate",
        title="Upgrade rate by decile, out of time",
    )
    ax.set_xticks(range(1, 11))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lift(scores: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = 10) -> Figure:
    """Lift by score decile (1 = highest): each decile's upgrade rate over the overall
    rate, one line per model; 1 is what contacting at random gives."""
    fig, ax = plt.subplots(figsize=(5, 4.2))
    for name, (y, s) in scores.items():
        y = np.asarray(y, dtype=float)
        order = np.argsort(-np.asarray(s), kind="stable")
        parts = np.array_split(y[order], bins)
        rate = max(float(y.mean()), 1e-12)
        ax.plot(range(1, bins + 1), [p.mean() / rate for p in parts], marker="o", label=name)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set(
        xlabel="decile (1 = highest score)",
        ylabel="lift (decile rate / overall rate)",
        title="Lift by decile, out of time",
    )
    ax.set_xticks(range(1, bins + 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def shap_bar(importance: pd.DataFrame, top: int = 15) -> Figure:
    """The top features by mean |SHAP| (``mean_abs_shap``), largest at the top."""
    shown = importance["mean_abs_shap"].head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.32 * len(shown) + 1.2))
    ax.barh(list(map(str, shown.index)), shown.to_numpy(), color="#1f77b4")
    ax.set(
        xlabel="mean |SHAP| (log-odds)",
        title=f"Global importance: top {len(shown)} features, test months",
    )
    fig.tight_layout()
    return fig


#: The most points a scatter draws: a random sample of the rows beyond it (drawing a
#: million points takes a minute and shows nothing more).
PLOT_POINTS = 5_000


def _shown(n: int) -> tuple[np.ndarray, str]:
    """The rows a scatter draws (all, or a seeded random :data:`PLOT_POINTS`), and a note
    saying which."""
    if n <= PLOT_POINTS:
        return np.arange(n), ""
    rows = np.sort(np.random.default_rng(0).choice(n, PLOT_POINTS, replace=False))
    return rows, f" (a random {PLOT_POINTS:,} of {n:,} rows)"


def beeswarm(contributions: pd.DataFrame, values: pd.DataFrame, top: int = 15) -> Figure:
    """SHAP values per feature (rows: the top features by mean |SHAP| over every row),
    coloured by the feature's value (percentile among every row); at most
    :data:`PLOT_POINTS` rows are drawn."""
    order = contributions.abs().mean().sort_values(ascending=False).index[:top]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(order) + 1.5))
    rng = np.random.default_rng(0)
    rows, note = _shown(len(contributions))
    for i, feat in enumerate(order):
        x = contributions[feat].to_numpy()[rows]
        v = values[feat]
        colour = (
            v.rank(pct=True).to_numpy()[rows]
            if pd.api.types.is_numeric_dtype(v.dtype)
            else np.full(len(rows), 0.5)
        )
        y = i + rng.uniform(-0.3, 0.3, len(x))
        sc = ax.scatter(x, y, c=colour, cmap="coolwarm", s=4, alpha=0.6, vmin=0, vmax=1)
    ax.set_yticks(range(len(order)), list(order), fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("SHAP value (log-odds of upgrading)" + note)
    ax.set_title("What drives the upgrade probability", fontsize=10)
    if len(order):
        fig.colorbar(sc, ax=ax, label="feature value (percentile)", shrink=0.6)
    fig.tight_layout()
    return fig


def dependence(contributions: pd.DataFrame, values: pd.DataFrame, feature: str) -> Figure:
    """SHAP value of one feature against its value (at most :data:`PLOT_POINTS` rows)."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    rows, note = _shown(len(contributions))
    v = values[feature].iloc[rows]
    x = v.astype(str) if not pd.api.types.is_numeric_dtype(v.dtype) else v
    ax.scatter(x, contributions[feature].iloc[rows], s=4, alpha=0.5)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel=feature + note, ylabel="SHAP value (log-odds)", title=f"Dependence: {feature}")
    fig.tight_layout()
    return fig
