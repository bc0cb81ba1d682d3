"""Levers: the rule on hand cases, its configuration, and the mix per key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments.core.growth.levers import LEVERS, LeverRule, assign_levers, lever_mix
from segments.exceptions import ConfigError


def _X(**columns) -> pd.DataFrame:
    base = {
        "growth_accumulation_6m": 0.0,
        "growth_migration_6m": 0.0,
        "growth_appreciation_6m": 0.0,
        "transfer_out_ratio_3m": 0.0,
        "demand_deposit_share": 0.3,
        "investment_share": 0.2,
    }
    base.update(columns)
    return pd.DataFrame({k: [v] if np.isscalar(v) else v for k, v in base.items()})


@pytest.mark.parametrize(
    ("features", "lever", "words"),
    [
        ({"growth_accumulation_6m": 0.2}, "grow_with_customer", "own savings growing: +20%"),
        ({"growth_migration_6m": 0.15}, "win_assets", "moving in from other banks: +15%"),
        ({"transfer_out_ratio_3m": 0.25}, "win_assets", "25% of AUM moved to other banks"),
        ({"growth_appreciation_6m": 0.08}, "wealth_advice", "investments growing in value: +8%"),
        (
            {"demand_deposit_share": 0.9, "investment_share": 0.0},
            "wealth_advice",
            "90% of assets idle",
        ),
        ({}, "grow_with_customer", "no source of growth stands out"),
        # Below the minimum share a source is no evidence.
        ({"growth_migration_6m": 0.01}, "grow_with_customer", "no source"),
        # Idle deposits but something invested: not idle.
        ({"demand_deposit_share": 0.9, "investment_share": 0.05}, "grow_with_customer", "no"),
    ],
)
def test_each_lever_on_its_evidence(features, lever, words):
    got = assign_levers(_X(**features)).iloc[0]
    assert got["lever"] == lever
    assert words in got["lever_reason"]
    assert got["lever_reason_zh"]  # and in Chinese


def test_the_order_decides_between_levers_with_evidence():
    # Own savings are the largest source, and large outflows show assets held elsewhere.
    X = _X(growth_accumulation_6m=0.3, transfer_out_ratio_3m=0.2)
    assert assign_levers(X)["lever"].iloc[0] == "win_assets"  # default order
    rule = LeverRule(order=("grow_with_customer", "win_assets", "wealth_advice"))
    assert assign_levers(X, rule)["lever"].iloc[0] == "grow_with_customer"


def test_thresholds_are_configurable():
    X = _X(transfer_out_ratio_3m=0.08)
    assert assign_levers(X)["lever"].iloc[0] == "grow_with_customer"
    assert assign_levers(X, LeverRule(outflow_share=0.05))["lever"].iloc[0] == "win_assets"


def test_missing_features_are_no_evidence():
    X = pd.DataFrame({"growth_migration_6m": [0.3, np.nan]})
    got = assign_levers(X)
    assert got["lever"].tolist() == ["win_assets", "grow_with_customer"]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"outflow_share": -0.1}, "levers.outflow_share"),
        ({"idle_share": 2}, "levers.idle_share"),
        ({"order": ["win_assets", "wealth_advice"]}, "levers.order"),
        ({"order": ["win_assets", "wealth_advice", "sell_more"]}, "levers.order"),
        ({"default": "call_them"}, "levers.order"),
        ({"threshold": 0.1}, "levers.threshold"),
    ],
)
def test_a_bad_rule_is_a_named_error(values, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        LeverRule.from_mapping(values)


def test_lever_mix_shares_per_key():
    levers = pd.Series(["win_assets", "win_assets", "wealth_advice", "grow_with_customer"])
    branch = pd.Series(["B1", "B1", "B1", "B2"], name="branch")
    mix = lever_mix(levers, branch)
    assert mix.loc["B1", "customers"] == 3
    assert mix.loc["B1", "share_win_assets"] == pytest.approx(2 / 3)
    assert mix.loc["B2", "share_grow_with_customer"] == 1.0
    assert [c.removeprefix("share_") for c in mix.columns[1:]] == list(LEVERS)
