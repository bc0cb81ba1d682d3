"""The panel commands: ``panel from-transactions``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segments.cli.common import app, err, handles_errors, out
from segments.core.data.files import InputFileError, inspect_files, read_table, table_format
from segments.core.data.months import parse_month_option
from segments.core.data.outputs import check_output, is_segments_table, output_lock, write_table
from segments.core.data.transactions import panel_from_transactions
from segments.core.data.validation import check_panel
from segments.exceptions import ConfigError, PanelValidationError, Violation

panel_app = typer.Typer(help="Build a monthly panel from other data.", no_args_is_help=True)
app.add_typer(panel_app, name="panel")

#: What the panel file written by ``from-transactions`` is (Parquet metadata).
KIND = "panel from transactions"


#: The header of a panel CSV this command writes (a CSV carries no metadata).
HEADER = "customer_id,month,aum,txn_count"


def _ours(path: Path) -> bool:
    """Whether ``path`` is a panel this command wrote (Parquet metadata, or CSV header)."""
    if is_segments_table(path, kind=KIND):
        return True
    if not path.is_file() or not path.name.lower().endswith((".csv", ".csv.gz", ".csv.bz2")):
        return False
    import pyarrow as pa

    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            first = stream.read(len(HEADER) + 2).decode("utf-8", "replace")
    except (OSError, pa.ArrowException):
        return False
    return first.splitlines()[0].strip() == HEADER if first else False


@panel_app.command("from-transactions")
@handles_errors
def from_transactions(
    transactions: Annotated[
        Path, typer.Argument(help="Transactions: .parquet, .csv, .csv.gz or .csv.bz2.")
    ],
    out_path: Annotated[Path, typer.Option("--out", help="The panel to write (.parquet, .csv).")],
    customer: Annotated[str, typer.Option(help="Column of the customer id.")] = "customer_id",
    date: Annotated[str, typer.Option(help="Column of the transaction date.")] = "date",
    amount: Annotated[str, typer.Option(help="Column of the money amount.")] = "amount",
    count: Annotated[
        str | None, typer.Option(help="Column summed into txn_count (default: count rows).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="The panel's last month, YYYY-MM (default: the data's).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a panel this command wrote before at --out.")
    ] = False,
) -> None:
    """One row per customer and month from one row per transaction.

    Every customer gets a row for each month from their first transaction to the last
    month, zeros where they made none: aum is the month's total amount (a stand-in for a
    balance when only flows exist), txn_count the number of transactions. The panel is
    validated before it is written; train and score read it like any other.
    """
    # Everything that can be checked before reading the data is checked first.
    last = parse_month_option(end, "--end") if end else None
    try:  # a name ending .parquet or .csv(.gz), before any work
        table_format(out_path)
    except InputFileError as exc:
        raise ConfigError([Violation("--out", str(exc))]) from None
    check_output(
        out_path,
        [transactions],
        overwrite=overwrite,
        what="panel",
        ours=_ours,
    )
    found = inspect_files(transactions)
    wanted = [c for c in dict.fromkeys((customer, date, amount, count)) if c]
    missing = [c for c in wanted if c not in found.columns]
    if missing:
        options = {customer: "--customer", date: "--date", amount: "--amount", count: "--count"}
        raise PanelValidationError(
            [
                Violation(
                    c,
                    "is not a column of the transactions",
                    hint=f"name it with {options[c]}; columns: {', '.join(found.columns[:12])}",
                )
                for c in missing
            ],
            source=str(transactions),
        )
    tx = read_table(transactions, columns=wanted, str_columns=(customer, date))
    try:
        panel = panel_from_transactions(
            tx, customer=customer, date=date, amount=amount, count=count, end=last
        )
    except PanelValidationError as exc:
        raise PanelValidationError(exc.violations, source=str(transactions)) from None
    report = check_panel(panel)
    for w in report.warnings:
        err.print(f"warning: {w}", markup=False)
    if not report.ok:
        raise PanelValidationError(report.errors, source=f"the panel of {transactions}")
    storable = panel.assign(month=panel["month"].astype(str))
    with output_lock(out_path, {"command": "segments panel from-transactions"}):
        write_table(storable, out_path, kind=KIND)
    months = panel["month"]
    out.print(
        f"wrote {out_path} ({len(panel):,} rows: {panel['customer_id'].nunique():,} customers x "
        f"months {months.min()} .. {months.max()}; from {len(tx):,} transactions)"
    )
