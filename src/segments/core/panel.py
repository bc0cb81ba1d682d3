"""The customer panel: its data contract, column mapping and validation.

A panel has one row per (customer, month). ``customer_id`` and ``month`` are required, and
either ``aum`` or AUM component columns that sum to it. Every other contract column is
optional and used where present. :func:`validate_panel` checks all rules at once and returns
a typed frame (month as a monthly ``Period``, static attributes as categoricals, money and
counts numeric) or raises :class:`~segments.exceptions.PanelValidationError` listing every
violation, each naming the column, the problem, the number of rows and example customers.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segments.core.files import InputFiles, inspect_files, read_table
from segments.exceptions import (
    N_EXAMPLES,
    ConfigError,
    PanelValidationError,
    SegmentsWarning,
    Violation,
)

__all__ = [
    "AUM_COMPONENTS",
    "CONTRACT_COLUMNS",
    "COUNT_COLUMNS",
    "MONEY_COLUMNS",
    "STATIC_CATEGORICAL",
    "PanelConfig",
    "PanelInput",
    "PanelReport",
    "check_panel",
    "inspect_panel",
    "panel_from_transactions",
    "parse_month_option",
    "parse_months",
    "read_panel",
    "validate_panel",
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
CREDIT_COLUMNS: tuple[str, ...] = ("loan_balance", "mortgage_balance", "card_limit", "card_spend")
FLOW_COLUMNS: tuple[str, ...] = (
    "inflow",
    "outflow",
    "payroll_inflow",
    "transfer_in_other_bank",
    "transfer_out_other_bank",
)
ACTIVITY_COLUMNS: tuple[str, ...] = ("txn_count", "app_logins", "branch_visits", "rm_contacts")
HOLDING_COLUMNS: tuple[str, ...] = ("n_products",)
STATIC_NUMERIC: tuple[str, ...] = ("age", "tenure_months")
STATIC_CATEGORICAL: tuple[str, ...] = ("gender", "region", "occupation", "branch_id")

MONEY_COLUMNS: tuple[str, ...] = (AUM, *AUM_COMPONENTS, *CREDIT_COLUMNS, *FLOW_COLUMNS)
COUNT_COLUMNS: tuple[str, ...] = (*ACTIVITY_COLUMNS, *HOLDING_COLUMNS, *STATIC_NUMERIC)
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


@dataclass
class PanelReport:
    """What :func:`check_panel` found.

    Attributes
    ----------
    frame : DataFrame or None
        The typed panel, or None when there were errors.
    errors, warnings : list of Violation
        Every violation found, split by severity.
    summary : dict
        Customers, months, columns found and used, AUM distribution.
    """

    frame: pd.DataFrame | None
    errors: list[Violation]
    warnings: list[Violation]
    summary: dict[str, Any]

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.errors


def _examples(ids: pd.Series, mask: np.ndarray | pd.Series) -> tuple[str, ...]:
    """Up to five distinct customer ids where ``mask`` holds."""
    chosen = ids[np.asarray(mask, dtype=bool)]
    return tuple(str(x) for x in pd.unique(chosen.dropna())[:N_EXAMPLES])


def parse_months(values: pd.Series) -> pd.Series:
    """Parse calendar months to a ``period[M]`` Series; unparseable values become NaT.

    Accepts Periods, dates and timestamps, and text or integers of the forms ``2024-01``,
    ``2024/01``, ``202401``, ``2024-01-31``.

    Parameters
    ----------
    values : Series
        The raw month column.

    Returns
    -------
    Series of period[M]
        Same index as ``values``.
    """
    if isinstance(values.dtype, pd.PeriodDtype):
        return values.dt.asfreq("M")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if values.dt.tz is not None:
            values = values.dt.tz_localize(None)
        return values.dt.to_period("M")
    # Parse each distinct value once: a panel has few distinct months and many rows.
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    nat = np.iinfo(np.int64).min
    lookup = np.array(
        [p.ordinal if isinstance(p, pd.Period) else nat for p in map(_parse_one_month, uniques)]
        + [nat],
        dtype=np.int64,
    )
    ordinals = lookup[codes]  # code -1 (missing) takes the trailing NaT
    months = pd.arrays.PeriodArray(ordinals, dtype=pd.PeriodDtype("M"))
    return pd.Series(months, index=values.index, name=values.name)


def parse_month_option(value: str, option: str = "--as-of") -> str:
    """A month given as an option (``YYYY-MM``, ``YYYYMM`` or a date), as ``YYYY-MM``.

    Raises
    ------
    ConfigError
        Naming the option when the value is not a calendar month.
    """
    parsed = _parse_one_month(str(value))
    if not isinstance(parsed, pd.Period):
        raise ConfigError(
            [Violation(option, f"is {value!r}; expected a calendar month YYYY-MM, e.g. 2025-06")]
        )
    return str(parsed)


def _parse_one_month(value: Any) -> pd.Period | Any:
    """One month value to a Period, or NaT when it is not a calendar month."""
    if isinstance(value, pd.Period):
        return value.asfreq("M")
    if isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "year"):
        try:
            return pd.Period(pd.Timestamp(value), freq="M")
        except (ValueError, TypeError):
            return pd.NaT
    text = str(value).strip()
    if isinstance(value, int | np.integer | float | np.floating):
        if isinstance(value, float | np.floating) and not float(value).is_integer():
            return pd.NaT
        text = str(int(value))
    for fmt in ("%Y-%m", "%Y/%m", "%Y%m", "%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"):
        try:
            ts = pd.to_datetime(text, format=fmt)
        except (ValueError, TypeError):
            continue
        if 1900 <= ts.year <= 2200:
            return pd.Period(ts, freq="M")
    return pd.NaT


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


def _column_problems(columns: Sequence[str], config: PanelConfig) -> list[Violation]:
    """What the column names alone break: a column map naming absent columns, a clash,
    a missing id, month or AUM."""
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
        The file is missing or unreadable (see :func:`segments.core.files.inspect_files`).
    PanelValidationError
        The columns break the contract (id, month or AUM missing; a column map naming an
        absent column), or the month column holds values that are not months.
    """
    config = config or PanelConfig()
    files = inspect_files(path)
    problems = _column_problems(files.columns, config)
    if problems:
        raise PanelValidationError(problems, source=str(path))
    found = None
    if months:
        values = _distinct_months(files, config.source_name(MONTH))
        parsed, tz_problem = _parse_month_column(values, config)
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
        return _read_parquet_panel(found.files, config, month_col)
    return read_table(path, str_columns=(config.source_name(ID), month_col))


def _read_parquet_panel(
    source: InputFiles | Path, config: PanelConfig, month_col: str
) -> pd.DataFrame:
    """Read Parquet through Arrow: dates become monthly periods without Python objects,
    static text columns arrive as categoricals; peak memory stays near the frame's size."""
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
    months = None
    if month_col in names:
        col = table.column(month_col)
        # Dates and naive timestamps are calendar dates; zoned ones go through
        # check_panel, which reads them in the bank's zone.
        if pa.types.is_date(col.type) or (pa.types.is_timestamp(col.type) and col.type.tz is None):
            ordinal = pc.add(
                pc.multiply(pc.subtract(pc.year(col), 1970), 12), pc.subtract(pc.month(col), 1)
            )
            values = ordinal.to_numpy(zero_copy_only=False)
            nat = np.iinfo(np.int64).min
            values = np.where(pd.isna(values), nat, values).astype(np.int64)
            months = pd.arrays.PeriodArray(values, dtype=pd.PeriodDtype("M"))
            table = table.drop_columns([month_col])
    df = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    if months is not None:
        df[month_col] = months
        df = df[[c for c in schema.names if c in df.columns]]
    return df


def _parse_month_column(
    values: pd.Series, config: PanelConfig
) -> tuple[pd.Series, Violation | None]:
    """Months of a raw month column, and the problem when zoned timestamps are ambiguous.

    A timestamp with a time zone is read in ``config.timezone`` when set; unset, it must
    fall on midnight in its own zone (a month-end stored in UTC, such as
    2023-12-31 16:00 UTC for 2024-01-01 in Shanghai, would otherwise land a month early).
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype) and values.dt.tz is not None:
        zoned = values.dt.tz_convert(config.timezone) if config.timezone else values
        wall = zoned.dt.tz_localize(None)
        if not config.timezone:
            off = (wall.notna() & (wall != wall.dt.normalize())).to_numpy()
            if off.any():
                sample = ", ".join(str(v) for v in pd.unique(values[off])[:2])
                return wall.dt.to_period("M"), Violation(
                    MONTH,
                    f"holds timestamps in time zone {values.dt.tz} with a time of day "
                    f"({sample}): their month depends on the bank's time zone",
                    int(off.sum()),
                    hint="set panel.timezone (e.g. Asia/Shanghai) to read them in the bank's "
                    "zone, or store calendar dates",
                )
        return wall.dt.to_period("M"), None
    return parse_months(values), None


def check_panel(raw: pd.DataFrame, config: PanelConfig | None = None) -> PanelReport:
    """Check a raw panel against the contract and report every violation at once.

    Parameters
    ----------
    raw : DataFrame
        One row per (customer, month) with the bank's or the contract's column names.
    config : PanelConfig, optional
        Column map and policies; the defaults when omitted.

    Returns
    -------
    PanelReport
        The typed frame when there is no error, the errors and warnings, and a summary.
    """
    config = config or PanelConfig()
    warns: list[Violation] = []
    errors = _column_problems([str(c) for c in raw.columns], config)
    dup_names = sorted({str(c) for c in raw.columns[raw.columns.duplicated()]})
    if dup_names:
        errors.append(
            Violation(", ".join(dup_names), "appears more than once in the input's columns")
        )
    if len(raw) == 0:
        errors.append(Violation("(all)", "the input has no rows"))
    if errors:
        return PanelReport(None, errors, warns, {})
    rename = {s: d for s, d in config.column_map.items() if s in raw.columns}
    df = raw.rename(columns=rename) if rename else raw
    components = [c for c in AUM_COMPONENTS if c in df.columns]

    df = df.copy(deep=False)  # columns are replaced, never written in place
    ids = df[ID]
    if ids.dtype == object or pd.api.types.is_string_dtype(ids.dtype):
        df[ID] = ids.astype("str")
        ids = df[ID]
    elif pd.api.types.is_float_dtype(ids.dtype):
        # Integer ids stored as floats (a CSV with a blank, a database export): read them
        # as the integers they are, but only when every one is exact.
        v = ids.to_numpy(dtype="float64")
        whole = np.isfinite(v) & (np.abs(v) < 2.0**53)
        whole[whole] = v[whole] == np.round(v[whole])
        inexact = ~whole & ~np.isnan(v)
        if inexact.any():
            sample = ", ".join(repr(float(x)) for x in pd.unique(v[inexact])[:3])
            errors.append(
                Violation(
                    ID,
                    f"holds numbers that are not whole ({sample}); ids "
                    "stored as floats are read only when every one is an "
                    "exact integer",
                    int(inexact.sum()),
                    hint="store customer ids as text or integers",
                )
            )
        elif not np.isnan(v).any():
            df[ID] = v.astype(np.int64)
            ids = df[ID]
    n_null_id = int(ids.isna().sum())
    if n_null_id:
        errors.append(Violation(ID, "is empty", n_null_id))

    month, zone_problem = _parse_month_column(df[MONTH], config)
    if zone_problem is not None:
        errors.append(zone_problem)
    bad_month = month.isna().to_numpy()
    if bad_month.any():
        sample = pd.unique(df.loc[bad_month, MONTH].astype(str))[:3]
        errors.append(
            Violation(
                MONTH,
                f"has values that are not calendar months ({', '.join(map(repr, sample))})",
                int(bad_month.sum()),
                _examples(ids, bad_month),
                hint="use YYYY-MM, YYYYMM or a date",
            )
        )
    df[MONTH] = month

    for col in [c for c in NUMERIC_COLUMNS if c in df.columns]:
        values = df[col]
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
            values.dtype
        ):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = (numeric.isna() & values.notna()).to_numpy()
            if bad.any():
                sample = pd.unique(values[bad].astype(str))[:3]
                kind = "money" if col in MONEY_COLUMNS else "a count"
                errors.append(
                    Violation(
                        col,
                        f"has non-numeric values ({', '.join(map(repr, sample))}); "
                        f"it must be {kind}",
                        int(bad.sum()),
                        _examples(ids, bad),
                    )
                )
            values = numeric
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
            values.dtype
        ):
            values = values.astype("float64")
        df[col] = values  # numeric input keeps its dtype (ints stay ints: less memory)
        if pd.api.types.is_float_dtype(values.dtype):
            infinite = np.isinf(values.to_numpy(dtype="float64"))
            if infinite.any():
                errors.append(
                    Violation(
                        col, "has infinite values", int(infinite.sum()), _examples(ids, infinite)
                    )
                )
        negative = (values < 0).to_numpy()
        if negative.any():
            errors.append(
                Violation(
                    col,
                    "has negative values; it must be >= 0",
                    int(negative.sum()),
                    _examples(ids, negative),
                )
            )

    if components:
        comp_values = [df[c].to_numpy(dtype="float64") for c in components]
        all_nan = np.logical_and.reduce([np.isnan(v) for v in comp_values])
        comp_sum = pd.Series(np.nansum(np.vstack(comp_values), axis=0), index=df.index)
        comp_sum[all_nan] = np.nan
        del comp_values
        if AUM not in df.columns:
            df[AUM] = comp_sum
        else:
            # All seven components must add up to aum; a subset may not exceed it.
            diff = df[AUM] - comp_sum
            if len(components) == len(AUM_COMPONENTS):
                off = (diff.abs() > config.aum_tolerance).to_numpy()
                what = "does not equal the sum of its components"
            else:
                off = (diff < -config.aum_tolerance).to_numpy()
                what = "is smaller than the sum of the component columns present"
            if off.any():
                errors.append(
                    Violation(
                        AUM,
                        f"{what} ({', '.join(components)}; tolerance {config.aum_tolerance:g})",
                        int(off.sum()),
                        _examples(ids, off),
                    )
                )
    nan_aum = df[AUM].isna().to_numpy()
    if nan_aum.any():
        errors.append(
            Violation(AUM, "is missing (NaN)", int(nan_aum.sum()), _examples(ids, nan_aum))
        )

    for col in [c for c in STATIC_CATEGORICAL if c in df.columns]:
        df[col] = df[col].astype("category")

    key_ok = df[ID].notna().to_numpy() & ~bad_month
    dup = np.zeros(len(df), dtype=bool)
    dup[key_ok] = df.loc[key_ok, [ID, MONTH]].duplicated(keep=False).to_numpy()
    if dup.any():
        errors.append(
            Violation(
                f"{ID}, {MONTH}",
                "has duplicate (customer, month) rows",
                int(dup.sum()),
                _examples(ids, dup),
                hint="aggregate to one row per customer and month first",
            )
        )

    if key_ok.any():
        keyed = df.loc[key_ok, [ID, MONTH]]
        ordinal = keyed[MONTH].array.asi8
        span = (
            pd.DataFrame({ID: keyed[ID].to_numpy(), "m": ordinal})
            .groupby(ID, sort=False, observed=True)["m"]
            .agg(["min", "max", "nunique"])
        )
        gap_ids = span.index[(span["max"] - span["min"] + 1) > span["nunique"]]
        if len(gap_ids) and config.gaps != "ignore":
            gap_rows = int(df[ID].isin(gap_ids).sum())
            v = Violation(
                MONTH,
                f"has gaps: {len(gap_ids):,} customers miss months between their first and "
                "last month",
                gap_rows,
                tuple(str(x) for x in gap_ids[:N_EXAMPLES]),
                severity="error" if config.gaps == "error" else "warning",
                hint="set panel.gaps to 'ignore' or 'error' to change this",
            )
            (errors if config.gaps == "error" else warns).append(v)

    extra = [c for c in df.columns if c not in CONTRACT_COLUMNS]
    summary = _summary(df, raw, config, extra) if not errors else {}
    if errors:
        return PanelReport(None, errors, warns, summary)
    codes, _ = pd.factorize(df[ID], sort=True)
    ordinal = df[MONTH].array.asi8
    step_id = np.diff(codes)
    in_order = bool((step_id >= 0).all() and (np.diff(ordinal)[step_id == 0] > 0).all())
    if not in_order:
        df = df.iloc[np.lexsort((ordinal, codes))]
    df = df.reset_index(drop=True)
    return PanelReport(df, errors, warns, summary)


def _summary(
    df: pd.DataFrame, raw: pd.DataFrame, config: PanelConfig, extra: list[str]
) -> dict[str, Any]:
    months = df[MONTH].dropna()
    aum = df[AUM]
    qs = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
    return {
        "n_rows": len(df),
        "n_customers": int(df[ID].nunique()),
        "n_months": int(months.nunique()),
        "first_month": str(months.min()) if len(months) else None,
        "last_month": str(months.max()) if len(months) else None,
        "columns_used": [c for c in CONTRACT_COLUMNS if c in df.columns],
        "columns_mapped": dict(config.column_map),
        "columns_ignored": extra,
        "aum_derived_from_components": AUM not in raw.columns
        and AUM not in config.column_map.values(),
        "currency": config.currency,
        "aum_quantiles": {f"p{int(q * 100)}": float(aum.quantile(q)) for q in qs},
        "aum_mean": float(aum.mean()),
        "aum_total": float(aum.sum()),
    }


def validate_panel(
    raw: pd.DataFrame, config: PanelConfig | None = None, *, source: str = ""
) -> pd.DataFrame:
    """Validate a raw panel and return it typed, or raise with every violation.

    Parameters
    ----------
    raw : DataFrame
        One row per (customer, month). Required columns: ``customer_id``, ``month`` and
        ``aum`` or AUM components (after ``config.column_map`` is applied).
    config : PanelConfig, optional
        Column map and policies.
    source : str, optional
        Where the panel came from, quoted in the error.

    Returns
    -------
    DataFrame
        Sorted by customer and month; ``month`` is ``period[M]``, static attributes are
        categoricals, money and counts are numeric (text converted to numbers, numeric
        input kept as it is); ``aum`` is derived from the components when absent.
        Columns outside the contract are kept as they are.

    Raises
    ------
    PanelValidationError
        Listing every violation (column, problem, rows, example customers).

    Warns
    -----
    SegmentsWarning
        For each violation configured as a warning (e.g. gaps in months).

    Examples
    --------
    >>> import pandas as pd
    >>> from segments import validate_panel
    >>> raw = pd.DataFrame({"customer_id": ["C1", "C1"], "month": ["2024-01", "2024-02"],
    ...                     "aum": [30_000.0, 52_000.0]})
    >>> validate_panel(raw)["month"].dtype
    period[M]
    """
    report = check_panel(raw, config)
    for w in report.warnings:
        warnings.warn(str(w), SegmentsWarning, stacklevel=2)
    if not report.ok:
        raise PanelValidationError(report.errors + report.warnings, source=source)
    assert report.frame is not None
    return report.frame


def panel_from_transactions(
    transactions: pd.DataFrame,
    *,
    customer: str = "customer_id",
    date: str = "date",
    amount: str = "amount",
    count: str | None = None,
    end: str | pd.Period | None = None,
) -> pd.DataFrame:
    """Aggregate a transaction table to a monthly panel (one row per customer and month).

    Every customer gets a row for each month from their first transaction to ``end`` (the
    last month in the data by default), with zeros in months without transactions: the
    customer is still a customer. ``aum`` is the month's total ``amount`` (a stand-in for a
    balance when only flows exist), ``txn_count`` the number of transactions (or the sum of
    ``count`` when given).

    Parameters
    ----------
    transactions : DataFrame
        One row per transaction.
    customer, date, amount : str
        Column names of the customer id, the date and the money amount.
    count : str, optional
        A column to sum into ``txn_count`` instead of counting rows.
    end : str or Period, optional
        The panel's last month.

    Returns
    -------
    DataFrame
        ``customer_id``, ``month`` (period[M]), ``aum``, ``txn_count``; validate it with
        :func:`validate_panel`.
    """
    missing = [c for c in (customer, date, amount, count) if c and c not in transactions]
    if missing:
        raise PanelValidationError([Violation(c, "is required but missing") for c in missing])
    month = parse_months(transactions[date])
    bad = month.isna().to_numpy()
    if bad.any():
        raise PanelValidationError(
            [
                Violation(
                    date,
                    "has values that are not dates",
                    int(bad.sum()),
                    _examples(transactions[customer], bad),
                )
            ]
        )
    frame = pd.DataFrame(
        {
            ID: transactions[customer].astype(str).to_numpy(),
            "m": month.array.asi8,
            AUM: pd.to_numeric(transactions[amount], errors="raise").to_numpy(dtype=float),
            "txn_count": (
                pd.to_numeric(transactions[count]).to_numpy(dtype=float)
                if count
                else np.ones(len(transactions))
            ),
        }
    )
    monthly = frame.groupby([ID, "m"], sort=True)[[AUM, "txn_count"]].sum()
    last = pd.Period(end, "M").ordinal if end is not None else int(frame["m"].max())
    first = frame.groupby(ID)["m"].min()
    first = first[first <= last]
    spans = (last - first + 1).to_numpy()
    ids = np.repeat(first.index.to_numpy(), spans)
    starts = np.repeat(first.to_numpy(), spans)
    offsets = np.arange(spans.sum()) - np.repeat(np.cumsum(spans) - spans, spans)
    grid = pd.MultiIndex.from_arrays([ids, starts + offsets], names=[ID, "m"])
    full = monthly.reindex(grid, fill_value=0.0).reset_index()
    full[MONTH] = pd.arrays.PeriodArray(
        full["m"].to_numpy(dtype=np.int64), dtype=pd.PeriodDtype("M")
    )
    return full[[ID, MONTH, AUM, "txn_count"]]
