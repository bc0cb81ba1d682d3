"""The strategic-group estimator: sklearn contract, evidence for k, persona recovery,
stability and stable ids across refits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from segments import ConfigError, StrategicGroups, build_features, make_bank, validate_panel
from segments.core.groups.algorithms import ALGORITHMS, Algorithm
from segments.core.groups.model import NotFittedGroupsError


@pytest.fixture(scope="module")
def bank():
    raw, truth = make_bank(5_000, 24, seed=21)
    panel = validate_panel(raw)
    X = build_features(panel)
    personas = truth.set_index("customer_id")["persona"].reindex(X.index)
    return panel, X, personas, truth


@pytest.fixture(scope="module")
def fitted(bank):
    _, X, _, _ = bank
    return StrategicGroups(random_state=0).fit(X)


def test_recovers_planted_personas_with_default_config(bank, fitted):
    """No knowledge of the truth: default features, k chosen on evidence."""
    _, _, personas, _ = bank
    ari = adjusted_rand_score(personas, fitted.labels_)
    assert fitted.n_groups_ == 7
    assert ari >= 0.9, ari
    assert min(fitted.stability_["jaccard"].values()) >= 0.8
    assert fitted.stability_["ari_mean"] >= 0.8


def test_k_selection_table_and_report(fitted):
    table = fitted.k_selection_
    assert list(table["k"]) == list(range(3, 11))
    for col in (
        "silhouette",
        "calinski_harabasz",
        "davies_bouldin",
        "stability",
        "min_share",
        "qualifies",
    ):
        assert col in table
    report = fitted.k_selection_report_
    assert report["chosen_k"] == fitted.n_groups_
    chosen = table.set_index("k").loc[fitted.n_groups_]
    assert chosen["qualifies"]
    best_qualifying = table[table["qualifies"]]["silhouette"].max()
    assert chosen["silhouette"] >= best_qualifying - 0.002
    # Disagreement is reported: the criteria named are exactly those preferring another k.
    for crit, k in report["best_k_by_criterion"].items():
        assert (crit in report["criteria_disagree"]) == (k != fitted.n_groups_)


def test_business_constraints_bound_k(bank):
    _, X, _, _ = bank
    capped = StrategicGroups(max_groups=5, n_bootstrap=2, n_init=3, random_state=0).fit(X)
    assert capped.n_groups_ <= 5 and capped.k_selection_["k"].max() == 5
    strict = StrategicGroups(
        min_group_share=0.15, k_range=(3, 8), n_bootstrap=2, n_init=3, random_state=0
    ).fit(X)
    chosen = strict.k_selection_.set_index("k").loc[strict.n_groups_]
    assert chosen["min_share"] >= 0.15


def test_gmm_has_soft_membership_and_bic(bank):
    _, X, _, _ = bank
    gmm = StrategicGroups(
        algorithm="gmm", k_range=(5, 8), n_bootstrap=2, n_init=3, random_state=0
    ).fit(X)
    assert "bic" in gmm.k_selection_
    proba = gmm.predict_proba(X)
    assert proba.shape == (len(X), gmm.n_groups_)
    assert np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(gmm.groups_[proba.argmax(axis=1)], gmm.predict(X))


@pytest.mark.parametrize("algorithm", ["minibatch_kmeans", "bisecting_kmeans"])
def test_other_algorithms_recover_most_structure(bank, algorithm):
    _, X, personas, _ = bank
    model = StrategicGroups(7, algorithm=algorithm, n_bootstrap=0, random_state=0).fit(X)
    assert adjusted_rand_score(personas, model.labels_) > 0.7


def test_contract_clone_refit_same_seed_same_groups(bank):
    _, X, _, _ = bank
    a = StrategicGroups(6, n_bootstrap=0, random_state=3).fit(X)
    b = clone(a).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict(X), a.labels_)
    assert a.transform(X).shape == (len(X), 6)
    np.testing.assert_array_equal(a.groups_[a.transform(X).argmin(axis=1)], a.labels_)
    with pytest.raises(NotFittedGroupsError):
        StrategicGroups().predict(X)
    with pytest.raises(ConfigError, match="aum_avg_6m"):
        a.predict(X.drop(columns="aum_avg_6m"))
    with pytest.raises(ConfigError, match=r"groups\.algorithm"):
        StrategicGroups(algorithm="dbscan").fit(X)
    with pytest.raises(ConfigError, match="no_such"):
        StrategicGroups(features=["no_such"]).fit(X)


def test_ids_are_kept_on_a_refit_at_a_later_month(bank, fitted):
    panel, X, personas, _ = bank
    earlier = build_features(panel, "2025-06")
    first = StrategicGroups(random_state=0).fit(earlier)
    later = StrategicGroups(random_state=1).fit(X, previous=first)
    assert set(later.match_report_["status"]) == {"kept"}
    ids_then = (
        pd.Series(first.labels_, index=earlier.index)
        .groupby(personas.reindex(earlier.index), observed=True)
        .agg(lambda s: s.mode()[0])
    )
    ids_now = (
        pd.Series(later.labels_, index=X.index)
        .groupby(personas, observed=True)
        .agg(lambda s: s.mode()[0])
    )
    pd.testing.assert_series_equal(ids_then, ids_now)


def test_a_planted_new_group_is_reported_new(bank):
    _, X, personas, _ = bank
    without = X[personas != "affluent_investor"]
    first = StrategicGroups(6, n_bootstrap=0, random_state=0).fit(without)
    second = StrategicGroups(7, n_bootstrap=0, random_state=0).fit(X, previous=first)
    report = second.match_report_
    new = report[report["status"] == "new"]
    assert len(new) == 1
    new_id = int(new["group_id"].iloc[0])
    assert new_id not in set(first.labels_)
    members = personas[second.labels_ == new_id]
    assert (members == "affluent_investor").mean() > 0.8
    assert (report["status"] == "kept").sum() == 6


def test_chained_refits_with_new_and_vanished_groups(bank):
    """Ids stop being 0..k-1 after a new group appears; everything keeps working."""
    _, X, personas, _ = bank
    no_affluent = X[personas != "affluent_investor"]
    no_retired = X[personas != "retired_depositor"]
    first = StrategicGroups(6, n_bootstrap=0, random_state=0).fit(no_affluent)
    second = StrategicGroups(6, n_bootstrap=0, random_state=0).fit(no_retired, previous=first)
    statuses = set(second.match_report_["status"])
    assert {"new", "vanished"} <= statuses
    assert sorted(second.groups_) != list(range(6))  # a new id beyond the old ones
    proba = second.predict_proba(no_retired)
    assert proba.shape == (len(no_retired), 6)
    assert (second.groups_[proba.argmax(axis=1)] == second.labels_).all()
    dist = second.transform(no_retired)
    np.testing.assert_array_equal(second.groups_[dist.argmin(axis=1)], second.labels_)
    assert list(second.get_feature_names_out()) == [f"group_{g}_distance" for g in second.groups_]
    third = StrategicGroups(7, n_bootstrap=0, random_state=0).fit(X, previous=second)
    assert set(third.labels_) <= set(third.groups_)
    assert len(set(third.match_report_.query("status != 'vanished'")["group_id"])) == 7


def test_too_few_customers_is_a_clear_error(bank):
    from segments import SegmentsError

    _, X, _, _ = bank
    with pytest.raises(SegmentsError, match="too few"):
        StrategicGroups(random_state=0).fit(X.head(3))


def test_an_algorithm_is_one_registry_entry(monkeypatch):
    from sklearn.cluster import KMeans

    from segments import load_config

    def make(k, n_init, seed):
        return KMeans(k, init="random", n_init=n_init, random_state=seed)

    monkeypatch.setitem(ALGORITHMS, "kmeans_random", Algorithm(make))
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(c, 0.3, (60, 2)) for c in (0, 4, 8)])
    model = StrategicGroups(algorithm="kmeans_random", n_groups=3, n_init=2, random_state=0)
    model.fit(X)
    assert model.clusterer_.init == "random"
    assert model.cluster_centers_.shape == (3, 2) and model.transform(X).shape == (180, 3)
    assert load_config(overrides={"groups": {"algorithm": "kmeans_random"}}).groups.algorithm == (
        "kmeans_random"
    )
    # A BIC-giving entry chooses k by BIC, and its centres come from its own accessor.
    from sklearn.mixture import GaussianMixture

    def mixture(k, n_init, seed):
        return GaussianMixture(k, covariance_type="spherical", random_state=seed)

    monkeypatch.setitem(
        ALGORITHMS, "spherical", Algorithm(mixture, gives_bic=True, centres=lambda m: m.means_)
    )
    auto = StrategicGroups(
        algorithm="spherical", k_range=(2, 4), n_bootstrap=1, n_init=1, random_state=0
    ).fit(X)
    assert "bic" in auto.k_selection_ and auto.k_selection_report_["rule"].startswith("lowest BIC")
    assert auto.cluster_centers_.shape == (auto.n_groups_, 2)
