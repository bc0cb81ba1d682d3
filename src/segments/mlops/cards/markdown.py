"""Markdown for model cards: tables, bullet lists, and the HTML page the MLflow UI shows."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "bullets",
    "html_page",
    "html_table",
    "markdown_table",
    "number",
    "render_html",
    "table_page",
]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, "Noto Sans CJK SC",
       sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328;
       line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
th { background: #f6f8fa; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.3rem; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, index: bool = True) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table (numbers formatted for reading); an
    unnamed index gets an empty header, not ``index``."""
    frame = df.reset_index(names=[n or "" for n in df.index.names]) if index else df
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def html_page(body: str, title: str) -> str:
    """A standalone UTF-8 HTML page around ``body`` (every HTML artifact is one: the
    charset is declared, so Chinese text reads in any browser)."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n{body}</body></html>\n"
    )


def render_html(markdown: str, title: str) -> str:
    """A standalone HTML page of a Markdown card (CommonMark with tables)."""
    from markdown_it import MarkdownIt

    return html_page(
        MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown), title
    )


def number(x: float) -> str:
    """A number for reading: thousands separated and no decimals from 1,000 up (money),
    four significant digits below, never in scientific notation."""
    if not np.isfinite(x):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return np.format_float_positional(x, precision=4, fractional=False, trim="-")


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return number(float(value))
    if value is None or value is pd.NA:
        return "-"
    return _fmt(value)


def html_table(df: pd.DataFrame, index: bool = True) -> str:
    """A DataFrame as an HTML table: one header row (a named index is a column, an unnamed
    one has an empty header), numbers by :func:`number` and right-aligned, text left."""
    frame = df.reset_index(names=[n or "" for n in df.index.names]) if index else df
    cls = [
        "" if pd.api.types.is_numeric_dtype(dtype) else ' class="text"' for dtype in frame.dtypes
    ]
    head = "".join(
        f"<th{c}>{html.escape(str(n))}</th>" for n, c in zip(frame.columns, cls, strict=True)
    )
    rows = "\n".join(
        "<tr>"
        + "".join(f"<td{c}>{html.escape(_cell(v))}</td>" for v, c in zip(row, cls, strict=True))
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody></table>\n"


def table_page(df: pd.DataFrame, title: str, *, index: bool = True, note: str = "") -> str:
    """A table as a standalone HTML page (:func:`html_table`), with a note under the
    title."""
    table = html_table(df, index=index)
    head = f"<h3>{html.escape(title)}</h3>" + (f"<p>{html.escape(note)}</p>" if note else "")
    return html_page(head + table, title)


def bullets(items: Iterable[str]) -> str:
    """A Markdown bullet list, one item per line."""
    return "\n".join(f"- {x}" for x in items)
