"""The derived credit features: card limit, balance utilisation, repayment ratio and
delinquency, on a hand-made panel with known answers, and only where their columns exist."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments import FEATURE_CATALOGUE, build_features, validate_panel
from segments.core.features import catalogue_frame, is_log_scale

NAN = np.nan
MONTHS = [str(m) for m in pd.period_range("2024-01", periods=8, freq="M")]  # as of 2024-08
NEW = [
    "credit_limit",
    "card_balance_utilisation_3m",
    "card_payment_ratio_3m",
    "months_since_delinquency",
    "delinquent_months_12m",
]

#: Per customer, Jan..Aug: card_limit, card_balance, card_payment, days_past_due.
CUSTOMERS = {
    # A card holder past due in March and April; Jun..Aug balances 200, 400, 600.
    "A": (
        [1000.0] * 8,
        [0, 0, 0, 50, 100, 200, 400, 600],
        [0, 0, 0, 0, 50, 100, 100, 200],
        [0, 0, 20, 45, 0, 0, 0, 0],
    ),
    # No card, never past due.
    "B": ([0.0] * 8, [0.0] * 8, [0.0] * 8, [0] * 8),
    # Past due in the as-of month; nothing owed before August.
    "C": ([500.0] * 8, [0, 0, 0, 0, 0, 0, 0, 50], [0.0] * 8, [0] * 7 + [15]),
    # Over the limit and repaying more than was due (both clipped at 2).
    "E": ([100.0] * 8, [0, 0, 0, 0, 0, 300, 300, 300], [0, 0, 0, 0, 0, 0, 0, 1500], [0] * 8),
    # Past due only in January: 7 months before the as-of month.
    "F": ([100.0] * 8, [10.0] * 8, [10.0] * 8, [30] + [0] * 7),
    # Past due only in February: 6 months before.
    "G": ([100.0] * 8, [10.0] * 8, [10.0] * 8, [0, 5] + [0] * 6),
    # Days past due not reported.
    "H": ([100.0] * 8, [10.0] * 8, [10.0] * 8, [NAN] * 8),
}


def credit_panel(drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """Seven customers over Jan..Aug 2024, and D, who joined in July."""
    rows = []
    for cid, (limit, balance, payment, dpd) in CUSTOMERS.items():
        for k, month in enumerate(MONTHS):
            rows.append((cid, month, limit[k], balance[k], payment[k], dpd[k]))
    # D: the July repayment has no June balance to set against; August repays half of July.
    rows += [("D", "2024-07", 800.0, 300.0, 999.0, 0), ("D", "2024-08", 800.0, 100.0, 150.0, 0)]
    raw = pd.DataFrame(
        rows,
        columns=["customer_id", "month", "card_limit", "card_balance", "card_payment", "dpd"],
    ).rename(columns={"dpd": "days_past_due"})
    raw["aum"] = 1000.0
    raw["card_spend"] = raw["card_limit"] / 10
    return validate_panel(raw.drop(columns=list(drop)))


def test_credit_limit_is_the_limit_in_the_as_of_month():
    X = build_features(credit_panel(), "2024-08")
    assert list(X.index) == ["A", "B", "C", "D", "E", "F", "G", "H"]
    np.testing.assert_array_equal(X["credit_limit"], [1000, 0, 500, 800, 100, 100, 100, 100])


def test_balance_utilisation_is_mean_balance_over_mean_limit_nan_without_a_limit():
    X = build_features(credit_panel(), "2024-08")
    u = X["card_balance_utilisation_3m"]
    assert u["A"] == pytest.approx(400 / 1000)
    assert u["C"] == pytest.approx(50 / 3 / 500)
    assert u["D"] == pytest.approx(200 / 800)  # the two months D has
    assert u["E"] == 2.0  # 300%, clipped
    assert np.isnan(u["B"])  # no limit
    # The spend-based utilisation keeps its meaning: spend / limit, 0 without a card.
    assert X.loc["A", "card_utilisation_3m"] == pytest.approx(0.1)
    assert X.loc["B", "card_utilisation_3m"] == 0.0


def test_payment_ratio_sets_each_repayment_against_the_balance_before_it():
    X = build_features(credit_panel(), "2024-08")
    r = X["card_payment_ratio_3m"]
    assert r["A"] == pytest.approx((100 + 100 + 200) / (100 + 200 + 400))
    assert r["D"] == pytest.approx(150 / 300)  # July's 999 has no June balance: left out
    assert r["E"] == 2.0  # 1,500 against 0 + 300 + 300: clipped
    assert r["F"] == pytest.approx(1.0)
    assert np.isnan(r["B"]) and np.isnan(r["C"])  # no balance to repay


def test_months_since_delinquency_within_the_longest_window():
    X = build_features(credit_panel(), "2024-08")  # windows 3, 6, 12: back to 2023-09
    m = X["months_since_delinquency"]
    assert m["A"] == 4  # April
    assert m["C"] == 0  # past due in the as-of month
    assert m["F"] == 7 and m["G"] == 6  # January, February
    assert np.isnan(m["B"]) and np.isnan(m["D"]) and np.isnan(m["E"])  # never
    assert np.isnan(m["H"])  # not reported
    months_late = X["delinquent_months_12m"]
    np.testing.assert_array_equal(months_late, [2, 0, 1, 0, 0, 1, 1, NAN])  # H: not reported
    # With windows 3 and 6 it looks back 6 months (Mar..Aug): February and January are not
    # seen, and the 12-month count is not built.
    Y = build_features(credit_panel(), "2024-08", windows=(3, 6))
    assert np.isnan(Y.loc["F", "months_since_delinquency"])
    assert np.isnan(Y.loc["G", "months_since_delinquency"])
    assert Y.loc["A", "months_since_delinquency"] == 4
    assert "delinquent_months_12m" not in Y.columns
    # As of March, A is past due that month.
    assert build_features(credit_panel(), "2024-03").loc["A", "months_since_delinquency"] == 0


def test_features_are_built_only_where_their_columns_exist():
    full = build_features(credit_panel(), "2024-08")
    assert set(NEW) <= set(full.columns)
    no_card = build_features(credit_panel(drop=("card_balance", "card_payment")), "2024-08")
    assert "credit_limit" in no_card.columns and "card_utilisation_3m" in no_card.columns
    assert not {"card_balance_utilisation_3m", "card_payment_ratio_3m"} & set(no_card.columns)
    no_dpd = build_features(credit_panel(drop=("days_past_due",)), "2024-08")
    assert not {"months_since_delinquency", "delinquent_months_12m"} & set(no_dpd.columns)
    no_payment = build_features(credit_panel(drop=("card_payment",)), "2024-08")
    assert "card_balance_utilisation_3m" in no_payment.columns
    assert "card_payment_ratio_3m" not in no_payment.columns
    # Without them, the other features are what they were.
    shared = [c for c in no_dpd.columns if c in full.columns]
    pd.testing.assert_frame_equal(no_dpd[shared], full[shared])


def test_the_credit_features_are_in_the_catalogue():
    frame = catalogue_frame().set_index("name")
    for name in NEW:
        spec = FEATURE_CATALOGUE[name]
        assert spec.family == "credit" and spec.en and spec.zh, name
    assert frame.loc["months_since_delinquency", "window"] == 12  # the longest window
    assert frame.loc["card_payment_ratio_3m", "sources"] == ("card_payment", "card_balance")
    assert is_log_scale("credit_limit") and not is_log_scale("card_payment_ratio_3m")
    # In the credit section, after the features that were there before them.
    names = list(frame.index)
    assert names.index("card_utilisation_3m") < names.index("credit_limit")
    assert names[names.index("credit_limit") : names.index("credit_limit") + 5] == NEW


def test_the_synthetic_bank_gives_every_credit_feature(small_panel):
    X = build_features(small_panel)
    assert X[NEW].notna().any().all()
    holders = X["credit_limit"] > 0
    assert X.loc[holders, "card_balance_utilisation_3m"].between(0, 1.1).mean() > 0.99
    assert X.loc[~holders, "card_balance_utilisation_3m"].isna().all()
    assert X["card_payment_ratio_3m"].dropna().between(0, 1).all()
    assert 0.01 < X["months_since_delinquency"].notna().mean() < 0.2
