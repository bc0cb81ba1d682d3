"""Estimator parameters declared once: constraints, defaults, and the errors that name them.

Each estimator of the core declares its parameters the scikit-learn way: the keywords of
``__init__`` (with their defaults) and a ``_parameter_constraints`` mapping built from
scikit-learn's :class:`~sklearn.utils._param_validation.Interval` and
:class:`~sklearn.utils._param_validation.StrOptions`. This module checks values against
those declarations, both when an estimator is fitted (:class:`ValidatedParams`) and when a
configuration section is loaded (:func:`check_params`), so a bad value is refused in the same
words before any work starts, naming the setting, the value and what is allowed.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import (
    InvalidParameterError,
    validate_parameter_constraints,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data

from segments.exceptions import ConfigError, Violation

__all__ = [
    "ParameterError",
    "ValidatedParams",
    "as_frame",
    "check_params",
    "estimator_defaults",
    "name_features",
]


class ParameterError(ConfigError, InvalidParameterError):
    """An estimator parameter (or the configuration setting behind it) is invalid.

    A :class:`~segments.exceptions.ConfigError` (exit code 1 on the command line) and
    scikit-learn's ``InvalidParameterError``, so both kinds of caller recognise it.
    """


def estimator_defaults(cls: type) -> dict[str, Any]:
    """The parameters of ``cls.__init__`` and their defaults (the single source)."""
    sig = inspect.signature(cls.__init__)
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _problem(cls: type, name: str, value: Any) -> str | None:
    constraints = getattr(cls, "_parameter_constraints", {})
    try:
        validate_parameter_constraints(constraints, {name: value}, caller_name=cls.__name__)
    except InvalidParameterError as exc:
        return str(exc)
    return None


def check_params(
    cls: type,
    values: Mapping[str, Any],
    where: str,
    *,
    exclude: Iterable[str] = (),
    extra: Iterable[str] = (),
) -> list[Violation]:
    """Check setting values against the parameters ``cls`` declares.

    Parameters
    ----------
    cls : type
        An estimator class with ``_parameter_constraints``.
    values : mapping
        Setting name -> value (as read from YAML).
    where : str
        The configuration path of the settings (``"groups"``, ``"upgrade.model"``): each
        problem names ``where.key``.
    exclude : iterable of str
        Parameters of ``cls`` that are not set here (set elsewhere in the configuration).
    extra : iterable of str
        Further keys that are allowed here but are not parameters of ``cls`` (the caller
        checks them).

    Returns
    -------
    list of Violation
        One per unknown key (naming the known ones) and per invalid value (naming the value
        and what is allowed); empty when every value is fine.
    """
    exclude = set(exclude)
    params = [p for p in estimator_defaults(cls) if p not in exclude]
    known = sorted({*params, *extra})
    problems = []
    for key, value in values.items():
        if key in params:
            text = _problem(cls, key, value)
            if text:
                problems.append(Violation(f"{where}.{key}", text))
        elif key not in extra:
            problems.append(
                Violation(f"{where}.{key}", "is not a known option", hint=f"known: {known}")
            )
    return problems


class ValidatedParams:
    """Mixin: ``_validate_params`` raises a :class:`ParameterError` naming the setting.

    ``_config_key`` is where the estimator's parameters live in an experiment YAML
    (``"groups"``, ``"upgrade.model"``), so the error a ``fit`` raises reads the same as the
    one :func:`segments.load_config` raises for the same value.
    """

    _config_key: ClassVar[str] = ""
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    def _validate_params(self) -> None:
        cls = type(self)
        prefix = f"{self._config_key}." if self._config_key else ""
        problems = []
        for name, value in self.get_params(deep=False).items():  # type: ignore[attr-defined]
            text = _problem(cls, name, value)
            if text:
                problems.append(Violation(f"{prefix}{name}", text))
        if problems:
            raise ParameterError(problems)


def as_frame(
    estimator: Any, X: Any, y: Any = "no_validation", *, reset: bool
) -> tuple[pd.DataFrame, Any]:
    """The input of a core estimator as a DataFrame (and ``y`` checked, when given).

    A DataFrame passes as it is: the estimator selects its columns by name, so a feature
    table may carry ids, the as-of month and the label besides the features, in any order.
    Anything else is validated as a numeric array (NaN allowed) and named: ``x0, x1, ...``
    when fitting, and the fitted ``feature_names_in_`` (or ``x0, ...``) afterwards, so an
    array is read by position.

    Parameters
    ----------
    estimator : estimator
        Gets ``n_features_in_`` (and loses ``feature_names_in_``) when fitted on an array.
    X : DataFrame or array-like of shape (n_samples, n_features)
    y : array-like, None or "no_validation"
        Class labels, checked as a classifier's target; ``"no_validation"`` (the default)
        for none.
    reset : bool
        True in ``fit``.

    Returns
    -------
    frame : DataFrame
    y : ndarray or None
    """
    if isinstance(X, pd.DataFrame):
        if isinstance(y, str) and y == "no_validation":
            return X, None
        if y is None:
            raise ValueError(
                f"This {type(estimator).__name__} estimator requires y to be passed, "
                "but the target y is None."
            )
        y = column_or_1d(np.asarray(y), warn=True)
        check_classification_targets(y)
        return X, y
    out = validate_data(
        estimator, X, y, reset=reset, ensure_all_finite="allow-nan", dtype="numeric"
    )
    arr, y = out if not (isinstance(y, str) and y == "no_validation") else (out, None)
    if y is not None:
        check_classification_targets(y)
    names = getattr(estimator, "feature_names_in_", None)
    if reset or names is None or len(names) != arr.shape[1]:
        names = [f"x{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=list(names)), y


def name_features(estimator: Any, X: Any, features: list[str]) -> None:
    """After fitting on ``X``: a DataFrame's used columns become ``feature_names_in_``."""
    if isinstance(X, pd.DataFrame):
        estimator.n_features_in_ = len(features)
        if all(isinstance(c, str) for c in features):  # as scikit-learn: string names only
            estimator.feature_names_in_ = np.asarray(features, dtype=object)
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
