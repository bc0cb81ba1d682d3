"""Scoring and planning on a points ladder (stars7): the output keeps its schema, the
basis is in points and says so in the manifest, reasons name the components, and the plan
works the near-tier customers."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from segments import ConfigError, assign_tiers, load_ladder
from segments.core.plan import build_plan, load_service_map
from segments.core.scoring.output import output_schema
from segments.jobs.plan import prepare_plan, run_plan
from segments.jobs.score import (
    ModelContractError,
    load_scorer,
    read_output,
    score_local,
    validate_output,
)
from tests.banks import QUICK_MODEL, promoted_bank, tracked_folder

pytestmark = pytest.mark.slow
AS_OF = "2025-06"


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    with tracked_folder(tmp_path_factory, "stars") as (root, _):
        yield from _scored(root)


def _scored(root):
    bank = promoted_bank(
        root,
        "stars_test",
        2_500,
        18,
        seed=5,
        config={
            "tiers": {"ladder": "stars7"},
            "groups": {"n_bootstrap": 2, "k_max": 8},
            "upgrade": {"model": QUICK_MODEL},
            "registry": {"promotion": {"upgrade": {"min_auc": 0.6}}},
        },
    )
    result = score_local(bank["panel_path"], AS_OF, root / "out", load_scorer(bank["cfg"]))
    yield bank, result


def test_scores_on_stars7_keep_the_schema_and_record_the_basis_unit(scored):
    bank, result = scored
    manifest = validate_output(result.out)
    assert (manifest["ladder"], manifest["basis_unit"]) == ("stars7", "points")
    out = read_output(result.out)
    assert list(out.columns) == output_schema(3).names
    tiers = assign_tiers(bank["panel"], "stars7")
    now = tiers[tiers["month"] == pd.Period(AS_OF, "M")].set_index("customer_id")
    basis = now["aum_basis"].reindex(out["customer_id"]).to_numpy()
    assert (out["aum_basis"].to_numpy() == basis).all()  # points, not money
    assert set(out["tier"]) <= set(load_ladder("stars7").tier_names)
    near = out["near_tier"].to_numpy(dtype=bool)
    assert out.loc[near, "p_upgrade"].notna().all() and out.loc[~near, "p_upgrade"].isna().all()
    reasons = out.loc[near].filter(regex=r"^reason_\d_text$").stack()
    assert reasons.str.contains(r"would add \d+ points").any()
    assert "drift" in manifest and manifest["tiers"]


def test_the_plan_works_the_near_tier_customers_of_a_points_ladder(scored):
    _, result = scored
    scores = read_output(result.out)
    plan = build_plan(scores, load_service_map("tiered"))
    calls = plan.customers[plan.customers["call_rank"].notna()]
    near = set(scores.loc[scores["near_tier"].astype(bool), "customer_id"])
    assert len(calls) and set(calls["customer_id"]) <= near
    assert len(plan.customers) == len(scores)
    assert plan.staffing["prospects"].sum() == len(calls)


def test_the_plan_folder_states_expected_gains_in_points(scored, tmp_path):
    bank, result = scored
    job = prepare_plan(result.out, tmp_path / "plan", bank["cfg"])
    run_plan(job, track=False)
    manifest = json.loads((tmp_path / "plan" / "_plan.json").read_text())
    assert manifest["basis_unit"] == "points"
    assert re.search(
        r"their expected gain: [\d,]+ points\)", (tmp_path / "plan" / "summary.md").read_text()
    )


def test_a_panel_without_a_components_column_is_refused_before_any_work(scored, tmp_path):
    bank, _ = scored
    frame = pd.read_parquet(bank["panel_path"]).drop(columns=["tenure_months"])
    frame.to_parquet(tmp_path / "p.parquet")
    out = tmp_path / "out"
    with pytest.raises(ModelContractError, match=r"`tenure_months` \(for .*ladder stars7"):
        score_local(tmp_path / "p.parquet", AS_OF, out, load_scorer(bank["cfg"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.parquet"]


def test_a_batch_of_new_customers_scores_and_aum_from_its_components_is_enough(scored, tmp_path):
    bank, result = scored
    frame = pd.read_parquet(bank["panel_path"])
    months = pd.PeriodIndex(frame["month"], freq="M")
    frame = frame[months <= pd.Period(AS_OF, "M")]
    # 1,000 customers who joined in the as-of month, last in customer order: batches of
    # about 50 x 18 rows leave a batch of new customers only (one month of history, shorter
    # than stars7's 3-month windows); the whole panel has the history, so it is scored.
    last = frame[pd.PeriodIndex(frame["month"], freq="M") == pd.Period(AS_OF, "M")]
    last = last.head(1_000).copy()
    last["customer_id"] = [f"ZNEW{i:04d}" for i in range(len(last))]
    grown = pd.concat([frame, last], ignore_index=True).drop(columns=["aum"])  # aum: derived
    grown = grown.sort_values(["customer_id", "month"])  # read in place, in row ranges
    grown.to_parquet(tmp_path / "p.parquet", index=False, row_group_size=2_000)
    out = score_local(
        tmp_path / "p.parquet",
        AS_OF,
        tmp_path / "out",
        load_scorer(bank["cfg"]),
        batch_customers=50,
    )
    scores = read_output(out.out).set_index("customer_id")
    new = scores.loc[scores.index.str.startswith("ZNEW")]
    assert len(last) == 1_000 and len(new) == 1_000 and new["tier"].notna().all()
    before = read_output(result.out).set_index("customer_id")
    same = before.index.intersection(scores.index)
    assert len(same) == len(before)
    assert (scores.loc[same, "aum_basis"] == before.loc[same, "aum_basis"]).all()


def test_an_as_of_month_with_less_history_than_the_ladder_is_refused_before_work(scored, tmp_path):
    bank, _ = scored
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"ladder\.components\[0\]\.window.*panel holds 2"):
        score_local(bank["panel_path"], "2024-02", out, load_scorer(bank["cfg"]))
    assert not any(tmp_path.iterdir())
