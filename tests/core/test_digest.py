"""The panel's content digest: one value for the same rows, whole or in batches, in any
order, from Parquet or CSV; another value for any change a model could read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segments import make_bank, read_panel, validate_panel
from segments.core.data.digest import PanelDigest, digest_columns, panel_digest


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return make_bank(300, 12, seed=3)[0]


@pytest.fixture(scope="module")
def digest(raw) -> str:
    return panel_digest(validate_panel(raw))


def _digest_of(path) -> str:
    return panel_digest(validate_panel(read_panel(path)))


def test_the_same_rows_read_any_way_give_one_digest(raw, digest, tmp_path):
    shuffled = raw.sample(frac=1.0, random_state=7)
    # Parquet with dates and int32 counts; CSV with text months (and as pandas writes
    # floats); a shuffled gzip CSV; a folder of Parquet parts of shuffled rows, whose
    # columns are stored in another order and counts as 64-bit floats.
    raw.to_parquet(tmp_path / "panel.parquet", index=False)
    raw.assign(month=pd.to_datetime(raw["month"]).dt.strftime("%Y-%m")).to_csv(
        tmp_path / "panel.csv", index=False
    )
    shuffled.to_csv(tmp_path / "shuffled.csv.gz", index=False)
    (tmp_path / "parts").mkdir()
    counts = raw.select_dtypes("int32").columns
    mixed = shuffled.astype(dict.fromkeys(counts, "float64"))[list(reversed(raw.columns))]
    for i, part in enumerate(np.array_split(np.arange(len(mixed)), 3)):
        mixed.iloc[part].to_parquet(tmp_path / "parts" / f"part-{i}.parquet", index=False)
    for name in ("panel.parquet", "panel.csv", "shuffled.csv.gz", "parts"):
        assert _digest_of(tmp_path / name) == digest, name
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_batches_of_customers_add_up_to_the_whole_panels_digest(raw, digest):
    ids = raw["customer_id"].unique()
    rng = np.random.default_rng(1)
    groups = np.array_split(rng.permutation(ids), 4)
    parts = [PanelDigest.of_frame(validate_panel(raw[raw["customer_id"].isin(g)])) for g in groups]
    assert PanelDigest.total(parts).hexdigest() == digest
    assert PanelDigest.total(reversed(parts)).hexdigest() == digest
    # As batches travel between processes and files: plain data, the same digest.
    again = [PanelDigest.from_dict(p.as_dict()) for p in parts]
    assert PanelDigest.total([None, *again]).hexdigest() == digest
    assert sum(p.rows for p in parts) == len(raw)
    other = PanelDigest(("customer_id",), 1, (1, 2))
    with pytest.raises(ValueError, match="different columns"):
        parts[0] + other


def test_integer_ids_are_the_same_ids_read_as_text(raw, tmp_path):
    codes = raw["customer_id"].str[1:].astype("int64")
    numbered = raw.assign(customer_id=codes)
    numbered.to_parquet(tmp_path / "ints.parquet", index=False)  # stored as int64
    numbered.to_csv(tmp_path / "ints.csv", index=False)  # read back as text
    stored = pq.read_schema(tmp_path / "ints.parquet").field("customer_id").type
    assert stored == pa.int64()
    assert _digest_of(tmp_path / "ints.parquet") == _digest_of(tmp_path / "ints.csv")


def _changed(raw: pd.DataFrame, change) -> str:
    return panel_digest(validate_panel(change(raw.copy())))


def _set(column: str, row: int, value: Callable[[Any], Any]) -> Callable:
    """A change of one value: ``value(old)`` in ``column`` at ``row``."""

    def change(d: pd.DataFrame) -> pd.DataFrame:
        return d.assign(**{column: d[column].where(d.index != row, value(d[column].iloc[row]))})

    return change


def _swap(column: str, i: int, j: int) -> Callable:
    def change(d: pd.DataFrame) -> pd.DataFrame:
        values = d[column].to_numpy().copy()
        values[[i, j]] = values[[j, i]]
        return d.assign(**{column: values})

    return change


CHANGES = {
    # a cent on one customer's deposits (aum is derived from the components, so both move)
    "one_value": _set("dep_demand", 5, lambda v: v + 0.01),
    "one_count": _set("txn_count", 17, lambda v: v + 1),
    "one_category": _set("region", 3, lambda v: "nowhere"),
    "one_missing": lambda d: d.assign(age=d["age"].astype("float64").where(d.index != 9)),
    # the same values, in other rows: every column holds the same values as before
    "values_swapped_between_customers": _swap("loan_balance", 0, 40),
    "one_customer_dropped": lambda d: d[d["customer_id"] != "C00000002"],
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_change_a_model_could_read_changes_the_digest(raw, digest, change):
    assert _changed(raw, CHANGES[change]) != digest


def test_columns_no_model_reads_do_not_count(raw, digest):
    # A bank's other columns, and the branch (read by call lists only), are not digested.
    assert _changed(raw, lambda d: d.assign(note="anything")) == digest
    assert _changed(raw, lambda d: d.assign(branch_id="B000")) == digest
    columns = digest_columns(validate_panel(raw).columns)
    assert "branch_id" not in columns and columns == sorted(columns)
    assert {"customer_id", "month", "aum", "dep_demand", "region", "age"} <= set(columns)
    # A ladder's column counts once the ladder reads it.
    assert digest_columns(["customer_id", "month", "aum", "points"], ["points"])[-1] == "points"


def test_negative_zero_and_integer_floats_are_the_same_values(raw, digest):
    assert _changed(raw, lambda d: d.astype({"txn_count": "float64"})) == digest
    zero = raw["bonds"] == 0
    assert zero.any()
    assert _changed(raw, lambda d: d.assign(bonds=d["bonds"].where(~zero, -0.0))) == digest


def test_nullable_integers_with_a_gap_are_floats_with_a_nan():
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "month": pd.PeriodIndex(["2024-01", "2024-01", "2024-02"], freq="M"),
            "aum": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    floats = frame.assign(aum=[1.0, np.nan, 3.0])
    assert panel_digest(frame) == panel_digest(floats)
    assert panel_digest(frame) != panel_digest(floats.assign(aum=[1.0, 0.0, 3.0]))
