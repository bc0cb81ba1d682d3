"""Batches of whole customers cut from a customer-sorted Parquet input by its ids alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segments.core.data.batches import plan_sorted, read_batch, row_boundaries
from segments.core.data.files import inspect_files


def _panel(n_customers: int, seed: int = 0) -> pd.DataFrame:
    """Customers with 1 to 6 months each, sorted by id."""
    rng = np.random.default_rng(seed)
    months = rng.integers(1, 7, n_customers)
    ids = np.repeat([f"C{i:05d}" for i in range(n_customers)], months)
    month = np.concatenate([np.arange(m) for m in months])
    return pd.DataFrame({"customer_id": ids, "month": month, "aum": rng.random(len(ids))})


def _check(plan, df, batch_customers):
    """Every row read once, in order, each customer in exactly one batch."""
    got = [read_batch(plan, b).to_pandas() for b in plan.batches]
    pd.testing.assert_frame_equal(pd.concat(got, ignore_index=True), df)
    owners = pd.concat([g[["customer_id"]].assign(batch=i) for i, g in enumerate(got)])
    assert owners.drop_duplicates()["customer_id"].is_unique
    counts = [g["customer_id"].nunique() for g in got]
    assert counts == [b.customers for b in plan.batches]
    assert max(counts) <= batch_customers
    assert plan.customers == df["customer_id"].nunique()


@pytest.mark.parametrize("row_group_size", [7, 50, 333, 1_400])
def test_batches_hold_whole_customers_whatever_the_row_groups(tmp_path, row_group_size):
    df = _panel(400)
    df.to_parquet(tmp_path / "p.parquet", index=False, row_group_size=row_group_size)
    plan = plan_sorted(inspect_files(tmp_path / "p.parquet"), "customer_id", 60, months=6)
    assert plan is not None and len(plan.batches) >= 7
    _check(plan, df, 60)


def test_cuts_fall_on_row_groups_when_that_keeps_batches_half_full(tmp_path):
    df = _panel(400)
    df.to_parquet(tmp_path / "p.parquet", index=False, row_group_size=100)
    plan = plan_sorted(inspect_files(tmp_path / "p.parquet"), "customer_id", 60, months=6)
    group_starts = set(range(0, len(df), 100))
    # a cut is the first row of a customer at or after a row group's start
    starts = np.flatnonzero(
        np.r_[True, df["customer_id"].to_numpy()[1:] != df["customer_id"].to_numpy()[:-1]]
    )
    aligned = {int(starts[np.searchsorted(starts, g)]) for g in group_starts if g <= starts[-1]}
    cuts = [b.start for b in plan.batches[1:]]
    assert sum(c in aligned for c in cuts) >= len(cuts) - 1


def test_a_folder_of_parts_is_one_input_and_a_customer_may_span_two_parts(tmp_path):
    df = _panel(300, seed=1)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, at in enumerate(range(0, len(df), 211)):  # cuts through customers
        df.iloc[at : at + 211].to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    plan = plan_sorted(inspect_files(folder), "customer_id", 40, months=6)
    assert plan is not None and len(plan.files) > 3
    _check(plan, df, 40)


def test_inputs_that_cannot_be_cut_in_place_get_no_plan(tmp_path):
    df = _panel(200)
    shuffled = df.sample(frac=1.0, random_state=0)
    shuffled.to_parquet(tmp_path / "u.parquet", index=False)
    assert plan_sorted(inspect_files(tmp_path / "u.parquet"), "customer_id", 50) is None
    df.to_csv(tmp_path / "p.csv", index=False)
    assert plan_sorted(inspect_files(tmp_path / "p.csv"), "customer_id", 50) is None
    # one row group far larger than a batch: cutting it would re-read it for every batch
    df.to_parquet(tmp_path / "big.parquet", index=False, row_group_size=len(df))
    assert plan_sorted(inspect_files(tmp_path / "big.parquet"), "customer_id", 5, 1) is None
    assert plan_sorted(inspect_files(tmp_path / "big.parquet"), "customer_id", 50, 6) is not None


def test_a_missing_id_stays_with_the_customer_before_it():
    ids = pa.array(["A", "A", None, "A", "B", None, "C"])
    starts, in_order = row_boundaries(ids, None)
    assert in_order and starts.tolist() == [0, 4, 6]
    starts, _ = row_boundaries(pa.array(["C", "D"]), pa.scalar("C"))
    assert starts.tolist() == [1]
    assert row_boundaries(pa.array(["B", "A"]), None)[1] is False
    assert row_boundaries(pa.array(["A"]), pa.scalar("B"))[1] is False


def test_integer_ids_are_planned_by_their_order(tmp_path):
    df = _panel(100).assign(customer_id=lambda d: d["customer_id"].str[1:].astype(int) * 7)
    df.to_parquet(tmp_path / "i.parquet", index=False, row_group_size=40)
    plan = plan_sorted(inspect_files(tmp_path / "i.parquet"), "customer_id", 30, months=6)
    _check(plan, df, 30)
    meta = pq.ParquetFile(tmp_path / "i.parquet").metadata
    assert sum(g[3] for g in plan.row_groups) == meta.num_rows
