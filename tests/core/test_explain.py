"""Explanations: exact, additive SHAP in calibrated log-odds; reason codes; group surrogate."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from segments import (
    FEATURE_CATALOGUE,
    StrategicGroups,
    build_features,
    load_config,
    make_bank,
    train_upgrade,
    validate_panel,
)
from segments.core.explain.reasons import GroupSurrogate, UpgradeExplainer, reason_sentence
from segments.exceptions import ConfigError


@pytest.fixture(scope="module")
def upgrade():
    raw, _ = make_bank(8_000, 24, seed=13)
    result = train_upgrade(validate_panel(raw), load_config())
    return result, UpgradeExplainer(result.model)


def test_additivity_for_every_row(upgrade):
    result, ex = upgrade
    X = result.test
    phi = ex.contributions(X)
    np.testing.assert_allclose(
        phi.sum(axis=1) + ex.expected_value, result.model.decision_function(X), atol=1e-9
    )
    p = 1 / (1 + np.exp(-(phi.sum(axis=1) + ex.expected_value)))
    np.testing.assert_allclose(p, result.model.predict_proba(X)[:, 1], atol=1e-9)


def test_agrees_with_shap_tree_explainer(upgrade):
    result, ex = upgrade
    X = result.test.head(300)
    model = result.model
    booster, best = model.booster_, model.best_iteration_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import shap

        # shap explains the raw margin of the trees up to tree_limit; the model stops at
        # its best iteration, so shap is given the same trees.
        explainer = shap.TreeExplainer(booster)
        sv = explainer.shap_values(X[model.features_], tree_limit=best)
    sv = np.asarray(sv[1] if isinstance(sv, list) else sv)
    a, b = model.calibration_
    w = model.blend_weight_  # the trees' share of the margin; the splines' terms are the rest
    spline = (1 - w) * model.spline_.terms(X[model.features_]) if w < 1 else 0.0
    ours = ex.contributions(X).to_numpy()
    assert np.abs(ours).max() > 0.1  # real contributions
    np.testing.assert_allclose(ours, a * (w * sv + spline), atol=1e-6)
    ref = booster.predict(X[model.features_], pred_contrib=True, num_iteration=best)
    np.testing.assert_allclose(ours, a * (w * ref[:, :-1] + spline), atol=1e-9)
    base = w * ref[0, -1] + ((1 - w) * model.spline_.expected_value if w < 1 else 0.0)
    assert ex.expected_value == pytest.approx(a * base + b, abs=1e-9)


def test_spline_terms_are_exact_shap_values(upgrade):
    """The splines are additive: a feature's SHAP value (interventional, against the
    training rows) is its term minus the term's mean, so changing one feature moves the
    log-odds by exactly the change in its term."""
    from segments.core.upgrade.splines import SplineLogistic

    result, _ = upgrade
    # The chosen model's splines when it has them, else splines fitted here: never skipped.
    spline = result.model.spline_ or SplineLogistic(result.model.features_).fit(
        result.data, result.data["label"]
    )
    X = result.test.head(200)[result.model.features_].copy()
    terms = spline.terms(X)
    np.testing.assert_allclose(
        terms.sum(axis=1) + spline.expected_value, spline.decision_function(X), atol=1e-9
    )
    j = result.model.features_.index("gap_ratio")
    X2 = X.copy()
    X2["gap_ratio"] = X2["gap_ratio"] * 0.9
    moved = spline.decision_function(X2) - spline.decision_function(X)
    np.testing.assert_allclose(moved, spline.terms(X2)[:, j] - terms[:, j], atol=1e-9)


def test_planted_drivers_rank_high_globally(upgrade):
    result, ex = upgrade
    top = list(ex.global_importance(result.test).index[:8])
    assert {"payroll_avg_6m", "payroll_ratio_6m", "inflow_turnover_3m"} & set(top)
    assert top[0] in ("gap_ratio", "gap_to_next")  # distance to the threshold leads


def test_reason_codes_columns_and_directions(upgrade):
    result, ex = upgrade
    X = result.test.head(200)
    phi = ex.contributions(X)
    up = ex.reason_codes(X, k=3, contributions=phi)
    assert list(up.columns[:5]) == [
        "reason_1_feature",
        "reason_1_value",
        "reason_1_contribution",
        "reason_1_text",
        "reason_1_text_zh",
    ]
    assert (up["reason_1_contribution"].dropna() > 0).all()
    assert (up["reason_1_contribution"].fillna(0) >= up["reason_2_contribution"].fillna(0)).all()
    row = up.iloc[0]
    assert row["reason_1_contribution"] == pytest.approx(phi.iloc[0].max())
    down = ex.reason_codes(X, k=2, direction="down", contributions=phi)
    assert (down["reason_1_contribution"].dropna() < 0).all()
    assert down["reason_1_text"].dropna().str.contains("lowers").all()
    assert down["reason_1_text_zh"].dropna().str.contains("降低").all()
    with pytest.raises(ConfigError):
        ex.reason_codes(X, direction="sideways")


def test_a_customer_whose_reason_a_person_can_check(upgrade):
    """Two customers identical but for payroll: payroll is the reason that differs."""
    result, ex = upgrade
    row = result.test[result.test["payroll_avg_6m"] > 10_000].head(1)
    twin = row.copy()
    for c in ("payroll_avg_6m", "payroll_ratio_6m", "payroll_regularity_6m"):
        twin[c] = 0.0
    phi = ex.contributions(pd.concat([row, twin]))
    diff = (phi.iloc[0] - phi.iloc[1]).abs().sort_values(ascending=False)
    assert diff.index[0] in (
        "payroll_avg_6m",
        "payroll_ratio_6m",
        "payroll_regularity_6m",
        "inflow_turnover_3m",
    )


@pytest.mark.parametrize("sign, effect", [(1.0, "raises"), (-1.0, "lowers")])
def test_english_sentences_name_every_catalogue_feature_and_direction(sign, effect):
    for name, spec in FEATURE_CATALOGUE.items():
        value = "near_gold" if spec.unit == "category" else 1.5
        text = reason_sentence(name, value, sign, "en")
        label = spec.en[0].upper() + spec.en[1:]
        assert text.startswith(f"{label} is "), (name, text)
        assert text.endswith(f", which {effect} the chance of reaching the next tier"), text
        shown = text[len(f"{label} is ") : -len(f", which {effect} the chance of reaching")]
        assert shown.strip(), text  # the value is in the sentence


@pytest.mark.parametrize("sign, effect", [(1.0, "提升"), (-1.0, "降低")])
def test_chinese_sentences_name_every_catalogue_feature_and_direction(sign, effect):
    for name, spec in FEATURE_CATALOGUE.items():
        value = "near_gold" if spec.unit == "category" else 1.5
        text = reason_sentence(name, value, sign, "zh")
        assert text.startswith(f"{spec.zh}为"), (name, text)
        assert text.endswith(f"，{effect}升级可能"), text
        assert len(text) > len(f"{spec.zh}为，{effect}升级可能"), text


def test_sentences_format_values_by_unit():
    end = "which raises the chance of reaching the next tier"
    assert reason_sentence("wealth_share", 0.35, 1.0) == (
        f"Share of AUM in wealth-management products is 35%, {end}"
    )
    assert reason_sentence("payroll_avg_6m", 12_345.6, 1.0) == (
        f"Average monthly payroll over the last 6 months is 12,346, {end}"
    )
    assert reason_sentence("aum_growth_3m", float("nan"), 1.0) == (
        f"AUM growth over the last 3 months is unknown, {end}"
    )
    assert (
        reason_sentence("months_since_txn", 2, -1.0, "zh")
        == "距最近一次交易的月数为2个月，降低升级可能"
    )
    assert (
        reason_sentence("payroll_avg_6m", 12_345.6, -1.0, "zh")
        == "近6个月月均代发工资为12,346，降低升级可能"
    )


def test_group_surrogate_fidelity_and_top_features():
    raw, truth = make_bank(5_000, 24, seed=21)
    X = build_features(validate_panel(raw))
    groups = StrategicGroups(random_state=0).fit(X)
    feats = X[groups.features_]
    sur = GroupSurrogate().fit(feats, groups.labels_)
    assert sur.fidelity_ >= 0.9
    top = sur.top_features(3)
    assert set(top["group_id"]) == set(groups.labels_)
    # The retired group's membership is explained by age or branch visits.
    personas = truth.set_index("customer_id")["persona"].reindex(X.index)
    retired = pd.Series(groups.labels_)[personas.to_numpy() == "retired_depositor"].mode()[0]
    feats_retired = set(top[top["group_id"] == retired]["feature"])
    assert feats_retired & {
        "age",
        "branch_visits_avg_6m",
        "time_deposit_share",
        "digital_share_6m",
        "tenure_months",
    }
    reasons = sur.customer_reasons(feats, groups.labels_, k=2)
    assert reasons["group_reason_1"].notna().all()


def test_group_importance_on_a_sample_of_members_estimates_the_full_mean():
    raw, _ = make_bank(3_000, 18, seed=4)
    X = build_features(validate_panel(raw))
    groups = StrategicGroups(n_groups=5, n_bootstrap=0, n_init=3, random_state=0).fit(X)
    feats, y = X[groups.features_], groups.labels_
    full = GroupSurrogate(n_estimators=40, importance_size=5 * len(y)).fit(feats, y)
    # every member counted: exactly the mean of each group's own contributions
    contrib = full.contributions(feats)
    for g in full.classes_:
        want = contrib[g][y == g].mean()
        np.testing.assert_allclose(full.group_importance_.loc[g], want, rtol=1e-12)
    part = GroupSurrogate(n_estimators=40, importance_size=500).fit(feats, y)
    assert not np.allclose(part.group_importance_, full.group_importance_)  # a sample
    # 100 members a group find each group's leading feature
    for g in full.classes_:
        assert part.group_importance_.loc[g].idxmax() == full.group_importance_.loc[g].idxmax()
