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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from segments._io import read_table, table_format
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
    "PanelReport",
    "check_panel",
    "panel_from_transactions",
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
    """

    column_map: Mapping[str, str] = field(default_factory=dict)
    gaps: str = "warn"
    aum_tolerance: float = 1.0
    currency: str = "CNY"

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


def read_panel(
    path: str | os.PathLike[str], config: PanelConfig | None = None
) -> pd.DataFrame:
    """Read a raw panel from Parquet or CSV (ids and months of a CSV are read as text).

    Parameters
    ----------
    path : str or path
        A ``.parquet`` or ``.csv`` / ``.csv.gz`` file.
    config : PanelConfig, optional
        Used to find the bank's names of the id and month columns.

    Returns
    -------
    DataFrame
        The file as read, not yet validated.
    """
    config = config or PanelConfig()
    month_col = config.source_name(MONTH)
    if table_format(path) == "parquet" and Path(path).exists():
        return _read_parquet_panel(Path(path), config, month_col)
    return read_table(path, str_columns=(config.source_name(ID), month_col))


def _read_parquet_panel(path: Path, config: PanelConfig, month_col: str) -> pd.DataFrame:
    """Read Parquet through Arrow: dates become monthly periods without Python objects,
    static text columns arrive as categoricals; peak memory stays near the frame's size."""
    schema = pq.read_schema(path)
    names = set(schema.names)
    categorical = [config.source_name(c) for c in STATIC_CATEGORICAL]
    dictionary = [
        c for c in categorical
        if c in names and (pa.types.is_string(schema.field(c).type)
                           or pa.types.is_large_string(schema.field(c).type))
    ]
    table = pq.read_table(path, read_dictionary=dictionary or None)
    months = None
    if month_col in names:
        col = table.column(month_col)
        if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
            ordinal = pc.add(pc.multiply(pc.subtract(pc.year(col), 1970), 12),
                             pc.subtract(pc.month(col), 1))
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


def _apply_column_map(
    raw: pd.DataFrame, config: PanelConfig, errors: list[Violation]
) -> pd.DataFrame:
    missing = [src for src in config.column_map if src not in raw.columns]
    for src in missing:
        errors.append(
            Violation(
                src,
                f"is named in the column map (-> `{config.column_map[src]}`) but the input "
                "has no such column",
                hint=f"input columns are: {', '.join(map(str, raw.columns[:20]))}",
            )
        )
    rename = {s: d for s, d in config.column_map.items() if s in raw.columns}
    clash = [d for s, d in rename.items() if d in raw.columns and d not in rename]
    for dst in clash:
        errors.append(
            Violation(dst, "appears both in the input and as a column-map target")
        )
    return raw.rename(columns=rename)


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
    errors: list[Violation] = []
    warns: list[Violation] = []
    df = _apply_column_map(raw, config, errors)
    if len(df) == 0:
        errors.append(Violation("(all)", "the input has no rows"))
    for col in (ID, MONTH):
        if col not in df.columns:
            errors.append(
                Violation(
                    col,
                    "is required but missing",
                    hint="add it or map your column onto it (panel.column_map)",
                )
            )
    components = [c for c in AUM_COMPONENTS if c in df.columns]
    if AUM not in df.columns and not components:
        errors.append(
            Violation(
                AUM,
                "is required but missing, and no AUM component column is present",
                hint=f"provide `aum` or some of {', '.join(AUM_COMPONENTS)}",
            )
        )
    if errors:
        return PanelReport(None, errors, warns, {})

    df = df.copy(deep=False)  # columns are replaced, never written in place
    ids = df[ID]
    if ids.dtype == object or pd.api.types.is_string_dtype(ids.dtype):
        df[ID] = ids.astype("str")
        ids = df[ID]
    n_null_id = int(ids.isna().sum())
    if n_null_id:
        errors.append(Violation(ID, "is empty", n_null_id))

    month = parse_months(df[MONTH])
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
                errors.append(Violation(col, "has infinite values", int(infinite.sum()),
                                        _examples(ids, infinite)))
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
        span = pd.DataFrame({ID: keyed[ID].to_numpy(), "m": ordinal}).groupby(
            ID, sort=False, observed=True
        )["m"].agg(["min", "max", "nunique"])
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
        raise PanelValidationError([Violation(date, "has values that are not dates",
                                              int(bad.sum()),
                                              _examples(transactions[customer], bad))])
    frame = pd.DataFrame({
        ID: transactions[customer].astype(str).to_numpy(),
        "m": month.array.asi8,
        AUM: pd.to_numeric(transactions[amount], errors="raise").to_numpy(dtype=float),
        "txn_count": (pd.to_numeric(transactions[count]).to_numpy(dtype=float)
                      if count else np.ones(len(transactions))),
    })
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
    full[MONTH] = pd.arrays.PeriodArray(full["m"].to_numpy(dtype=np.int64),
                                        dtype=pd.PeriodDtype("M"))
    return full[[ID, MONTH, AUM, "txn_count"]]
