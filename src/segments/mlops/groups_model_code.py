"""MLflow "model from code" entry for the groups model (avoids pickling the wrapper class)."""

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from mlflow.models import set_model

from segments.mlops.pyfunc import GroupsModel

set_model(GroupsModel())
