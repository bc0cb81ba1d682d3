"""Points (star) and growth (accumulation) ladders: hand-computed scores and tiers, caps,
expiry and decay, monotonicity, named errors, presets and their reason codes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments import ConfigError, PanelValidationError, assign_tiers, load_ladder, validate_panel
from segments.core.explain.ladder_phrases import component_reason
from segments.core.groups.profiles import tier_group_matrix
from segments.core.tiers.ladders import Ladder
from segments.core.tiers.points import Component

#: Assets: 1 point per 10,000 of AUM (cap 5); products: 10 per product (cap 30); card:
#: 2 points per 1,000 spent over 2 months (cap 4). Tiers at 20 and 40 points.
POINTS = {
    "name": "hand",
    "kind": "points",
    "components": [
        {"name": "assets", "column": "aum", "per": 10_000, "points": 1, "cap": 5},
        {"name": "products", "column": "n_products", "points": 10, "cap": 30},
        {
            "name": "card",
            "column": "card_spend",
            "agg": "sum",
            "window": 2,
            "per": 1000,
            "points": 2,
            "cap": 4,
        },
    ],
    "tiers": [
        {"name": "one", "min_points": 0},
        {"name": "two", "min_points": 20},
        {"name": "three", "min_points": 40},
    ],
    "near_bands": [
        {"name": "near_two", "tier": "two", "ratio": 0.75},
        {"name": "near_three", "tier": "three", "lower": 35},
    ],
}

GROWTH = {
    "name": "earn",
    "kind": "growth",
    "expiry_months": 2,
    "activities": [
        {"name": "logins", "column": "app_logins", "points": 1, "cap": 10},
        {"name": "spend", "column": "card_spend", "per": 100, "points": 1},
    ],
    "tiers": [{"name": "basic", "min_points": 0}, {"name": "plus", "min_points": 10}],
}


def panel(rows, columns=("n_products", "card_spend", "app_logins")):
    """A validated panel from (id, month, aum, *columns) tuples."""
    frame = pd.DataFrame(rows, columns=["customer_id", "month", "aum", *columns])
    return validate_panel(frame)


def test_points_scores_and_tiers_hand_computed_at_under_over_thresholds():
    rows = [
        # id, month, aum, products, card, logins
        ("A", "2024-01", 49_999.0, 1, 999.0, 0),  # 4 + 10 + 0 = 14 (under 20: one)
        ("B", "2024-01", 50_000.0, 1, 1_000.0, 0),  # 5 + 10 + 2 = 17: near_two (>= 15)
        ("C", "2024-01", 0.0, 2, 0.0, 0),  # 0 + 20 + 0 = 20: exactly two
        ("D", "2024-01", 90_000.0, 3, 1_500.0, 0),  # 5 (cap) + 30 + 2 = 37: near_three
        ("E", "2024-01", 1e9, 9, 1e6, 0),  # 5 + 30 + 4, every cap: 39 < 40
        ("F", "2024-01", 10_000.0, 3, 500.0, 0),  # 1 + 30 + 0 = 31: two, not near
    ]
    # A month before, with nothing, so that the card's 2-month window has its history.
    before = [(r[0], "2023-12", 0.0, 0, 0.0, 0) for r in rows]
    t = assign_tiers(panel(before + rows), POINTS)
    t = t[t["month"] == pd.Period("2024-01", "M")].set_index("customer_id")
    assert t["aum_basis"].to_dict() == {"A": 14, "B": 17, "C": 20, "D": 37, "E": 39, "F": 31}
    assert t["tier"].astype(str).to_dict() == {
        "A": "one", "B": "one", "C": "two", "D": "two", "E": "two", "F": "two"
    }  # fmt: skip
    near = t["near_band"].astype(object).where(t["near_band"].notna(), None).to_dict()
    assert near == {
        "A": None, "B": "near_two", "C": None, "D": "near_three", "E": "near_three", "F": None
    }  # fmt: skip
    assert t.loc["E", ["points_assets", "points_products", "points_card"]].tolist() == [5, 30, 4]
    assert t.loc["B", "gap_to_next"] == 3 and t.loc["D", "gap_to_next"] == 3
    assert t.loc["C", "gap_ratio"] == pytest.approx(20 / 40)
    assert set(t["basis_unit"].astype(str)) == {"points"}


def test_missing_and_negative_values_earn_nothing_and_steps_floor_exactly():
    ladder = {
        "name": "edges",
        "kind": "points",
        "components": [
            {"name": "flow", "column": "investment_net_purchases", "per": 0.1, "points": 0.7},
            {"name": "products", "column": "n_products", "points": 0.2},
        ],
        "tiers": [{"name": "low", "min_points": 0}, {"name": "high", "min_points": 2.3}],
        "near_bands": [{"name": "near_high", "tier": "high", "ratio": 0.9}],
    }
    frame = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "month": "2024-01",
            "aum": 1.0,
            # 0.3 / 0.1 is 2.9999999999999996 in floats: still 3 steps (2.1 points).
            "investment_net_purchases": [0.3, -5.0, np.nan, 0.3],
            "n_products": [1, 1, 1, 0],
        }
    )
    t = assign_tiers(validate_panel(frame), ladder).set_index("customer_id")
    # A: 0.7 x 3 + 0.2 = 2.3, exactly the threshold although 2.1 + 0.2 < 2.3 in floats.
    assert t.loc["A", "points_flow"] == pytest.approx(2.1) and t.loc["A", "tier"] == "high"
    assert t.loc["B", "points_flow"] == 0 and t.loc["C", "points_flow"] == 0  # negative, NaN
    # D: 2.1 points, and the band's lower edge is 0.9 x 2.3 = 2.07 (not 2.0700000000000003).
    assert t.loc["D", "tier"] == "low" and t.loc["D", "near_band"] == "near_high"
    assert load_ladder(ladder).near_bands[0].lower == 2.07


@pytest.mark.filterwarnings("ignore::segments.exceptions.SegmentsWarning")
def test_max_takes_the_best_month_of_the_window():
    ladder = {
        **POINTS,
        "components": [
            {
                "name": "best",
                "column": "card_spend",
                "agg": "max",
                "window": 3,
                "per": 100,
                "points": 1,
            }
        ],
    }
    spend = [500.0, np.nan, 100.0, 200.0]  # February missing: skipped
    rows = [("A", f"2024-0{i + 1}", 0.0, 0, v, 0) for i, v in enumerate(spend)]
    rows = [r for r in rows if not (isinstance(r[4], float) and np.isnan(r[4]))]
    t = assign_tiers(panel(rows), ladder)
    assert t["points_best"].tolist() == [5, 5, 2]  # Jan; Jan..Mar; Feb..Apr


def test_points_windows_sum_over_months_and_a_window_longer_than_the_history_is_named():
    rows = [
        ("A", "2024-01", 0.0, 0, 600.0, 0),
        ("A", "2024-02", 0.0, 0, 600.0, 0),  # card sum over 2 months: 1,200 -> 2 points
        ("A", "2024-03", 0.0, 0, 0.0, 0),  # 600 -> 0 points
    ]
    t = assign_tiers(panel(rows), POINTS)
    assert t["points_card"].tolist() == [0, 2, 0]
    short = {**POINTS, "components": [{**POINTS["components"][2], "window": 4}]}
    with pytest.raises(ConfigError, match=r"is 4 months; the panel holds 3") as info:
        assign_tiers(panel(rows), short)
    assert info.value.violations[0].column == "ladder.components[0].window"


def test_growth_balance_expires_and_decays_hand_computed():
    logins = [3, 5, 0, 7, 20]  # the last month's 20 logins earn the cap of 10
    rows = [
        ("A", f"2024-0{i + 1}", 0.0, 0, 0.0, n) for i, n in enumerate(logins)
    ]  # fmt: skip
    t = assign_tiers(panel(rows), GROWTH)
    # Points expire after 2 months: the balance is this month's and last month's.
    assert t["aum_basis"].tolist() == [3, 8, 5, 7, 17]
    assert t["tier"].astype(str).tolist() == ["basic", "basic", "basic", "basic", "plus"]
    decay = {k: v for k, v in GROWTH.items() if k != "expiry_months"} | {"decay": 0.5}
    t = assign_tiers(panel(rows), decay)
    assert t["aum_basis"].tolist() == pytest.approx([3, 6.5, 3.25, 8.625, 14.3125])


@pytest.mark.filterwarnings("ignore::segments.exceptions.SegmentsWarning")
def test_growth_months_without_a_row_earn_nothing_and_keep_expiring():
    rows = [
        ("A", "2024-01", 0.0, 0, 0.0, 6),
        ("A", "2024-02", 0.0, 0, 0.0, 6),
        ("A", "2024-04", 0.0, 0, 0.0, 1),  # March missing: earned nothing
    ]
    t = assign_tiers(panel(rows), {**GROWTH, "expiry_months": 3})
    assert t["aum_basis"].tolist() == [6, 12, 7]  # Jan expired, Feb + Mar (0) + Apr
    assert t["tier_change"].isna().tolist() == [True, False, True]


def test_growth_hysteresis_downgrades_only_after_months_below():
    rows = [
        ("A", f"2024-{m:02d}", 0.0, 0, 0.0, n)
        for m, n in zip(range(1, 7), [10, 10, 0, 0, 0, 0], strict=True)
    ]
    lad = {**GROWTH, "expiry_months": 1, "hysteresis": {"downgrade_after": 3}}
    t = assign_tiers(panel(rows), lad)
    assert t["qualifying_tier"].astype(str).tolist() == ["plus", "plus"] + ["basic"] * 4
    assert t["tier"].astype(str).tolist() == ["plus"] * 4 + ["basic"] * 2
    assert t["tier_status"].astype(str).tolist()[2:4] == ["watch", "watch"]


def test_a_missing_component_column_is_named():
    frame = pd.DataFrame(
        {"customer_id": ["A"], "month": ["2024-01"], "aum": [1.0], "n_products": [1]}
    )
    with pytest.raises(PanelValidationError) as info:
        assign_tiers(validate_panel(frame), POINTS)
    assert [v.column for v in info.value.violations] == ["card_spend"]
    assert "card" in info.value.violations[0].problem


BAD = [
    ({"kind": "stars"}, "ladder.kind"),
    (
        {"components": [{**POINTS["components"][0], "column": "wealth"}]},
        "ladder.components[0].column",
    ),
    ({"components": [{**POINTS["components"][0], "points": -1}]}, "ladder.components[0].points"),
    ({"components": [{**POINTS["components"][0], "per": 0}]}, "ladder.components[0].per"),
    ({"components": [{**POINTS["components"][0], "cap": -5}]}, "ladder.components[0].cap"),
    ({"components": [{**POINTS["components"][0], "agg": "median"}]}, "ladder.components[0].agg"),
    ({"components": [{**POINTS["components"][0], "window": 0}]}, "ladder.components[0].window"),
    ({"components": [POINTS["components"][0]] * 2}, "ladder.components[1].name"),
    ({"components": []}, "ladder.components"),
    (
        {"tiers": [{"name": "a", "min_points": 0}, {"name": "b", "min_points": 0}]},
        "ladder.tiers",
    ),
    ({"tiers": [{"name": "a", "min_aum": 0}]}, "ladder.tiers[0].min_aum"),
    ({"basis_window": 3}, "ladder.basis_window"),
    ({"near_bands": [{"name": "n", "tier": "two", "ratio": 1.2}]}, "ladder.near_bands[0].ratio"),
    (
        {"near_bands": [{"name": "n", "tier": "two", "ratio": 0.5, "lower": 3}]},
        "ladder.near_bands[0]",
    ),
]


@pytest.mark.parametrize(("change", "column"), BAD, ids=[c for _, c in BAD])
def test_bad_points_ladders_name_the_problem(change, column):
    with pytest.raises(ConfigError) as info:
        load_ladder({**POINTS, **change})
    assert column in [v.column for v in info.value.violations]


BAD_GROWTH = [
    ({"decay": 0.1}, "ladder.expiry_months"),  # both expiry and decay
    ({"expiry_months": 0}, "ladder.expiry_months"),
    ({"expiry_months": None, "decay": 1.5}, "ladder.decay"),
    ({"activities": [{**GROWTH["activities"][0], "window": 3}]}, "ladder.activities[0].window"),
    ({"components": GROWTH["activities"]}, "ladder.components"),
]


@pytest.mark.parametrize(("change", "column"), BAD_GROWTH, ids=[c for _, c in BAD_GROWTH])
def test_bad_growth_ladders_name_the_problem(change, column):
    data = {k: v for k, v in {**GROWTH, **change}.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        load_ladder(data)
    assert column in [v.column for v in info.value.violations]


def test_basis_window_override_is_refused_on_a_points_ladder():
    with pytest.raises(ConfigError, match="applies to AUM ladders"):
        load_ladder("stars7", basis_window=3)


@pytest.mark.parametrize("name", ["stars7", "member_growth", "cmb", "ccb"])
def test_presets_round_trip_through_plain_data(name):
    ladder = load_ladder(name)
    assert Ladder.from_dict(ladder.to_dict()) == ladder


def test_presets_kinds_units_and_months_needed():
    stars, growth = load_ladder("stars7"), load_ladder("member_growth")
    assert (stars.kind, stars.basis_unit, len(stars.tiers)) == ("points", "points", 7)
    assert (growth.kind, growth.expiry_months, growth.basis_unit) == ("growth", 12, "points")
    assert stars.months_needed == 4  # the longest component window (3) and the month before
    assert growth.months_needed is None  # hysteresis: every month may matter
    assert load_ladder("cmb").basis_unit == "CNY"
    assert "n_products" in stars.columns and "app_logins" in growth.columns


COLUMNS = ("n_products", "tenure_months", "txn_count", "app_logins", "branch_visits", "card_spend")


def _random_panel(data, n_months):
    n = 4
    cells = n * n_months
    value = st.floats(0, 2e6, allow_nan=False)
    count = st.integers(0, 60)
    aum = data.draw(st.lists(value, min_size=cells, max_size=cells))
    extra = {
        c: data.draw(
            st.lists(value if c == "card_spend" else count, min_size=cells, max_size=cells)
        )
        for c in COLUMNS
    }
    months = [str(m) for m in pd.period_range("2024-01", periods=n_months, freq="M")]
    frame = pd.DataFrame(
        {
            "customer_id": np.repeat([f"C{i}" for i in range(n)], n_months),
            "month": months * n,
            "aum": aum,
            "loan_balance": 0.0,
            "mortgage_balance": 0.0,
            **extra,
        }
    )
    return frame


DECAYING = {
    k: v for k, v in load_ladder("member_growth").to_dict().items() if k != "expiry_months"
} | {"name": "decaying", "decay": 0.2}


@pytest.mark.parametrize("name", ["stars7", "member_growth", "decaying"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_more_of_any_component_never_lowers_a_tier(name, data):
    ladder = load_ladder(DECAYING if name == "decaying" else name)
    frame = _random_panel(data, n_months=max(ladder.windows, default=5) + 1)
    before = assign_tiers(validate_panel(frame), ladder)
    col = data.draw(st.sampled_from(sorted({c.column for c in ladder.components})))
    row = data.draw(st.integers(0, len(frame) - 1))
    more = frame.copy()
    more.loc[row, col] = more.loc[row, col] + data.draw(st.integers(1, 10**6))
    after = assign_tiers(validate_panel(more), ladder)
    assert (after["aum_basis"].to_numpy() >= before["aum_basis"].to_numpy() - 1e-9).all()
    assert (after["tier_rank"].to_numpy() >= before["tier_rank"].to_numpy()).all()


def test_component_reasons_say_what_more_would_add():
    products = Component("products", "n_products", points=20, cap=100, unit="products")
    assert component_reason(products, 60.0, 35.0, "en", growth=False) == (
        "Products: 60 points now (of 100); 2 more products would add 40 points"
    )
    # The cap allows one more step only.
    assert component_reason(products, 80.0, 35.0, "en", growth=False).endswith(
        "1 more products would add 20 points"
    )
    assert component_reason(products, 100.0, 35.0, "en", growth=False) == (
        "Products: 100 points now (of 100); the most it gives"
    )
    zh = Component(
        "products", "n_products", points=20, cap=100, unit_zh="个产品", label_zh="持有产品"
    )
    assert component_reason(zh, 60.0, 35.0, "zh", growth=False) == (
        "持有产品当前60分(上限100分)；再增加2个产品可加40分"
    )
    logins = Component("logins", "app_logins", points=1, cap=30, unit="app logins")
    # A growth ladder's cap is a month's: 30 at most, whatever the balance.
    assert component_reason(logins, 250.0, 45.0, "en", growth=True) == (
        "Logins: 250 points now; 30 more app logins in a month earn up to 30 points"
    )


def test_tier_group_matrix_shares_money_not_points():
    tiers = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "tier": pd.Categorical(["one", "two"], categories=["one", "two"], ordered=True),
            "aum_basis": [90.0, 10.0],  # points
            "near_tier": [False, True],
        }
    )
    groups = pd.Series([0, 1], index=["a", "b"])
    aum = pd.Series([1_000.0, 3_000.0], index=["a", "b"])
    share = tier_group_matrix(tiers, groups, aum=aum)["aum_share"]
    assert share.loc["two", 1] == pytest.approx(0.75)
    assert tier_group_matrix(tiers, groups)["aum_share"].loc["two", 1] == pytest.approx(0.10)
    # A basis in points is not money: without the AUM, no AUM share.
    with pytest.raises(ConfigError, match="basis is in points"):
        tier_group_matrix(tiers.assign(basis_unit="points"), groups)


def test_stars7_on_the_synthetic_bank_fills_every_tier(small_panel):
    t = assign_tiers(small_panel, "stars7")
    now = t[t["month"] == t["month"].max()]
    counts = now["tier"].value_counts()
    assert (counts > 0).all(), counts
    assert 0.05 < now["near_tier"].mean() < 0.4
    points = now[load_ladder("stars7").points_columns].sum(axis=1)
    np.testing.assert_allclose(points.to_numpy(), now["aum_basis"].to_numpy())


def test_every_ladder_in_the_docs_loads_and_tiers_the_synthetic_bank(small_panel):
    text = (Path(__file__).parents[2] / "docs" / "ladders.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 3
    for block in blocks:
        ladder = load_ladder(yaml.safe_load(block))
        table = assign_tiers(small_panel, ladder)
        assert table["tier"].nunique() >= 2, ladder.name
