"""Training from a panel file in batches equals training on the whole validated panel; a
book above the fit size is fitted on a stratified sample and everyone is still assigned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segments import load_config, read_panel, validate_panel
from segments.core.data.synthetic import write_bank
from segments.exceptions import PanelValidationError
from segments.jobs.train import train_groups
from segments.jobs.train_upgrade import train_upgrade

pytestmark = pytest.mark.slow


def _config(**more):
    groups = {"n_bootstrap": 1, "k_max": 5, "n_init": 3, **more.pop("groups", {})}
    upgrade = {"model": {"n_estimators": 80}, **more.pop("upgrade", {})}
    return load_config(overrides={"name": "batched", "groups": groups, "upgrade": upgrade, **more})


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_batched")
    paths = write_bank(root / "bank", 2_500, 24, seed=21)
    raw = read_panel(paths["panel"])
    csv = root / "panel.csv.gz"
    raw.sample(frac=1.0, random_state=2).to_csv(csv, index=False)  # unsorted: spooled
    return {"root": root, "panel": paths["panel"], "csv": csv, "frame": validate_panel(raw)}


@pytest.fixture(scope="module")
def groups_whole(bank):
    return train_groups(bank["frame"], _config())


@pytest.fixture(scope="module")
def upgrade_whole(bank):
    return train_upgrade(bank["frame"], _config())


def _same_groups(got, want):
    pd.testing.assert_frame_equal(got.features, want.features)
    pd.testing.assert_series_equal(got.groups, want.groups)
    for key in want.profile:
        pd.testing.assert_frame_equal(got.profile[key], want.profile[key])
    pd.testing.assert_frame_equal(got.migration, want.migration)
    for key in want.tier_group:
        pd.testing.assert_frame_equal(got.tier_group[key], want.tier_group[key])
    assert got.metrics == want.metrics
    assert got.cards == want.cards
    assert (got.panel.rows, got.panel.customers, got.panel.months) == (
        want.panel.rows,
        want.panel.customers,
        want.panel.months,
    )


@pytest.mark.parametrize(("source", "workers"), [("panel", 1), ("panel", 2), ("csv", 1)])
def test_groups_from_a_file_in_batches_equal_the_whole_panel(bank, groups_whole, source, workers):
    cfg = _config(scoring={"batch_customers": 400, "workers": workers})
    got = train_groups(bank[source], cfg)
    assert not got.fit_sample.sampled
    assert got.migration is not None and len(got.panel.digest) == 64
    # the same content digest as the whole frame's, from batches, Parquet or a shuffled CSV
    assert got.panel.digest == groups_whole.panel.digest
    _same_groups(got, groups_whole)


@pytest.mark.parametrize(("source", "workers"), [("panel", 2), ("csv", 1)])
def test_upgrade_from_a_file_in_batches_equals_the_whole_panel(
    bank, upgrade_whole, source, workers
):
    cfg = _config(scoring={"batch_customers": 400, "workers": workers})
    got = train_upgrade(bank[source], cfg)
    want = upgrade_whole
    pd.testing.assert_frame_equal(got.data, want.data)
    pd.testing.assert_frame_equal(got.label_counts, want.label_counts)
    pd.testing.assert_frame_equal(got.metrics, want.metrics)
    pd.testing.assert_frame_equal(got.test, want.test)
    pd.testing.assert_frame_equal(got.call_list, want.call_list)
    assert got.split == want.split and not got.fit_sample.sampled
    assert "branch_permille" in got.test.columns  # the branches came through the batches
    assert got.panel.digest == want.panel.digest


def test_groups_above_the_fit_size_fit_a_sample_and_assign_everyone(bank, groups_whole):
    cfg = _config(groups={"fit_size": 600}, scoring={"batch_customers": 500})
    got = train_groups(bank["panel"], cfg)
    sample = got.fit_sample
    assert (sample.rows, sample.of, sample.strata) == (600, len(groups_whole.features), ("tier",))
    assert len(got.model.labels_) == 600  # fitted on the sample
    # everyone is assigned by the model's own predict, and profiled
    assert got.groups.index.equals(groups_whole.features.index)
    np.testing.assert_array_equal(got.groups.to_numpy(), got.model.predict(got.features))
    assert got.profile["summary"]["customers"].sum() == sample.of
    assert sample.as_params("groups") == {
        "groups.fit_rows": 600,
        "groups.fit_of": sample.of,
        "groups.fit_strata": "tier",
    }


def test_upgrade_above_the_fit_size_fits_a_stratified_sample(bank, upgrade_whole):
    cfg = _config(upgrade={"fit_size": 1_000, "model": {"n_estimators": 80}})
    got = train_upgrade(bank["frame"], cfg)
    n_train = int(upgrade_whole.data["as_of"].isin(upgrade_whole.split["train"]).sum())
    assert (got.fit_sample.rows, got.fit_sample.of) == (1_000, n_train)
    assert got.fit_sample.strata == ("as_of", "near_band", "label")
    # validation and test rows are never sampled: every test row is scored
    assert len(got.test) == len(upgrade_whole.test)
    assert got.model.predict_proba(got.test)[:, 1].shape == (len(got.test),)


def test_a_bad_file_fails_before_training_with_the_whole_panel_errors(bank):
    raw = read_panel(bank["panel"]).copy()
    ids = raw["customer_id"].unique()
    for i in (5, 2_000):
        raw.loc[raw.index[raw["customer_id"] == ids[i]][3], "funds"] = -5.0
    path = bank["root"] / "bad.parquet"
    raw.to_parquet(path, index=False)
    with pytest.raises(PanelValidationError) as whole:
        validate_panel(raw)
    for train in (train_groups, train_upgrade):
        with pytest.raises(PanelValidationError) as info:
            train(path, _config(scoring={"batch_customers": 400}))
        assert [(v.column, v.problem, v.n_rows, v.examples) for v in info.value.violations] == [
            (v.column, v.problem, v.n_rows, v.examples) for v in whole.value.violations
        ]


@pytest.mark.parametrize(
    ("as_of", "problem"), [("2019-01", "has no rows at or before 2019-01"), ("2031-05", "")]
)
def test_an_as_of_month_outside_the_file_fails_before_reading_rows(bank, as_of, problem):
    with pytest.raises(PanelValidationError) as info:
        train_groups(bank["panel"], _config(), as_of=as_of)
    assert (problem or f"has no customer in {as_of}") in str(info.value)
    assert "months present: 2024-01 .. 2025-12" in str(info.value)


def test_the_cli_says_and_logs_the_fit_samples(bank, tmp_path, monkeypatch):
    import mlflow
    from typer.testing import CliRunner

    from segments.cli import app

    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    config = tmp_path / "sampled.yaml"
    config.write_text(
        "groups: {n_bootstrap: 1, k_max: 5, n_init: 3, fit_size: 700}\n"
        "upgrade: {fit_size: 1500, model: {n_estimators: 60}}\n"
        "scoring: {batch_customers: 600}\n"
    )
    runner = CliRunner()
    said, params = {}, {}
    for kind in ("groups", "upgrade"):
        args = ["train", kind, "--panel", str(bank["panel"]), "--config", str(config)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        said[kind] = result.output
        run_id = result.output.split("MLflow run ")[1].split()[0]
        params[kind] = mlflow.MlflowClient(store).get_run(run_id).data.params
    assert "fitted on 700 of 2,4" in said["groups"] and "stratified by tier" in said["groups"]
    assert "fitted on 1,500 of" in said["upgrade"]
    assert "stratified by as_of, near_band, label" in said["upgrade"]
    assert params["groups"]["groups.fit_rows"] == "700"
    assert params["groups"]["groups.fit_strata"] == "tier"
    assert params["upgrade"]["upgrade.fit_rows"] == "1500"
    assert int(params["upgrade"]["upgrade.fit_of"]) > 1500
    assert params["groups"]["panel_rows"] == str(len(bank["frame"]))
