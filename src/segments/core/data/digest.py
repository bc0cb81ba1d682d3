"""The content digest of a panel: one value for the same rows, however they are read.

Every run that reads a panel (training groups or upgrade, scoring, a promotion that
rebuilds its evidence from a panel) records this digest (the MLflow tag
``segments.data_digest``), so a scoring run can be tied to the data its models were
trained on. It depends on the panel's content only:

- **which columns**: the panel's contract columns a model can read
  (:func:`digest_columns`: the id, the month, ``aum`` and its components, every catalogue
  feature's sources, the bank's own columns declared in ``features.columns`` and the
  ladder's columns), by their contract names. A bank's other columns do not count, nor
  does a column only a call list reads (``branch_id``), so the training and the scoring of
  the same panel, which read different subsets, digest the same columns;
- **each value, in a canonical form**: numbers (money, counts, flags) as 64-bit floats, so
  an integer stored as a float, or read from a CSV, is the same value; the month as a
  calendar month; everything else (the id, categories, text) as text; a missing value as
  one marker, whatever its type;
- **not the order of rows or columns, nor the file format**: each row is hashed to 64
  bits (each value's canonical word, text through :func:`pandas.util.hash_array`, times
  its column's own odd multiplier; the products added up and mixed with SplitMix64's
  finaliser) and the row hashes are added up modulo 2**64, twice (the second time after
  another mix). Sums commute, so batches in any order, shuffled rows, a Parquet file or a
  CSV of the same rows give the same digest, and a batch's partial digest
  (:class:`PanelDigest`) adds to the others'.

The digest shown is the SHA-256 of the columns' names, the row count and both sums
(64 hex digits). It is computed on validated rows (:mod:`segments.core.data.validation`),
where ids, months and numbers already have their canonical types: a streaming job digests
each validated batch where it is validated and adds the parts; a job holding the panel
whole digests it at once (:func:`panel_digest`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.util import hash_array

from segments.core.data.panel import ID, MONTH

__all__ = ["DIGEST_VERSION", "PanelDigest", "digest_columns", "panel_digest"]

#: Bumped whenever the canonical form changes (a different digest for the same rows).
DIGEST_VERSION = 1

_U64 = np.uint64
#: A missing value's word, whatever the column's type.
_MISSING = _U64(0x9E3779B97F4A7C15)
_LANE = _U64(0xD6E8FEB86659FD93)
#: Rows a numeric column is worked on at a time (its temporaries stay in the CPU cache).
_BLOCK = 1 << 15


def digest_columns(columns: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """The columns of a validated panel the digest covers, sorted by name.

    Parameters
    ----------
    columns : sequence of str
        A validated panel's (or batch's) columns, by their contract names.
    extra : sequence of str, default ()
        More contract columns a job reads: the ladder's (``Ladder.columns``).

    Returns
    -------
    list of str
        The id, the month, ``aum`` and its components, the sources of every declared
        feature (the bank's own columns registered now included) and ``extra``, those
        present.
    """
    from segments.core.features.builder import feature_columns

    return sorted(feature_columns([str(c) for c in columns], None, extra))


def _multiplier(name: str) -> np.uint64:
    """An odd 64-bit multiplier for a column, from its name: a value's place counts."""
    word = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    return _U64(word | 1)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (a bijection of 64-bit words), in place, wrapping."""
    x ^= x >> _U64(30)
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


def _text_words(values: pd.Series) -> np.ndarray:
    """One word per value as text: each distinct value hashed once (SipHash, pandas)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    # Text is hashed as it is; anything else (integer ids, numeric categories) as its
    # str(), which is how pandas hashes a mixed object array.
    table = hash_array(np.asarray(uniques, dtype=object), categorize=False)
    return _take(table, codes)


def _take(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[codes]``, and the missing-value word where a code is -1."""
    out = table[codes] if len(table) else np.zeros(len(codes), _U64)
    out[codes < 0] = _MISSING
    return out


def _is_number(name: str, s: pd.Series) -> bool:
    """Whether a column's values are numbers (money, counts, flags): not the id, the month
    or a category."""
    dtype = s.dtype
    return (
        name not in (ID, MONTH)
        and not isinstance(dtype, pd.PeriodDtype | pd.CategoricalDtype)
        and pd.api.types.is_numeric_dtype(dtype)
    )


def _other_words(name: str, s: pd.Series) -> np.ndarray:
    """One uint64 per row for a column that is not numbers: the month's ordinal, a
    category's or a text's hash (a fresh array)."""
    dtype = s.dtype
    if name == MONTH or isinstance(dtype, pd.PeriodDtype):
        months = s if isinstance(dtype, pd.PeriodDtype) else s.astype("period[M]")
        return months.array.asi8.astype(_U64)  # the month's ordinal; NaT's is a fixed word
    if isinstance(dtype, pd.CategoricalDtype):
        cats = np.asarray(s.cat.categories, dtype=object)
        table = hash_array(cats, categorize=False) if len(cats) else np.zeros(0, _U64)
        return _take(table, s.cat.codes.to_numpy())
    return _text_words(s)


def _add_numbers(row: np.ndarray, s: pd.Series, multiplier: np.uint64) -> None:
    """Add a numeric column's words times ``multiplier`` to ``row``, block by block (the
    temporaries stay in cache): the value as a 64-bit float, -0.0 as 0.0, a missing value
    as the missing word, its high bits (sign, exponent) folded into the low ones so that
    the multiplier spreads a change anywhere in the word over the whole row word."""
    # numpy's own types as they are; nullable ones (Int64, boolean) with NA as NaN
    x = s.to_numpy() if isinstance(s.dtype, np.dtype) else s.to_numpy("float64", na_value=np.nan)
    for lo in range(0, len(x), _BLOCK):
        block = np.add(x[lo : lo + _BLOCK], 0.0, dtype="float64")
        words = block.view(_U64)
        missing = np.isnan(block)
        if missing.any():
            words[missing] = _MISSING
        words ^= words >> _U64(29)
        words *= multiplier
        row[lo : lo + _BLOCK] += words


def _row_words(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One 64-bit hash per row of ``frame`` over ``columns`` (see the module's notes).

    Each column's canonical words, times the column's own odd multiplier, are added up,
    and the sum is mixed: a value's column counts, and the order of columns does not.
    """
    row = np.zeros(len(frame), dtype=_U64)
    for c in columns:
        s = frame[c]
        if _is_number(c, s):
            _add_numbers(row, s, _multiplier(c))
        else:
            words = _other_words(c, s)
            words *= _multiplier(c)
            row += words
    return _mix(row)


@dataclass(frozen=True)
class PanelDigest:
    """A panel's content digest, or a batch's part of it (parts add up, in any order).

    Attributes
    ----------
    columns : tuple of str
        The columns digested, sorted (:func:`digest_columns`).
    rows : int
        Rows digested.
    sums : (int, int)
        The row hashes added up modulo 2**64, and the mixed row hashes added up.
    """

    columns: tuple[str, ...] = ()
    rows: int = 0
    sums: tuple[int, int] = (0, 0)

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, extra: Sequence[str] = ()) -> PanelDigest:
        """The digest of validated panel rows (a whole panel or a batch of one).

        Parameters
        ----------
        frame : DataFrame
            Validated panel rows, contract names (:func:`~segments.core.data.validation.
            validate_panel`, a validated batch).
        extra : sequence of str, default ()
            The ladder's columns (see :func:`digest_columns`).
        """
        columns = digest_columns(frame.columns, extra)
        row = _row_words(frame, columns)
        second = _mix(row ^ _LANE)  # a second word per row, from the first
        return cls(
            tuple(columns), len(frame), (int(row.sum(dtype=_U64)), int(second.sum(dtype=_U64)))
        )

    def __add__(self, other: PanelDigest) -> PanelDigest:
        if not other.rows and not other.columns:
            return self
        if not self.rows and not self.columns:
            return other
        if self.columns != other.columns:
            raise ValueError(
                f"digests of different columns cannot add up: {list(self.columns)} "
                f"vs {list(other.columns)}"
            )
        sums = tuple((a + b) % 2**64 for a, b in zip(self.sums, other.sums, strict=True))
        return PanelDigest(self.columns, self.rows + other.rows, (sums[0], sums[1]))

    @classmethod
    def total(cls, parts: Iterable[PanelDigest | None]) -> PanelDigest:
        """The parts (batches, buckets) added up; None parts are skipped."""
        out = cls()
        for p in parts:
            out = out if p is None else out + p
        return out

    def hexdigest(self) -> str:
        """The digest as recorded: SHA-256 (hex) of the version, columns, rows and sums."""
        payload = {"v": DIGEST_VERSION, **self.as_dict()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON): how a batch's part travels between processes and files."""
        return {"columns": list(self.columns), "rows": self.rows, "sums": list(self.sums)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PanelDigest:
        """The inverse of :meth:`as_dict`."""
        a, b = (int(v) for v in data["sums"])
        return cls(tuple(data["columns"]), int(data["rows"]), (a, b))


def panel_digest(frame: pd.DataFrame, extra: Sequence[str] = ()) -> str:
    """The content digest of a validated panel held whole (see the module's notes).

    Parameters
    ----------
    frame : DataFrame
        A validated panel (contract names).
    extra : sequence of str, default ()
        The ladder's columns (``Ladder.columns``).

    Returns
    -------
    str
        64 hex digits; the same for the same rows read in batches, in any order, from
        Parquet or CSV.
    """
    return PanelDigest.of_frame(frame, extra).hexdigest()
