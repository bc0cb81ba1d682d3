"""Batch scoring: output schema, batches of whole customers, kill and resume, bad input,
model contract, drift, the MLflow scoring run, and Spark equal to local row for row."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from segments import load_config, read_panel
from segments.cli import app
from segments.core.scoring.output import output_schema
from segments.engines import local as local_engine
from segments.exceptions import PanelValidationError
from segments.jobs.score import (
    ModelContractError,
    load_scorer,
    read_output,
    score_local,
    validate_output,
)
from segments.mlops.scoring_runs import probabilities
from tests.banks import QUICK_MODEL, promoted_bank, tracked_folder

pytestmark = pytest.mark.slow
AS_OF = "2025-06"


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A 2,500-customer bank with trained and promoted models in a SQLite store."""
    with tracked_folder(tmp_path_factory, "scoring") as (root, mp):
        yield from _job(root, mp)


def _job(root, mp):
    bank = promoted_bank(
        root,
        "scoring_test",
        2_500,
        18,
        seed=5,
        config={
            "groups": {"n_bootstrap": 2, "k_max": 8},
            "upgrade": {"model": QUICK_MODEL},
            "registry": {
                "promotion": {"upgrade": {"min_auc": 0.6, "min_auc_gain_over_rule": -1.0}}
            },
        },
    )
    yield {**bank, "scorer": load_scorer(bank["cfg"]), "mp": mp}


@pytest.fixture(scope="module")
def reference_output(job):
    return score_local(
        job["panel_path"],
        AS_OF,
        job["root"] / "ref",
        job["scorer"],
        batch_customers=400,
        scored_at="2026-01-01T00:00:00+00:00",
    )


def test_output_has_one_documented_row_per_customer(job, reference_output):
    res = reference_output
    manifest = validate_output(res.out)
    out = read_output(res.out)
    panel = job["panel"]
    active = panel.loc[panel["month"] == pd.Period(AS_OF, "M"), "customer_id"].astype(str)
    assert sorted(out["customer_id"]) == sorted(active)
    assert out["customer_id"].is_unique and manifest["rows"] == len(out)
    assert manifest["batches"] > 3  # really several batches
    assert list(out.columns) == output_schema(3).names
    # upgrade probabilities exactly for the near-tier population, ranked within bands
    near = out["near_tier"].to_numpy(dtype=bool)
    assert out["p_upgrade"].notna().to_numpy().tolist() == near.tolist()
    scored = out[near]
    assert scored["p_upgrade"].between(0, 1).all()
    assert scored["upgrade_decile"].between(1, 10).all()
    assert scored["upgrade_permille"].between(1, 1000).all()
    assert out.loc[~near, "upgrade_decile"].isna().all()
    for _, band in scored.groupby("near_band"):
        best = band.sort_values("p_upgrade", ascending=False).iloc[0]
        assert best["upgrade_permille"] <= 1000 // len(band) + 1
        assert (band["expected_gain"] == band["p_upgrade"] * band["gap_to_next"]).all()
    assert scored["reason_1_text"].notna().mean() > 0.9
    assert scored["reason_1_text_zh"].notna().mean() > 0.9
    names = job["groups"].names
    assert (out["segment_name"] == names.reindex(out["segment_id"])["name_en"].to_numpy()).all()
    assert set(out["groups_model"]) == {"scoring_test-groups/1"}
    assert set(out["upgrade_model"]) == {"scoring_test-upgrade/1"}


def test_scoring_a_test_month_gives_the_training_probabilities(job, tmp_path):
    # The last held-out month has labels, so training scored its near-tier customers; batch
    # scoring of that month rebuilds the features from the panel and must agree exactly.
    up = job["upgrade"]
    month = up.split["test"][-1]
    trained = up.test[up.test["as_of"].astype(str) == month]
    assert len(trained) > 100
    res = score_local(
        job["panel_path"],
        month,
        tmp_path / "test_month",
        job["scorer"],
        batch_customers=400,
        scored_at="2026-01-01T00:00:00+00:00",
    )
    out = read_output(res.out)
    assert set(out["as_of"].astype(str)) == {month}
    merged = trained.merge(out, on="customer_id", suffixes=("", "_scored"), validate="1:1")
    assert len(merged) == len(trained)  # every trained test row was scored
    # The scorer holds the deployed model (refitted on every labelled month): the scored
    # probability is its probability of the rows training built.
    expected = up.deployed.predict_proba(merged)[:, 1]
    np.testing.assert_allclose(merged["p_upgrade_scored"], expected, rtol=1e-12)


def test_batches_do_not_change_the_output(job, reference_output, tmp_path, monkeypatch):
    # One batch for everyone, and many small Arrow reads on a month-sorted copy so a
    # read boundary falls inside customers' months: same rows, same ranks.
    one = score_local(
        job["panel_path"],
        AS_OF,
        tmp_path / "one",
        job["scorer"],
        batch_customers=10**6,
        scored_at="2026-01-01T00:00:00+00:00",
    )
    by_month = tmp_path / "by_month.parquet"
    table = pq.read_table(job["panel_path"]).sort_by([("month", "ascending")])
    pq.write_table(table, by_month)
    monkeypatch.setattr(local_engine, "READ_ROWS", 997)
    split = score_local(
        by_month,
        AS_OF,
        tmp_path / "split",
        job["scorer"],
        batch_customers=300,
        scored_at="2026-01-01T00:00:00+00:00",
    )
    ref = read_output(reference_output.out)
    pd.testing.assert_frame_equal(read_output(one.out), ref)
    pd.testing.assert_frame_equal(read_output(split.out), ref)


def test_a_past_month_scores_with_batches_of_customers_who_joined_later(job, tmp_path):
    """A customer-sorted file whose last customers joined after the as-of month: their
    batches have no row in the months read, and add nothing (they failed as empty)."""
    raw = pq.read_table(job["panel_path"]).to_pandas()
    months = pd.PeriodIndex(raw["month"].astype(str).str[:7], freq="M")
    ids = sorted(raw["customer_id"].unique())
    late = raw["customer_id"].isin(ids[-600:]) & (months < pd.Period("2025-04", "M"))
    path = tmp_path / "joined_later.parquet"
    pq.write_table(
        pa.Table.from_pandas(raw[~late], preserve_index=False), path, row_group_size=4_000
    )
    past = "2025-02"
    res = score_local(path, past, tmp_path / "past", job["scorer"], batch_customers=300)
    out = read_output(res.out)
    kept = raw[~late]
    active = kept.loc[months[~late.to_numpy()] == pd.Period(past, "M"), "customer_id"]
    assert sorted(out["customer_id"].astype(str)) == sorted(active.astype(str))
    assert not set(out["customer_id"]) & set(ids[-600:])


def _score_cmd(job, out, *extra):
    return [
        sys.executable,
        "-m",
        "segments",
        "score",
        "--panel",
        str(job["panel_path"]),
        "--as-of",
        AS_OF,
        "--out",
        str(out),
        "--config",
        str(job["config"]),
        "--no-track",
        "--scored-at",
        "2026-01-01T00:00:00+00:00",
        *extra,
    ]


def test_a_killed_run_resumes_to_identical_output(job, tmp_path):
    env = {**os.environ}
    full = tmp_path / "full"
    subprocess.run(
        _score_cmd(job, full, "--batch-customers", "150"), env=env, check=True, capture_output=True
    )
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _score_cmd(job, out, "--batch-customers", "150"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = tmp_path / "killed.partial" / "parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(parts.glob("part-*.parquet"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("part-*.parquet")))
    assert 3 <= done_before < len(list(full.glob("*.parquet")))
    assert not out.exists()  # nothing published by the killed run
    subprocess.run(
        _score_cmd(job, out, "--batch-customers", "150"), env=env, check=True, capture_output=True
    )
    assert not (tmp_path / "killed.partial").exists()
    files = sorted(p.name for p in full.glob("*.parquet"))
    assert files == sorted(p.name for p in out.glob("*.parquet"))
    match, mismatch, errors = filecmp.cmpfiles(full, out, files, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(files)
    a, b = (json.loads((d / "_manifest.json").read_text()) for d in (full, out))
    assert b["resumed"] == 1 and a["resumed"] == 0
    # the content digest recorded when the killed run validated, kept on resume
    assert a["data_digest"] == b["data_digest"] == job["upgrade"].panel.digest
    for m in (a, b):
        m.pop("timings_s"), m.pop("resumed")
    assert a == b
    assert filecmp.cmp(full / "_drift.csv", out / "_drift.csv", shallow=False)


def _bad_panel(job, tmp_path, name, change):
    raw = read_panel(job["panel_path"])
    keep = raw["customer_id"].isin(raw["customer_id"].unique()[:200])
    df = change(raw[keep].copy())
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    return path


def _first(df, col, value):
    df = df.copy()
    df[col] = df[col].astype(object)
    df.iloc[0, df.columns.get_loc(col)] = value
    return df


BAD = {
    "missing_column": (lambda d: d.drop(columns="month"), "month"),
    "negative_money": (lambda d: _first(d, "dep_demand", -5.0), "dep_demand"),
    "non_numeric": (lambda d: _first(d, "funds", "lots"), "funds"),
    "duplicate": (lambda d: pd.concat([d, d.head(3)]), "duplicate"),
    "bad_month": (lambda d: _first(d, "month", "2025-13"), "month"),
    "no_as_of_rows": (lambda d: d[d["month"].astype(str) < "2025-06"], "as-of month"),
    "empty": (lambda d: d.head(0), "no rows"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_before_any_work(job, tmp_path, case):
    change, expected = BAD[case]
    path = _bad_panel(job, tmp_path, case, change)
    out = tmp_path / "out"
    with pytest.raises(PanelValidationError) as info:
        score_local(path, AS_OF, out, job["scorer"], batch_customers=50)
    assert expected in str(info.value)
    assert not out.exists() and not (tmp_path / "out.partial").exists()
    res = CliRunner().invoke(
        app,
        [
            "score",
            "--panel",
            str(path),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
            "--config",
            str(job["config"]),
            "--no-track",
        ],
    )
    assert res.exit_code == 1 and expected in res.output


def test_a_model_that_does_not_fit_the_features_is_refused(job):
    cfg = load_config(job["config"], {"features": {"windows": [4, 8]}})
    with pytest.raises(ModelContractError) as info:
        load_scorer(cfg)
    text = str(info.value)
    assert "not in the current feature contract" in text and "aum_avg_6m" in text
    with pytest.raises(ModelContractError, match="trained on ladder 'cmb'"):
        load_scorer(load_config(job["config"], {"tiers": {"ladder": "ccb"}}))


def test_cli_scoring_run_in_mlflow_and_drift(job, tmp_path):
    import mlflow

    out = tmp_path / "tracked"
    res = CliRunner().invoke(
        app,
        [
            "score",
            "--panel",
            str(job["panel_path"]),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
            "--config",
            str(job["config"]),
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "_manifest.json").read_text())
    client = mlflow.MlflowClient()
    run = client.get_run(manifest["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["segments.model_kind"] == "scoring"
    m = run.data.metrics
    assert m["rows"] == manifest["rows"]
    assert sum(v for k, v in m.items() if k.startswith("tier.")) == manifest["rows"]
    assert "psi.score.p_upgrade" in m and "psi.groups.group_id" in m
    assert any(k.startswith("psi.feature.") for k in m)
    files = {a.path for a in client.list_artifacts(run.info.run_id, "drift")}
    assert {"drift/psi.csv", "drift/report.html", "drift/psi_top20.png"} <= files
    scored = read_output(out)
    assert (scored["run_id"] == run.info.run_id).all()
    # The probabilities' summary is of every near-tier customer's, read as one column.
    p = np.sort(scored["p_upgrade"].dropna().to_numpy(dtype=float))
    np.testing.assert_array_equal(np.sort(probabilities(out)), p)
    assert m["p_upgrade.mean"] == pytest.approx(p.mean())
    assert m["p_upgrade.q50"] == pytest.approx(np.quantile(p, 0.5))
    # The same month re-scored against its own training reference is stable ...
    assert manifest["drift"]["significant"] == 0
    assert run.data.tags["segments.drift"] in ("none", "moderate")
    assert run.data.tags["mlflow.note.content"].startswith(f"**Scoring {AS_OF}**: drift **")
    # ... a bank whose money tripled is not: warning, or exit 1 when configured.
    raw = read_panel(job["panel_path"])
    money = [
        "aum",
        "dep_demand",
        "dep_time",
        "wealth_products",
        "funds",
        "insurance",
        "bonds",
        "precious_metals",
    ]
    now = (raw["month"] == pd.Period(AS_OF, "M")).to_numpy()
    for c in money:
        raw[c] = np.where(now, raw[c].to_numpy(dtype=float) * 3, raw[c].to_numpy(dtype=float))
    shifted = tmp_path / "shifted.parquet"
    raw.to_parquet(shifted)
    res = CliRunner().invoke(
        app,
        [
            "score",
            "--panel",
            str(shifted),
            "--as-of",
            AS_OF,
            "--out",
            str(tmp_path / "shifted"),
            "--config",
            str(job["config"]),
            "--fail-on-drift",
            "--no-track",
        ],
    )
    assert res.exit_code == 1
    assert "drifted" in res.output and (tmp_path / "shifted" / "_manifest.json").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="local Spark tested on Linux")
def test_spark_output_equals_local_row_for_row(job, reference_output, tmp_path):
    from segments.engines.spark import score_spark, spark_session

    # a customer-sorted file runs the local engine's batches as Spark tasks; an unsorted
    # one goes through Spark's own read and partitioning by customer
    raw = pq.read_table(job["panel_path"]).to_pandas()
    paths = {kind: tmp_path / f"{kind}.parquet" for kind in ("sorted", "shuffled")}
    ordered = raw.sort_values(["customer_id", "month"])
    ordered.to_parquet(paths["sorted"], index=False, row_group_size=4_000)
    raw.sample(frac=1.0, random_state=3).to_parquet(paths["shuffled"], index=False)
    spark = spark_session("local[2]")
    try:
        results = {
            kind: score_spark(
                path,
                AS_OF,
                tmp_path / kind,
                job["scorer"],
                scored_at="2026-01-01T00:00:00+00:00",
                spark=spark,
                partitions=3,
                batch_customers=400,
            )
            for kind, path in paths.items()
        }
    finally:
        spark.stop()
    sorted_run, shuffled_run = (results[k].manifest for k in ("sorted", "shuffled"))
    assert sorted_run["batches"] > 3 and "score_s" in sorted_run["timings_s"]
    assert shuffled_run["batches"] == 3 and "validate_and_score_s" in shuffled_run["timings_s"]
    for res in results.values():
        assert res.manifest["engine"].startswith("spark local[2]")
        validate_output(res.out)
        pd.testing.assert_frame_equal(read_output(res.out), read_output(reference_output.out))
        assert res.manifest["tiers"] == reference_output.manifest["tiers"]
        pd.testing.assert_frame_equal(res.drift, reference_output.drift)
        assert res.manifest["data_digest"] == job["upgrade"].panel.digest  # as training's


SPARK_BAD = {
    # spread over many customers, so over several buckets of each engine
    "negative_money": lambda d: d.assign(dep_demand=d["dep_demand"].where(d.index % 97 != 0, -5.0)),
    "duplicate": lambda d: pd.concat([d, d.iloc[::151]]),
    "no_as_of_rows": lambda d: d[d["month"].astype(str) < AS_OF],
}


@pytest.mark.skipif(sys.platform != "linux", reason="local Spark tested on Linux")
def test_spark_reads_zoned_timestamp_months_as_the_local_engine(job, tmp_path):
    from segments.engines.spark import score_spark, spark_session

    raw = pq.read_table(job["panel_path"]).to_pandas()
    starts = pd.PeriodIndex(raw["month"].astype(str), freq="M").to_timestamp()
    # 02:00 on the 1st in Shanghai is still the month before in UTC
    raw["month"] = (starts + pd.Timedelta(hours=2)).tz_localize("Asia/Shanghai")
    path = tmp_path / "zoned.parquet"
    raw.sample(frac=1.0, random_state=4).to_parquet(path, index=False)  # unsorted: Spark reads
    scorer = job["scorer"]
    scorer = dataclasses.replace(
        scorer, panel=dataclasses.replace(scorer.panel, timezone="Asia/Shanghai")
    )
    outputs = {}
    spark = spark_session("local[2]")
    try:
        for engine in ("local", "spark"):
            out = tmp_path / engine
            if engine == "local":
                res = score_local(path, AS_OF, out, scorer, batch_customers=400)
            else:
                res = score_spark(path, AS_OF, out, scorer, spark=spark, partitions=3)
                assert "validate_and_score_s" in res.manifest["timings_s"]
            outputs[engine] = read_output(out).drop(columns=["scored_at", "run_id"])
    finally:
        spark.stop()
    assert len(outputs["local"]) > 1_000
    pd.testing.assert_frame_equal(outputs["spark"], outputs["local"])


@pytest.mark.skipif(sys.platform != "linux", reason="local Spark tested on Linux")
def test_spark_refuses_bad_input_with_the_local_engines_violations(job, tmp_path):
    from segments.engines.spark import score_spark, spark_session

    raw = read_panel(job["panel_path"])
    raw["month"] = raw["month"].astype(str)
    spark = spark_session("local[2]")
    try:
        for case, change in SPARK_BAD.items():
            path = tmp_path / f"{case}.parquet"
            change(raw.copy()).reset_index(drop=True).to_parquet(path, index=False)
            found = {}
            for engine in ("local", "spark"):
                out = tmp_path / f"{case}_{engine}"
                with pytest.raises(PanelValidationError) as info:
                    if engine == "local":
                        score_local(path, AS_OF, out, job["scorer"], batch_customers=300)
                    else:
                        score_spark(path, AS_OF, out, job["scorer"], spark=spark, partitions=3)
                assert not out.exists() and not out.with_name(out.name + ".partial").exists()
                found[engine] = info.value.violations
            assert found["spark"] == found["local"], case
            assert found["spark"] and (case == "no_as_of_rows" or found["spark"][0].n_rows > 3)
    finally:
        spark.stop()


# -- growth sources, levers and the service plan on a real scoring output -----------------


def test_the_output_carries_branch_and_a_lever_for_the_upgrade_population(job, reference_output):
    from segments.core.growth.levers import LEVERS

    out = read_output(reference_output.out).set_index("customer_id")
    panel = job["panel"]
    now = panel[panel["month"] == pd.Period(AS_OF, "M")].set_index("customer_id")
    assert (out["branch_id"] == now["branch_id"].astype(str).reindex(out.index)).all()
    scored = out["p_upgrade"].notna()
    assert out.loc[scored, "lever"].isin(LEVERS).all()
    assert out.loc[~scored, ["lever", "lever_reason", "lever_reason_zh"]].isna().all().all()
    assert out.loc[scored, "lever_reason"].str.len().gt(10).all()
    assert out.loc[scored, "lever_reason_zh"].str.len().gt(5).all()
    assert out.loc[scored, "lever"].nunique() >= 2  # the evidence differs across customers


def test_growth_by_group_reads_the_groups_of_a_scoring_output(job, reference_output, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "growth",
            str(job["panel_path"]),
            "--month",
            AS_OF,
            "--scores",
            str(reference_output.out),
            "--by",
            "group",
            "--by",
            "branch",
            "--out",
            str(tmp_path / "growth.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    names = set(read_output(reference_output.out)["segment_name"])
    assert "by strategic group" in res.output and "by branch" in res.output
    assert sum(n in res.output for n in names) == len(names)
    table = pd.read_csv(tmp_path / "growth.csv")
    assert list(table.columns[:3]) == ["customer_id", "month", "aum_change"]
    assert table["growth_residual"].abs().max() < 0.005
    # A second run refuses to overwrite without --overwrite, then replaces its own file.
    cmd = ["growth", str(job["panel_path"]), "--out", str(tmp_path / "growth.csv")]
    assert CliRunner().invoke(app, cmd).exit_code == 1
    assert CliRunner().invoke(app, [*cmd, "--overwrite"]).exit_code == 0


def test_plan_from_a_scoring_output_writes_the_folder_and_an_aggregate_run(
    job, reference_output, tmp_path
):
    import mlflow

    out = tmp_path / "plan"
    args = ["plan", "--scores", str(reference_output.out), "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "--config", str(job["config"])])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["plan.parquet", "staffing.csv", "levers_by_group.csv", "levers_by_branch.csv",
         "summary.md", "_plan.json"]
    )  # fmt: skip
    plan = pd.read_parquet(out / "plan.parquet")
    scores = read_output(reference_output.out)
    assert len(plan) == len(scores)
    on_list = plan["call_rank"].notna()
    assert on_list.sum() == scores["p_upgrade"].notna().sum()
    staffing = pd.read_csv(out / "staffing.csv")
    assert staffing["prospects"].sum() == on_list.sum()
    assert staffing["prospects_outside"].sum() == (plan["in_capacity"] == False).sum()  # noqa: E712
    assert "# Service plan, " + AS_OF in (out / "summary.md").read_text()
    # The planning run holds aggregates only: no customer id in any of its artifacts.
    manifest = json.loads((out / "_plan.json").read_text())
    assert manifest["call_list"] == int(on_list.sum())
    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name(job["cfg"].name).experiment_id],
        "tags.`segments.model_kind` = 'plan'",
    )
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["plan.call_list"] == on_list.sum()
    ids = set(scores["customer_id"])
    root = mlflow.artifacts.download_artifacts(run_id=runs[0].info.run_id, dst_path=tmp_path / "a")
    texts = [p.read_text(encoding="utf-8") for p in Path(root).rglob("*") if p.is_file()]
    assert texts and not any(i in t for t in texts for i in ids)
    # Again without --overwrite: refused, the plan untouched; an input as output: refused.
    before = (out / "plan.parquet").read_bytes()
    assert CliRunner().invoke(app, [*args, "--no-track"]).exit_code == 1
    assert (out / "plan.parquet").read_bytes() == before
    bad = ["plan", "--scores", str(reference_output.out), "--out", str(reference_output.out)]
    assert CliRunner().invoke(app, [*bad, "--no-track"]).exit_code == 1
    assert validate_output(reference_output.out)["rows"] == len(scores)


def test_plan_refuses_bad_inputs_before_writing(job, reference_output, tmp_path):
    managers = tmp_path / "managers.csv"
    managers.write_text("branch_id,service_model,managers\nB001,branch_rm,2\n")
    cases = [
        (["--scores", str(job["root"] / "bank")], "not a segments scoring output"),
        (["--scores", str(reference_output.out), "--managers", str(managers)], "branch_rm"),
        (
            ["--scores", str(reference_output.out), "--managers", str(tmp_path / "no.csv")],
            "not a file",
        ),
    ]
    for extra, words in cases:
        out = tmp_path / "plan"
        res = CliRunner().invoke(app, ["plan", "--out", str(out), "--no-track", *extra])
        assert res.exit_code == 1, res.output
        assert words in res.stderr and "Traceback" not in res.stderr
        assert not out.exists() and not (tmp_path / "plan.partial").exists()
