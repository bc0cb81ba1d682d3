"""Features for a panel file in batches equal the whole-panel build, on every input kind."""

from __future__ import annotations

import pandas as pd
import pytest

from segments import build_features, read_panel, validate_panel
from segments.core.data.panel import PanelConfig
from segments.core.data.synthetic import write_bank
from segments.core.data.validation import check_panel
from segments.exceptions import PanelValidationError
from segments.jobs.features import features_from_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    paths = write_bank(root / "bank", 1_200, 18, seed=11)
    raw = read_panel(paths["panel"])
    expected = build_features(validate_panel(raw))
    return {"root": root, "panel": paths["panel"], "raw": raw, "expected": expected}


def _same(got, expected, exact_categories=True):
    pd.testing.assert_frame_equal(got, expected, check_categorical=exact_categories)
    assert got.attrs == expected.attrs


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sorted_file_in_batches_gives_the_whole_panel_features(bank, workers):
    got = features_from_file(bank["panel"], batch_customers=150, workers=workers)
    _same(got, bank["expected"])


def test_every_input_kind_gives_the_same_features(bank):
    raw = bank["raw"]
    shuffled = bank["root"] / "shuffled.parquet"
    raw.sample(frac=1.0, random_state=1).to_parquet(shuffled, index=False)
    csv = bank["root"] / "panel.csv.gz"
    raw.to_csv(csv, index=False)
    for path in (shuffled, csv):
        got = features_from_file(path, batch_customers=150)
        _same(got, bank["expected"])


def test_an_earlier_month_and_other_windows(bank):
    expected = build_features(validate_panel(bank["raw"]), "2024-11", windows=(2, 9))
    got = features_from_file(bank["panel"], "2024-11", windows=(2, 9), batch_customers=100)
    _same(got, expected)


def test_bad_rows_in_several_batches_report_what_the_whole_panel_check_reports(bank):
    raw = bank["raw"].copy()
    ids = raw["customer_id"].unique()
    for i in (3, 400, 900, 1100):  # customers far apart: different batches
        at = raw.index[raw["customer_id"] == ids[i]][-2]  # a month the features read
        raw.loc[at, "funds"] = -5.0
    raw = pd.concat([raw, raw.iloc[[10, 5000]]]).sort_values(["customer_id", "month"])
    path = bank["root"] / "bad.parquet"
    raw.to_parquet(path, index=False)
    whole = check_panel(raw, PanelConfig())
    with pytest.raises(PanelValidationError) as info:
        features_from_file(path, batch_customers=100)
    found = info.value.violations + info.value.warnings
    got = [(v.column, v.problem, v.n_rows, v.examples) for v in found]
    want = [(v.column, v.problem, v.n_rows, v.examples) for v in whole.errors + whole.warnings]
    assert sorted(got) == sorted(want)
    assert any(v[2] == 4 and len(v[3]) == 4 for v in got)  # the four customers, pooled


def test_only_the_months_the_features_read_are_read_and_checked(bank):
    """As of the last month with windows up to 12, the 13 months before it are all the
    features read: a bad value in an older month is not theirs to find (scoring and
    training validate every month)."""
    raw = bank["raw"].copy()
    first = raw["month"].min()
    raw.loc[raw.index[raw["month"] == first][:3], "funds"] = -5.0
    path = bank["root"] / "old_bad.parquet"
    raw.to_parquet(path, index=False)
    with pytest.raises(PanelValidationError):
        validate_panel(raw)
    _same(features_from_file(path, batch_customers=150), bank["expected"])
    with pytest.raises(PanelValidationError, match="funds"):  # a month it reads
        features_from_file(path, str(pd.Period(first, "M") + 12), batch_customers=150)


def test_a_batch_with_nobody_in_the_months_read_is_skipped(bank):
    """Customers who joined after the as-of month fill the last batches of a sorted file:
    those batches have no row in the months read, and add nothing (no error)."""
    raw = bank["raw"].copy()
    ids = sorted(raw["customer_id"].unique())
    late = set(ids[-400:])  # the last batches at 150 customers a batch
    months = pd.PeriodIndex(raw["month"].astype(str), freq="M")
    joined = pd.Period("2025-01", "M")
    raw = raw[~(raw["customer_id"].isin(late) & (months < joined))]
    path = bank["root"] / "late.parquet"
    raw.sort_values(["customer_id", "month"]).to_parquet(path, index=False, row_group_size=1_800)
    as_of = "2024-10"
    expected = build_features(validate_panel(raw), as_of)
    got = features_from_file(path, as_of, batch_customers=150)
    assert not set(got.index) & late
    _same(got, expected)
