"""The stratified sample a fit takes above its size keeps every stratum's share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments.core.sampling import FitSample, stratified_sample


def _strata(n=10_000, seed=0):
    rng = np.random.default_rng(seed)
    tier = rng.choice(["mass", "gold", "sunflower", "diamond"], n, p=[0.7, 0.2, 0.09, 0.01])
    label = rng.random(n) < 0.1
    return pd.DataFrame({"tier": tier, "label": label})


@pytest.mark.parametrize("size", [37, 500, 2_345])
def test_exact_size_and_each_stratum_in_its_share(size):
    strata = _strata()
    rows = stratified_sample(strata, size, 3)
    assert len(rows) == size and len(np.unique(rows)) == size
    assert np.all(np.diff(rows) > 0)  # sorted positions
    whole = strata.value_counts()
    got = strata.iloc[rows].value_counts().reindex(whole.index, fill_value=0)
    expected = whole / len(strata) * size
    # largest-remainder rounding: within one row of the share, but at least one row
    assert (got >= 1).all()
    assert ((np.abs(got - expected) < 1) | ((got == 1) & (expected < 1))).all()


def test_a_rare_stratum_is_never_left_out():
    strata = pd.Series(["mass"] * 9_999 + ["private"], name="tier")
    rows = stratified_sample(strata, 50, 0)
    assert len(rows) == 50 and 9_999 in rows


def test_same_seed_same_sample_and_another_seed_another():
    strata = _strata()
    a, b = stratified_sample(strata, 800, 1), stratified_sample(strata, 800, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, stratified_sample(strata, 800, 2))
    rs = stratified_sample(strata, 800, np.random.RandomState(5))
    assert len(rs) == 800


def test_no_sample_at_or_above_the_size():
    strata = _strata(300)
    np.testing.assert_array_equal(stratified_sample(strata, 300, 0), np.arange(300))
    np.testing.assert_array_equal(stratified_sample(strata, 10_000, 0), np.arange(300))


def test_missing_values_are_a_stratum_of_their_own():
    strata = pd.Series([None] * 100 + ["a"] * 900, name="band")
    rows = stratified_sample(strata, 100, 0)
    assert (rows < 100).sum() == 10


def test_fit_sample_params():
    assert FitSample(10, 10, ("tier",)).as_params("groups")["groups.fit_strata"] == ""
    assert not FitSample(10, 10).sampled and FitSample(9, 10).sampled
