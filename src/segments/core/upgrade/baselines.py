"""The baselines the upgrade model is compared with: the bank's rule of thumb and a
logistic regression on the same features."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from segments.core.config.params import ValidatedParams, as_frame, name_features
from segments.core.features import is_log_scale
from segments.core.upgrade.inputs import binary_classes as _binary_classes
from segments.core.upgrade.inputs import feature_columns as _feature_columns
from segments.core.upgrade.inputs import fitted_columns as _fitted_columns

__all__ = ["LogisticBaseline", "RuleOfThumb"]


class RuleOfThumb(ValidatedParams, ClassifierMixin, BaseEstimator):
    """The bank's rule: the closer to the threshold (higher gap ratio), the likelier.

    Ranking uses the gap ratio alone; probabilities come from a one-variable logistic map
    (fitted, in :func:`segments.train_upgrade`, on the validation months where the model is
    calibrated), so calibration metrics compare like with like. The map is never
    decreasing (a negative fitted slope becomes the base rate), so the decision function
    ranks customers as the gap ratio does.

    Parameters
    ----------
    column : str or int, default "gap_ratio"
        The score column: a name, or a position (for arrays).

    Attributes
    ----------
    features_ : list
        The one column used.
    feature_names_in_ : ndarray of str
        The column used (only when fitted on a DataFrame).
    n_features_in_ : int
    lr_ : LogisticRegression
        The map from the score to a probability.
    classes_ : ndarray
    """

    _config_key = "upgrade.rule_of_thumb"
    _parameter_constraints: ClassVar[dict] = {
        "column": [str, Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, column: str | int = "gap_ratio") -> None:
        self.column = column

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing gap ratio scores 0
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.poor_score = True  # one column by design: a baseline
        return tags

    def _score(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "lr_")
        frame, _ = as_frame(self, X, reset=False)
        col = _fitted_columns(frame, self.features_, "rule of thumb")
        return col.iloc[:, 0].fillna(0).to_numpy(dtype=float)

    def fit(self, X: Any, y: Any) -> RuleOfThumb:
        """Fit the logistic map of the gap ratio.

        Parameters
        ----------
        X : DataFrame or array-like
            Holds the ``column``.
        y : array-like
            The labels (two classes).

        Returns
        -------
        self
        """
        self._validate_params()
        frame, y = as_frame(self, X, y, reset=True)
        name = self.column if isinstance(self.column, str) else frame.columns[self.column]
        self.features_ = [name]
        _fitted_columns(frame, self.features_, "rule of thumb")
        name_features(self, X, self.features_)
        y = _binary_classes(self, y)
        score = frame[self.features_[0]].fillna(0).to_numpy(dtype=float)
        self.lr_ = LogisticRegression(max_iter=1000).fit(score[:, None], y)
        if self.lr_.coef_[0, 0] < 0:  # the rule's premise: closer is never less likely
            rate = np.clip(y.mean(), 1e-12, 1 - 1e-12)
            self.lr_.coef_[:] = 0.0
            self.lr_.intercept_[:] = np.log(rate / (1 - rate))
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds from the gap ratio: increasing in it, so it ranks as the gap ratio does."""
        score = self._score(X)
        return self.lr_.decision_function(score[:, None])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities from the logistic map of the gap ratio."""
        score = self._score(X)
        return self.lr_.predict_proba(score[:, None])

    def predict(self, X: Any) -> np.ndarray:
        """The upgrade class when its probability is at least 0.5."""
        positive = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[positive.astype(int)]


class LogisticBaseline(ValidatedParams, ClassifierMixin, BaseEstimator):
    """Logistic regression on the same numeric features (log money, median-imputed, scaled).

    Parameters
    ----------
    features : sequence of str or None, default None
        Columns to use (non-numeric ones are left out); None: every column but ids,
        ``as_of`` and ``label``.
    C : float, default 1.0
        Inverse regularisation strength.

    Attributes
    ----------
    features_ : list of str
        The numeric columns used.
    feature_names_in_ : ndarray of str
        The columns used (only when fitted on a DataFrame).
    n_features_in_ : int
    median_, mean_, scale_ : ndarray
        Imputation and scaling learned.
    lr_ : LogisticRegression
    classes_ : ndarray
    """

    _config_key = "upgrade.logistic"
    _parameter_constraints: ClassVar[dict] = {
        "features": ["array-like", None],
        "C": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, features: Sequence[str] | None = None, C: float = 1.0) -> None:
        self.features = features
        self.C = C

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values take the training median
        tags.classifier_tags.multi_class = False
        return tags

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        A = _fitted_columns(frame, self.features_, "logistic baseline").to_numpy(dtype=float)
        A = A.copy()
        for j, c in enumerate(self.features_):
            if is_log_scale(c):
                A[:, j] = np.log1p(np.clip(A[:, j], 0, None))
        return A

    def _matrix(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "lr_")
        frame, _ = as_frame(self, X, reset=False)
        A = self._raw(frame)
        A = np.where(np.isnan(A), self.median_, A)
        return (A - self.mean_) / self.scale_

    def fit(self, X: Any, y: Any) -> LogisticBaseline:
        """Fit on the numeric features.

        Parameters
        ----------
        X : DataFrame or array-like
        y : array-like
            The labels (two classes).

        Returns
        -------
        self
        """
        self._validate_params()
        frame, y = as_frame(self, X, y, reset=True)
        cols = _feature_columns(frame, self.features)
        self.features_ = [c for c in cols if pd.api.types.is_numeric_dtype(frame[c].dtype)]
        name_features(self, X, self.features_)
        y = _binary_classes(self, y)
        A = self._raw(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.median_ = np.nan_to_num(np.nanmedian(A, axis=0))
        A = np.where(np.isnan(A), self.median_, A)
        self.mean_ = A.mean(axis=0)
        scale = A.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.lr_ = LogisticRegression(C=self.C, max_iter=2000).fit(
            (A - self.mean_) / self.scale_, y
        )
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds."""
        A = self._matrix(X)
        return self.lr_.decision_function(A)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities."""
        A = self._matrix(X)
        return self.lr_.predict_proba(A)

    def predict(self, X: Any) -> np.ndarray:
        """The more likely class."""
        A = self._matrix(X)
        codes = self.lr_.predict(A)
        return self.classes_[codes]
