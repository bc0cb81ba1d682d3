"""Runs: the experiment they go to, and the input dataset (MLflow's own schema, without its
value-by-value inference)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from segments.exceptions import RegistryError
from segments.mlops.tracking import SCHEMA_ROWS, experiment_id, log_dataset, start_run


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    late_gap = rng.random(n)
    late_gap[-1] = np.nan  # a missing value only past the rows the types come from
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "aum": rng.random(n) * 1e5,
            "late_gap": late_gap,
            "n_products": rng.integers(0, 6, n),
            "near_band": pd.Categorical(rng.choice(["near_gold", "near_sunflower"], n)),
        }
    )


def test_the_logged_schema_is_mlflows_own_inference_on_the_whole_table(tmp_path, monkeypatch):
    import mlflow

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    df = _frame(SCHEMA_ROWS * 3)
    mlflow.set_tracking_uri(store)
    with mlflow.start_run(experiment_id=experiment_id("schema")) as run:
        log_dataset(df, "features")
    logged = mlflow.MlflowClient(store).get_run(run.info.run_id).inputs.dataset_inputs
    dataset = logged[0].dataset
    want = mlflow.data.from_pandas(df, name="features")  # inferred value by value
    assert json.loads(dataset.schema)["mlflow_colspec"] == want.schema.to_dict()
    assert json.loads(dataset.profile) == {"num_rows": len(df), "num_elements": int(df.size)}
    late = next(c for c in want.schema.inputs if c.name == "late_gap")
    assert late.required is False  # the whole column was looked at, not the head


def test_a_run_goes_to_its_experiment_and_leaves_the_callers_active_experiment(
    tmp_path, monkeypatch
):
    """A notebook's own ``mlflow.start_run()`` after a segments run still goes where the
    user pointed it, and no ``MLFLOW_EXPERIMENT_ID`` is exported to later subprocesses."""
    import mlflow

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(store)
    mine = experiment_id("mine")
    # The user's active experiment, put back after the test (MLflow keeps it module-wide).
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    mlflow.set_experiment(experiment_id=mine)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID")  # set_experiment exported it; start clean
    with start_run("segments-exp", "a run") as run:
        pass
    client = mlflow.MlflowClient(store)
    assert client.get_run(run.info.run_id).info.experiment_id == experiment_id("segments-exp")
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    assert "MLFLOW_EXPERIMENT_ID" not in os.environ
    with mlflow.start_run() as own:
        pass
    assert own.info.experiment_id == mine
    assert experiment_id("segments-exp") == run.info.experiment_id  # found, not re-created


def test_a_deleted_experiment_is_a_named_error_and_starts_no_run(tmp_path, monkeypatch):
    import mlflow

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    mlflow.set_tracking_uri(store)
    client = mlflow.MlflowClient(store)
    gone = experiment_id("gone")
    client.delete_experiment(gone)
    deleted = f"'gone' \\(id {gone}\\) is deleted"
    with pytest.raises(RegistryError, match=deleted), start_run("gone", "never"):
        pass
    assert client.search_runs([gone], run_view_type=3) == []
