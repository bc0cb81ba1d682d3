"""Model cards: Markdown tables and the HTML page the MLflow UI shows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from segments.mlops.cards import markdown_table, render_html


def test_markdown_table_formats_numbers_and_escapes_pipes():
    df = pd.DataFrame(
        {"auc": [0.91234, np.nan], "n": [12345, 7], "note": ["a|b", "c"]},
        index=pd.Index(["model", "rule"], name="system"),
    )
    text = markdown_table(df)
    lines = text.splitlines()
    assert lines[0] == "| system | auc | n | note |"
    assert lines[2] == "| model | 0.912 | 12,345 | a\\|b |"
    assert lines[3] == "| rule | - | 7 | c |"


def test_html_renders_tables_and_escapes_html():
    md = "# Card\n\n| a | b |\n|---|---|\n| 1 | <script> |\n"
    page = render_html(md, "Card <x>")
    assert "<table>" in page and "<td>1</td>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<title>Card &lt;x&gt;</title>" in page
