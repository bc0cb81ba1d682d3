"""Training strategic groups end to end, tracked in a real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from segments import (
    SegmentsWarning,
    load_config,
    log_groups,
    log_upgrade,
    make_bank,
    train_groups,
    validate_panel,
)
from segments.cli import app


def _isolated_store(tmp_path_factory, name: str):
    """A fresh folder and SQLite tracking store for a module's runs; undo() restores."""
    root = tmp_path_factory.mktemp(name)
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root, mp


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    root, mp = _isolated_store(tmp_path_factory, "mlflow")
    raw, truth = make_bank(2_500, 18, seed=5)
    panel = validate_panel(raw)
    cfg = load_config(overrides={"name": "groups_test", "groups": {"n_bootstrap": 2, "k_max": 8}})
    result = train_groups(panel, cfg, reference=truth.set_index("customer_id")["persona"])
    log_groups(result, panel)
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
    assert m["reference_ari"] == pytest.approx(result.metrics["reference_ari"])
    assert m["reference_ari"] >= 0.9  # the planted personas, reported in the run
    assert m["surrogate_fidelity"] >= 0.9
    assert 0.5 < m["group_stay_rate"] <= 1.0
    assert result.migration.to_numpy().sum() > 0
    assert "Why the model places customers here" in result.cards[0]
    assert m["stability_ari_mean"] == pytest.approx(result.model.stability_["ari_mean"])
    history = client.get_metric_history(result.run_id, "k_silhouette")
    assert sorted(h.step for h in history) == list(range(3, 9))
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {
        "plots",
        "profiles",
        "k_selection",
        "tier_group",
        "names.csv",
        "persona_cards.md",
        "stability.json",
    } <= artifacts
    expl = {a.path for a in client.list_artifacts(result.run_id, "explanations")}
    assert {"explanations/group_top_features.csv", "explanations/group_shap_heatmap.png"} <= expl
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {
        "plots/k_selection.png",
        "plots/profile_heatmap.png",
        "plots/tier_group.png",
        "plots/group_sizes.png",
    } <= plots
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "groups_test"
    assert run.inputs.dataset_inputs[0].dataset.name == "features"
    # The model card and the config that produced it, and the registered challenger.
    assert {"model_card.md", "model_card.html", "config.yaml"} <= artifacts
    # The tier x group view names each group (the CSV keeps the ids).
    view = client.download_artifacts(result.run_id, "tier_group/counts.html", str(root))
    page = Path(view).read_text(encoding="utf-8")
    first = result.names.index[0]
    assert f"<th>{first}: {result.names.loc[first, 'name_en']}</th>" in page
    csv = client.download_artifacts(result.run_id, "tier_group/counts.csv", str(root))
    assert str(first) in pd.read_csv(csv, index_col=0).columns
    card = client.download_artifacts(result.run_id, "model_card.md", str(root))
    text = Path(card).read_text(encoding="utf-8")
    for section in (
        "## Purpose",
        "## Data",
        "## Population and definition",
        "## Features used",
        "## Groups",
        "## Metrics and baselines",
        "## Calibration",
        "## Stability",
        "## Known limits",
        "## Configuration",
    ):
        assert section in text, section
    assert run.data.tags["segments.data_digest"] in text
    assert f"Chosen k = {result.model.n_groups_}" in text
    assert (result.registered_model, result.model_version) == ("groups_test-groups", "1")
    assert str(client.get_model_version_by_alias("groups_test-groups", "challenger").version) == "1"
    assert run.data.tags["segments.model_version"] == "1"


def test_logged_model_predicts_the_same_groups(tracked):
    from segments.mlops.tracking import load_groups_model

    result, _ = tracked
    model = load_groups_model(result.model_uri)
    out = model.predict(result.features[result.model.features_])
    np.testing.assert_array_equal(out["group_id"].to_numpy(), result.model.labels_)
    expected = result.names.reindex(result.model.labels_)["name_en"].to_numpy()
    np.testing.assert_array_equal(out["segment_name"].to_numpy(), expected)


def test_train_groups_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    raw, truth = make_bank(1_500, 12, seed=8)
    raw.to_parquet(tmp_path / "panel.parquet")
    truth.to_parquet(tmp_path / "truth.parquet")
    cfg = tmp_path / "quick.yaml"
    cfg.write_text("groups:\n  n_bootstrap: 1\n  k_max: 6\n  n_init: 3\n")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "train",
            "groups",
            "--panel",
            str(tmp_path / "panel.parquet"),
            "--config",
            str(cfg),
            "--as-of",
            "2024-11",
            "--reference",
            str(tmp_path / "truth.parquet"),
        ],
    )
    assert result.exit_code == 0, result.output
    for text in (
        "strategic groups as of 2024-11",
        "k selection",
        "Tier x group",
        "against the reference labels (persona): adjusted Rand index",
        "experiment 'quick'",
        "models:/",
    ):
        assert text in result.output
    assert (tmp_path / "mlflow.db").exists()  # the default store: a file in the cwd
    uri = result.output.split("model: ")[1].split()[0]
    again = runner.invoke(
        app,
        [
            "train",
            "groups",
            "--panel",
            str(tmp_path / "panel.parquet"),
            "--config",
            str(cfg),
            "--previous",
            uri,
        ],
    )
    assert again.exit_code == 0, again.output
    assert "ids matched to the previous model:" in again.output
    bad = runner.invoke(
        app,
        [
            "train",
            "groups",
            "--panel",
            str(tmp_path / "panel.parquet"),
            "--previous",
            "models:/nope/1",
        ],
    )
    assert bad.exit_code == 1 and "--previous" in bad.stderr
    bad = runner.invoke(
        app, ["train", "groups", "--panel", str(tmp_path / "panel.parquet"), "--as-of", "2019-01"]
    )
    assert bad.exit_code == 1 and "no rows at or before 2019-01" in bad.stderr


def test_summary_json(tracked):
    from segments.jobs.train import groups_summary_json

    result, _ = tracked
    data = json.loads(groups_summary_json(result))
    assert data["n_groups"] == result.model.n_groups_
    assert abs(sum(g["share"] for g in data["groups"].values()) - 1) < 1e-9


@pytest.fixture(scope="module")
def upgrade_run(tmp_path_factory):
    from segments.jobs.train_upgrade import train_upgrade

    root, mp = _isolated_store(tmp_path_factory, "mlflow_upgrade")
    raw, _ = make_bank(12_000, 24, seed=3)
    panel = validate_panel(raw)
    result = log_upgrade(
        train_upgrade(panel, load_config(overrides={"name": "upgrade_test"})), panel
    )
    yield result, root
    mp.undo()


def test_model_beats_the_rule_of_thumb_out_of_time(upgrade_run):
    result, _ = upgrade_run
    comp = result.comparison()
    model, rule = comp.loc["roc_auc", "model"], comp.loc["roc_auc", "rule_of_thumb"]
    assert rule > 0.8  # the rule is strong here, as in real books
    if rule > 0.85:
        assert (1 - model) <= 0.75 * (1 - rule), (model, rule)
    else:
        assert model >= rule + 0.05
    assert comp.loc["lift_top10", "model"] > comp.loc["lift_top10", "rule_of_thumb"]
    assert comp.loc["brier", "model"] < comp.loc["brier", "rule_of_thumb"]
    # Out of time: the test months come after every training label window.
    train_end = pd.Period(result.split["train"][-1], "M") + 3
    assert train_end <= pd.Period(result.split["test"][0], "M")
    # Every labelled month is built (the deployed model is refitted on all of them); the
    # evaluated model's refit months all end their label window by the first test month.
    assert set(result.data["as_of"]) == set(result.split["deploy"])
    assert {*result.split["train"], *result.split["valid"]} <= set(result.split["refit"])
    last_refit = pd.Period(result.split["refit"][-1], "M") + 3
    assert last_refit <= pd.Period(result.split["test"][0], "M")
    assert not set(result.split["refit"]) & set(result.split["test"])


def test_planted_drivers_are_among_the_top_features(upgrade_run):
    """Payroll (saved into the account) is planted as a driver; adoption of wealth products
    and consolidation from other banks lift growth, which the trend features carry."""
    result, _ = upgrade_run
    top = list(result.importance.index)
    payroll = {"payroll_ratio_6m", "payroll_avg_6m", "payroll_regularity_6m", "inflow_turnover_3m"}
    assert payroll & set(top[:6])
    trend = {"aum_growth_3m", "aum_growth_6m", "aum_slope_6m"}
    assert trend & set(top[:10])
    noise = {"gender", "region"}  # not planted: below the drivers
    assert min(top.index(c) for c in noise) > top.index("wealth_share_change_6m")


def test_upgrade_outputs_and_tracking(upgrade_run):
    import mlflow

    from segments.mlops.tracking import load_model

    result, root = upgrade_run
    test = result.test
    assert test["p_upgrade"].between(0, 1).all()
    assert test["upgrade_permille"].between(1, 1000).all()
    assert (test["expected_gain"] == test["p_upgrade"] * test["gap_to_next"]).all()
    assert set(result.metrics["segment"]) == {"all", "near_gold", "near_sunflower"}
    assert len(result.call_list) > 0 and result.call_list["rm_slot"].between(1, 2).all()
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    run = client.get_run(result.run_id)
    m = run.data.metrics
    assert m["model.roc_auc"] == pytest.approx(result.comparison().loc["roc_auc", "model"])
    assert "rule_of_thumb.roc_auc" in m and "logistic.near_gold.roc_auc" in m
    assert run.data.tags["segments.model_kind"] == "upgrade"
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {
        "plots/roc.png",
        "plots/precision_recall.png",
        "plots/gain.png",
        "plots/calibration.png",
        "plots/deciles.png",
        "plots/lift.png",
    } <= plots
    expl = {a.path for a in client.list_artifacts(result.run_id, "explanations")}
    assert {
        "explanations/global_importance.csv",
        "explanations/beeswarm.png",
        "explanations/shap_bar.png",
        "explanations/reason_codes_summary.csv",
    } <= expl
    assert result.call_list["reason_1_text"].notna().any()
    # Label counts by as-of month: step YYYYMM and the month's first day (UTC), so the
    # chart reads by month on the step axis and on the time axis.
    history = client.get_metric_history(result.run_id, "labels.positives")
    months = [pd.Period(m, "M") for m in result.label_counts.index]
    assert [h.step for h in history] == [m.year * 100 + m.month for m in months]
    assert [h.value for h in history] == list(result.label_counts["positives"].astype(float))
    firsts = [m.to_timestamp().tz_localize("UTC").timestamp() * 1000 for m in months]
    assert [h.timestamp for h in history] == firsts
    # The logged model is the deployed one: the evaluated model's candidate refitted on
    # every labelled month (more rows than the evaluated model saw), calibrated on the test
    # months.
    deployed = result.deployed
    assert deployed is not result.model and deployed.fitted_rows_ > result.model.fitted_rows_
    assert deployed.calibrated_on_ == "recent" and deployed.kind_ == result.model.kind_
    assert run.data.params["model.deployed_rows"] == str(deployed.fitted_rows_)
    assert run.data.params["split.deploy"].split(",") == result.split["deploy"]
    # The card names each fit the same way: months learnt from, both calibrations, trees.
    card = Path(client.download_artifacts(result.run_id, "model_card.md", str(root / "c")))
    text = card.read_text(encoding="utf-8")
    deploy, split = result.split["deploy"], result.split
    assert f"Learnt from {len(deploy)} as-of months of one bank's history" in text
    assert f"chosen on {len(split['train'])} training and {len(split['valid'])} valid" in text
    assert "the evaluated model's on the validation months, the deployed model's on the test" in (
        text
    )
    if deployed.kind_ != "spline":
        assert f"{deployed.best_iteration_:,} trees: the evaluated fit's" in text
    # Sensitive attributes: each such feature the model uses, its SHAP rank, its reason share.
    assert "## Sensitive attributes" in text and "gender" in result.model.features_
    rank = int(
        result.shap_importance["mean_abs_shap"].rank(ascending=False, method="min")["gender"]
    )
    reasons = [c for c in result.test if c.startswith("reason_") and c.endswith("_feature")]
    share = result.test[reasons].eq("gender").any(axis=1).mean()
    n = len(result.model.features_)
    assert f"| gender | gender | {rank} of {n} | {share:.1%} |" in text
    evaluation = {a.path for a in client.list_artifacts(result.run_id, "evaluation")}
    assert "evaluation/model_selection.csv" in evaluation
    assert "evaluation/by_test_month.csv" in evaluation
    chosen = result.model.selection_.query("chosen")["candidate"].item()
    assert run.data.params["model.chosen"] == chosen
    assert f"selection.{chosen}.valid_log_loss" in m and "model.ece_worst_month" in m
    pyfunc = load_model(result.model_uri)
    sample = result.test.head(50)
    frame = sample[deployed.features_].copy()
    for c in deployed.categories_:  # MLflow signatures carry categoricals as text
        frame[c] = frame[c].astype(str)
    out = pyfunc.predict(frame)
    np.testing.assert_allclose(
        out["p_upgrade"].to_numpy(), deployed.predict_proba(sample)[:, 1], rtol=1e-9
    )


def test_the_upgrade_run_is_named_after_every_test_month(upgrade_run):
    import mlflow

    result, root = upgrade_run
    test = result.split["test"]
    assert len(test) > 1  # the case the name used to get wrong: only the first was named
    run = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}").get_run(result.run_id)
    assert run.info.run_name == f"upgrade reach 3m test {test[0]}..{test[-1]}"


@pytest.mark.parametrize("trained", ["tracked", "upgrade_run"])
def test_a_reviewer_sees_the_model_card_first(trained, request):
    """In the order MLflow 3.17's UI lists a run's artifacts (folders first, then files,
    each by path) the card's folder comes first, and the run's description links the card."""
    import mlflow

    from segments.mlops.review import CARD_DIR

    result, root = request.getfixturevalue(trained)
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    files = sorted(client.list_artifacts(result.run_id), key=lambda f: not f.is_dir)
    assert files[0].path == CARD_DIR, [f.path for f in files]
    inside = [f.path for f in client.list_artifacts(result.run_id, CARD_DIR)]
    assert inside[0] == f"{CARD_DIR}/model_card.html"
    assert {"model_card.html", "model_card.md"} <= {f.path for f in files}  # kept
    note = client.get_run(result.run_id).data.tags["mlflow.note.content"]
    assert f"/runs/{result.run_id}/artifacts/{CARD_DIR}/model_card.html" in note


def test_training_writes_nothing_until_logged(tmp_path, monkeypatch):
    """train_groups and train_upgrade are side-effect free: no ./mlflow.db, no run."""
    from segments import train_upgrade

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    raw, _ = make_bank(1_500, 18, seed=11)
    panel = validate_panel(raw)
    cfg = load_config(overrides={"groups": {"n_bootstrap": 2, "k_max": 5}})
    groups = train_groups(panel, cfg)
    upgrade = train_upgrade(panel, cfg)
    assert list(tmp_path.iterdir()) == []
    assert groups.run_id is None and upgrade.run_id is None
    # Logging is the explicit step, and it is what writes the store.
    log_groups(groups, panel)
    assert groups.run_id is not None
    assert (tmp_path / "mlflow.db").exists()


def test_train_groups_refuses_too_little_history_from_the_api_too():
    """The history check is the job's, not only the CLI's: an as-of month with fewer months
    than the shortest feature window is a named error before any fitting."""
    from segments import ConfigError

    raw, _ = make_bank(300, 6, seed=2)
    panel = validate_panel(raw)
    first = str(panel["month"].min())
    with pytest.raises(ConfigError, match=r"--as-of.*1 month\(s\)"):
        train_groups(panel, load_config(), as_of=first)
    quick = load_config(overrides={"groups": {"n_bootstrap": 2, "k_max": 4}})
    with pytest.warns(SegmentsWarning, match=r"longer than the 6 month\(s\) of history"):
        result = train_groups(panel, quick)  # 6 months: the 12-month features are not built
    assert not any(f.endswith("_12m") for f in result.model.features_)
