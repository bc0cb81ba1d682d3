"""Calendar months: what a month value is, in a panel's column or in a command's option.

A panel's ``month`` is a calendar month. It arrives as Periods, dates, timestamps, or text or
integers such as ``2024-01``, ``2024/01``, ``202401`` and ``2024-01-31``; :func:`parse_months`
reads them all to ``period[M]``. :func:`parse_month_column` adds the one rule that needs the
bank's time zone, and :func:`parse_month_option` reads a month given on the command line.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segments.exceptions import ConfigError, Violation

__all__ = [
    "check_month_in",
    "parse_month_column",
    "parse_month_option",
    "parse_months",
    "parse_timestamp",
]


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

    Parameters
    ----------
    value : str
        The option's value.
    option : str, default "--as-of"
        The option named in the error.

    Returns
    -------
    str
        The month as ``YYYY-MM``.

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


def parse_month_column(
    values: pd.Series, timezone: str | None = None, *, column: str = "month"
) -> tuple[pd.Series, Violation | None]:
    """Months of a raw month column, and the problem when zoned timestamps are ambiguous.

    A timestamp with a time zone is read in ``timezone`` when set; unset, it must fall on
    midnight in its own zone (a month-end stored in UTC, such as 2023-12-31 16:00 UTC for
    2024-01-01 in Shanghai, would otherwise land a month early). Every other column is read
    by :func:`parse_months`.

    Parameters
    ----------
    values : Series
        The raw month column.
    timezone : str, optional
        The bank's IANA time zone (``PanelConfig.timezone``).
    column : str, default "month"
        The column named in the violation.

    Returns
    -------
    months : Series of period[M]
        Same index as ``values``; values that are not calendar months are NaT.
    problem : Violation or None
        Set when zoned timestamps carry a time of day and no ``timezone`` is given.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype) and values.dt.tz is not None:
        zoned = values.dt.tz_convert(timezone) if timezone else values
        wall = zoned.dt.tz_localize(None)
        if not timezone:
            off = (wall.notna() & (wall != wall.dt.normalize())).to_numpy()
            if off.any():
                sample = ", ".join(str(v) for v in pd.unique(values[off])[:2])
                return wall.dt.to_period("M"), Violation(
                    column,
                    f"holds timestamps in time zone {values.dt.tz} with a time of day "
                    f"({sample}): their month depends on the bank's time zone",
                    int(off.sum()),
                    hint="set panel.timezone (e.g. Asia/Shanghai) to read them in the bank's "
                    "zone, or store calendar dates",
                )
        return wall.dt.to_period("M"), None
    return parse_months(values), None


def parse_timestamp(value: str, option: str = "--scored-at") -> str:
    """Check an ISO 8601 time with its zone (e.g. ``2026-01-01T00:00:00+00:00``) and return
    it unchanged.

    Raises
    ------
    ConfigError
        The value is not such a time (the error names ``option``).
    """
    from datetime import datetime

    try:
        stamp = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise ConfigError(
            [
                Violation(
                    option,
                    f"is {value!r}; expected an ISO 8601 time with its zone, e.g. "
                    "2026-01-01T00:00:00+00:00",
                )
            ]
        )
    return value


def check_month_in(months: pd.Series, month: pd.Period, option: str = "--month") -> None:
    """Refuse a month the panel has no row in, naming the option and the panel's months.

    Raises
    ------
    ConfigError
    """
    if not (months == month).any():
        raise ConfigError(
            [
                Violation(
                    option,
                    f"is {month}; the panel has no rows in it "
                    f"(months {months.min()} .. {months.max()})",
                )
            ]
        )
