"""Rank within a band: one rule (ties share the better position, integer ceilings) for
training, the local engine's streamed ranks and Spark's counted ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments.core.upgrade import ranks
from segments.core.upgrade.ranks import (
    RankTable,
    add_ranks,
    band_key,
    rank_within,
    table_from_frames,
)


def test_ties_share_the_better_position():
    r = rank_within([0.9, 0.5, 0.5, 0.5, 0.1])
    # positions 1, 2, 2, 2, 5 of 5 (a competition rank), whatever the order of the ties
    assert r["permille"].tolist() == [200, 400, 400, 400, 1000]
    assert r["percentile"].tolist() == [20, 40, 40, 40, 100]
    assert r["decile"].tolist() == [2, 4, 4, 4, 10]


def test_ranks_do_not_depend_on_row_order():
    rng = np.random.default_rng(3)
    p = rng.choice([0.1, 0.2, 0.3, 0.4], size=200)  # many ties
    g = rng.choice(["near_gold", "near_sunflower"], size=200)
    ref = rank_within(p, g)
    order = rng.permutation(200)
    shuffled = rank_within(p[order], g[order])
    back = shuffled.iloc[np.argsort(order)].reset_index(drop=True)
    pd.testing.assert_frame_equal(back, ref)


def test_ceilings_are_exact_integers():
    # 11 / 20 * 100 is 55.00000000000001 in floating point: its ceiling would be 56.
    r = rank_within(np.arange(20, 0, -1) / 20)
    assert r["percentile"].tolist() == [5 * i for i in range(1, 21)]
    assert r["permille"].tolist() == [50 * i for i in range(1, 21)]
    assert r["decile"].tolist() == [(i + 1) // 2 for i in range(1, 21)]


def test_missing_scores_have_no_rank_and_do_not_count():
    r = rank_within([0.2, np.nan, 0.1], ["a", "a", "a"])
    assert r["permille"].isna().tolist() == [False, True, False]
    assert r["permille"].dropna().tolist() == [500, 1000]


def test_groups_are_ranked_apart():
    p = pd.Series([0.9, 0.1, 0.5, 0.5, 0.7])
    by = pd.Series(["a", "a", "b", "b", "b"])
    r = rank_within(p, by)
    assert r["percentile"].tolist() == [50, 100, 67, 67, 34]


def test_streamed_and_counted_tables_rank_as_one_pass():
    rng = np.random.default_rng(7)
    n = 1_000
    frame = pd.DataFrame(
        {
            "near_band": rng.choice(["near_gold", None], size=n),
            "tier": rng.choice(["mass", "gold"], size=n),
            "p_upgrade": np.where(
                rng.random(n) < 0.1, np.nan, rng.integers(0, 50, size=n) / 50
            ),  # ties
        }
    )
    keys = band_key(frame["near_band"], frame["tier"])
    whole = rank_within(frame["p_upgrade"], keys)
    # the local engine: a table streamed over parts, each part ranked on its own
    parts = [frame.iloc[i : i + 150] for i in range(0, n, 150)]
    table = table_from_frames(parts)
    local = pd.concat([add_ranks(part, table) for part in parts])
    for column, scale in ranks.RANK_COLUMNS.items():
        name = column.removeprefix("upgrade_")
        pd.testing.assert_series_equal(
            local[column].reset_index(drop=True), whole[name].astype("Int64"), check_names=False
        )
        assert local[column].dropna().between(1, scale).all()
    # Spark: counts per (group, score), aggregated elsewhere
    has = frame["p_upgrade"].notna()
    counts = (
        pd.DataFrame({"key": keys[has], "p": frame["p_upgrade"][has]})
        .groupby(["key", "p"])
        .size()
        .reset_index(name="n")
    )
    counted = RankTable().add(counts["key"], counts["p"], counts["n"])
    pd.testing.assert_frame_equal(
        counted.ranks(keys, frame["p_upgrade"])[list(whole.columns)], whole
    )


def test_band_key_is_the_near_band_else_the_tier():
    keys = band_key(pd.Series(["near_gold", None, np.nan]), pd.Series(["mass", "gold", "mass"]))
    assert keys.tolist() == ["near_gold", "tier gold", "tier mass"]


def test_a_score_never_added_is_refused():
    with pytest.raises(KeyError, match="ranking group"):
        RankTable().add(["a"], [0.5]).positions(["b"], [0.5])
