"""MLflow pyfunc wrappers (imported only when a model is logged or loaded)."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import numpy as np
import pandas as pd

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from mlflow.pyfunc import PythonModel


class GroupsModel(PythonModel):
    """A fitted :class:`~segments.StrategicGroups` with its names, as an MLflow pyfunc.

    ``predict`` takes the feature table and returns ``group_id`` and ``segment_name``.
    """

    def load_context(self, context: Any) -> None:
        """Load the pickled estimator and names from the model's artifacts."""
        with open(context.artifacts["model"], "rb") as fh:
            payload = pickle.load(fh)
        self.model = payload["model"]
        self.names = payload["names"]
        self.reference = payload.get("reference")

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """Group id and name for each row of the feature table."""
        ids = self.model.predict(model_input)
        names = self.names.reindex(ids)["name_en"].to_numpy()
        return pd.DataFrame({"group_id": ids.astype(np.int64), "segment_name": names})


class UpgradePyfunc(PythonModel):
    """A fitted :class:`~segments.core.upgrade.model.UpgradeModel` as an MLflow pyfunc.

    ``predict`` takes the training feature columns and returns ``p_upgrade``.
    """

    def load_context(self, context: Any) -> None:
        """Load the pickled model from the model's artifacts."""
        with open(context.artifacts["model"], "rb") as fh:
            payload = pickle.load(fh)
        self.model = payload["model"]
        self.reference = payload.get("reference")
        self.training = payload.get("training") or {}

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """Calibrated probability of reaching the next tier within the horizon."""
        frame = model_input.copy()
        for c in self.model.categories_:
            if c in frame:
                frame[c] = pd.Categorical(
                    frame[c].astype(str), categories=self.model.categories_[c]
                )
        return pd.DataFrame({"p_upgrade": self.model.predict_proba(frame)[:, 1]})
