"""The service plan: the service map, its named errors, and the capacity arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments.core.plan import build_plan, load_service_map, service_map_from
from segments.exceptions import ConfigError

MAP = {
    "name": "tiny",
    "models": {
        "digital": {"capacity": None, "cadence_months": 3},
        "rm": {"capacity": 2, "cadence_months": 1, "prospects_per_manager": 2},
    },
    "by_rank": ["digital", "rm"],
}


def _scores() -> pd.DataFrame:
    """Branch A: 3 mass customers near gold (gains 30, 20, 10) and 3 gold customers;
    branch B: 1 mass near gold, 1 mass not near, no gold."""
    rows = [
        ("a1", "A", "mass", 0, True, "gold", 0.3, 30.0, "win_assets"),
        ("a2", "A", "mass", 0, True, "gold", 0.5, 20.0, "wealth_advice"),
        ("a3", "A", "mass", 0, True, "gold", 0.1, 10.0, "win_assets"),
        ("a4", "A", "gold", 1, False, None, None, None, None),
        ("a5", "A", "gold", 1, False, None, None, None, None),
        ("a6", "A", "gold", 1, False, None, None, None, None),
        ("b1", "B", "mass", 0, True, "gold", 0.2, 5.0, "grow_with_customer"),
        ("b2", "B", "mass", 0, False, "gold", None, None, None),
    ]
    cols = ["customer_id", "branch_id", "tier", "tier_rank", "near_tier", "next_tier",
            "p_upgrade", "expected_gain", "lever"]  # fmt: skip
    df = pd.DataFrame(rows, columns=cols)
    df["as_of"] = "2025-12"
    df["segment_name"] = np.where(df["customer_id"].isin(["a1", "b1"]), "Savers", "Investors")
    return df


def test_capacity_arithmetic_on_a_tiny_bank():
    plan = build_plan(_scores(), service_map_from(MAP))
    s = plan.staffing.set_index(["branch_id", "service_model"])
    # Branch A: 3 gold customers at 2 per manager -> 2 managers; the mass book needs none.
    assert s.loc[("A", "rm"), "customers"] == 3
    assert s.loc[("A", "rm"), "managers_needed"] == 2
    assert s.loc[("A", "digital"), "managers_needed"] == 0
    assert s.loc[("A", "rm"), "contacts_per_month"] == 3.0
    assert s.loc[("A", "digital"), "contacts_per_month"] == 1.0  # 3 customers every 3 months
    # Its 3 near-gold prospects go to the gold model (2 managers x 2 = 4 slots): all in.
    assert s.loc[("A", "rm"), "prospects"] == 3
    assert s.loc[("A", "rm"), "prospects_outside"] == 0
    # Branch B has no gold customer, hence no manager: its prospect falls outside capacity.
    assert s.loc[("B", "rm"), "managers"] == 0
    assert s.loc[("B", "rm"), "prospects_outside"] == 1
    assert s.loc[("B", "rm"), "expected_gain_outside"] == 5.0
    c = plan.customers.set_index("customer_id")
    # Ranked by expected gain within the branch; manager slots round robin.
    assert c.loc[["a1", "a2", "a3"], "call_rank"].tolist() == [1, 2, 3]
    assert c.loc[["a1", "a2", "a3"], "manager_slot"].tolist() == [1, 2, 1]
    assert c.loc["b1", "in_capacity"] is np.False_ or not c.loc["b1", "in_capacity"]
    assert pd.isna(c.loc["b2", "call_rank"])  # not near: not on the call list
    assert c.loc["a4", "service_model"] == "rm" and c.loc["a1", "service_model"] == "digital"
    assert plan.totals().loc["rm", "managers_needed"] == 2


def test_managers_available_cut_the_call_list_and_show_the_shortfall():
    managers = pd.DataFrame(
        {"branch_id": ["A", "B"], "service_model": ["rm", "rm"], "managers": [1, 1]}
    )
    plan = build_plan(_scores(), service_map_from(MAP), managers=managers)
    s = plan.staffing.set_index(["branch_id", "service_model"])
    assert s.loc[("A", "rm"), "shortfall"] == 1  # 2 needed, 1 available
    assert s.loc[("A", "rm"), "prospects_in_capacity"] == 2  # 1 manager x 2 prospects
    assert s.loc[("A", "rm"), "expected_gain_outside"] == 10.0  # a3, the lowest gain
    assert s.loc[("B", "rm"), "prospects_outside"] == 0
    c = plan.customers.set_index("customer_id")
    assert c.loc[["a1", "a2", "a3"], "in_capacity"].tolist() == [True, True, False]


def test_levers_share_on_the_call_list():
    plan = build_plan(_scores(), service_map_from(MAP))
    assert plan.levers_by_branch.loc["A", "share_win_assets"] == pytest.approx(2 / 3)
    assert plan.levers_by_group.loc["Savers", "customers"] == 2


def test_current_tier_model_and_group_exceptions():
    m = {**MAP, "groups": [{"tier": "mass", "group": "Savers", "model": "rm"}]}
    plan = build_plan(_scores(), service_map_from(m), call_model="current_tier")
    c = plan.customers.set_index("customer_id")
    assert c.loc["a1", "service_model"] == "rm"  # the exception
    assert c.loc["a2", "call_model"] == "digital"  # its own tier's model
    assert bool(c.loc["a2", "in_capacity"])  # reached digitally
    assert pd.isna(c.loc["a2", "manager_slot"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"models": {"rm": {"capacity": 0}}, "by_rank": ["rm"]}, "service.models.rm.capacity"),
        (
            {"models": {"rm": {"capacity": 5, "cadence_months": 0}}, "by_rank": ["rm"]},
            "service.models.rm.cadence_months",
        ),
        ({"by_rank": ["digital", "branch_rm"]}, r"service.by_rank\[1\]"),
        ({"tiers": {"gold": "nope"}}, "service.tiers.gold"),
        ({"speed": 1}, "service.speed"),
    ],
)
def test_a_bad_service_map_is_a_named_error(change, field):
    with pytest.raises(ConfigError, match=field):
        service_map_from({**MAP, **change})


def test_an_unknown_tier_or_group_in_the_map_is_refused_against_the_scores():
    for change, field in (
        ({"tiers": {"platinum": "rm"}}, "service.tiers.platinum"),
        ({"groups": [{"tier": "gold", "group": "Nobody", "model": "rm"}]}, "Nobody"),
    ):
        with pytest.raises(ConfigError, match=field):
            build_plan(_scores(), service_map_from({**MAP, **change}))


def test_a_bad_managers_table_is_refused():
    bad = pd.DataFrame(
        {"branch_id": ["A", "A"], "service_model": ["rm", "rm"], "managers": [1, -2]}
    )
    with pytest.raises(ConfigError, match="whole numbers") as info:
        build_plan(_scores(), service_map_from(MAP), managers=bad)
    assert "more than once" in str(info.value)
    with pytest.raises(ConfigError, match="managers column `service_model`"):
        build_plan(
            _scores(),
            service_map_from(MAP),
            managers=pd.DataFrame({"branch_id": ["A"], "service_model": ["x"], "managers": [1]}),
        )


def test_the_packaged_map_serves_each_tier_by_the_method():
    m = load_service_map("tiered")
    assert [m.model_for(t, r) for r, t in enumerate(["mass", "gold", "sunflower", "diamond"])] == [
        "digital",
        "remote_rm",
        "dedicated_rm",
        "team_1n",
    ]
    assert m.model_for("private", 4) == "team_1n"
    assert not m.models["digital"].has_managers
    caps = [m.models[x].capacity for x in ("remote_rm", "dedicated_rm", "team_1n")]
    assert caps == sorted(caps, reverse=True)  # the higher the tier, the fewer per manager
