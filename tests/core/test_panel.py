"""The panel data contract: every violation named, counted and exemplified."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments import (
    ConfigError,
    PanelConfig,
    PanelValidationError,
    SegmentsError,
    SegmentsWarning,
    check_panel,
    read_panel,
    validate_panel,
)
from segments.core.data.months import parse_months
from segments.core.data.panel import AUM_COMPONENTS
from tests.conftest import panel_of


def good() -> pd.DataFrame:
    return panel_of(
        [
            ("C1", "2024-01", 10.0),
            ("C1", "2024-02", 20.0),
            ("C2", "2024-01", 30.0),
            ("C2", "2024-02", 40.0),
        ],
        gender=["F", "F", "M", "M"],
        txn_count=[1, 2, 3, 4],
    )


def errors_of(raw: pd.DataFrame, config: PanelConfig | None = None) -> list:
    with pytest.raises(PanelValidationError) as info:
        validate_panel(raw, config)
    return info.value.violations


def test_valid_panel_is_typed_and_sorted():
    raw = good().iloc[::-1].reset_index(drop=True)
    df = validate_panel(raw)
    assert isinstance(df["month"].dtype, pd.PeriodDtype)
    assert isinstance(df["gender"].dtype, pd.CategoricalDtype)
    assert pd.api.types.is_numeric_dtype(df["txn_count"].dtype)
    text = raw.assign(txn_count=raw["txn_count"].astype(str))
    assert validate_panel(text)["txn_count"].tolist() == [1, 2, 3, 4]
    assert list(df["customer_id"]) == ["C1", "C1", "C2", "C2"]
    assert [str(m) for m in df["month"]] == ["2024-01", "2024-02"] * 2
    # The input is never modified.
    assert raw["month"].dtype != df["month"].dtype


def test_error_is_a_segments_error_and_a_value_error():
    raw = good().drop(columns="month")
    with pytest.raises(SegmentsError):
        validate_panel(raw)
    with pytest.raises(ValueError, match="`month`"):
        validate_panel(raw)


@pytest.mark.parametrize("missing", ["customer_id", "month", "aum"])
def test_missing_required_column(missing):
    (v,) = errors_of(good().drop(columns=missing))
    assert v.column == missing
    assert "required but missing" in v.problem


def test_empty_input():
    (v,) = errors_of(good().iloc[:0])
    assert "no rows" in v.problem


def test_non_numeric_money_names_column_count_and_customers():
    raw = good()
    raw["aum"] = raw["aum"].astype(object)
    raw.loc[[0, 3], "aum"] = ["12k", "n/a"]
    violations = errors_of(raw)
    v = next(v for v in violations if "non-numeric" in v.problem)
    assert v.column == "aum"
    assert v.n_rows == 2
    assert v.examples == ("C1", "C2")
    assert "'12k'" in v.problem
    assert "money" in v.problem


def test_negative_and_nan_aum_are_separate_violations():
    raw = good()
    raw.loc[0, "aum"] = -5.0
    raw.loc[2, "aum"] = np.nan
    violations = errors_of(raw)
    by_problem = {v.problem: v for v in violations}
    neg = by_problem["has negative values; it must be >= 0"]
    assert (neg.column, neg.n_rows, neg.examples) == ("aum", 1, ("C1",))
    nan = by_problem["is missing (NaN)"]
    assert (nan.column, nan.n_rows, nan.examples) == ("aum", 1, ("C2",))


def test_duplicate_customer_month():
    raw = pd.concat([good(), good().iloc[[1]]], ignore_index=True)
    (v,) = errors_of(raw)
    assert v.column == "customer_id, month"
    assert v.n_rows == 2
    assert v.examples == ("C1",)


def test_unparseable_month():
    raw = good()
    raw.loc[1, "month"] = "Feb 2024?"
    raw.loc[3, "month"] = "2024-13"
    (v,) = errors_of(raw)
    assert v.column == "month"
    assert v.n_rows == 2
    assert set(v.examples) == {"C1", "C2"}


def test_examples_are_capped_at_five():
    raw = panel_of([(f"C{i}", "2024-01", -1.0) for i in range(12)])
    (v,) = errors_of(raw)
    assert v.n_rows == 12
    assert len(v.examples) == 5


def test_every_violation_reported_at_once():
    raw = good()
    raw["aum"] = raw["aum"].astype(object)
    raw.loc[0, "aum"] = "x"
    raw.loc[1, "month"] = "bad"
    raw.loc[2, "txn_count"] = -1
    raw = pd.concat([raw, raw.iloc[[3]]], ignore_index=True)
    columns = {v.column for v in errors_of(raw)}
    assert columns == {"aum", "month", "txn_count", "customer_id, month"}


def test_gaps_warn_by_default_and_error_when_configured():
    raw = panel_of([("C1", "2024-01", 1.0), ("C1", "2024-03", 1.0), ("C2", "2024-01", 1.0)])
    with pytest.warns(SegmentsWarning, match="gaps: 1 customers"):
        validate_panel(raw)
    (v,) = errors_of(raw, PanelConfig(gaps="error"))
    assert v.examples == ("C1",)
    report = check_panel(raw, PanelConfig(gaps="ignore"))
    assert report.ok and not report.warnings


def _slow_key_checks(raw, gaps):
    """The duplicate and gap rules written the slow, obvious way (pandas group-bys over the
    raw ids): the reference the sorted-key checks must agree with."""
    months = pd.PeriodIndex(raw["month"], freq="M")
    keyed = pd.DataFrame({"id": raw["customer_id"], "m": months.asi8})
    out = []
    dup = keyed.duplicated(keep=False).to_numpy()
    if dup.any():
        ids = sorted(set(raw["customer_id"][dup]))[:5]
        out.append(("customer_id, month", int(dup.sum()), tuple(ids)))
    span = keyed.groupby("id", sort=False)["m"].agg(["min", "max", "nunique"])
    gap_ids = span.index[span["max"] - span["min"] + 1 > span["nunique"]]
    if len(gap_ids) and gaps == "error":
        n = int(raw["customer_id"].isin(gap_ids).sum())
        out.append(("month", n, tuple(sorted(gap_ids)[:5])))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_duplicate_and_gap_checks_agree_with_the_slow_reference(seed):
    """Rows shuffled, customers repeated out of order, months missing and doubled: the
    counts and example ids are those of plain group-bys."""
    rng = np.random.default_rng(seed)
    rows = [
        (f"C{c}", f"2024-{m:02d}", 1.0)
        for c in range(60)
        for m in range(1, 13)
        if rng.random() > 0.1
    ]
    rows += [rows[i] for i in rng.integers(0, len(rows), 8)]
    raw = panel_of(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    found = [(v.column, v.n_rows, v.examples) for v in errors_of(raw, PanelConfig(gaps="error"))]
    assert found == _slow_key_checks(raw, "error")
    assert found  # the case really has problems


def test_column_map_renames_and_reports_unknown_sources():
    raw = good().rename(columns={"customer_id": "cust_no", "aum": "total_assets"})
    df = validate_panel(
        raw, PanelConfig(column_map={"cust_no": "customer_id", "total_assets": "aum"})
    )
    assert {"customer_id", "aum"} <= set(df.columns)
    violations = errors_of(
        raw,
        PanelConfig(
            column_map={"cust_no": "customer_id", "total_assets": "aum", "branch_code": "branch_id"}
        ),
    )
    (v,) = violations
    assert v.column == "branch_code"
    assert "no such column" in v.problem


def test_column_map_to_unknown_contract_column_is_a_config_error():
    with pytest.raises(ConfigError, match="not a contract column"):
        PanelConfig(column_map={"x": "assets_total"})


def test_aum_derived_from_components():
    raw = good().drop(columns="aum")
    raw["dep_demand"] = [1.0, 2.0, 3.0, 4.0]
    raw["funds"] = [10.0, np.nan, 0.0, 1.0]
    df = validate_panel(raw)
    assert df["aum"].tolist() == [11.0, 2.0, 3.0, 5.0]
    assert check_panel(raw).summary["aum_derived_from_components"]


def test_aum_must_equal_the_sum_of_all_components():
    raw = good()
    for c in AUM_COMPONENTS:
        raw[c] = raw["aum"] / len(AUM_COMPONENTS)
    validate_panel(raw)
    raw.loc[2, "bonds"] += 100.0
    (v,) = errors_of(raw)
    assert (v.column, v.n_rows, v.examples) == ("aum", 1, ("C2",))
    # A subset of components may be smaller than aum, never larger.
    partial = good().assign(dep_demand=[5.0, 5.0, 5.0, 50.0])
    (v,) = errors_of(partial)
    assert v.examples == ("C2",) and "smaller than the sum" in v.problem


@pytest.mark.parametrize(
    "values",
    [
        ["2024-01", "2024/02", "202403", "2024-04-30"],
        [202401, 202402, 202403, 202404],
        list(pd.to_datetime(["2024-01-31", "2024-02-01", "2024-03-15", "2024-04-01"])),
        list(pd.period_range("2024-01", periods=4, freq="M")),
    ],
)
def test_month_formats(values):
    months = parse_months(pd.Series(values))
    assert [str(m) for m in months] == ["2024-01", "2024-02", "2024-03", "2024-04"]


def test_read_panel_csv_keeps_id_zeros_and_parquet_roundtrip(tmp_path):
    raw = panel_of([("007", "2024-01", 1.0), ("007", "2024-02", 2.0)])
    raw.to_csv(tmp_path / "p.csv.gz", index=False)
    back = read_panel(tmp_path / "p.csv.gz")
    assert back["customer_id"].tolist() == ["007", "007"]
    validate_panel(raw).to_parquet(tmp_path / "p.parquet")
    again = validate_panel(read_panel(tmp_path / "p.parquet"))
    assert again["month"].astype(str).tolist() == ["2024-01", "2024-02"]


def test_summary_lists_columns_and_distribution():
    raw = good().assign(legacy_flag=1)
    report = check_panel(raw)
    s = report.summary
    assert (s["n_customers"], s["n_months"], s["n_rows"]) == (2, 2, 4)
    assert s["columns_ignored"] == ["legacy_flag"]
    assert s["aum_quantiles"]["p50"] == pytest.approx(25.0)
    assert report.frame is not None and "legacy_flag" in report.frame.columns


def test_card_account_columns_are_money_and_a_count():
    raw = good().assign(
        card_balance=["100.5", "0", "20", "30"],
        card_payment=[1.0, 2.0, 3.0, 4.0],
        days_past_due=[0, 30, 0, 0],
    )
    report = check_panel(raw)
    df = report.frame
    assert df is not None and df["card_balance"].tolist() == [100.5, 0.0, 20.0, 30.0]
    assert pd.api.types.is_integer_dtype(df["days_past_due"].dtype)
    assert {"card_balance", "card_payment", "days_past_due"} <= set(report.summary["columns_used"])
    assert report.summary["columns_ignored"] == []
    bad = raw.assign(
        card_balance=[-1.0, 0.0, 0.0, 0.0],
        card_payment=["x", "1", "1", "1"],
        days_past_due=[0, -3, 0, 0],
    )
    found = {(v.column, v.problem.split(" (")[0].split(";")[0]) for v in errors_of(bad)}
    assert found == {
        ("card_balance", "has negative values"),
        ("card_payment", "has non-numeric values"),
        ("days_past_due", "has negative values"),
    }
    money = next(v for v in errors_of(bad) if v.column == "card_payment")
    assert "it must be money" in money.problem
    count = errors_of(bad.assign(days_past_due=["late", "0", "0", "0"]))
    assert any(v.column == "days_past_due" and "a count" in v.problem for v in count)
