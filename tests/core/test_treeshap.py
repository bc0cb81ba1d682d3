"""The fast exact TreeSHAP kernel agrees with LightGBM's pred_contrib and shap's TreeExplainer."""

from __future__ import annotations

import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from segments.core.explain.treeshap import FastTreeShap


def _data(seed: int, n: int = 1500) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.exponential(size=n),
            "c": pd.Categorical(rng.choice(list("pqrstuvw"), n)),
            "d": rng.integers(0, 4, n).astype(float),
            "e": rng.normal(size=n),
        }
    )
    X.loc[rng.random(n) < 0.1, "a"] = np.nan  # missing values take the default direction
    X.loc[rng.random(n) < 0.05, "c"] = np.nan
    logit = (
        np.nan_to_num(X["a"]) * X["b"]
        + X["c"].isin(["p", "q"]) * 1.5
        - 0.5 * X["d"]
        + 0.3 * X["e"] ** 2
    )
    y = (logit + rng.normal(size=n) > 0.5).astype(int).to_numpy()
    return X, y


def _codes(X: pd.DataFrame) -> np.ndarray:
    A = X.copy()
    A["c"] = A["c"].cat.codes.astype(float).replace(-1, np.nan)
    return A.to_numpy(dtype=float)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "params",
    [
        {"num_leaves": 15, "max_depth": 6},
        {"num_leaves": 31, "max_depth": -1},
        {"num_leaves": 4, "max_depth": 2},
    ],
)
def test_matches_pred_contrib_and_shap(seed, params):
    X, y = _data(seed)
    model = lgb.LGBMClassifier(
        n_estimators=60, learning_rate=0.1, verbose=-1, random_state=seed, **params
    ).fit(X, y)
    booster = model.booster_
    fast = FastTreeShap(booster)
    phi = fast.shap_values(_codes(X))
    ref = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(phi, ref[:, :-1], atol=1e-9)
    assert fast.expected_value == pytest.approx(ref[0, -1], abs=1e-9)
    raw = booster.predict(X, raw_score=True)
    np.testing.assert_allclose(phi.sum(axis=1) + fast.expected_value, raw, atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import shap

        explainer = shap.TreeExplainer(model)
        sv = explainer.shap_values(X.iloc[:200])
    sv = sv[1] if isinstance(sv, list) else sv
    np.testing.assert_allclose(phi[:200], np.asarray(sv), atol=1e-6)


def _leaves(booster: lgb.Booster) -> list[int]:
    return [t["num_leaves"] for t in booster.dump_model()["tree_info"]]


def test_single_leaf_trees_count_in_the_expected_value_only():
    X, y = _data(3, 300)
    base = {"objective": "binary", "num_leaves": 8, "verbose": -1, "seed": 0}
    # No split can leave 200 of 300 rows on both sides: LightGBM keeps one single-leaf tree
    # (the log-odds of the base rate) and stops.
    stump = lgb.train({**base, "min_data_in_leaf": 200}, lgb.Dataset(X, y), 30)
    assert _leaves(stump) == [1]
    log_odds = float(np.log(y.mean() / (1 - y.mean())))
    fast = FastTreeShap(stump)
    assert fast.expected_value == pytest.approx(log_odds, abs=1e-9)
    np.testing.assert_array_equal(fast.shap_values(_codes(X)), np.zeros(X.shape))
    # Real trees grown on top of it: the single-leaf tree moves only the base value.
    model = lgb.train({**base, "min_data_in_leaf": 20}, lgb.Dataset(X, y), 20, init_model=stump)
    leaves = _leaves(model)
    assert leaves[0] == 1 and min(leaves[1:]) > 1 and len(leaves) == 21
    fast = FastTreeShap(model)
    phi = fast.shap_values(_codes(X))
    ref = model.predict(X, pred_contrib=True)
    assert np.abs(phi).max() > 0.5  # real contributions, not zeros
    np.testing.assert_allclose(phi, ref[:, :-1], atol=1e-9)
    assert fast.expected_value == pytest.approx(ref[0, -1], abs=1e-9)
    raw = model.predict(X, raw_score=True)
    np.testing.assert_allclose(phi.sum(axis=1) + fast.expected_value, raw, atol=1e-9)


def test_best_iteration_matches_pred_contrib_there_and_not_the_full_model():
    X, y = _data(3)
    X_valid, y_valid = _data(4, 800)
    train = lgb.Dataset(X, y)
    booster = lgb.train(
        {"objective": "binary", "learning_rate": 0.3, "num_leaves": 15, "verbose": -1, "seed": 0},
        train,
        300,
        valid_sets=[lgb.Dataset(X_valid, y_valid, reference=train)],
        callbacks=[lgb.early_stopping(10, verbose=False)],
        keep_training_booster=True,  # keep the trees after the best iteration
    )
    best, total = booster.best_iteration, booster.num_trees()
    assert 1 < best < total  # early stopping stopped early, the later trees are there
    codes = _codes(X)
    fast = FastTreeShap(booster, num_iteration=best)
    phi = fast.shap_values(codes)
    ref = booster.predict(X, pred_contrib=True, num_iteration=best)
    np.testing.assert_allclose(phi, ref[:, :-1], atol=1e-9)
    assert fast.expected_value == pytest.approx(ref[0, -1], abs=1e-9)
    raw = booster.predict(X, raw_score=True, num_iteration=best)
    np.testing.assert_allclose(phi.sum(axis=1) + fast.expected_value, raw, atol=1e-9)
    # Without num_iteration every tree counts (LightGBM's predict needs -1 for that, since
    # its default is the best iteration); the trees after the best change the answer.
    everything = FastTreeShap(booster).shap_values(codes)
    full = booster.predict(X, pred_contrib=True, num_iteration=-1)
    np.testing.assert_allclose(everything, full[:, :-1], atol=1e-9)
    assert np.abs(everything - phi).mean() > 0.05
