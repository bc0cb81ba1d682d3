"""Profiles, names, persona cards, tier x group matrix and group migration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments import (
    ConfigError,
    group_migration,
    persona_cards,
    profile_groups,
    suggest_names,
    tier_group_matrix,
)
from segments.core.groups.profiles import load_names


@pytest.fixture
def toy():
    X = pd.DataFrame(
        {
            "age": [25.0, 27.0, 26.0, 70.0, 72.0, 71.0],
            "app_logins_avg_3m": [30.0, 28.0, 35.0, 1.0, 0.0, 2.0],
            "branch_visits_avg_6m": [0.0, 0.1, 0.0, 3.0, 2.5, 2.8],
            "time_deposit_share": [0.0, 0.1, 0.0, 0.7, 0.8, 0.6],
            "aum_avg_3m": [10e3, 12e3, 8e3, 200e3, 150e3, 250e3],
        },
        index=pd.Index([f"C{i}" for i in range(6)], name="customer_id"),
    )
    labels = np.array([0, 0, 0, 1, 1, 1])
    return X, labels


def test_profile_summary_and_distinguishing(toy):
    X, labels = toy
    prof = profile_groups(X, labels, top=2)
    s = prof["summary"]
    assert s["customers"].tolist() == [3, 3]
    assert s["share"].tolist() == [0.5, 0.5]
    assert s.loc[1, "aum_share"] == pytest.approx(600e3 / 630e3)
    assert prof["medians"].loc[0, "age"] == 26.0
    assert prof["lift"].loc[1, "age"] == pytest.approx(71.0 / np.mean(X["age"]))
    dist = prof["distinguishing"]
    assert set(dist[dist.group_id == 1]["direction"]) <= {"high", "low"}
    assert len(dist[dist.group_id == 0]) == 2


def test_names_follow_distinguishing_features(toy):
    X, labels = toy
    names = suggest_names(profile_groups(X, labels)["z"])
    young, old = names.loc[0], names.loc[1]
    assert any(w in young["name_en"] for w in ("young", "digital"))
    assert any(w in old["name_en"] for w in ("senior", "branch-loyal", "time-deposit"))
    assert young["name_zh"].endswith("客群") and young["name_en"].endswith("customers")
    assert names["name_en"].is_unique


def test_names_are_unique_even_for_similar_groups():
    z = pd.DataFrame(
        {
            "age": [-1.0, -1.0, 1.0],
            "app_logins_avg_3m": [1.0, 0.9, -1.0],
            "tenure_months": [-0.5, 0.5, 0.0],
        }
    )
    names = suggest_names(z)
    assert names["name_en"].is_unique and names["name_zh"].is_unique


def test_naming_file_overrides(tmp_path, toy):
    X, labels = toy
    names = suggest_names(profile_groups(X, labels)["z"])
    path = tmp_path / "names.yaml"
    path.write_text("groups:\n  1: {name_en: retired depositors, name_zh: 退休储蓄客群}\n")
    out = load_names(path, names)
    assert out.loc[1, "name_en"] == "retired depositors"
    assert out.loc[1, "name_zh"] == "退休储蓄客群"
    assert out.loc[0, "name_en"] == names.loc[0, "name_en"]
    with pytest.raises(ConfigError, match=r"groups\.9"):
        load_names({"groups": {9: {"name_en": "x"}}}, names)


def test_persona_cards_have_every_section(toy):
    X, labels = toy
    prof = profile_groups(X, labels)
    names = suggest_names(prof["z"])
    cards = persona_cards(prof, names, X, labels)
    for section in (
        "## Who they are",
        "## What they hold",
        "## How they behave",
        "## What they need",
        "## What sets them apart",
    ):
        assert section in cards[0] and section in cards[1]
    assert "3 customers (50.0%)" in cards[1]


def test_tier_group_matrix_hand_computed():
    tiers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "tier": ["mass", "mass", "gold", "gold"],
            "aum_basis": [10.0, 40.0, 60.0, 90.0],
            "near_tier": [False, True, False, False],
        }
    )
    groups = pd.Series([0, 1, 1, 1], index=pd.Index(["A", "B", "C", "D"], name="customer_id"))
    m = tier_group_matrix(tiers, groups)
    assert m["counts"].loc["mass", 0] == 1 and m["counts"].loc["gold", 1] == 2
    assert m["counts"].loc["All", "All"] == 4
    assert m["share"].loc["gold", 1] == pytest.approx(0.5)
    assert m["aum_share"].loc["gold", 1] == pytest.approx(150 / 200)
    assert m["near_tier"].loc["mass", 1] == 1 and m["near_tier"].loc["All", "All"] == 1


def test_group_migration():
    before = pd.Series([0, 0, 1, 1], index=["A", "B", "C", "D"])
    after = pd.Series([0, 1, 1, 1, 0], index=["A", "B", "C", "D", "E"])
    counts = group_migration(before, after)
    assert counts.loc[0, 0] == 1 and counts.loc[0, 1] == 1 and counts.loc[1, 1] == 2
    rates = group_migration(before, after, normalize=True)
    assert rates.loc[0, 1] == pytest.approx(0.5)
