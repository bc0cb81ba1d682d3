"""Model cards: what a model is for, what it was trained on, how good it is, where it fails.

Each tracked training logs ``model_card.md`` and ``model_card.html`` (the same content, the
HTML for the MLflow UI's artifact viewer). The sections follow what a model-risk reviewer
asks for: purpose; data (panel months, customers, digest); population and label
definition; features; metrics against the baselines; calibration; stability; known limits;
and the configuration that produced the model.
"""

from __future__ import annotations

from segments.mlops.cards.groups import groups_card
from segments.mlops.cards.markdown import html_page, markdown_table, render_html, table_page
from segments.mlops.cards.upgrade import upgrade_card

__all__ = [
    "groups_card",
    "html_page",
    "markdown_table",
    "render_html",
    "table_page",
    "upgrade_card",
]
