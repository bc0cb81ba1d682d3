"""Lineage between runs, in a real MLflow store: one content digest from training to
scoring to promotion, a drift report that names the training reference it compares
with, and promotion runs tagged as training runs are, with every check and baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from segments import read_panel, validate_panel
from segments.cli import app
from segments.core.data.digest import panel_digest
from segments.core.data.panel import inspect_panel
from segments.core.tiers.ladders import load_ladder
from segments.exceptions import PromotionError
from segments.jobs.batched import run_validated, training_columns
from segments.jobs.score import load_scorer, score_local
from segments.mlops.promotion import promote
from segments.mlops.tracking import code_version
from tests.banks import LENIENT, promoted_bank, tracked_folder

pytestmark = pytest.mark.slow
AS_OF = "2025-06"
DIGEST = "segments.data_digest"


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """A 2,500-customer bank, both models trained from the frame and promoted."""
    import mlflow

    with tracked_folder(tmp_path_factory, "lineage", SEGMENTS_USER="reviewer-l") as (root, _):
        out = promoted_bank(root, "lineage", 2_500, 18, seed=5, config=LENIENT)
        client = mlflow.MlflowClient()
        out["client"] = client
        out["runs"] = {k: client.get_run(out[k].run_id) for k in ("upgrade", "groups")}
        yield out


@pytest.fixture(scope="module")
def scored(bank):
    """A tracked scoring of the training panel, through the command line."""
    out = bank["root"] / "scores"
    res = CliRunner().invoke(
        app,
        [
            "score",
            "--panel",
            str(bank["panel_path"]),
            "--as-of",
            AS_OF,
            "--out",
            str(out),
            "--config",
            str(bank["config"]),
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "_manifest.json").read_text())
    return {"out": out, "manifest": manifest, "run": bank["client"].get_run(manifest["run_id"])}


def test_training_and_scoring_log_one_content_digest(bank, scored):
    trained = {k: r.data.tags[DIGEST] for k, r in bank["runs"].items()}
    assert trained["upgrade"] == trained["groups"] == bank["upgrade"].panel.digest
    assert trained["upgrade"] == panel_digest(bank["panel"])
    # Scoring reads the file in batches of customers and digests each batch as it is
    # validated: the same value as training's digest of the whole frame.
    assert scored["manifest"]["data_digest"] == trained["upgrade"]
    assert scored["run"].data.tags[DIGEST] == trained["upgrade"]
    # input_digest (the file's bytes; a resumed job must match it) is another thing.
    assert scored["manifest"]["input_digest"] != trained["upgrade"]


def test_a_training_from_the_file_in_batches_logs_the_same_digest(bank):
    cfg = bank["cfg"]
    path = bank["panel_path"]
    found = inspect_panel(path, cfg.panel, months=True)
    t = cfg.tiers
    ladder = load_ladder(t.ladder, basis_window=t.basis_window, hysteresis=t.hysteresis)
    # The batched training's pass (len: the work done on each validated batch), on two
    # worker processes: the workers' parts add up to the frame's digest.
    parts, summary = run_validated(
        path,
        found,
        cfg.panel,
        training_columns(found, cfg.panel, ladder.columns),
        len,
        batch_customers=300,
        workers=2,
        ladder_columns=ladder.columns,
    )
    assert len(parts) > 2 and sum(parts) == summary.rows
    assert summary.digest == bank["runs"]["upgrade"].data.tags[DIGEST]


def _one_value_changed(raw: pd.DataFrame, row: int, by: float) -> pd.DataFrame:
    """Another panel: one customer-month's time deposits (and so its AUM) changed."""
    at = raw.index != raw.index[row]
    return raw.assign(**{c: raw[c].where(at, raw[c] + by) for c in ("dep_time", "aum")})


def test_the_digest_ignores_format_and_order_and_sees_a_changed_value(bank, tmp_path):
    scorer = load_scorer(bank["cfg"])
    raw = read_panel(bank["panel_path"])
    shuffled = raw.sample(frac=1.0, random_state=4)
    shuffled.to_csv(tmp_path / "panel.csv", index=False)
    shuffled.to_parquet(tmp_path / "shuffled.parquet", index=False)
    _one_value_changed(raw, 10, 1.0).to_parquet(tmp_path / "changed.parquet", index=False)
    digests = {
        name: score_local(
            tmp_path / name, AS_OF, tmp_path / f"out-{name}", scorer, batch_customers=400
        ).manifest["data_digest"]
        for name in ("panel.csv", "shuffled.parquet", "changed.parquet")
    }
    trained = bank["runs"]["upgrade"].data.tags[DIGEST]
    assert digests["panel.csv"] == digests["shuffled.parquet"] == trained
    assert digests["changed.parquet"] != trained


def _text(client, run_id: str, path: str, where: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(where))).read_text()


def test_the_drift_report_names_the_training_reference(bank, scored, tmp_path):
    up, gr = bank["upgrade"], bank["groups"]
    test_months = ",".join(up.split["test"])
    expected = {
        "groups": (f"{gr.registered_model}/{gr.model_version}", gr.run_id, gr.as_of),
        "upgrade": (f"{up.registered_model}/{up.model_version}", up.run_id, test_months),
    }
    drift = pd.read_csv(scored["out"] / "_drift.csv", dtype=str)
    role = {"feature": "groups", "group shares": "groups"}
    for row in drift.itertuples():
        want = expected[role.get(row.kind, "upgrade")]
        assert (row.reference_model, row.reference_run, row.reference_months) == want, row
    assert set(drift["kind"]) == {"feature", "upgrade feature", "score", "group shares"}
    reference = scored["manifest"]["drift"]["reference"]
    for r, (model, run_id, months) in expected.items():
        assert reference[r] == {"model": model, "run_id": run_id, "months": months}
    run = scored["run"]
    assert run.data.tags["segments.groups_run"] == gr.run_id
    assert run.data.tags["segments.upgrade_run"] == up.run_id
    assert run.data.params["reference.upgrade.months"] == test_months
    assert run.data.params["reference.groups.run_id"] == gr.run_id
    client = bank["client"]
    text = _text(client, run.info.run_id, "drift/report.md", tmp_path)
    assert f"test months {test_months} (training run `{up.run_id}`)" in text
    assert f"as of {gr.as_of} (training run `{gr.run_id}`)" in text
    assert scored["manifest"]["data_digest"] in text


def _promotion_run(client, run, version: str):
    found = client.search_runs(
        [run.info.experiment_id],
        "tags.`segments.model_kind` = 'promotion' and "
        f"tags.`segments.training_run` = '{run.info.run_id}' and "
        f"tags.`segments.model_version` = '{version}'",
        order_by=["attributes.start_time DESC"],
    )
    assert found, "no promotion run"
    return found[0]


@pytest.mark.parametrize("kind", ["upgrade", "groups"])
def test_promotion_runs_carry_what_training_runs_carry(bank, kind, tmp_path):
    client, training = bank["client"], bank["runs"][kind]
    evidence = _promotion_run(client, training, "1")
    tags = evidence.data.tags
    assert tags["segments.model_kind"] == "promotion"
    assert tags["segments.decision"] == "promoted"
    assert tags["segments.model_version"] == tags["segments.version"] == "1"
    assert tags["segments.registered_model"] == bank[kind].registered_model
    assert tags["segments.training_run"] == training.info.run_id
    assert tags["segments.code_version"] == code_version()
    for key in ("segments.ladder", "segments.as_of", DIGEST):
        assert tags[key] == training.data.tags[key], key
    assert tags["segments.ladder"] == "cmb"
    if kind == "upgrade":
        assert tags["segments.test_months"] == ",".join(bank["upgrade"].split["test"])
    else:
        assert tags["segments.as_of"] == bank["groups"].as_of
    # Every documented check is recorded, passed ones included.
    assert evidence.data.metrics["check.not_already_champion"] == 1.0
    checks = json.loads(_text(client, evidence.info.run_id, "checks.json", tmp_path))
    checks = {c["check"]: c for c in checks["checks"]}
    assert checks["not_already_champion"]["passed"] is True
    assert checks["not_already_champion"]["detail"] == "the champion is (none)"
    assert {"version_exists", "run_finished", "signature"} <= set(checks)


def test_the_held_out_comparison_has_both_baselines_as_training_fitted_them(bank):
    up = bank["upgrade"]
    report = promote(up.registered_model, 1, config=bank["cfg"], panel=bank["panel"], dry_run=True)
    same = report.same_months
    assert list(same.columns) == [
        "challenger v1 out of time",
        "challenger v1 in sample",
        "rule of thumb",
        "logistic baseline",
    ]
    # Rebuilt from the same panel and refitted on the run's own months, both baselines
    # give the training run's own test metrics, Brier and ECE included.
    logged = up.comparison()
    for column, system in (("rule of thumb", "rule_of_thumb"), ("logistic baseline", "logistic")):
        for metric in ("n", "roc_auc", "pr_auc", "brier", "ece", "lift_top10"):
            assert np.isfinite(same.loc[metric, column]), (column, metric)
            assert same.loc[metric, column] == pytest.approx(
                logged.loc[metric, system], abs=1e-9
            ), (column, metric)
    assert any("baselines refitted" in n and "validation months" in n for n in report.notes)
    # The panel given is the training panel, and the report says so by content.
    assert report.data_digest == bank["runs"]["upgrade"].data.tags[DIGEST]
    assert any("is the one version 1 was trained on" in n for n in report.notes)
    # ... and version 1 is the champion already: the check records it.
    assert any(f.startswith("not_already_champion:") for f in report.failed)


def test_a_promotion_logs_the_digest_of_the_panel_it_compared_on(bank, tmp_path):
    client, up = bank["client"], bank["upgrade"]
    other = validate_panel(_one_value_changed(read_panel(bank["panel_path"]), 3, 5.0))
    with pytest.raises(PromotionError):  # version 1 is the champion already
        promote(up.registered_model, 1, config=bank["cfg"], panel=other, reason="recheck")
    evidence = _promotion_run(client, bank["runs"]["upgrade"], "1")
    tags, params = evidence.data.tags, evidence.data.params
    assert tags["segments.decision"] == "refused"
    trained = bank["runs"]["upgrade"].data.tags[DIGEST]
    assert tags[DIGEST] == panel_digest(other) != trained
    assert params["panel_data_digest"] == tags[DIGEST]
    assert params["training_data_digest"] == trained
    assert evidence.data.metrics["check.not_already_champion"] == 0.0
    path = client.download_artifacts(
        evidence.info.run_id, "comparison_same_months.csv", str(tmp_path)
    )
    same = pd.read_csv(path, index_col=0)
    assert {"rule of thumb", "logistic baseline"} <= set(same.columns)
    assert same.loc[["brier", "ece"], ["rule of thumb", "logistic baseline"]].notna().all().all()
    text = _text(client, evidence.info.run_id, "promotion.md", tmp_path)
    assert "is not the one version 1's training run logged" in text
