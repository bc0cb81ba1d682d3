"""The upgrade model's choice among candidates, its refits, its calibration over time and its
monotone constraints (segments.core.upgrade.model, .selection, .splines)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments.core.upgrade.model import UpgradeModel
from segments.core.upgrade.selection import BLEND_WEIGHTS, gbm_trials
from segments.exceptions import ConfigError

SMALL = {"min_child_samples": 20, "n_estimators": 300}


def _rows(n: int, month: int, rng: np.random.Generator, drift: float = 0.0) -> pd.DataFrame:
    """Rows of one as-of month: a smooth non-linear signal in x0, a linear one in x1, noise
    in x2, a categorical; the log-odds rise by ``drift`` per month (a moving base rate)."""
    x = rng.normal(size=(n, 3))
    cat = rng.choice(["a", "b", "c"], size=n)
    logit = -1.5 + np.tanh(2 * x[:, 0]) * 1.5 + 0.8 * x[:, 1] + (cat == "a") * 0.5
    logit = logit + drift * month
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "cat": pd.Categorical(cat)})
    frame["as_of"] = f"2025-{month + 1:02d}"
    frame["label"] = y
    return frame


def _months(months: range, n: int = 1500, drift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.concat([_rows(n, m, rng, drift) for m in months], ignore_index=True)
    frame["cat"] = pd.Categorical(frame["cat"].astype(str), categories=["a", "b", "c"])
    return frame


FEATURES = ["x0", "x1", "x2", "cat"]


@pytest.fixture(scope="module")
def fitted():
    train, valid = _months(range(0, 4)), _months(range(5, 6), seed=1)
    model = UpgradeModel(FEATURES, search=3, **SMALL)
    model.fit(train, train["label"], eval_set=(valid, valid["label"]))
    return model, train, valid


def test_every_candidate_is_recorded_and_the_lowest_validation_log_loss_wins(fitted):
    model, _, _ = fitted
    sel = model.selection_
    names = set(sel["candidate"])
    assert {"gbm", "gbm_search_1", "gbm_search_2", "gbm_search_3", "spline"} <= names
    assert {f"blend_{w:g}" for w in BLEND_WEIGHTS} <= names
    assert sel["chosen"].sum() == 1
    win = sel[sel["chosen"]].iloc[0]
    assert win["valid_log_loss"] == sel["valid_log_loss"].min()
    assert model.kind_ == win["kind"]
    assert sel["valid_auc"].between(0.6, 1).all()  # every candidate learnt something


def test_the_chosen_candidate_is_refitted_on_train_and_validation_rows(fitted):
    model, train, valid = fitted
    assert model.refitted_ and model.fitted_rows_ == len(train) + len(valid)
    win = model.selection_.query("chosen").iloc[0]
    if model.kind_ != "spline":
        assert model.best_iteration_ == round(win["trees"] * model.fitted_rows_ / len(train))
    kept = UpgradeModel(FEATURES, search=3, refit=False, **SMALL).fit(
        train, train["label"], eval_set=(valid, valid["label"])
    )
    assert not kept.refitted_ and kept.fitted_rows_ == len(train)
    # The same choice; the refit is what differs.
    assert kept.selection_["candidate"].tolist() == model.selection_["candidate"].tolist()


def test_the_search_is_seeded_and_its_points_distinct():
    base = UpgradeModel()._gbm_params()
    a, b = gbm_trials(base, 5, 0), gbm_trials(base, 5, 0)
    assert a == b and a[0] == base and len(a) == 6
    assert len({tuple(sorted((k, str(v)) for k, v in p.items())) for p in a}) == 6
    assert gbm_trials(base, 5, 1) != a


def test_a_floor_on_trees_where_early_stopping_keeps_almost_none():
    rng = np.random.default_rng(3)
    noise = pd.DataFrame(rng.normal(size=(3000, 3)), columns=["a", "b", "c"])
    y = rng.integers(0, 2, 3000)
    train, valid = noise.iloc[:2000], noise.iloc[2000:]
    model = UpgradeModel(search=0, candidates=("gbm",), min_trees=15, **SMALL).fit(
        train, y[:2000], eval_set=(valid, y[2000:])
    )
    # Pure noise: early stopping alone keeps a tree or two (checked with the floor at 1).
    bare = UpgradeModel(search=0, candidates=("gbm",), min_trees=1, refit=False, **SMALL)
    bare.fit(train, y[:2000], eval_set=(valid, y[2000:]))
    assert bare.best_iteration_ < 15
    assert model.selection_["trees"].iloc[0] == 15


def test_monotone_constraints_hold_and_leave_only_the_trees():
    train, valid = _months(range(0, 4)), _months(range(5, 6), seed=1)
    # x0's true effect is increasing but the noise makes an unconstrained model wiggle.
    grid = valid.head(200).copy()
    lines = []
    for monotone in ({"x0": 1}, None):
        model = UpgradeModel(FEATURES, search=1, monotone=monotone, **SMALL)
        model.fit(train, train["label"], eval_set=(valid, valid["label"]))
        p = []
        for v in np.linspace(-3, 3, 61):
            grid["x0"] = v
            p.append(model.decision_function(grid))
        lines.append((model, np.diff(np.array(p), axis=0)))
    (constrained, steps), (free, free_steps) = lines
    assert (steps >= -1e-12).all()
    assert (free_steps < -1e-6).any()  # without the constraint it does go down somewhere
    assert set(constrained.selection_["kind"]) == {"gbm"}
    assert "spline" in set(free.selection_["kind"])


def test_a_monotone_constraint_on_an_unknown_feature_is_a_named_error():
    train, valid = _months(range(0, 2), n=300), _months(range(3, 4), n=300)
    with pytest.raises(ConfigError, match=r"upgrade\.model\.monotone\.nope"):
        UpgradeModel(FEATURES, monotone={"nope": 1}).fit(
            train, train["label"], eval_set=(valid, valid["label"])
        )
    with pytest.raises(ConfigError, match=r"upgrade\.model\.candidates"):
        UpgradeModel(FEATURES, candidates=("forest",)).fit(train, train["label"])


def test_calibration_follows_a_rising_base_rate():
    """The base rate rises every month. Calibrated on the training months, the model
    under-predicts the later months; calibrated on the validation months (the most
    recent before the test) it is much closer, and refitting on every month and
    calibrating on the newest labelled months with the prior shift is closer still."""
    rows = _months(range(0, 12), n=2000, drift=0.12, seed=5)
    month = rows["as_of"].str[-2:].astype(int) - 1
    train, valid, test = rows[month <= 5], rows[month.isin([7, 8])], rows[month == 11]
    recent = rows[month.isin([9, 10])]
    y_test = test["label"].mean()

    def gap(model: UpgradeModel, frame: pd.DataFrame = test) -> float:
        return abs(model.predict_proba(frame)[:, 1].mean() - y_test)

    old = UpgradeModel(FEATURES, search=0, candidates=("gbm",), n_estimators=100, **{
        "min_child_samples": 20})  # fmt: skip
    with pytest.warns(Warning, match="no eval_set"):
        old.fit(train, train["label"])
    model = UpgradeModel(FEATURES, search=1, prior_shift=True, **SMALL)
    model.fit(train, train["label"], eval_set=(valid, valid["label"]))
    assert model.calibrated_on_ == "eval"
    last = valid[valid["as_of"] == valid["as_of"].max()]
    assert gap(model) < gap(old) - 0.02
    every = rows[month <= 10]
    deployed = model.refitted(every, every["label"], calibrate_on=(recent, recent["label"]))
    assert deployed is not model and deployed.calibrated_on_ == "recent"
    assert deployed.fitted_rows_ == len(every) and model.fitted_rows_ < len(every)
    assert gap(deployed) < gap(model)
    kept = model.refitted(every, every["label"])  # the same refit, the old map kept
    assert kept.calibrated_on_ == "eval" and gap(deployed) < gap(kept)
    assert last["label"].mean() > train["label"].mean()  # the premise: it does rise


def test_the_prior_shift_matches_the_latest_calibration_month():
    rows = _months(range(0, 9), n=1500, drift=0.15, seed=7)
    train, valid = rows[rows["as_of"] <= "2025-05"], rows[rows["as_of"] >= "2025-08"]
    last = valid[valid["as_of"] == "2025-09"]
    means = {}
    for shift in (True, False):
        model = UpgradeModel(FEATURES, search=0, refit=False, prior_shift=shift, **SMALL)
        model.fit(train, train["label"], eval_set=(valid, valid["label"]))
        means[shift] = model.predict_proba(last)[:, 1].mean()
    assert means[True] == pytest.approx(last["label"].mean(), abs=1e-6)
    assert abs(means[False] - last["label"].mean()) > 0.005  # Platt alone averages months


def test_the_trend_rate_reads_the_line_of_the_monthly_rates_in_log_odds():
    from segments.core.upgrade.selection import trend_rate

    months, labels = [], []
    for i in range(6):  # log-odds of the rate: -2 + 0.2 per month from January, 2,000 rows
        n, rate = 2000, 1 / (1 + np.exp(-(-2 + 0.2 * i)))
        months += [f"2025-{i + 1:02d}"] * n
        labels += [1] * round(n * rate) + [0] * (n - round(n * rate))
    months, labels = np.array(months), np.array(labels)
    for at, i in (("2025-09", 8), ("2025-03", 2), ("2024-12", -1)):
        assert trend_rate(months, labels, at) == pytest.approx(
            1 / (1 + np.exp(2 - 0.2 * i)), abs=1e-3
        )
    two = months <= "2025-02"
    assert trend_rate(months[two], labels[two], "2025-09") is None  # no line through 2 months


def test_the_trend_prior_shift_follows_a_rising_base_rate_out_of_time():
    rows = _months(range(0, 11), n=1500, drift=0.12, seed=3)
    train, valid = (
        rows[rows["as_of"] <= "2025-05"],
        rows[rows["as_of"].isin(["2025-06", "2025-07"])],
    )
    scored = rows[rows["as_of"] == "2025-10"]  # 3 months after the latest calibration month
    gaps = {}
    for shift in (False, "latest", "trend"):
        model = UpgradeModel(FEATURES, search=0, prior_shift=shift, prior_shift_lead=3, **SMALL)
        model.fit(train, train["label"], eval_set=(valid, valid["label"]))
        gaps[shift] = scored["label"].mean() - model.predict_proba(scored)[:, 1].mean()
    assert gaps[False] > 0.03  # the premise: calibration on past months under-predicts
    assert abs(gaps["trend"]) < 0.02
    assert abs(gaps["trend"]) < abs(gaps["latest"]) < gaps[False]
    with pytest.raises(Exception, match="prior_shift"):
        UpgradeModel(FEATURES, prior_shift="sideways").fit(train, train["label"])
