"""The thin MLflow layer: where runs go, what they log, how models are saved and loaded.

The tracking store is ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///mlflow.db`` in the
working directory (a file the MLflow UI opens with ``mlflow ui --backend-store-uri
sqlite:///mlflow.db``). Secrets and URIs come from the environment, never from YAML.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "configure_tracking",
    "data_digest",
    "flatten",
    "load_groups_estimator",
    "load_groups_model",
    "load_model",
    "log_frame",
    "log_groups_model",
    "log_pickled_model",
    "log_upgrade_model",
    "start_run",
    "tracking_uri",
]


def _mlflow():
    """Import MLflow quietly (it warns on import under pandas 3)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
        import mlflow.pyfunc
    return mlflow


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, or a SQLite file ``mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def configure_tracking(uri: str | None = None) -> str:
    """Point MLflow at ``uri`` (default :func:`tracking_uri`) explicitly and return it."""
    uri = uri or tracking_uri()
    _mlflow().set_tracking_uri(uri)
    return uri


def data_digest(df: pd.DataFrame) -> str:
    """A SHA-256 digest of a frame's content, column names and dtypes (order-sensitive)."""
    h = hashlib.sha256()
    h.update("|".join(f"{c}:{t}" for c, t in df.dtypes.astype(str).items()).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return h.hexdigest()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> flat ``{"groups.algorithm": "kmeans", ...}`` for MLflow params."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if not isinstance(value, list | tuple) else ",".join(map(str, value))
    return out


@contextlib.contextmanager
def start_run(experiment: str, run_name: str, tags: Mapping[str, str] | None = None
              ) -> Iterator[Any]:
    """Start an MLflow run in ``experiment`` (created when missing) on the configured store."""
    mlflow = _mlflow()
    configure_tracking()
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=dict(tags or {})) as run:
        yield run


def log_frame(df: pd.DataFrame, path: str, *, index: bool = True) -> None:
    """Log a table as a CSV artifact (and an HTML view beside it, for the UI)."""
    mlflow = _mlflow()
    mlflow.log_text(df.to_csv(index=index), path)
    mlflow.log_text(df.to_html(index=index, float_format=lambda x: f"{x:,.4g}"),
                    str(Path(path).with_suffix(".html")))


def _requirements() -> list[str]:
    pins = []
    for pkg in ("numpy", "pandas", "scikit-learn", "scipy", "mlflow"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            pins.append(f"{pkg}=={metadata.version(pkg)}")
    return pins


def log_pickled_model(payload: dict[str, Any], name: str, code_file: str,
                      example: pd.DataFrame, output: pd.DataFrame) -> str:
    """Log a pickled model as a "model from code" pyfunc with a signature; return its URI."""
    mlflow = _mlflow()
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # int columns without missing values
        signature = infer_signature(example, output)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pkl"
        with open(path, "wb") as fh:
            pickle.dump(payload, fh)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(Path(__file__).with_name(code_file)),
                artifacts={"model": str(path)},
                signature=signature,
                input_example=example,
                pip_requirements=_requirements(),
            )
    return info.model_uri


def log_groups_model(model: Any, names: pd.DataFrame, example: pd.DataFrame) -> str:
    """Log the groups model as a pyfunc (features in, ``group_id`` and ``segment_name`` out)."""
    example = example[list(model.features_)].head(5)
    ids = model.predict(example).astype(np.int64)
    output = pd.DataFrame({"group_id": ids,
                           "segment_name": names.reindex(ids)["name_en"].to_numpy()})
    return log_pickled_model({"model": model, "names": names}, "groups_model",
                             "_groups_model_code.py", example, output)


def log_upgrade_model(model: Any, example: pd.DataFrame) -> str:
    """Log the upgrade model as a pyfunc (features in, ``p_upgrade`` out)."""
    example = example[list(model.features_)].head(5).copy()
    output = pd.DataFrame({"p_upgrade": model.predict_proba(example)[:, 1]})
    for c in model.categories_:
        example[c] = example[c].astype(str)
    return log_pickled_model({"model": model}, "upgrade_model", "_upgrade_model_code.py",
                             example, output)


def load_model(uri: str) -> Any:
    """Load a logged segments model (groups or upgrade) as an MLflow pyfunc."""
    mlflow = _mlflow()
    configure_tracking()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlflow.pyfunc.load_model(uri)


def load_groups_estimator(uri: str) -> Any:
    """The fitted :class:`~segments.StrategicGroups` inside a logged groups model."""
    return load_model(uri).unwrap_python_model().model


def load_groups_model(uri: str) -> Any:
    """Load a logged groups model as an MLflow pyfunc (alias of :func:`load_model`)."""
    return load_model(uri)
