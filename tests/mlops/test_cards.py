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


def test_an_html_table_has_one_header_row_numbers_for_reading_and_text_escaped():
    """A named index is a column of the one header row (pandas' to_html puts its name on a
    second row); money reads 1,234,568, small values are never 3e-07; text is escaped and
    marked to align left, numbers right."""
    from segments.mlops.cards.markdown import html_table

    df = pd.DataFrame(
        {"name_zh": ["数字化年轻客群", "<b>"], "n": [1234, 5], "aum": [1234567.8, 3e-7]},
        index=pd.Index([0, 1], name="group_id"),
    )
    page = html_table(df)
    assert page.count("<tr>") == 3  # the header and two rows
    assert '<thead><tr><th>group_id</th><th class="text">name_zh</th><th>n</th><th>aum</th>' in page
    assert (
        '<tr><td>0</td><td class="text">数字化年轻客群</td><td>1,234</td><td>1,234,568</td></tr>'
        in page
    )
    assert '<td class="text">&lt;b&gt;</td><td>5</td><td>0.0000003</td>' in page
    assert "e-07" not in page
    assert "<th></th>" in html_table(df.reset_index(drop=True))  # an unnamed index
