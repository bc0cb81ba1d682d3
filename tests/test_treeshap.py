"""The fast exact TreeSHAP kernel agrees with LightGBM's pred_contrib and shap's TreeExplainer."""

from __future__ import annotations

import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from segments.core.treeshap import FastTreeShap


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


def test_single_leaf_trees_and_best_iteration():
    X, y = _data(3, 300)
    model = lgb.LGBMClassifier(n_estimators=30, min_child_samples=200, verbose=-1).fit(X, y)
    fast = FastTreeShap(model.booster_, num_iteration=10)
    ref = model.booster_.predict(X, pred_contrib=True, num_iteration=10)
    np.testing.assert_allclose(fast.shap_values(_codes(X)), ref[:, :-1], atol=1e-9)
