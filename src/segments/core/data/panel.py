"""The customer panel: its data contract, column mapping, and reading it.

A panel has one row per (customer, month). ``customer_id`` and ``month`` are required, and
either ``aum`` or AUM component columns that sum to it. Every other contract column is
optional and used where present. This module holds the contract (its column names and
families, :class:`PanelConfig` mapping a bank's names onto it) and reading a panel
(:func:`inspect_panel`, :func:`read_panel`). Checking the rows against the contract is
:mod:`segments.core.data.validation`
(:func:`~segments.core.data.validation.validate_panel`), calendar months are
:mod:`segments.core.data.months`, and a transaction table becomes a panel in
:mod:`segments.core.data.transactions`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segments.core.data.files import InputFiles, inspect_files, read_table
from segments.core.data.months import parse_month_column
from segments.exceptions import ConfigError, PanelValidationError, Violation

__all__ = [
    "AUM",
    "AUM_COMPONENTS",
    "CONTRACT_COLUMNS",
    "COUNT_COLUMNS",
    "ID",
    "INVESTMENT_COMPONENTS",
    "MONEY_COLUMNS",
    "MONTH",
    "NET_PURCHASES",
    "NUMERIC_COLUMNS",
    "SIGNED_COLUMNS",
    "STATIC_CATEGORICAL",
    "PanelConfig",
    "PanelInput",
    "PanelSummary",
    "column_problems",
    "inspect_panel",
    "month_ordinals",
    "panel_frame",
    "read_panel",
    "read_parquet_panel",
]

ID = "customer_id"
MONTH = "month"
AUM = "aum"

#: The families of optional columns, by canonical name (extend, never rename).
AUM_COMPONENTS: tuple[str, ...] = (
    "dep_demand",
    "dep_time",
    "wealth_products",
    "funds",
    "insurance",
    "bonds",
    "precious_metals",
)
#: Credit money: balances, the card limit, the month's card spend, the card's statement
#: balance and the month's card repayments.
CREDIT_COLUMNS: tuple[str, ...] = (
    "loan_balance",
    "mortgage_balance",
    "card_limit",
    "card_spend",
    "card_balance",
    "card_payment",
)
#: Credit counts: the most days past due on any credit product in the month (0 = current).
CREDIT_COUNT_COLUMNS: tuple[str, ...] = ("days_past_due",)
#: The AUM components whose value can grow with markets: investment products.
INVESTMENT_COMPONENTS: tuple[str, ...] = (
    "wealth_products",
    "funds",
    "bonds",
    "insurance",
    "precious_metals",
)
#: Net purchases of investment products in the month: purchases less redemptions and
#: maturities (negative when the customer sold more than they bought).
NET_PURCHASES = "investment_net_purchases"
#: Money in and out in the month: ``inflow`` is every credit to the customer's accounts
#: (payroll, other income, transfers in from other banks); ``outflow`` every debit
#: (spending, transfers out to other banks), neither counting moves between the customer's
#: own accounts or purchases of the bank's products.
FLOW_COLUMNS: tuple[str, ...] = (
    "inflow",
    "outflow",
    "payroll_inflow",
    "transfer_in_other_bank",
    "transfer_out_other_bank",
    NET_PURCHASES,
)
#: Money columns that may be negative.
SIGNED_COLUMNS: tuple[str, ...] = (NET_PURCHASES,)
ACTIVITY_COLUMNS: tuple[str, ...] = ("txn_count", "app_logins", "branch_visits", "rm_contacts")
HOLDING_COLUMNS: tuple[str, ...] = ("n_products",)
STATIC_NUMERIC: tuple[str, ...] = ("age", "tenure_months")
STATIC_CATEGORICAL: tuple[str, ...] = ("gender", "region", "occupation", "branch_id")
#: Personal attributes a model reviewer asks about: model cards say how much a model leans
#: on the features built from them.
SENSITIVE_COLUMNS: tuple[str, ...] = ("gender", "age", "occupation", "region")

MONEY_COLUMNS: tuple[str, ...] = (AUM, *AUM_COMPONENTS, *CREDIT_COLUMNS, *FLOW_COLUMNS)
COUNT_COLUMNS: tuple[str, ...] = (
    *ACTIVITY_COLUMNS,
    *HOLDING_COLUMNS,
    *STATIC_NUMERIC,
    *CREDIT_COUNT_COLUMNS,
)
NUMERIC_COLUMNS: tuple[str, ...] = (*MONEY_COLUMNS, *COUNT_COLUMNS)
CONTRACT_COLUMNS: tuple[str, ...] = (ID, MONTH, *NUMERIC_COLUMNS, *STATIC_CATEGORICAL)

_GAP_POLICIES = ("error", "warn", "ignore")


@dataclass(frozen=True)
class PanelConfig:
    """How to read a bank's panel onto the contract.

    Parameters
    ----------
    column_map : mapping of str to str, default {}
        The bank's column name -> the contract name, e.g. ``{"cust_no": "customer_id"}``.
    gaps : {"warn", "error", "ignore"}, default "warn"
        What a customer with missing months between their first and last month is.
    aum_tolerance : float, default 1.0
        Money by which ``aum`` may differ from the sum of its components (rounding).
    currency : str, default "CNY"
        The one currency of every money column.
    timezone : str or None, default None
        The bank's time zone (e.g. ``"Asia/Shanghai"``). A month column of timestamps with a
        time zone is read in this zone; unset, such timestamps must fall on midnight in
        their own zone, else the month would depend on the zone and it is an error.
    """

    column_map: Mapping[str, str] = field(default_factory=dict)
    gaps: str = "warn"
    aum_tolerance: float = 1.0
    currency: str = "CNY"
    timezone: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.gaps not in _GAP_POLICIES:
            problems.append(
                Violation("panel.gaps", f"is {self.gaps!r}; expected one of {_GAP_POLICIES}")
            )
        if not isinstance(self.aum_tolerance, int | float) or self.aum_tolerance < 0:
            problems.append(
                Violation("panel.aum_tolerance", f"is {self.aum_tolerance!r}; expected >= 0")
            )
        if not isinstance(self.column_map, Mapping):
            problems.append(Violation("panel.column_map", "must be a mapping of name: name"))
        else:
            for src, dst in self.column_map.items():
                if dst not in CONTRACT_COLUMNS:
                    problems.append(
                        Violation(
                            "panel.column_map",
                            f"maps `{src}` to `{dst}`, which is not a contract column",
                            hint="use one of the canonical names in DESIGN.md",
                        )
                    )
            targets = pd.Series(list(self.column_map.values()), dtype=object)
            for dst in targets[targets.duplicated()].unique():
                problems.append(
                    Violation("panel.column_map", f"maps more than one column to `{dst}`")
                )
        if self.timezone is not None:
            try:
                import zoneinfo

                zoneinfo.ZoneInfo(str(self.timezone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                problems.append(
                    Violation(
                        "panel.timezone",
                        f"is {self.timezone!r}; expected an IANA time zone such as Asia/Shanghai",
                    )
                )
        if problems:
            raise ConfigError(problems)

    def source_name(self, contract_name: str) -> str:
        """The bank's name for a contract column (itself when not mapped)."""
        for src, dst in self.column_map.items():
            if dst == contract_name:
                return src
        return contract_name


@dataclass(frozen=True)
class PanelInput:
    """A panel input checked before any work (see :func:`inspect_panel`).

    Attributes
    ----------
    files : InputFiles
        Format, files or parts, columns, schema and row count.
    months : tuple of Period or None
        The distinct months in the input, sorted (when asked for).
    """

    files: InputFiles
    months: tuple[pd.Period, ...] | None = None

    @property
    def rows(self) -> int:
        """Rows in the input."""
        return self.files.rows

    @property
    def columns(self) -> tuple[str, ...]:
        """The input's column names (the bank's names)."""
        return self.files.columns


@dataclass(frozen=True)
class PanelSummary:
    """What a model was trained on: the panel's size, months and digest (a run's params
    and tags, the model card's Data section).

    Attributes
    ----------
    rows, customers : int
        Customer-months and customers.
    months : tuple of str
        The distinct months (YYYY-MM), sorted.
    digest : str
        The panel's content digest (:mod:`segments.core.data.digest`): the same whether
        trained from a file (in batches) or a DataFrame, from Parquet or CSV, in any row
        order.
    source : str
        The input's path ("" for a frame).
    """

    rows: int
    customers: int
    months: tuple[str, ...]
    digest: str
    source: str = ""

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, digest: str) -> PanelSummary:
        """The summary of a validated panel frame, with its digest."""
        months = sorted({str(m) for m in pd.unique(frame[MONTH])})
        return cls(len(frame), int(frame[ID].nunique()), tuple(months), digest)

    @property
    def span(self) -> str:
        """``first..last`` month."""
        return f"{self.months[0]}..{self.months[-1]}" if self.months else ""


def column_problems(columns: Sequence[str], config: PanelConfig) -> list[Violation]:
    """What the column names alone break, before any row is read.

    Parameters
    ----------
    columns : sequence of str
        The input's column names (the bank's names).
    config : PanelConfig
        The column map.

    Returns
    -------
    list of Violation
        A column map naming an absent column, a mapped name that clashes with an input
        column, a missing id or month, no ``aum`` and no AUM component; empty when none.
    """
    errors: list[Violation] = []
    present = set(columns)
    for src, dst in config.column_map.items():
        if src not in present:
            errors.append(
                Violation(
                    src,
                    f"is named in the column map (-> `{dst}`) but the input has no such column",
                    hint=f"input columns are: {', '.join(map(str, list(columns)[:20]))}",
                )
            )
    rename = {s: d for s, d in config.column_map.items() if s in present}
    for dst in [d for d in rename.values() if d in present and d not in rename]:
        errors.append(Violation(dst, "appears both in the input and as a column-map target"))
    names = {rename.get(c, c) for c in columns}
    for col in (ID, MONTH):
        if col not in names:
            errors.append(
                Violation(
                    col,
                    "is required but missing",
                    hint="add it or map your column onto it (panel.column_map)",
                )
            )
    if AUM not in names and not any(c in names for c in AUM_COMPONENTS):
        errors.append(
            Violation(
                AUM,
                "is required but missing, and no AUM component column is present",
                hint=f"provide `aum` or some of {', '.join(AUM_COMPONENTS)}",
            )
        )
    return errors


def _distinct_months(files: InputFiles, month_col: str) -> pd.Series:
    """The distinct raw values of the month column, read one column a batch at a time."""
    seen: list[pd.Series] = []
    if files.format == "parquet":
        import pyarrow.dataset as ds

        data = ds.dataset([str(f) for f in files.files], schema=files.schema, format="parquet")
        for batch in data.to_batches(columns=[month_col]):
            seen.append(batch.to_pandas()[month_col].drop_duplicates())
    else:
        from pyarrow import csv

        reader = csv.open_csv(
            str(files.path),
            convert_options=csv.ConvertOptions(
                column_types={month_col: pa.string()}, include_columns=[month_col]
            ),
            read_options=csv.ReadOptions(block_size=1 << 24),
        )
        for batch in reader:
            seen.append(batch.to_pandas()[month_col].drop_duplicates())
    return pd.concat(seen, ignore_index=True).drop_duplicates() if seen else pd.Series([])


def inspect_panel(
    path: str | os.PathLike[str], config: PanelConfig | None = None, *, months: bool = False
) -> PanelInput:
    """Check a panel input before any work: readable, and its columns fit the contract.

    Parameters
    ----------
    path : str or path
        A Parquet file, a folder of Parquet parts, or a CSV (``.csv``, ``.csv.gz``,
        ``.csv.bz2``).
    config : PanelConfig, optional
        The column map (the bank's names).
    months : bool, default False
        Also read the month column (only it) and return the distinct months.

    Returns
    -------
    PanelInput

    Raises
    ------
    InputFileError
        The file is missing or unreadable (see :func:`segments.core.data.files.inspect_files`).
    PanelValidationError
        The columns break the contract (id, month or AUM missing; a column map naming an
        absent column), or the month column holds values that are not months.
    """
    config = config or PanelConfig()
    files = inspect_files(path)
    problems = column_problems(files.columns, config)
    if problems:
        raise PanelValidationError(problems, source=str(path))
    found = None
    if months:
        values = _distinct_months(files, config.source_name(MONTH))
        parsed, tz_problem = parse_month_column(values, config.timezone, column=MONTH)
        bad = parsed.isna() & values.notna()
        if tz_problem or bad.any():
            sample = ", ".join(repr(str(v)) for v in values[bad][:3])
            raise PanelValidationError(
                [
                    tz_problem
                    or Violation(
                        MONTH,
                        f"has values that are not calendar months ({sample})",
                        hint="use YYYY-MM, YYYYMM or a date",
                    )
                ],
                source=str(path),
            )
        found = tuple(sorted(parsed.dropna().unique()))
    return PanelInput(files, found)


def read_panel(path: str | os.PathLike[str], config: PanelConfig | None = None) -> pd.DataFrame:
    """Read a raw panel from Parquet (a file or a folder of parts) or CSV.

    The input is checked first (:func:`inspect_panel`): a missing, empty or unreadable
    file, a folder whose parts differ, or columns that break the contract fail here, with
    the file, part or column named. Ids and months of a CSV are read as text.

    Parameters
    ----------
    path : str or path
        A ``.parquet`` file or folder of parts, or a ``.csv`` / ``.csv.gz`` file.
    config : PanelConfig, optional
        Used to find the bank's names of the id and month columns.

    Returns
    -------
    DataFrame
        The input as read, not yet validated.
    """
    config = config or PanelConfig()
    found = inspect_panel(path, config)
    month_col = config.source_name(MONTH)
    if found.files.format == "parquet":
        return read_parquet_panel(found.files, config, month_col)
    return read_table(path, str_columns=(config.source_name(ID), month_col))


def read_parquet_panel(
    source: InputFiles | Path, config: PanelConfig | None = None, month_col: str | None = None
) -> pd.DataFrame:
    """Read a Parquet panel through Arrow, with peak memory near the frame's size.

    Dates and naive timestamps in the month column become monthly periods without Python
    objects, and static text columns arrive as categoricals. Nothing is checked here: call
    :func:`inspect_panel` first (:func:`read_panel` does both).

    Parameters
    ----------
    source : InputFiles or Path
        What :func:`~segments.core.data.files.inspect_files` found, or one Parquet file.
    config : PanelConfig, optional
        The column map (the bank's names of the month and static columns).
    month_col : str, optional
        The month column's name in the file; ``config``'s name for ``month`` by default.

    Returns
    -------
    DataFrame
        The input as read, columns in the file's order, not yet validated.
    """
    config = config or PanelConfig()
    month_col = month_col if month_col is not None else config.source_name(MONTH)
    if isinstance(source, InputFiles):
        files, schema = [str(f) for f in source.files], source.schema
    else:
        files, schema = [str(source)], pq.read_schema(source)
    assert schema is not None
    names = set(schema.names)
    categorical = [config.source_name(c) for c in STATIC_CATEGORICAL]
    dictionary = [
        c
        for c in categorical
        if c in names
        and (
            pa.types.is_string(schema.field(c).type)
            or pa.types.is_large_string(schema.field(c).type)
        )
    ]
    if len(files) == 1:
        table = pq.read_table(files[0], read_dictionary=dictionary or None)
    else:
        import pyarrow.dataset as ds

        table = ds.dataset(files, schema=schema, format="parquet").to_table()
        for c in dictionary:
            i = table.schema.get_field_index(c)
            table = table.set_column(i, c, pc.dictionary_encode(table.column(c)))
    return panel_frame(table, config, month_col)


def panel_frame(
    table: pa.Table, config: PanelConfig | None = None, month_col: str | None = None
) -> pd.DataFrame:
    """An Arrow table of panel rows as the panel readers return it, with peak memory near
    the frame's size.

    Dates and naive timestamps in the month column become monthly periods without Python
    objects; every other column converts as Arrow converts it. Nothing is checked.

    Parameters
    ----------
    table : pyarrow.Table
        Panel rows as read (the bank's names).
    config : PanelConfig, optional
        The column map (the bank's name of the month).
    month_col : str, optional
        The month column's name in the table; ``config``'s name for ``month`` by default.

    Returns
    -------
    DataFrame
        The columns in the table's order.
    """
    config = config or PanelConfig()
    month_col = month_col if month_col is not None else config.source_name(MONTH)
    names = table.column_names
    months = None
    if month_col in names:
        col = table.column(month_col)
        # Dates and naive timestamps are calendar dates; zoned ones go through
        # check_panel, which reads them in the bank's zone.
        values = month_ordinals(col)
        if values is not None:
            months = pd.arrays.PeriodArray(values, dtype=pd.PeriodDtype("M"))
            table = table.drop_columns([month_col])
    df = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    if months is not None:
        df[month_col] = months
        df = df[names]
    return df


def month_ordinals(column: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """Months since 1970-01 of a column of dates or naive timestamps, computed in Arrow.

    Parameters
    ----------
    column : pyarrow.Array or ChunkedArray

    Returns
    -------
    ndarray of int64 or None
        The ordinals (a missing value is the minimum int64, pandas' NaT); None for any
        other type (text, zoned timestamps), which :func:`parse_month_column` reads.
    """
    kind = column.type
    if not (pa.types.is_date(kind) or (pa.types.is_timestamp(kind) and kind.tz is None)):
        return None
    ordinal = pc.add(
        pc.multiply(pc.subtract(pc.year(column), 1970), 12), pc.subtract(pc.month(column), 1)
    )
    values = ordinal.to_numpy(zero_copy_only=False)
    nat = np.iinfo(np.int64).min
    return np.where(pd.isna(values), nat, values).astype(np.int64)
