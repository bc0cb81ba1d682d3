"""The thin MLflow layer: where runs go, what they log, how models are saved and loaded.

The tracking store is ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///mlflow.db`` in the
working directory (a file the MLflow UI opens with ``mlflow ui --backend-store-uri
sqlite:///mlflow.db``). Secrets and URIs come from the environment, never from YAML.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segments.exceptions import INTERRUPTS, RegistryError

__all__ = [
    "code_version",
    "configure_tracking",
    "data_digest",
    "flatten",
    "load_groups_estimator",
    "load_groups_model",
    "load_model",
    "log_card",
    "log_dataset",
    "log_frame",
    "log_groups_model",
    "log_pickled_model",
    "log_upgrade_model",
    "mlflow_module",
    "model_input",
    "start_run",
    "tracking_uri",
]


def mlflow_module() -> Any:
    """The ``mlflow`` module, imported quietly (it warns on import under pandas 3).

    Every segments module that talks to MLflow gets it from here, so the import (and its
    warning filter) happens in one place and only when MLflow is actually used.
    """
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
    # No progress bars in logs and notebooks when artifacts and models are fetched.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow_module().set_tracking_uri(uri)
    return uri


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, plus the git commit (and ``.dirty``) when run from a checkout."""
    from segments import __version__

    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{sha}{'.dirty' if dirty else ''}" if sha else __version__


def log_card(markdown: str, title: str, config: Mapping[str, Any]) -> None:
    """Log a model card (``model_card.md`` and ``.html``) and the config (``config.yaml``).

    The card is also the first folder of the artifacts (:data:`~segments.mlops.review.CARD_DIR`),
    and the run's description links to it (see :func:`~segments.mlops.review.log_card_first`).
    """
    import yaml

    from segments.mlops.cards import render_html
    from segments.mlops.review import log_card_first

    mlflow = mlflow_module()
    html = render_html(markdown, title)
    mlflow.log_text(markdown, "model_card.md")
    mlflow.log_text(html, "model_card.html")
    mlflow.log_text(
        yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True), "config.yaml"
    )
    log_card_first(markdown, html)


def data_digest(df: pd.DataFrame) -> str:
    """A SHA-256 digest of a frame's content, column names and dtypes (order-sensitive).

    The digest of a derived table logged as an MLflow dataset (features, labelled rows).
    A panel's content digest, the runs' ``segments.data_digest``, is
    :func:`segments.core.data.digest.panel_digest`.
    """
    h = hashlib.sha256()
    h.update("|".join(f"{c}:{t}" for c, t in df.dtypes.astype(str).items()).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return h.hexdigest()


#: Rows MLflow infers a dataset's column types from (see :func:`log_dataset`).
SCHEMA_ROWS = 1_000


def log_dataset(df: pd.DataFrame, name: str, *, context: str = "training") -> None:
    """Log a table as the run's input dataset: its name, digest, size and schema.

    MLflow infers a dataset's schema value by value in Python (91 s for a million
    customers' features); a column's type is its dtype's, so the types are inferred on
    the first :data:`SCHEMA_ROWS` rows and each column's ``required`` flag (no missing
    value) is set from the whole column, vectorised. The digest and profile (rows,
    elements) are of the whole table.
    """
    mlflow = mlflow_module()
    from mlflow.types import ColSpec, Schema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = mlflow.data.from_pandas(df, name=name, digest=data_digest(df)[:32])
        head = mlflow.data.from_pandas(df.head(SCHEMA_ROWS), name=name).schema
        if head is not None:
            missing = df.isna().any()
            ds.__dict__["schema"] = Schema(  # the cached property MLflow would compute
                [ColSpec(c.type, c.name, required=not bool(missing[c.name])) for c in head.inputs]
            )
        mlflow.log_input(ds, context=context)


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


def experiment_id(name: str) -> str:
    """The id of experiment ``name`` on the configured store, created when missing.

    The experiment carries MLflow's model-training kind and segments' description (set on
    an existing experiment that lacks them; see :func:`segments.mlops.review.mark_experiment`).

    Raises
    ------
    RegistryError
        The experiment was deleted (MLflow keeps its name until it is restored or purged).
    """
    from segments.mlops.review import experiment_tags, mark_experiment

    mlflow = mlflow_module()
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(client.create_experiment(name, tags=experiment_tags(name)))
        except mlflow.exceptions.MlflowException:
            found = client.get_experiment_by_name(name)  # created meanwhile by another run
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise RegistryError(
            f"MLflow experiment {name!r} (id {found.experiment_id}) is deleted on "
            f"{mlflow.get_tracking_uri()}: restore it (mlflow experiments restore "
            f"--experiment-id {found.experiment_id}) or give the config another name"
        )
    mark_experiment(client, found)
    return str(found.experiment_id)


@contextlib.contextmanager
def start_run(
    experiment: str, run_name: str, tags: Mapping[str, str] | None = None
) -> Iterator[Any]:
    """Start an MLflow run in ``experiment`` (created when missing) on the configured store.

    The run ends FINISHED, FAILED on an error, or KILLED on SIGINT/SIGTERM (a
    :data:`~segments.exceptions.INTERRUPTS`): never left RUNNING. MLflow's active
    experiment (and ``MLFLOW_EXPERIMENT_ID``, which ``mlflow.set_experiment`` exports to
    every later subprocess) is left as the caller had it.
    """
    mlflow = mlflow_module()
    configure_tracking()
    run_in = experiment_id(experiment)
    with mlflow.start_run(experiment_id=run_in, run_name=run_name, tags=dict(tags or {})) as run:
        try:
            yield run
        except INTERRUPTS:
            mlflow.end_run("KILLED")
            raise


def log_frame(
    df: pd.DataFrame,
    path: str,
    *,
    index: bool = True,
    html_columns: Sequence[str] | None = None,
    html_labels: Mapping[Any, str] | None = None,
) -> None:
    """Log a table as a CSV artifact and a readable UTF-8 HTML view beside it, for the UI.

    ``html_columns``: the columns the HTML view shows (the CSV keeps every one); the view
    says where the rest are. ``html_labels``: row and column labels the view shows in
    place of the CSV's (e.g. a group's name beside its id).
    """
    from segments.mlops.cards import table_page

    mlflow = mlflow_module()
    mlflow.log_text(df.to_csv(index=index), path)
    name = Path(path).name
    view, note = df, f"{len(df):,} rows; the same table as CSV: {name}"
    if html_columns is not None and list(html_columns) != list(df.columns):
        view = df[list(html_columns)]
        note = (
            f"{len(df):,} rows, {len(view.columns)} of {len(df.columns)} columns; "
            f"every column in {name}"
        )
    if html_labels:
        view = view.rename(index=html_labels, columns=html_labels)
    mlflow.log_text(
        table_page(view, name, index=index, note=note), str(Path(path).with_suffix(".html"))
    )


def _requirements() -> list[str]:
    pins = []
    for pkg in ("numpy", "pandas", "scikit-learn", "scipy", "mlflow"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            pins.append(f"{pkg}=={metadata.version(pkg)}")
    return pins


def log_pickled_model(
    payload: dict[str, Any], name: str, code_file: str, example: pd.DataFrame, output: pd.DataFrame
) -> str:
    """Log a pickled model as a "model from code" pyfunc with a signature; return its URI."""
    mlflow = mlflow_module()
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


def log_groups_model(
    model: Any, names: pd.DataFrame, example: pd.DataFrame, reference: dict[str, Any] | None = None
) -> str:
    """Log the groups model as a pyfunc (features in, ``group_id`` and ``segment_name`` out).

    ``reference`` (drift profiles of the training features and group shares, see
    :mod:`segments.core.drift`) travels inside the model, for the scoring run's PSI."""
    from segments.mlops.samples import example_rows

    example = example_rows(example, list(model.features_))  # nobody's row
    ids = model.predict(example).astype(np.int64)
    output = pd.DataFrame(
        {"group_id": ids, "segment_name": names.reindex(ids)["name_en"].to_numpy()}
    )
    return log_pickled_model(
        {"model": model, "names": names, "reference": reference},
        "groups_model",
        "groups_model_code.py",
        example,
        output,
    )


def log_upgrade_model(
    model: Any,
    example: pd.DataFrame,
    reference: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> str:
    """Log the upgrade model as a pyfunc (features in, ``p_upgrade`` out).

    ``reference`` holds drift profiles of the test months' features and scores;
    ``training`` what scoring must reproduce (population, label, horizon, ladder)."""
    from segments.mlops.samples import example_rows

    example = example_rows(example, list(model.features_))  # nobody's row
    output = pd.DataFrame({"p_upgrade": model.predict_proba(example)[:, 1]})
    for c in model.categories_:
        example[c] = example[c].astype(str)
    return log_pickled_model(
        {"model": model, "reference": reference, "training": training},
        "upgrade_model",
        "upgrade_model_code.py",
        example,
        output,
    )


def model_input(frame: pd.DataFrame, model: Any) -> pd.DataFrame:
    """The columns a loaded pyfunc's signature asks for, categoricals as text.

    Parameters
    ----------
    frame : DataFrame
        Features (e.g. from :func:`segments.build_features` or a training table).
    model : mlflow.pyfunc.PyFuncModel
        A model from :func:`load_model`.
    """
    columns = list(model.metadata.get_input_schema().input_names())
    missing = [c for c in columns if c not in frame]
    if missing:
        from segments.exceptions import ConfigError, Violation

        raise ConfigError(
            [Violation(c, "is an input of the model but not in the features") for c in missing]
        )
    out = frame[columns].copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(str)
    return out


def load_model(uri: str) -> Any:
    """Load a logged segments model (groups or upgrade) as an MLflow pyfunc."""
    mlflow = mlflow_module()
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
