"""Tier engine: hand-computed tiers, near bands, any-of ladders, hysteresis, migration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segments import (
    ConfigError,
    PanelValidationError,
    SegmentsWarning,
    assign_tiers,
    load_ladder,
    migration_matrix,
    migration_summary,
    validate_panel,
)
from segments.core.tiers.assign import TIER_COLUMNS
from tests.conftest import panel_of

# (aum, tier, next tier, gap to next, near band) on the CMB ladder, hand-computed.
CMB_EDGES = [
    (0.0, "mass", "gold", 50_000.0, None),
    (29_999.99, "mass", "gold", 20_000.01, None),
    (30_000.0, "mass", "gold", 20_000.0, "near_gold"),
    (49_999.99, "mass", "gold", 0.01, "near_gold"),
    (50_000.0, "gold", "sunflower", 450_000.0, None),
    (50_000.01, "gold", "sunflower", 449_999.99, None),
    (199_999.99, "gold", "sunflower", 300_000.01, None),
    (200_000.0, "gold", "sunflower", 300_000.0, "near_sunflower"),
    (499_999.99, "gold", "sunflower", 0.01, "near_sunflower"),
    (500_000.0, "sunflower", "diamond", 4_500_000.0, None),
    (4_999_999.99, "sunflower", "diamond", 0.01, None),
    (5_000_000.0, "diamond", "private", 5_000_000.0, None),
    (9_999_999.99, "diamond", "private", 0.01, None),
    (10_000_000.0, "private", None, math.nan, None),
    (1e9, "private", None, math.nan, None),
]


def tiers_of(aums, ladder="cmb", months=None, **kwargs):
    months = months or [str(m) for m in pd.period_range("2024-01", periods=len(aums), freq="M")]
    panel = validate_panel(panel_of([("C1", m, a) for m, a in zip(months, aums, strict=True)]))
    return assign_tiers(panel, ladder, **kwargs)


def test_cmb_edges_hand_computed():
    rows = [(f"C{i:02d}", "2024-01", a) for i, (a, *_) in enumerate(CMB_EDGES)]
    table = assign_tiers(validate_panel(panel_of(rows)))
    assert list(table.columns) == list(TIER_COLUMNS)
    for (aum, tier, nxt, gap, band), (_, row) in zip(CMB_EDGES, table.iterrows(), strict=True):
        assert row["tier"] == tier, aum
        assert row["tier_rank"] == ["mass", "gold", "sunflower", "diamond", "private"].index(tier)
        if nxt is None:
            assert pd.isna(row["next_tier"]) and math.isnan(row["gap_to_next"])
            assert math.isnan(row["gap_ratio"])
        else:
            assert row["next_tier"] == nxt
            assert row["gap_to_next"] == pytest.approx(gap, abs=1e-6)
            threshold = load_ladder("cmb").tiers[row["tier_rank"] + 1].min_aum
            assert row["gap_ratio"] == pytest.approx(aum / threshold)
        assert row["near_tier"] == (band is not None), aum
        # The band from the table above (written by hand), not from the table itself.
        assert (None if pd.isna(row["near_band"]) else row["near_band"]) == band, aum
        assert row["tier_status"] == "active"
    assert table["tier"].cat.ordered


def test_basis_window_averages_last_months():
    table = tiers_of([40_000.0, 50_000.0, 60_000.0, 20_000.0], basis_window=3)
    assert table["aum_basis"].tolist() == pytest.approx([40_000, 45_000, 50_000, 43_333.333333])
    assert table["tier"].tolist() == ["mass", "mass", "gold", "mass"]
    assert table["near_band"].tolist()[:2] == ["near_gold", "near_gold"]
    assert table["tier_change"].tolist()[1:] == [0, 1, -1]
    assert pd.isna(table["tier_change"].iloc[0])


def test_ccb_rule_on_a_customer_who_hovers():
    aums = [60e3, 40e3, 45e3, 48e3, 52e3, 40e3, 40e3, 40e3, 40e3, 40e3, 40e3, 40e3]
    table = tiers_of(aums, hysteresis="ccb")
    assert table["tier"].tolist() == ["gold"] * 10 + ["mass"] * 2
    assert table["tier_status"].tolist() == [
        "active",
        "grace",
        "grace",
        "watch",
        "active",
        "grace",
        "grace",
        "watch",
        "watch",
        "watch",
        "active",
        "active",
    ]
    assert table["qualifying_tier"].tolist() == ["gold"] + ["mass"] * 3 + ["gold"] + ["mass"] * 7
    # Held at gold while below it: not near gold, and the gap is to sunflower.
    held = table.iloc[1]
    assert not held["near_tier"] and held["next_tier"] == "sunflower"
    assert held["gap_to_next"] == pytest.approx(460_000.0)
    assert table["near_band"].tolist()[-2:] == ["near_gold", "near_gold"]
    # Without hysteresis the same customer flips every time it crosses.
    plain = tiers_of(aums)
    assert plain["tier"].tolist() == ["gold", "mass", "mass", "mass", "gold"] + ["mass"] * 7


def test_ccb_rule_downgrades_to_highest_of_last_six_months():
    aums = [600e3, 100e3, 100e3, 40e3, 40e3, 40e3, 40e3, 40e3, 40e3]
    table = tiers_of(aums, hysteresis="ccb")
    assert table["tier"].tolist() == ["sunflower"] * 6 + ["gold", "gold", "mass"]
    # After moving down to gold it has already been below gold for 4 months: watch.
    assert table["tier_status"].tolist() == [
        "active",
        "grace",
        "grace",
        "watch",
        "watch",
        "watch",
        "watch",
        "watch",
        "active",
    ]


def test_qualifying_downgrade_and_watch_after_one():
    rule = {"downgrade_after": 2, "watch_after": 1, "downgrade_to": "qualifying"}
    table = tiers_of([60e3, 10e3, 10e3, 60e3, 10e3], hysteresis=rule)
    assert table["tier"].tolist() == ["gold", "gold", "mass", "gold", "gold"]
    assert table["tier_status"].tolist() == ["active", "watch", "active", "active", "watch"]


def test_hysteresis_counts_observed_months_across_a_gap():
    rule = {"downgrade_after": 2, "downgrade_to": "qualifying"}
    with pytest.warns(SegmentsWarning):
        table = tiers_of(
            [60e3, 10e3, 10e3], months=["2024-01", "2024-02", "2024-05"], hysteresis=rule
        )
    assert table["tier"].tolist() == ["gold", "gold", "mass"]
    assert pd.isna(table["tier_change"].iloc[2])  # not consecutive months


def test_any_of_ladder_by_loans_card_spend_or_assets():
    rows, loans, spend = [], [], []
    for m in range(1, 13):
        month = f"2024-{m:02d}"
        rows += [("A", month, 10e3), ("B", month, 10e3), ("C", month, 600e3), ("D", month, 0.0)]
        loans += [600e3, 0.0, 0.0, 1.2e6]
        spend += [0.0, 5_000.0, 0.0, 0.0]
    panel = validate_panel(panel_of(rows, loan_balance=loans, card_spend=spend))
    table = assign_tiers(panel, "ccb", hysteresis=None)
    tier = table.pivot(index="month", columns="customer_id", values="tier")
    assert set(tier["A"]) == {"vip"}
    # B's card spend over 12 months reaches 50k in the 10th month.
    assert tier["B"].tolist() == ["regular"] * 9 + ["vip"] * 3
    assert set(tier["C"]) == {"platinum"} and set(tier["D"]) == {"platinum"}
    a = table[table["customer_id"] == "A"].iloc[0]
    assert a["gap_to_next"] == pytest.approx(490_000.0) and a["next_tier"] == "platinum"


def test_any_of_criterion_on_a_missing_column_warns_and_is_skipped():
    panel = validate_panel(panel_of([("A", "2024-01", 10e3)], loan_balance=[600e3]))
    with pytest.warns(SegmentsWarning, match="card_spend"):
        table = assign_tiers(panel, "ccb")
    assert table["tier"].tolist() == ["vip"]


def test_migration_matrix_and_summary_on_a_tiny_panel():
    rows = [
        ("A", "2024-01", 10e3),
        ("A", "2024-02", 60e3),
        ("B", "2024-01", 60e3),
        ("B", "2024-02", 70e3),
        ("C", "2024-01", 60e3),
        ("C", "2024-02", 10e3),
        ("D", "2024-01", 10e3),
        ("D", "2024-02", 20e3),
        ("E", "2024-01", 10e3),
    ]
    table = assign_tiers(validate_panel(panel_of(rows)))
    mig = migration_matrix(table, "2024-01", "2024-02")
    assert list(mig.index) == ["mass", "gold", "sunflower", "diamond", "private"]
    assert mig.loc["mass", "gold"] == 1 and mig.loc["mass", "mass"] == 1
    assert mig.loc["gold", "gold"] == 1 and mig.loc["gold", "mass"] == 1
    assert mig.to_numpy().sum() == 4  # E left: not in both months
    rates = migration_matrix(table, "2024-01", "2024-02", normalize=True)
    assert rates.loc["mass", "gold"] == pytest.approx(0.5)
    assert rates.loc["diamond"].sum() == 0
    summary = migration_summary(table)
    row = summary.loc[pd.Period("2024-02", "M")]
    assert (row.n_customers, row.n_up, row.n_down, row.n_same) == (4, 1, 1, 2)
    assert row.up_rate == pytest.approx(0.25)
    with pytest.raises(PanelValidationError, match="2024-05"):
        migration_matrix(table, "2024-01", "2024-05")


def test_user_ladder_from_file_and_validation_reports_every_problem(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ntiers:\n  - {name: low, min_aum: 0}\n  - {name: high, min_aum: 1000}\n"
        "near_bands:\n  - {name: near_high, tier: high, lower: 800}\n"
    )
    table = tiers_of([799.0, 800.0, 1000.0], ladder=str(path))
    bands = [None if pd.isna(b) else b for b in table["near_band"]]
    assert bands == [None, "near_high", None]
    assert table["tier"].tolist() == ["low", "low", "high"]
    bad = {
        "name": "bad",
        "tiers": [
            {"name": "a", "min_aum": 10},
            {"name": "b", "min_aum": 5},
            {"name": "b", "min_aum": 20, "colour": "red"},
        ],
        "near_bands": [{"name": "n", "tier": "zzz", "lower": 1}],
        "hysteresis": {"downgrade_after": 0},
    }
    with pytest.raises(ConfigError) as info:
        load_ladder(bad)
    columns = [v.column for v in info.value.violations]
    for expected in (
        "ladder.tiers[0].min_aum",
        "ladder.tiers",
        "ladder.tiers[2].name",
        "ladder.tiers[2].colour",
        "ladder.near_bands[0].tier",
        "hysteresis.downgrade_after",
    ):
        assert expected in columns, columns


def test_unknown_ladder_name_lists_presets():
    with pytest.raises(ConfigError, match="cmb"):
        load_ladder("nope")


def test_presets_load():
    for name, top in [
        ("cmb", "private"),
        ("ccb", "platinum"),
        ("spdb", "private"),
        ("bos", "private"),
    ]:
        assert load_ladder(name).tier_names[-1] == top
    assert load_ladder("ccb").hysteresis.downgrade_after == 6
    assert load_ladder("cmb").hysteresis is None
    assert load_ladder("cmb", hysteresis="ccb").hysteresis.watch_after == 3
    assert load_ladder("ccb", hysteresis="off").hysteresis is None


def test_unvalidated_panel_is_refused():
    raw = panel_of([("C1", "2024-01", 1.0)])
    with pytest.raises(PanelValidationError, match="validate_panel"):
        assign_tiers(raw)


aum_paths = st.lists(
    st.floats(min_value=0, max_value=2e7, allow_nan=False), min_size=1, max_size=14
)


@settings(max_examples=60, deadline=None)
@given(path=aum_paths, bumps=st.data(), rule=st.sampled_from([None, "ccb"]))
def test_more_aum_never_lowers_a_tier(path, bumps, rule):
    extra = bumps.draw(
        st.lists(st.floats(min_value=0, max_value=1e7), min_size=len(path), max_size=len(path))
    )
    richer = [a + b for a, b in zip(path, extra, strict=True)]
    low = tiers_of(path, hysteresis=rule)
    high = tiers_of(richer, hysteresis=rule)
    assert (high["tier_rank"].to_numpy() >= low["tier_rank"].to_numpy()).all()
    plain = tiers_of(path)
    gaps = plain["gap_to_next"].dropna()
    assert (gaps >= 0).all()
    ratio = plain["gap_ratio"].dropna()
    assert ((ratio >= 0) & (ratio < 1)).all()


def test_synthetic_tier_mix_is_realistic(small_panel):
    table = assign_tiers(small_panel)
    last = table[table["month"] == table["month"].max()]
    sunflower_plus = (last["tier_rank"] >= 2).mean()
    assert 0.01 <= sunflower_plus <= 0.035
    assert (last["tier_rank"] >= 4).mean() < 0.001
    assert 0.10 <= (last["tier"] == "gold").mean() <= 0.35
    assert last["near_tier"].mean() > 0.05
    summary = migration_summary(table)
    assert summary["n_up"].sum() > 0 and summary["n_down"].sum() > 0
    changes = table.groupby("customer_id")["tier_change"].apply(
        lambda s: int((s.fillna(0) != 0).sum())
    )
    assert (changes >= 3).sum() > 20  # hoverers cross back and forth
    assert np.isfinite(table["aum_basis"]).all()
