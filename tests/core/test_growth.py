"""Growth sources: the exact split of the AUM change, windows, dominance, the planted bank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments import PanelConfig, make_bank, validate_panel
from segments.core.growth import (
    GROWTH_COLUMNS,
    dominant_source,
    growth_mix,
    growth_sources,
    growth_windows,
    known_sources,
)
from segments.exceptions import ConfigError, PanelValidationError

FLOWS = ("inflow", "outflow", "transfer_in_other_bank", "transfer_out_other_bank")


def _panel(rows: list[dict]) -> pd.DataFrame:
    """A validated panel from dicts with customer_id, month and money columns (0 elsewhere)."""
    df = pd.DataFrame(rows).fillna(0.0)
    return validate_panel(df)


def _two_months(**second) -> pd.DataFrame:
    """Customer 'a' in 2025-01 (AUM 1,000, no funds) and 2025-02 with ``second``."""
    base = {"customer_id": "a", "dep_demand": 1000.0, "funds": 0.0}
    base.update(dict.fromkeys(FLOWS, 0.0), investment_net_purchases=0.0)
    first = {**base, "month": "2025-01"}
    return _panel([first, {**base, "month": "2025-02", **second}])


def _row(growth: pd.DataFrame) -> dict:
    return growth.iloc[1][list(GROWTH_COLUMNS)].to_dict()


def test_each_source_alone_is_found_and_the_residual_is_zero():
    # Accumulation: 300 of salary in, 100 spent.
    g = growth_sources(_two_months(dep_demand=1200.0, inflow=300.0, outflow=100.0))
    assert _row(g) == {
        "aum_change": 200.0,
        "growth_accumulation": 200.0,
        "growth_migration": 0.0,
        "growth_appreciation": 0.0,
        "growth_residual": 0.0,
    }
    # Migration: 500 moved in from another bank (an inflow, but not the customer's own).
    g = growth_sources(_two_months(dep_demand=1500.0, inflow=500.0, transfer_in_other_bank=500.0))
    assert _row(g)["growth_migration"] == 500.0
    assert _row(g)["growth_accumulation"] == 0.0
    # Appreciation: 400 of deposits bought a fund (net purchases), now worth 430.
    g = growth_sources(_two_months(dep_demand=600.0, funds=430.0, investment_net_purchases=400.0))
    assert _row(g)["growth_appreciation"] == 30.0
    assert _row(g)["aum_change"] == 30.0
    assert _row(g)["growth_residual"] == 0.0


def test_all_sources_together_add_up_to_the_cent():
    g = growth_sources(
        _two_months(
            dep_demand=1234.56,
            funds=310.01,
            investment_net_purchases=300.0,
            inflow=900.33,
            outflow=222.22,
            transfer_in_other_bank=500.0,
            transfer_out_other_bank=125.5,
        )
    )
    r = _row(g)
    assert r["growth_migration"] == 374.5
    assert r["growth_accumulation"] == pytest.approx(303.61, abs=1e-9)  # 400.33 - 96.72
    assert r["growth_appreciation"] == pytest.approx(10.01, abs=1e-9)
    assert r["aum_change"] == pytest.approx(544.57, abs=1e-9)
    assert r["growth_residual"] == pytest.approx(544.57 - 374.5 - 303.61 - 10.01, abs=1e-9)
    parts = r["growth_accumulation"] + r["growth_migration"] + r["growth_appreciation"]
    assert round(parts + r["growth_residual"], 2) == round(r["aum_change"], 2)


def test_a_missing_column_makes_its_source_unknown_and_the_residual_takes_it():
    panel = _two_months(
        dep_demand=1200.0, funds=330.0, investment_net_purchases=300.0, inflow=500.0,
        transfer_in_other_bank=200.0,
    )  # fmt: skip
    no_transfers = panel.drop(columns=["transfer_out_other_bank"])
    assert known_sources(no_transfers.columns) == {
        "accumulation": False,
        "migration": False,
        "appreciation": True,
    }
    r = _row(growth_sources(no_transfers))
    assert np.isnan(r["growth_migration"]) and np.isnan(r["growth_accumulation"])
    assert r["growth_appreciation"] == 30.0
    assert r["growth_residual"] == r["aum_change"] - 30.0  # never guessed as 0
    no_purchases = panel.drop(columns=["investment_net_purchases"])
    r = _row(growth_sources(no_purchases))
    assert np.isnan(r["growth_appreciation"])
    assert r["growth_residual"] == r["aum_change"] - 300.0 - 200.0


def test_a_first_month_and_a_month_after_a_gap_have_no_change():
    rows = [
        {"customer_id": "a", "month": m, "dep_demand": v, **dict.fromkeys(FLOWS, 0.0)}
        for m, v in (("2025-01", 10.0), ("2025-02", 20.0), ("2025-04", 50.0))
    ]
    g = growth_sources(validate_panel(pd.DataFrame(rows), PanelConfig(gaps="ignore")))
    assert g["aum_change"].isna().tolist() == [True, False, True]
    assert g.loc[1, "aum_change"] == 10.0
    assert g.loc[[0, 2], list(GROWTH_COLUMNS)].isna().all().all()


def test_growth_sources_refuse_an_unvalidated_panel():
    with pytest.raises(ConfigError, match="month"):
        growth_sources(pd.DataFrame({"customer_id": ["a"], "month": ["2025-01"], "aum": [1.0]}))
    with pytest.raises(ConfigError, match="aum"):
        growth_sources(pd.DataFrame({"customer_id": ["a"], "month": ["2025-01"]}))


def test_net_purchases_may_be_negative_but_inflow_may_not():
    ok = _two_months(dep_demand=1500.0, investment_net_purchases=-500.0)
    assert (ok["investment_net_purchases"] < 0).any()
    raw = pd.DataFrame({"customer_id": ["a"], "month": ["2025-01"], "aum": [1.0], "inflow": [-1]})
    with pytest.raises(PanelValidationError, match="inflow"):
        validate_panel(raw)


def test_windows_sum_each_source_and_name_the_dominant_one():
    months = pd.period_range("2025-01", periods=4, freq="M")
    rows = []
    for cid, moved, earned in (("a", 100.0, 10.0), ("b", 0.0, 50.0), ("c", 0.0, -30.0)):
        aum = 1000.0
        for k, m in enumerate(months):
            aum += (moved + earned) if k else 0.0
            rows.append(
                {"customer_id": cid, "month": str(m), "dep_demand": aum,
                 "inflow": (moved + max(earned, 0)) if k else 0.0,
                 "outflow": max(-earned, 0) if k else 0.0,
                 "transfer_in_other_bank": moved if k else 0.0, "transfer_out_other_bank": 0.0}
            )  # fmt: skip
    g = growth_sources(validate_panel(pd.DataFrame(rows)))
    w = growth_windows(g, months[-1], windows=(2, 3))
    assert w.loc["a", "growth_migration_2m"] == 200.0
    assert w.loc["a", "growth_migration_3m"] == 300.0
    assert w.loc["b", "growth_accumulation_3m"] == 150.0
    assert w.loc["c", "aum_change_3m"] == -90.0
    assert w["dominant_source_3m"].to_dict() == {"a": "migration", "b": "accumulation", "c": "none"}
    assert np.isnan(w["growth_appreciation_3m"]).all()  # no net purchases in this panel
    with pytest.raises(ConfigError, match="windows"):
        growth_windows(g, months[-1], windows=(0,))


def test_dominant_source_prefers_the_largest_positive_and_ignores_unknown():
    sums = pd.DataFrame(
        {
            "growth_accumulation": [5.0, -1.0, np.nan, 0.0],
            "growth_migration": [7.0, -2.0, 3.0, 0.0],
            "growth_appreciation": [1.0, np.nan, np.nan, 0.0],
        }
    )
    assert dominant_source(sums).tolist() == ["migration", "none", "migration", "none"]


def test_growth_mix_by_a_key():
    w = pd.DataFrame(
        {
            "aum_change_3m": [100.0, 50.0, -10.0],
            "growth_accumulation_3m": [100.0, 0.0, -10.0],
            "growth_migration_3m": [0.0, 50.0, 0.0],
            "growth_appreciation_3m": [0.0, 0.0, 0.0],
            "growth_residual_3m": [0.0, 0.0, 0.0],
            "dominant_source_3m": ["accumulation", "migration", "none"],
        },
        index=pd.Index(["a", "b", "c"], name="customer_id"),
    )
    key = pd.Series(["gold", "gold", "mass"], index=w.index, name="tier")
    mix = growth_mix(w, key, window=3)
    assert mix.loc["gold", "customers"] == 2
    assert mix.loc["gold", "growth_migration"] == 50.0
    assert mix.loc["gold", "share_accumulation"] == 0.5
    assert mix.loc["mass", "share_none"] == 1.0
    assert mix.loc["gold", "aum_change"] == 150.0


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic bank big enough for a few hundred affluent investors, its growth split."""
    panel, truth = make_bank(15_000, 24, seed=3)
    return growth_sources(validate_panel(panel)), truth


def test_the_synthetic_bank_adds_up_to_the_cent(planted):
    growth, _ = planted
    assert growth["aum_change"].notna().mean() > 0.9
    for col in GROWTH_COLUMNS:
        assert growth[col].notna().sum() == growth["aum_change"].notna().sum(), col
    assert growth["growth_residual"].abs().max() < 0.005  # zero, to the cent


def test_the_planted_personas_dominant_source_is_recovered(planted):
    growth, truth = planted
    w = growth_windows(growth, growth["month"].max(), windows=(24,))
    source = truth.set_index("customer_id")["growth_source"].reindex(w.index)
    planted_rows = source.notna()
    assert set(source[planted_rows]) == {"accumulation", "migration", "appreciation"}
    hit = (w["dominant_source_24m"] == source)[planted_rows]
    by_source = hit.groupby(source[planted_rows]).agg(["mean", "size"])
    assert (by_source["size"] >= 200).all(), by_source
    assert (by_source["mean"] >= 0.8).all(), by_source
