"""MLflow "model from code" entry for the upgrade model."""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from mlflow.models import set_model

from segments.mlops.pyfunc import UpgradePyfunc

set_model(UpgradePyfunc())
