"""Training strategic groups end to end, tracked in a real MLflow store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from segments import load_config, make_bank, train_groups, validate_panel
from segments.cli import app


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    raw, _ = make_bank(2_500, 18, seed=5)
    panel = validate_panel(raw)
    cfg = load_config(overrides={"name": "groups_test",
                                 "groups": {"n_bootstrap": 2, "k_max": 8}})
    result = train_groups(panel, cfg)
    yield result, root
    mp.undo()


def test_run_is_readable_back(tracked):
    import mlflow

    result, root = tracked
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["groups.algorithm"] == "kmeans"
    assert run.data.params["as_of"] == result.as_of
    assert run.data.tags["segments.model_kind"] == "groups"
    assert len(run.data.tags["segments.data_digest"]) == 64
    m = run.data.metrics
    assert m["n_groups"] == result.model.n_groups_
    assert m["stability_ari_mean"] == pytest.approx(result.model.stability_["ari_mean"])
    history = client.get_metric_history(result.run_id, "k_silhouette")
    assert sorted(h.step for h in history) == list(range(3, 9))
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"plots", "profiles", "k_selection", "tier_group", "names.csv",
            "persona_cards.md", "stability.json"} <= artifacts
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"plots/k_selection.png", "plots/profile_heatmap.png", "plots/tier_group.png",
            "plots/group_sizes.png"} <= plots
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "groups_test"
    assert run.inputs.dataset_inputs[0].dataset.name == "features"


def test_logged_model_predicts_the_same_groups(tracked):
    from segments.tracking import load_groups_model

    result, _ = tracked
    model = load_groups_model(result.model_uri)
    out = model.predict(result.features[result.model.features_])
    np.testing.assert_array_equal(out["group_id"].to_numpy(), result.model.labels_)
    expected = result.names.reindex(result.model.labels_)["name_en"].to_numpy()
    np.testing.assert_array_equal(out["segment_name"].to_numpy(), expected)


def test_train_groups_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    raw, _ = make_bank(1_500, 12, seed=8)
    raw.to_parquet(tmp_path / "panel.parquet")
    cfg = tmp_path / "quick.yaml"
    cfg.write_text("groups:\n  n_bootstrap: 1\n  k_max: 6\n  n_init: 3\n")
    runner = CliRunner()
    result = runner.invoke(app, ["train", "groups", "--panel", str(tmp_path / "panel.parquet"),
                                 "--config", str(cfg), "--as-of", "2024-11"])
    assert result.exit_code == 0, result.output
    for text in ("strategic groups as of 2024-11", "k selection", "Tier x group",
                 "experiment 'quick'", "models:/"):
        assert text in result.output
    assert (tmp_path / "mlflow.db").exists()  # the default store: a file in the cwd
    bad = runner.invoke(app, ["train", "groups", "--panel", str(tmp_path / "panel.parquet"),
                              "--as-of", "2019-01"])
    assert bad.exit_code == 1 and "no rows at or before 2019-01" in bad.stderr


def test_summary_json(tracked):
    from segments.training import groups_summary_json

    result, _ = tracked
    data = json.loads(groups_summary_json(result))
    assert data["n_groups"] == result.model.n_groups_
    assert abs(sum(g["share"] for g in data["groups"].values()) - 1) < 1e-9
