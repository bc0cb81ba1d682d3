"""The upgrade estimators' shared input rules: which columns are features, the columns a
fitted estimator needs, and the two classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from segments.core.data.panel import ID
from segments.core.upgrade.labels import NotEnoughDataError
from segments.exceptions import ConfigError, Violation

__all__ = [
    "binary_classes",
    "categories_of",
    "feature_columns",
    "fitted_columns",
    "stack_rows",
]


def feature_columns(data: pd.DataFrame, features: Sequence[str] | None) -> list[str]:
    if features is not None:
        missing = [c for c in features if c not in data.columns]
        if missing:
            raise ConfigError(
                [Violation(c, "is a configured upgrade feature but missing") for c in missing]
            )
        return list(features)
    skip = {ID, "as_of", "label", "months_observed"}
    return [c for c in data.columns if c not in skip]


def fitted_columns(X: pd.DataFrame, features: list[str], model: str) -> pd.DataFrame:
    missing = [c for c in features if c not in X.columns]
    if missing:
        raise ConfigError(
            [
                Violation(c, f"is a feature the {model} was fitted on but is missing")
                for c in missing
            ]
        )
    return X[features]


def binary_classes(estimator: Any, y: np.ndarray) -> np.ndarray:
    """Set ``classes_`` and return ``y`` as 0/1 (the second class is the upgrade)."""
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise NotEnoughDataError("upgrade: the training months have only one class")
    if len(classes) > 2:
        raise ValueError(
            f"Only binary classification is supported; {type(estimator).__name__} was given "
            f"{len(classes)} classes"
        )
    estimator.classes_ = classes
    return codes.astype(int)


def categories_of(frame: pd.DataFrame, features: list[str]) -> dict[str, list[Any]]:
    """The categories of each categorical feature of ``frame``."""
    return {
        c: list(frame[c].cat.categories)
        for c in features
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
    }


def stack_rows(a: pd.DataFrame, b: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The features of two frames stacked, categorical ones over the union of their
    categories (pandas would turn differing ones into objects)."""
    a, b = a[features].copy(), b[features].copy()
    for c in features:
        if isinstance(a[c].dtype, pd.CategoricalDtype) or isinstance(
            b[c].dtype, pd.CategoricalDtype
        ):
            cats = pd.Index(
                pd.unique(pd.concat([a[c].astype(object), b[c].astype(object)]).dropna())
            )
            a[c] = pd.Categorical(a[c].astype(object), categories=cats)
            b[c] = pd.Categorical(b[c].astype(object), categories=cats)
    return pd.concat([a, b], ignore_index=True)
