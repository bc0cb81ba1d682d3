"""The sections every model card has: the header, the data, the features, the configuration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import yaml

from segments.core.data.panel import PanelSummary
from segments.core.features import catalogue_frame
from segments.mlops.cards.markdown import bullets, markdown_table

__all__ = ["config_section", "data_section", "features_section", "header"]


def data_section(panel: PanelSummary, digest: str, extra: Iterable[str] = ()) -> str:
    """The Data section: the panel's months, sizes and digest.

    Parameters
    ----------
    panel : PanelSummary
        The panel the model was trained on.
    digest : str
        The panel's data digest.
    extra : iterable of str, optional
        Further bullets (the model's own split of the months, sizes).

    Returns
    -------
    str
    """
    months = f"{panel.months[0]} to {panel.months[-1]}" if panel.months else "none"
    return "## Data\n\n" + bullets(
        [
            f"Panel months: {months} ({len(panel.months)} months)",
            f"Customer-months: {panel.rows:,}; customers: {panel.customers:,}",
            f"Panel content digest (the run's `segments.data_digest`): `{digest}`",
            *extra,
        ]
    )


def features_section(
    features: Iterable[str], windows: Iterable[int], importance: pd.Series | None = None
) -> str:
    """The Features used section: one row per feature, described from the catalogue.

    Parameters
    ----------
    features : iterable of str
        The model's features.
    windows : iterable of int
        The feature windows (months) the catalogue is built for.
    importance : Series, optional
        Mean absolute SHAP per feature: listed most important first, with a column.

    Returns
    -------
    str
    """
    cat = catalogue_frame(tuple(windows)).set_index("name")
    names = list(features)
    if importance is not None:
        order = [f for f in importance.index if f in names]
        names = order + [f for f in names if f not in order]
    table = pd.DataFrame(
        {
            "feature": names,
            "family": [cat["family"].get(f, "-") for f in names],
            "unit": [cat["unit"].get(f, "-") for f in names],
            "description": [cat["en"].get(f, "-") for f in names],
        }
    )
    if importance is not None:
        table.insert(1, "mean abs SHAP", [float(importance.get(f, np.nan)) for f in names])
    note = " (most important first)" if importance is not None else ""
    return (
        f"## Features used\n\n{len(names)} features{note}; definitions from the feature "
        f"catalogue, all built point in time from months up to the as-of month.\n\n"
        + markdown_table(table, index=False)
    )


def config_section(raw: Mapping[str, Any]) -> str:
    """The Configuration section: the merged experiment configuration as YAML."""
    text = yaml.safe_dump(dict(raw), sort_keys=False, allow_unicode=True)
    return f"## Configuration\n\nThe merged experiment configuration:\n\n```yaml\n{text}```"


def header(title: str, kind: str, meta: Mapping[str, str]) -> str:
    """The card's title, its kind, and a bullet per non-empty ``meta`` entry."""
    lines = [f"# Model card: {title}", "", f"*{kind}*", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items() if v]
    return "\n".join(lines)
