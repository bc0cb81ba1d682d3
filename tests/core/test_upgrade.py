"""Upgrade labels, out-of-time split, model vs baselines, ranks and call lists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments import ConfigError, assign_tiers, validate_panel
from segments.core.upgrade.calls import call_list, expected_gain
from segments.core.upgrade.labels import (
    NotEnoughDataError,
    build_training_set,
    make_labels,
    oot_split,
)
from segments.core.upgrade.metrics import decile_table, evaluate
from segments.core.upgrade.ranks import rank_within
from tests.conftest import panel_of

MONTHS = [str(m) for m in pd.period_range("2024-01", periods=7, freq="M")]


def tiny_tiers(hysteresis=None):
    paths = {
        "A": [40e3, 45e3, 52e3, 48e3, 55e3, 56e3, 57e3],  # reaches, does not sustain 3
        "B": [40e3, 51e3, 52e3, 53e3, 54e3, 55e3, 56e3],  # reaches and sustains
        "C": [35e3] * 7,  # stays near gold
        "D": [40e3, 41e3],  # leaves: censored
        "E": [40e3, 60e3],  # leaves after reaching: reach known, sustain censored
        "F": [10e3] * 7,  # not near-tier
    }
    rows = [(c, MONTHS[i], a) for c, path in paths.items() for i, a in enumerate(path)]
    return assign_tiers(validate_panel(panel_of(rows)), hysteresis=hysteresis)


def labels_of(frame):
    return {r.customer_id: (None if r.censored else int(r.label)) for r in frame.itertuples()}


def test_reach_labels_and_censoring():
    lab = make_labels(tiny_tiers(), "2024-01", horizon=3)
    assert labels_of(lab) == {"A": 1, "B": 1, "C": 0, "D": None, "E": 1}
    assert "F" not in set(lab["customer_id"])
    a = lab.set_index("customer_id").loc["A"]
    assert a["gap_to_next"] == pytest.approx(10_000) and a["near_band"] == "near_gold"


def test_sustain_labels():
    lab = make_labels(tiny_tiers(), "2024-01", horizon=3, kind="sustain", sustain_months=3)
    # A: no 3-month run at gold starting in Feb..Apr; B: Feb-Apr; E: left, unknown.
    assert labels_of(lab) == {"A": 0, "B": 1, "C": 0, "D": None, "E": None}


def test_panel_end_censors_unless_already_reached():
    lab = make_labels(tiny_tiers(), "2024-05", horizon=3)
    # In May only C is near gold; June and July are known, August is not: censored.
    assert labels_of(lab) == {"C": None}


def test_below_top_population():
    lab = make_labels(tiny_tiers(), "2024-01", horizon=3, population="below_top")
    assert set(lab["customer_id"]) == {"A", "B", "C", "D", "E", "F"}
    assert labels_of(lab)["F"] == 0


def test_hysteresis_ladder_labels_use_held_tiers():
    rows = [
        ("H", m, a) for m, a in zip(MONTHS, [60e3, 40e3, 40e3, 40e3, 40e3, 40e3, 40e3], strict=True)
    ]
    tiers = assign_tiers(validate_panel(panel_of(rows)), hysteresis="ccb")
    # Held at gold (on grace/watch) while below: not near gold, so not in the population.
    assert make_labels(tiers, "2024-02", horizon=3).empty
    plain = assign_tiers(validate_panel(panel_of(rows)))
    assert labels_of(make_labels(plain, "2024-02", horizon=3)) == {"H": 0}


def test_bad_label_options():
    with pytest.raises(ConfigError) as info:
        make_labels(tiny_tiers(), "2024-01", horizon=0, kind="stay", population="all")
    assert {v.column for v in info.value.violations} == {
        "upgrade.horizon",
        "upgrade.label",
        "upgrade.population",
    }


def test_oot_split_has_an_embargo():
    months = [str(m) for m in pd.period_range("2024-07", "2025-09", freq="M")]
    split = oot_split(months, horizon=3, test_months=2, valid_months=2)
    assert split["test"] == ["2025-08", "2025-09"]
    assert split["valid"] == ["2025-04", "2025-05"]
    assert split["train"][-1] == "2025-01"
    last_train_label = pd.Period(split["train"][-1], "M") + 3
    assert last_train_label <= pd.Period(split["valid"][0], "M")
    assert pd.Period(split["valid"][-1], "M") + 3 <= pd.Period(split["test"][0], "M")
    with pytest.raises(NotEnoughDataError):
        oot_split(months[:4], horizon=3)


def test_training_set_leakage(small_panel):
    tiers = assign_tiers(small_panel)
    t, H = pd.Period("2025-03", "M"), 3
    data, counts = build_training_set(small_panel, tiers, [t], horizon=H)
    assert counts.loc["2025-03", "positives"] > 0 and counts.loc["2025-03", "negatives"] > 0
    # Altering months after t + H changes nothing at all (features or labels).
    after = small_panel["month"] > t + H
    altered = small_panel.copy()
    altered.loc[after, "aum"] = altered.loc[after, "aum"] * 5 + 1e6
    data2, _ = build_training_set(altered, assign_tiers(altered), [t], horizon=H)
    pd.testing.assert_frame_equal(data, data2)
    # Altering months in (t, t + H] may change labels but no feature.
    window = (small_panel["month"] > t) & ~after
    altered = small_panel.copy()
    altered.loc[window, "aum"] = altered.loc[window, "aum"] * 3 + 1e5
    data3, _ = build_training_set(altered, assign_tiers(altered), [t], horizon=H)
    # (Labels move, and a censored customer can become labelled once an upgrade shows.)
    both = data[data["customer_id"].isin(data3["customer_id"])].reset_index(drop=True)
    both3 = data3[data3["customer_id"].isin(data["customer_id"])].reset_index(drop=True)
    assert len(both) == len(data)
    pd.testing.assert_frame_equal(both.drop(columns="label"), both3.drop(columns="label"))
    assert not both["label"].equals(both3["label"])


def test_training_rows_have_the_features_of_the_whole_panel(small_panel):
    """Features are built from the labelled customers' rows only: the same values as a
    whole-panel build, row for row."""
    from segments import build_features

    tiers = assign_tiers(small_panel)
    months = ["2024-09", "2025-01", "2025-03"]
    data, _ = build_training_set(small_panel, tiers, months, horizon=3)
    for t in months:
        rows = data[data["as_of"] == t].set_index("customer_id")
        whole = build_features(small_panel, t).reindex(rows.index)
        assert len(rows) < len(build_features(small_panel, t))  # a part of the book
        pd.testing.assert_frame_equal(rows[whole.columns], whole, check_names=False)


def test_evaluate_and_deciles_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    m = evaluate(y, p)
    assert m["roc_auc"] == pytest.approx(15 / 16)
    assert m["lift_top10"] == pytest.approx(1.0 / 0.2)  # the top 1 of 10 is an upgrade
    assert m["capture_top20"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    d = decile_table(y, p)
    assert d["customers"].sum() == 10 and d.loc[1, "upgrades"] == 1
    assert d["cumulative_capture"].iloc[-1] == pytest.approx(1.0)


def test_expected_gain_ranks_and_call_list():
    g = expected_gain(
        [0.5, 0.1],
        [20_000, 100_000],
        next_tier=["gold", "sunflower"],
        tier_values={"gold": 600.0, "sunflower": 6_000.0},
    )
    assert g["expected_gain"].tolist() == [10_000, 10_000]
    assert g["expected_value"].tolist() == [300.0, 600.0]
    r = rank_within(pd.Series([0.9, 0.1, 0.5, 0.7]), pd.Series(["a", "a", "b", "b"]))
    assert r["percentile"].tolist() == [50, 100, 100, 50]
    assert r["permille"].tolist() == [500, 1000, 1000, 500]
    scored = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(7)],
            "branch_id": ["X"] * 5 + ["Y"] * 2,
            "p_upgrade": np.linspace(0.9, 0.3, 7),
            "expected_gain": [5, 4, 3, 2, 1, 9, 8],
        }
    )
    calls = call_list(scored, capacity_per_rm=1, rms_per_branch=2)
    assert calls["customer_id"].tolist() == ["C0", "C1", "C5", "C6"]
    assert calls["rm_slot"].tolist() == [1, 2, 1, 2]
    with pytest.raises(ConfigError):
        call_list(scored, capacity_per_rm=0)


def test_sustain_on_a_hysteresis_ladder_needs_the_basis_to_stay_up():
    """A one-month touch of gold: held for months under CCB's rule, but not sustained."""
    touch = [40e3, 55e3, 40e3, 40e3, 40e3, 40e3, 40e3]
    kept = [40e3, 55e3, 56e3, 57e3, 40e3, 40e3, 40e3]
    rows = [
        (c, m, a)
        for c, path in (("T", touch), ("K", kept))
        for m, a in zip(MONTHS, path, strict=True)
    ]
    panel = validate_panel(panel_of(rows))
    for hysteresis in (None, "ccb"):
        tiers = assign_tiers(panel, hysteresis=hysteresis)
        reach = make_labels(tiers, "2024-01", horizon=3)
        sustain = make_labels(tiers, "2024-01", horizon=3, kind="sustain", sustain_months=3)
        assert labels_of(reach) == {"T": 1, "K": 1}
        assert labels_of(sustain) == {"T": 0, "K": 1}, hysteresis
    held = assign_tiers(panel, hysteresis="ccb")
    assert held[held["customer_id"] == "T"]["tier"].tolist()[1:4] == ["gold"] * 3


def test_sustain_split_embargo_covers_the_longer_window(small_panel):
    from segments import load_config, train_upgrade

    cfg = load_config(
        overrides={
            "upgrade": {
                "label": "sustain",
                "sustain_months": 3,
                "test_months": 1,
                "valid_months": 1,
            }
        }
    )
    result = train_upgrade(small_panel, cfg)
    span = 3 + 3 - 1
    split = {k: [pd.Period(m, "M") for m in v] for k, v in result.split.items()}
    assert max(split["train"]) + span <= min(split["valid"])
    assert max(split["valid"]) + span <= min(split["test"])
    assert max(split["test"]) + span <= small_panel["month"].max()


def _toy(seed=0, n=400):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"gap_ratio": rng.random(n), "aum_avg_3m": rng.lognormal(10, 1, n)})
    y = (rng.random(n) < 0.1 + 0.5 * X["gap_ratio"]).astype(int)
    X["customer_id"] = [f"c{i}" for i in range(n)]  # carried along, not a feature
    return X, y


SMALL = {"n_estimators": 20, "min_child_samples": 5}


def test_num_leaves_over_treeshap_limit_refused_before_training(monkeypatch):
    from segments.core.config.params import ParameterError
    from segments.core.upgrade.model import UpgradeModel

    def no_training(self):
        raise AssertionError("trained before checking num_leaves")

    monkeypatch.setattr(UpgradeModel, "_lgbm", no_training)
    X, y = _toy()
    with pytest.raises(ParameterError) as info:
        UpgradeModel(["gap_ratio"], num_leaves=200).fit(X, y)
    assert isinstance(info.value, ConfigError)
    [v] = info.value.violations
    assert v.column == "upgrade.model.num_leaves" and "200" in v.problem and "65" in v.problem


def test_calibration_records_where_and_warns_without_eval_set():
    from segments.core.upgrade.model import UpgradeModel
    from segments.exceptions import SegmentsWarning

    X, y = _toy()
    Xv, yv = _toy(1)
    feats = ["gap_ratio", "aum_avg_3m"]
    with pytest.warns(SegmentsWarning, match="no eval_set"):
        on_train = UpgradeModel(feats, **SMALL).fit(X, y)
    assert on_train.calibrated_on_ == "train"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", SegmentsWarning)
        on_eval = UpgradeModel(feats, **SMALL).fit(X, y, eval_set=(Xv, yv))
        raw = UpgradeModel(feats, **SMALL, calibration=None).fit(X, y)
    assert on_eval.calibrated_on_ == "eval" and raw.calibrated_on_ is None
    assert on_eval.calibration_ != on_train.calibration_


def test_fitted_attributes_named_for_what_they_are_and_old_pickles_load():
    import pickle

    import lightgbm as lgb

    from segments.core.upgrade.model import UpgradeModel

    X, y = _toy()
    model = UpgradeModel(["gap_ratio", "aum_avg_3m"], **SMALL).fit(X, y, eval_set=(X, y))
    assert isinstance(model.classifier_, lgb.LGBMClassifier)
    assert isinstance(model.booster_, lgb.Booster)
    # A model pickled by segments <= 0.2 held the LGBMClassifier as booster_.
    state = dict(model.__getstate__())
    state["booster_"] = state.pop("classifier_")
    del state["calibrated_on_"]
    old = pickle.loads(pickle.dumps(model)).__class__.__new__(UpgradeModel)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert isinstance(old.classifier_, lgb.LGBMClassifier) and "booster_" not in vars(old)
    assert isinstance(old.booster_, lgb.Booster)
    assert old.calibrated_on_ == "unknown"
    np.testing.assert_allclose(old.predict_proba(X), model.predict_proba(X))
