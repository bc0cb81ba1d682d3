"""Validating a panel: every rule of the data contract checked at once.

:func:`check_panel` checks a raw panel against the contract (:mod:`segments.core.data.panel`) and
returns a :class:`PanelReport`: the typed frame (month as a monthly ``Period``, static
attributes as categoricals, money and counts numeric) or every violation, each naming the
column, the problem, the number of rows and example customers. :func:`validate_panel` returns
the typed frame or raises :class:`~segments.exceptions.PanelValidationError`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segments.core.data.months import parse_month_column
from segments.core.data.panel import (
    AUM,
    AUM_COMPONENTS,
    CONTRACT_COLUMNS,
    ID,
    MONEY_COLUMNS,
    MONTH,
    NUMERIC_COLUMNS,
    SIGNED_COLUMNS,
    STATIC_CATEGORICAL,
    PanelConfig,
    column_problems,
)
from segments.exceptions import PanelValidationError, SegmentsWarning, Violation, example_list

__all__ = ["PanelReport", "check_panel", "example_ids", "typed_own_columns", "validate_panel"]


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


def example_ids(ids: pd.Series, mask: np.ndarray | pd.Series) -> tuple[str, ...]:
    """The first few distinct customer ids where ``mask`` holds, for a violation's examples.

    Parameters
    ----------
    ids : Series
        Customer ids, one per row.
    mask : array or Series of bool
        The rows that break a rule; same length as ``ids``.

    Returns
    -------
    tuple of str
        Up to :data:`~segments.exceptions.N_EXAMPLES` ids, the smallest as text
        (:func:`~segments.exceptions.example_list`),
        missing ids left out.
    """
    chosen = ids[np.asarray(mask, dtype=bool)]
    return example_list(pd.unique(chosen.dropna()))


def check_panel(
    raw: pd.DataFrame,
    config: PanelConfig | None = None,
    *,
    checked: bool = False,
    summary: bool = True,
) -> PanelReport:
    """Check a raw panel against the contract and report every violation at once.

    Parameters
    ----------
    raw : DataFrame
        One row per (customer, month) with the bank's or the contract's column names.
    config : PanelConfig, optional
        Column map and policies; the defaults when omitted.
    checked : bool, default False
        The same rows passed this check before (a scoring job validates every batch
        before it scores any): type them the same way, but skip the checks across rows
        (duplicates, gaps) and the summary, which only cost time the second time.
    summary : bool, default True
        Compute :attr:`PanelReport.summary` (a batch of a larger input does not need it).

    Returns
    -------
    PanelReport
        The typed frame when there is no error, the errors and warnings, and a summary.
    """
    config = config or PanelConfig()
    warns: list[Violation] = []
    errors = column_problems([str(c) for c in raw.columns], config)
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
    df = df.copy(deep=False)  # columns are replaced, never written in place
    ids = _typed_ids(df, errors)
    bad_month = _typed_months(df, ids, config, errors)
    for col in [c for c in NUMERIC_COLUMNS if c in df.columns]:
        df[col] = _typed_number(df[col], ids, errors)
    _check_aum(df, ids, config, errors)
    for col in [c for c in STATIC_CATEGORICAL if c in df.columns]:
        df[col] = _categories_in_order(df[col].astype("category"))
    own = typed_own_columns(df, ids, errors)
    if not checked:
        key_ok = df[ID].notna().to_numpy() & ~bad_month
        keys = _Keys(df, key_ok)
        _check_duplicates(keys, ids, errors)
        _check_gaps(keys, df, config, errors, warns)
    if errors:
        return PanelReport(None, errors, warns, {})
    if checked or not summary:
        return PanelReport(_in_order(df), errors, warns, {})
    extra = [c for c in df.columns if c not in CONTRACT_COLUMNS and c not in own]
    about = _summary(df, raw, config, extra)
    about["columns_used"] += own
    return PanelReport(_in_order(df), errors, warns, about)


def typed_own_columns(df: pd.DataFrame, ids: pd.Series, errors: list[Violation]) -> list[str]:
    """Type the bank's own columns declared as features (``features.columns``, as
    registered now: :func:`segments.core.features.own.own_features`) in ``df``, in place.

    A numeric column becomes numbers (text converted; a value that is not a number is an
    error with its count and example customers; negative values are allowed); a
    categorical one a category; an ordinal one a category whose categories are its
    ``order``, a value outside the order an error. A declared column the input lacks is
    an error naming it.

    Parameters
    ----------
    df : DataFrame
        Panel rows (contract names); its own columns are replaced, never written in place.
    ids : Series
        The customer ids of the rows, quoted in the examples.
    errors : list of Violation
        Where the problems go.

    Returns
    -------
    list of str
        The declared own columns ``df`` has.
    """
    from segments.core.features.own import active_columns, missing_columns

    specs = active_columns()
    if not specs:
        return []
    errors += missing_columns(df.columns)
    present = [s for s in specs if s.column in df.columns]
    for s in present:
        if s.kind == "numeric":
            df[s.column] = _typed_number(df[s.column], ids, errors, own=True)
        else:
            df[s.column] = _typed_states(df[s.column], s.order, ids, errors)
    return [s.column for s in present]


def _typed_states(
    values: pd.Series, order: tuple[str, ...], ids: pd.Series, errors: list[Violation]
) -> pd.Series:
    """A declared categorical column as a category (sorted), or an ordinal one (``order``
    given) with its order as categories; values outside the order are errors."""
    from segments.core.features.own_aggregations import positions

    cat = values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    if not order:
        return _categories_in_order(cat)
    dtype = pd.CategoricalDtype(list(order))
    if cat.dtype == dtype:
        return cat
    pos = positions(cat, order)
    outside = pos < 0
    if outside.any():
        sample = pd.unique(cat[outside].astype(str))[:3]
        errors.append(
            Violation(
                str(values.name),
                f"has values outside its order ({', '.join(map(repr, sample))}); "
                f"features.columns declares {', '.join(order)}",
                int(outside.sum()),
                example_ids(ids, outside),
            )
        )
        return cat
    codes = np.where(np.isnan(pos), -1, pos).astype(np.int64)
    return pd.Series(
        pd.Categorical.from_codes(codes, dtype=dtype), index=values.index, name=values.name
    )


def _categories_in_order(values: pd.Series) -> pd.Series:
    """A static attribute with its categories sorted, whatever order the file met them in
    (a whole file, a batch of it, its row groups): the same data gives the same table."""
    cats = list(values.cat.categories)
    try:
        order = sorted(cats)
    except TypeError:  # mixed kinds of values: left as they are
        return values
    return values if order == cats else values.cat.reorder_categories(order)


def _typed_ids(df: pd.DataFrame, errors: list[Violation]) -> pd.Series:
    """Customer ids as text or integers (in ``df``), and the ids to quote in examples."""
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
    return ids


def _typed_months(
    df: pd.DataFrame, ids: pd.Series, config: PanelConfig, errors: list[Violation]
) -> np.ndarray:
    """Parse ``df``'s month column in place; return where it holds no calendar month."""
    month, zone_problem = parse_month_column(df[MONTH], config.timezone, column=MONTH)
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
                example_ids(ids, bad_month),
                hint="use YYYY-MM, YYYYMM or a date",
            )
        )
    df[MONTH] = month
    return bad_month


def _typed_number(
    values: pd.Series, ids: pd.Series, errors: list[Violation], *, own: bool = False
) -> pd.Series:
    """A money or count column as numbers: text converted, numeric input kept as it is
    (ints stay ints: less memory); non-numeric, infinite and negative values are errors.
    A bank's own numeric column (``own``) and a signed contract column (net purchases) may
    be negative."""
    col = str(values.name)
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        numeric = pd.to_numeric(values, errors="coerce")
        bad = (numeric.isna() & values.notna()).to_numpy()
        if bad.any():
            sample = pd.unique(values[bad].astype(str))[:3]
            kind = "money" if col in MONEY_COLUMNS else "a count"
            kind = "a number (features.columns declares it numeric)" if own else kind
            errors.append(
                Violation(
                    col,
                    f"has non-numeric values ({', '.join(map(repr, sample))}); it must be {kind}",
                    int(bad.sum()),
                    example_ids(ids, bad),
                )
            )
        values = numeric
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        values = values.astype("float64")
    if pd.api.types.is_float_dtype(values.dtype):
        infinite = np.isinf(values.to_numpy(dtype="float64"))
        if infinite.any():
            errors.append(
                Violation(
                    col, "has infinite values", int(infinite.sum()), example_ids(ids, infinite)
                )
            )
    negative = (values < 0).to_numpy()
    if negative.any() and not (own or col in SIGNED_COLUMNS):
        errors.append(
            Violation(
                col,
                "has negative values; it must be >= 0",
                int(negative.sum()),
                example_ids(ids, negative),
            )
        )
    return values


def _check_aum(
    df: pd.DataFrame, ids: pd.Series, config: PanelConfig, errors: list[Violation]
) -> None:
    """Derive ``aum`` from its components when absent (in ``df``), else check it against
    them: all seven must add up to it, a subset may not exceed it; ``aum`` may not be NaN."""
    components = [c for c in AUM_COMPONENTS if c in df.columns]
    if components:
        total = np.zeros(len(df))
        all_nan = np.ones(len(df), dtype=bool)
        for c in components:  # one column at a time: no (components x rows) copy
            v = df[c].to_numpy(dtype="float64")
            nan = np.isnan(v)
            total += np.where(nan, 0.0, v)
            all_nan &= nan
        total[all_nan] = np.nan
        comp_sum = pd.Series(total, index=df.index)
        if AUM not in df.columns:
            df[AUM] = comp_sum
        else:
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
                        example_ids(ids, off),
                    )
                )
    nan_aum = df[AUM].isna().to_numpy()
    if nan_aum.any():
        errors.append(
            Violation(AUM, "is missing (NaN)", int(nan_aum.sum()), example_ids(ids, nan_aum))
        )


class _Keys:
    """The (customer, month) keys of the rows that have both, as integers, sorted once:
    what the duplicate and gap checks read.

    ``code`` numbers customers by first appearance; ``order`` sorts the keyed rows by
    customer then month (a stable sort, fast on input already in that order).
    """

    def __init__(self, df: pd.DataFrame, key_ok: np.ndarray) -> None:
        self.rows = np.flatnonzero(key_ok)
        codes, self.uniques = pd.factorize(df[ID].to_numpy()[self.rows], sort=False)
        ordinal = df[MONTH].array.asi8[self.rows]
        low = int(ordinal.min()) if len(ordinal) else 0
        span = int(ordinal.max()) - low + 1 if len(ordinal) else 1
        self.code = codes.astype(np.int64)
        self.month = ordinal - low
        key = self.code * span + self.month
        self.order = np.argsort(key, kind="stable")
        self.sorted_key = key[self.order]


def _check_duplicates(keys: _Keys, ids: pd.Series, errors: list[Violation]) -> None:
    """More than one row for a (customer, month), among rows with both keys."""
    same = keys.sorted_key[1:] == keys.sorted_key[:-1]
    if not same.any():
        return
    dup_sorted = np.zeros(len(keys.sorted_key), dtype=bool)
    dup_sorted[1:] |= same
    dup_sorted[:-1] |= same
    dup = np.zeros(len(ids), dtype=bool)
    dup[keys.rows[keys.order[dup_sorted]]] = True
    errors.append(
        Violation(
            f"{ID}, {MONTH}",
            "has duplicate (customer, month) rows",
            int(dup.sum()),
            example_ids(ids, dup),
            hint="aggregate to one row per customer and month first",
        )
    )


def _check_gaps(
    keys: _Keys,
    df: pd.DataFrame,
    config: PanelConfig,
    errors: list[Violation],
    warns: list[Violation],
) -> None:
    """Customers missing months between their first and last: an error, a warning or
    nothing, as ``config.gaps`` says."""
    if not len(keys.rows) or config.gaps == "ignore":
        return
    code = keys.code[keys.order]
    month = keys.month[keys.order]
    distinct = np.r_[True, keys.sorted_key[1:] != keys.sorted_key[:-1]]
    first = np.r_[True, code[1:] != code[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(code)] - 1
    n_months = np.add.reduceat(distinct.astype(np.int64), starts)
    gap = month[ends] - month[starts] + 1 > n_months
    if not gap.any():
        return
    gap_codes = np.sort(code[starts[gap]])  # in order of first appearance
    gap_ids = keys.uniques.take(gap_codes)
    gap_rows = int(df[ID].isin(gap_ids).sum())
    v = Violation(
        MONTH,
        f"has gaps: {len(gap_ids):,} customers miss months between their first and last month",
        gap_rows,
        example_list(gap_ids),
        severity="error" if config.gaps == "error" else "warning",
        hint="set panel.gaps to 'ignore' or 'error' to change this",
    )
    (errors if config.gaps == "error" else warns).append(v)


def _in_order(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` sorted by customer and month (not copied when it already is), index reset."""
    codes, _ = pd.factorize(df[ID], sort=True)
    ordinal = df[MONTH].array.asi8
    step_id = np.diff(codes)
    in_order = bool((step_id >= 0).all() and (np.diff(ordinal)[step_id == 0] > 0).all())
    if not in_order:
        df = df.iloc[np.lexsort((ordinal, codes))]
    return df.reset_index(drop=True)


def _summary(
    df: pd.DataFrame, raw: pd.DataFrame, config: PanelConfig, extra: list[str]
) -> dict[str, Any]:
    """Customers, months, columns found and used, and the AUM distribution."""
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
