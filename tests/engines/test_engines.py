"""Engines behind one interface, and one rank rule: on a panel with deliberate ties in
p_upgrade, training's ranks, the local engine's and Spark's (real, local mode) are equal."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest
import yaml

from segments import engines, load_config, load_ladder, read_panel, validate_panel
from segments.core.data.synthetic import write_bank
from segments.core.scoring.batch import Scorer
from segments.core.upgrade.ranks import band_key, rank_within
from segments.exceptions import ConfigError
from segments.jobs.score import execute, prepare_scoring, read_output, score_local
from segments.jobs.train import train_groups
from segments.jobs.train_upgrade import train_upgrade

pytestmark = pytest.mark.slow
AS_OF = "2025-06"
STAMP = "2026-01-01T00:00:00+00:00"
RANKS = ["upgrade_decile", "upgrade_percentile", "upgrade_permille"]


@pytest.fixture(scope="module")
def tied(tmp_path_factory):
    """Models trained in process on a small bank, and the bank's panel with 60 near-tier
    customers copied twice under new ids: same history, so the same p_upgrade."""
    root = tmp_path_factory.mktemp("engines")
    paths = write_bank(root / "bank", 1_500, 18, seed=5)
    panel = validate_panel(read_panel(paths["panel"]))
    exp = root / "ranks.yaml"
    exp.write_text(yaml.safe_dump({"name": "ranks", "groups": {"n_bootstrap": 2, "k_max": 6}}))
    cfg = load_config(exp)
    up, gr = train_upgrade(panel, cfg), train_groups(panel, cfg)
    scorer = Scorer(
        groups=gr.model,
        names=gr.names,
        upgrade=up.model,
        ladder=load_ladder(
            cfg.tiers.ladder, basis_window=cfg.tiers.basis_window, hysteresis=cfg.tiers.hysteresis
        ),
        windows=tuple(cfg.features.windows),
        population=cfg.upgrade.population,
        reasons_k=cfg.upgrade.reasons_k,
        panel=cfg.panel,
    )
    raw = pd.read_parquet(paths["panel"])
    ref = score_local(paths["panel"], AS_OF, root / "ref", scorer, scored_at=STAMP)
    near = read_output(ref.out).query("near_tier")["customer_id"].head(60)
    rows = raw[raw["customer_id"].astype(str).isin(set(near))]
    copies = [
        rows.assign(customer_id=rows["customer_id"].astype(str) + f"-copy{i}") for i in (1, 2)
    ]
    tied_path = root / "tied.parquet"
    out = pd.concat([raw.assign(customer_id=raw["customer_id"].astype(str)), *copies])
    out.to_parquet(tied_path, index=False)
    return {"root": root, "scorer": scorer, "panel": tied_path}


def test_the_engine_registry_finds_each_engine_and_refuses_others():
    assert engines.names() == ("local", "spark")
    for name in engines.names():
        assert callable(engines.get(name).run)
    with pytest.raises(ConfigError, match="expected local or spark"):
        engines.get("dask")


def test_a_third_engine_is_one_module(tied, monkeypatch):
    seen = {}
    fake = types.ModuleType("fake_engine")

    def check_input(found, src):
        seen["checked"] = src

    def run(job):
        seen["ran"] = job.engine
        return "result"

    fake.run, fake.check_input = run, check_input
    monkeypatch.setitem(sys.modules, "fake_engine", fake)
    monkeypatch.setitem(engines.ENGINES, "fake", "fake_engine")
    job = prepare_scoring(
        tied["panel"], AS_OF, tied["root"] / "fake", tied["scorer"], engine="fake"
    )
    assert seen == {"checked": tied["panel"]}
    assert execute(job) == "result" and seen["ran"] == "fake"


@pytest.mark.skipif(sys.platform != "linux", reason="local Spark tested on Linux")
def test_training_local_and_spark_rank_ties_alike(tied, tmp_path):
    from segments.engines.spark import score_spark, spark_session

    local = read_output(
        score_local(
            tied["panel"],
            AS_OF,
            tmp_path / "local",
            tied["scorer"],
            batch_customers=300,
            scored_at=STAMP,
        ).out
    )
    spark = spark_session("local[2]")
    try:
        res = score_spark(
            tied["panel"],
            AS_OF,
            tmp_path / "spark",
            tied["scorer"],
            spark=spark,
            partitions=3,
            scored_at=STAMP,
        )
    finally:
        spark.stop()
    on_spark = read_output(res.out)
    scored = local[local["p_upgrade"].notna()].reset_index(drop=True)
    # the panel really has ties within bands (the copied customers)
    band = band_key(scored["near_band"], scored["tier_rank"])  # as jobs.train keys its ranks
    sizes = scored.groupby([band, scored["p_upgrade"].to_numpy()]).size()
    assert (sizes >= 3).sum() >= 30
    # training's ranks: rank_within over (as_of, band) as jobs.train computes them
    training = rank_within(scored["p_upgrade"], scored["as_of"] + "|" + band)
    for column in RANKS:
        expected = training[column.removeprefix("upgrade_")].to_numpy(dtype=np.int64)
        np.testing.assert_array_equal(scored[column].to_numpy(dtype=np.int64), expected)
    pd.testing.assert_frame_equal(on_spark[RANKS], local[RANKS])
    pd.testing.assert_frame_equal(on_spark, local)


def test_the_engine_names_are_the_registrys_alone():
    """The config does not keep its own list of engines: an unknown name in the config is
    refused by the registry, naming the setting and the known engines."""
    cfg = load_config(overrides={"scoring": {"engine": "duckdb"}})
    with pytest.raises(ConfigError, match=r"scoring\.engine.*duckdb.*local or spark"):
        engines.get(cfg.scoring.engine, option="scoring.engine")
    with pytest.raises(ConfigError, match=r"scoring\.engine"):
        load_config(overrides={"scoring": {"engine": 3}})


def _sorted_copy(tied, path, row_group_size):
    """The tied panel sorted by customer, written with small row groups."""
    raw = pd.read_parquet(tied["panel"])
    raw = raw.sort_values(["customer_id", "month"], kind="stable")
    raw.to_parquet(path, index=False, row_group_size=row_group_size)
    return path


def test_a_sorted_input_is_read_in_place_and_scores_as_the_spooled_one(tied, tmp_path):
    """The same customers, sorted, are cut into row ranges (no spool) and score the same as
    the unsorted input spooled into buckets; in worker processes too."""
    spooled = score_local(
        tied["panel"], AS_OF, tmp_path / "a", tied["scorer"], batch_customers=300, scored_at=STAMP
    )
    assert spooled.manifest["batching"]["kind"] == "buckets"
    sorted_path = _sorted_copy(tied, tmp_path / "sorted.parquet", row_group_size=1_000)
    job = prepare_scoring(sorted_path, AS_OF, tmp_path / "b", tied["scorer"])
    in_place = execute(job.with_options(batch_customers=300, scored_at=STAMP))
    assert in_place.manifest["batching"]["kind"] == "sorted"
    assert in_place.manifest["batches"] >= 5
    workers = execute(
        prepare_scoring(sorted_path, AS_OF, tmp_path / "c", tied["scorer"]).with_options(
            batch_customers=300, scored_at=STAMP, options={"workers": 2}
        )
    )
    assert workers.manifest["engine"] == "local (2 workers)"
    many = execute(
        prepare_scoring(sorted_path, AS_OF, tmp_path / "d", tied["scorer"]).with_options(
            batch_customers=1_000, scored_at=STAMP, options={"workers": 64}
        )
    )
    assert many.manifest["engine"] == "local (2 workers)"  # 1,620 customers: 2 batches
    expected = read_output(spooled.out)
    assert len(expected) > 1000
    pd.testing.assert_frame_equal(read_output(in_place.out), expected)
    pd.testing.assert_frame_equal(read_output(workers.out), expected)
    pd.testing.assert_frame_equal(read_output(many.out), expected)
    assert spooled.manifest["tiers"] == in_place.manifest["tiers"] == workers.manifest["tiers"]


def test_scores_read_only_the_months_they_depend_on(tied, tmp_path):
    """Cut to the months the scorer says it needs, the panel gives the same features, tiers
    and scores as in full; one month fewer changes a feature (so the count is not merely
    large enough)."""
    from segments import assign_tiers, build_features

    scorer = tied["scorer"]
    need = scorer.months_needed
    assert need == max(scorer.windows) + 1  # the demo ladder has no hysteresis
    panel = validate_panel(pd.read_parquet(tied["panel"]))
    last = pd.Period(AS_OF, "M")

    def cut(keep):
        return panel[(panel["month"] > last - keep) & (panel["month"] <= last)]

    def tiers(p):
        t = assign_tiers(p, scorer.ladder)
        return t[t["month"] == last].reset_index(drop=True)

    full_x = build_features(panel, AS_OF, windows=scorer.windows)
    pd.testing.assert_frame_equal(build_features(cut(need), AS_OF, windows=scorer.windows), full_x)
    pd.testing.assert_frame_equal(tiers(cut(need)), tiers(panel))
    short = build_features(cut(need - 1), AS_OF, windows=scorer.windows)
    assert not short.equals(full_x)
    path = tmp_path / "cut.parquet"
    cut(need).assign(month=lambda d: d["month"].astype(str)).to_parquet(path, index=False)
    res = score_local(path, AS_OF, tmp_path / "cut", scorer, scored_at=STAMP)
    full = score_local(tied["panel"], AS_OF, tmp_path / "full", scorer, scored_at=STAMP)
    pd.testing.assert_frame_equal(read_output(res.out), read_output(full.out))
