"""What every command shares: the Typer apps, the consoles, error reporting, options and
printing helpers."""

from __future__ import annotations

import functools
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from segments.core.data.panel import read_panel
from segments.core.data.validation import check_panel
from segments.exceptions import (
    INTERRUPTS,
    PanelValidationError,
    SegmentsError,
    SegmentsWarning,
)

app = typer.Typer(
    name="segments",
    help="Tier and strategic-group customers of a retail bank.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Wide enough for the tables when piped to a file or a scheduler's log.
_WIDTH = None if sys.stdout.isatty() else 160
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)

F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(func: F) -> F:
    """Report a SegmentsError as clear lines on stderr and exit 1; warnings go to stderr."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SegmentsWarning)
            try:
                result = func(*args, **kwargs)
            except SegmentsError as exc:
                flush_warnings(caught)
                err.print(f"error: {exc}", markup=False)
                raise typer.Exit(1) from None
            except INTERRUPTS as exc:
                signum = getattr(exc, "signum", signal.SIGINT)
                err.print(
                    f"stopped by {signal.Signals(signum).name}: nothing was published; "
                    "run the same command again to resume",
                    markup=False,
                )
                raise typer.Exit(128 + signum) from None
        flush_warnings(caught)
        return result

    return wrapper  # type: ignore[return-value]


def flush_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        if issubclass(w.category, SegmentsWarning):
            err.print(f"warning: {w.message}", markup=False)
        else:  # not ours: hand back to the normal machinery
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def money(x: float) -> str:
    return f"{x:,.0f}"


train_app = typer.Typer(help="Train models (tracked in MLflow).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def validated_panel(panel: Path, cfg) -> pd.DataFrame:
    raw = read_panel(panel, cfg.panel)
    report = check_panel(raw, cfg.panel)
    for w in report.warnings:
        err.print(f"warning: {w}", markup=False)
    if not report.ok:
        raise PanelValidationError(report.errors, source=str(panel))
    assert report.frame is not None
    return report.frame


def print_frame(df: pd.DataFrame, title: str, fmt: Callable[[Any], str] = str) -> None:
    t = Table(title=title)
    t.add_column(str(df.index.name or ""))
    for c in df.columns:
        t.add_column(str(c), justify="right")
    for idx, row in df.iterrows():
        t.add_row(str(idx), *[fmt(v) for v in row])
    out.print(t)


PanelOption = Annotated[Path, typer.Option(help="Panel file: .parquet or .csv(.gz).")]
ExperimentOption = Annotated[
    Path | None,
    typer.Option(
        help="Experiment YAML (experiments/NAME.yaml); the MLflow experiment is named after it."
    ),
]


def print_run(result: Any, cfg: Any) -> None:
    from segments.mlops.tracking import tracking_uri

    out.print(f"MLflow run {result.run_id} in experiment '{cfg.name}' at {tracking_uri()}")
    out.print(f"model: {result.model_uri}")
    if result.model_version:
        name = result.registered_model
        out.print(
            f"registered: {name} version {result.model_version} (alias challenger); "
            f"promote with: segments promote {name} --version {result.model_version}"
        )
