"""The run's input dataset: MLflow's own schema, without its value-by-value inference."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from segments.mlops.tracking import SCHEMA_ROWS, log_dataset


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
    with mlflow.start_run() as run:
        log_dataset(df, "features")
    logged = mlflow.MlflowClient(store).get_run(run.info.run_id).inputs.dataset_inputs
    dataset = logged[0].dataset
    want = mlflow.data.from_pandas(df, name="features")  # inferred value by value
    assert json.loads(dataset.schema)["mlflow_colspec"] == want.schema.to_dict()
    assert json.loads(dataset.profile) == {"num_rows": len(df), "num_elements": int(df.size)}
    late = next(c for c in want.schema.inputs if c.name == "late_gap")
    assert late.required is False  # the whole column was looked at, not the head
