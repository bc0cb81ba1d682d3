"""What a reviewer meets in the MLflow UI (segments.mlops.review), on a real tracking store:
experiments that open on "Model training" with a description, the pages ``segments ui``
prints, the model card first among the artifacts, and label counts charted by month."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from segments.mlops.review import (
    CARD_DIR,
    EXPERIMENT_KIND,
    MODEL_TRAINING,
    NOTE,
    experiment_tags,
    landing_urls,
    log_by_month,
    month_span,
    month_step,
    review_experiments,
)
from segments.mlops.tracking import experiment_id, log_card, start_run


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An empty SQLite tracking store, made once (MLflow's migrations take seconds)."""
    import mlflow

    path = tmp_path_factory.mktemp("empty") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(empty_store, tmp_path, monkeypatch):
    """A fresh tracking store (a copy of the empty one), configured for segments and
    returned as a client."""
    import mlflow

    shutil.copy(empty_store, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)  # runs' artifacts go to ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri)


def ui_order(files: list) -> list[str]:
    """The order MLflow 3.17's UI lists artifacts in: folders first, then files, each in the
    server's order (see test_the_ui_bundle_still_works_the_way_segments_relies_on)."""
    return [f.path for f in sorted(files, key=lambda f: not f.is_dir)]


def test_a_new_experiment_opens_on_model_training_and_says_how_to_read_it(store):
    with start_run("fresh", "a run"):
        pass
    tags = store.get_experiment_by_name("fresh").tags
    assert tags[EXPERIMENT_KIND] == MODEL_TRAINING == "custom_model_development"
    note = tags[NOTE]
    for text in (
        "`groups`",
        "`upgrade`",
        "`scoring`",
        "`promotion`",
        f"{CARD_DIR}/model_card.html",
        "model.roc_auc",
        "labels.*",
        "step YYYYMM",
        "`challenger`",
        "`champion`",
        "`segments history MODEL`",
        "fresh-upgrade",
    ):
        assert text in note, text


def test_an_existing_experiment_gets_the_kind_and_description_but_a_users_own_is_kept(store):
    bare = store.create_experiment("bare")  # made by MLflow itself, before segments
    mine = store.create_experiment(
        "mine", tags={NOTE: "Q3 review: see ticket MR-112", EXPERIMENT_KIND: "genai_development"}
    )
    kept = store.create_experiment("kept", tags={EXPERIMENT_KIND: "classification"})
    old = store.create_experiment("old", tags=experiment_tags("a former name"))
    for name in ("bare", "mine", "kept", "old"):
        experiment_id(name)
    tags = {e: store.get_experiment(e).tags for e in (bare, mine, kept, old)}
    assert tags[bare][EXPERIMENT_KIND] == MODEL_TRAINING
    assert tags[bare][NOTE] == experiment_tags("bare")[NOTE]
    assert tags[mine][NOTE] == "Q3 review: see ticket MR-112"  # written by a user: kept
    assert tags[mine][EXPERIMENT_KIND] == MODEL_TRAINING  # GenAI is never right here
    assert tags[kept][EXPERIMENT_KIND] == "classification"  # a model-training kind: kept
    assert tags[old][NOTE] == experiment_tags("old")[NOTE]  # segments' own text: renewed


def test_scoring_runs_go_to_a_marked_experiment(store):
    """The scoring job's run, the first run of an experiment, goes to a marked one."""
    from types import SimpleNamespace

    from segments.mlops.scoring_runs import start_scoring_run

    scorer = SimpleNamespace(
        ladder=SimpleNamespace(name="cmb"), groups_model="g", upgrade_model="u", sources={}
    )
    rid = start_scoring_run(SimpleNamespace(name="scored"), "2025-12", scorer, "panel.parquet")
    exp = store.get_experiment(store.get_run(rid).info.experiment_id)
    assert exp.name == "scored" and exp.tags[EXPERIMENT_KIND] == MODEL_TRAINING
    assert exp.tags[NOTE] == experiment_tags("scored")[NOTE]


def test_the_pages_segments_ui_prints_are_the_runs_of_each_segments_experiment(store):
    ids = {n: store.create_experiment(n) for n in ("alpha", "plain", "beta")}
    for name, eid in ids.items():
        tags = {} if name == "plain" else {"segments.model_kind": "upgrade"}
        store.create_run(eid, tags=tags)
    found = review_experiments(store.tracking_uri)
    assert [e.name for e in found] == ["alpha", "beta"]  # not the one without segments runs
    assert store.get_experiment(ids["beta"]).tags[EXPERIMENT_KIND] == MODEL_TRAINING
    assert EXPERIMENT_KIND not in store.get_experiment(ids["plain"]).tags  # not ours
    base = "http://127.0.0.1:5000"
    assert landing_urls(found, base) == [
        (
            "experiment alpha",
            f"{base}/#/experiments/{ids['alpha']}/runs?workflowType=machine_learning",
        ),
        (
            "experiment beta",
            f"{base}/#/experiments/{ids['beta']}/runs?workflowType=machine_learning",
        ),
        ("registry", f"{base}/#/models?workflowType=machine_learning"),
    ]
    assert landing_urls([], base)[0] == (
        "experiments",
        f"{base}/#/experiments?workflowType=machine_learning",
    )


def test_the_model_card_is_the_first_artifact_and_the_runs_description_links_it(store):
    import mlflow

    with start_run("cards", "a training") as run:
        # Names that sort before the card at the top level, as a training logs them.
        mlflow.log_text("x", "call_list_sample.csv")
        mlflow.log_text("x", "evaluation/metrics.csv")
        mlflow.log_text("x", "segments_audit/seq-000001.json")
        log_card("# Model card\n\n## Purpose\n\nTesting.", "Model card: t", {"name": "cards"})
    rid = run.info.run_id
    order = ui_order(store.list_artifacts(rid))
    assert order[0] == CARD_DIR
    assert ui_order(store.list_artifacts(rid, CARD_DIR))[0] == f"{CARD_DIR}/model_card.html"
    assert {"model_card.html", "model_card.md", "config.yaml"} <= set(order)  # kept
    assert mlflow.artifacts.load_text(f"runs:/{rid}/{CARD_DIR}/model_card.html") == (
        mlflow.artifacts.load_text(f"runs:/{rid}/model_card.html")
    )
    note = store.get_run(rid).data.tags[NOTE]
    eid = run.info.experiment_id
    link = f"(#/experiments/{eid}/runs/{rid}/artifacts/{CARD_DIR}/model_card.html?workflowType="
    assert link in note


def test_label_counts_are_charted_at_step_yyyymm_and_at_the_first_of_the_month(store):
    import mlflow

    counts = pd.DataFrame(
        {"positives": [3, 5, 8], "population": [90, 95, 99]},
        index=pd.Index(["2025-11", "2025-12", "2026-01"], name="as_of"),
    )
    with start_run("charts", "labels") as run:
        log_by_month(mlflow, "labels", counts, ["positives", "population"])
    history = store.get_metric_history(run.info.run_id, "labels.positives")
    assert [(h.step, h.value) for h in history] == [(202511, 3), (202512, 5), (202601, 8)]
    firsts = pd.to_datetime([h.timestamp for h in history], unit="ms", utc=True)
    assert list(firsts.strftime("%Y-%m-%d %H:%M")) == [
        "2025-11-01 00:00",
        "2025-12-01 00:00",
        "2026-01-01 00:00",
    ]
    assert month_step(pd.Period("2025-08", "M")) == 202508


def test_a_run_name_names_every_test_month():
    assert month_span(["2025-08"]) == "2025-08"
    assert month_span(["2025-09", "2025-08"]) == "2025-08..2025-09"
    assert month_span(["2025-12", "2026-01", "2026-02"]) == "2025-12..2026-02"
    assert month_span(["2025-06", "2025-08"]) == "2025-06,2025-08"  # a gap: each month


def test_the_ui_bundle_still_works_the_way_segments_relies_on():
    """What segments read in MLflow's UI code (mlflow/server/js/build): the workflow comes
    from the URL's ``workflowType``; ``custom_model_development`` is a model-training kind;
    the runs and registry routes; artifacts listed folders first (a stable sort), each in
    the server's order, which sorts by path. An MLflow upgrade that changes one fails here.
    """
    import mlflow
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    js = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    code = "".join(p.read_text(encoding="utf-8", errors="replace") for p in js.glob("*.js"))
    assert re.search(r'\.get\("workflowType"\)', code)
    # ... else the toggle's stored choice, the key segments' landing page sets (ui_app):
    # "mlflow.workflowType" version 1, stored as `${key}_v${version}`, a JSON value.
    assert 'key:"mlflow.workflowType",version:1' in code
    assert "const o=(e,t)=>`${e}_v${t}`" in code and "JSON.parse(e)" in code
    assert 'MACHINE_LEARNING="machine_learning"' in code
    assert 'CUSTOM_MODEL_DEVELOPMENT="custom_model_development"' in code
    assert '"mlflow.experimentKind"' in code
    assert "/experiments/:experimentId/runs" in code and '"/models"' in code
    assert "/experiments/:experimentId/runs/:runUuid/*" in code  # .../artifacts/<path>
    assert "sort((e,t)=>t.is_dir-e.is_dir)" in code
    import inspect

    assert "sorted(infos, key=lambda f: f.path)" in inspect.getsource(
        LocalArtifactRepository.list_artifacts
    )
