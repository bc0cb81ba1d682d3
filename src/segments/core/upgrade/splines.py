"""A regularised logistic regression on spline-expanded features: the upgrade model's
additive candidate.

Each numeric feature is put on its reading scale (``log1p`` for money and counts, as the
catalogue says), its missing values imputed with the training median and flagged, and
expanded into a cubic B-spline basis with knots at its quantiles; each categorical feature
is one-hot encoded. An L2-penalised logistic regression fits all of it at once. The model is
additive: its log-odds are an intercept plus one term per feature, ``g_j(x_j)``, so the
exact SHAP value of feature ``j`` against the training rows is ``g_j(x_j) - mean(g_j)``
(:meth:`SplineLogistic.terms`), no approximation needed.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import SplineTransformer
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from segments.core.config.params import ValidatedParams, as_frame, name_features
from segments.core.features import is_log_scale

__all__ = ["SplineLogistic"]


def _binary(estimator: Any, y: Any) -> np.ndarray:
    from segments.core.upgrade.inputs import binary_classes as _binary_classes

    return _binary_classes(estimator, np.asarray(y))


class SplineLogistic(ValidatedParams, ClassifierMixin, BaseEstimator):
    """Logistic regression on B-spline expansions of the numeric features and one-hot
    categorical ones (an additive model: one term per feature).

    Parameters
    ----------
    features : sequence of str or None, default None
        Columns to use; None: every column.
    n_knots : int, default 5
        Knots per numeric feature, at its training quantiles.
    degree : int, default 3
        Degree of the splines.
    C : float, default 1.0
        Inverse L2 strength of the logistic regression (the basis columns are scaled to
        unit variance first, so one value suits every feature).

    Attributes
    ----------
    features_ : list of str
        The columns used.
    feature_names_in_ : ndarray of str
        The input features (only when fitted on a DataFrame).
    n_features_in_ : int
    numeric_, categorical_ : list of str
        The numeric features (spline-expanded) and the categorical ones (one-hot).
    median_ : dict
        Training medians imputed for missing numeric values (on the reading scale).
    splines_ : dict
        The fitted :class:`~sklearn.preprocessing.SplineTransformer` of each numeric
        feature (None for a constant one).
    levels_ : dict
        The categories of each categorical feature (others give a zero term).
    mean_, scale_ : ndarray
        Standardisation of the basis columns.
    lr_ : LogisticRegression
    term_means_, term_spread_ : ndarray
        The mean of each feature's term on the training rows (the SHAP baseline) and its
        mean absolute deviation from it (the feature's importance).
    classes_ : ndarray
    """

    _parameter_constraints: ClassVar[dict] = {
        "features": ["array-like", None],
        "n_knots": [Interval(Integral, 2, None, closed="left")],
        "degree": [Interval(Integral, 1, 5, closed="both")],
        "C": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        features: Sequence[str] | None = None,
        *,
        n_knots: int = 5,
        degree: int = 3,
        C: float = 1.0,
    ) -> None:
        self.features = features
        self.n_knots = n_knots
        self.degree = degree
        self.C = C

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # imputed with the training median, and flagged
        tags.classifier_tags.multi_class = False
        return tags

    def _scaled(self, frame: pd.DataFrame, c: str) -> np.ndarray:
        v = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
        if is_log_scale(c):
            v = np.sign(v) * np.log1p(np.abs(v))
        return v

    def _blocks(self, frame: pd.DataFrame) -> list[np.ndarray]:
        """The basis columns of each feature, in ``features_`` order."""
        blocks = []
        for c in self.features_:
            if c in self.levels_:
                v = frame[c].astype(object).to_numpy()
                blocks.append(
                    np.column_stack([v == lv for lv in self.levels_[c]]).astype(float)
                    if self.levels_[c]
                    else np.zeros((len(frame), 0))
                )
                continue
            v = self._scaled(frame, c)
            missing = np.isnan(v)
            v = np.where(missing, self.median_[c], v)
            spline = self.splines_[c]
            basis = spline.transform(v[:, None]) if spline is not None else np.zeros((len(v), 0))
            blocks.append(np.column_stack([basis, missing.astype(float)]))
        return blocks

    def fit(self, X: Any, y: Any) -> SplineLogistic:
        """Fit the basis and the logistic regression.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two classes.

        Returns
        -------
        self
        """
        self._validate_params()
        frame, y = as_frame(self, X, y, reset=True)
        self.features_ = list(self.features) if self.features is not None else list(frame)
        name_features(self, X, self.features_)
        y = _binary(self, y)
        self.levels_, self.median_, self.splines_ = {}, {}, {}
        for c in self.features_:
            col = frame[c]
            if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(
                col.dtype
            ):
                self.levels_[c] = list(pd.unique(col.astype(object).dropna()))
                continue
            v = self._scaled(frame, c)
            ok = v[~np.isnan(v)]
            self.median_[c] = float(np.median(ok)) if ok.size else 0.0
            distinct = np.unique(ok).size if ok.size else 0
            knots = min(self.n_knots, distinct)
            self.splines_[c] = (
                SplineTransformer(
                    n_knots=knots, degree=min(self.degree, knots - 1),
                    knots="quantile", extrapolation="constant",
                ).fit(np.where(np.isnan(v), self.median_[c], v)[:, None])
                if knots >= 2 else None
            )  # fmt: skip
        blocks = self._blocks(frame)
        A = np.column_stack(blocks) if blocks else np.zeros((len(frame), 0))
        self.widths_ = [b.shape[1] for b in blocks]
        self.mean_ = A.mean(axis=0)
        scale = A.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs convergence notes on flat columns
            self.lr_ = LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=100).fit(
                (A - self.mean_) / self.scale_, y
            )
        terms = self._terms(A)
        self.term_means_ = terms.mean(axis=0)
        self.term_spread_ = np.abs(terms - self.term_means_).mean(axis=0)
        return self

    def _matrix(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "lr_")
        frame, _ = as_frame(self, X, reset=False)
        missing = [c for c in self.features_ if c not in frame.columns]
        if missing:
            from segments.core.upgrade.inputs import fitted_columns as _fitted_columns

            _fitted_columns(frame, self.features_, "spline logistic model")
        blocks = self._blocks(frame)
        return np.column_stack(blocks) if blocks else np.zeros((len(frame), 0))

    def _terms(self, A: np.ndarray) -> np.ndarray:
        """Each feature's term (log-odds) for basis rows ``A``: shape (n, n_features)."""
        w = self.lr_.coef_[0] / self.scale_
        contrib = (A - self.mean_) * w
        edges = np.cumsum([0, *self.widths_])
        return np.column_stack([contrib[:, a:b].sum(axis=1) for a, b in itertools.pairwise(edges)])

    def terms(self, X: Any) -> np.ndarray:
        """Each feature's term in the log-odds, centred on its training mean: the exact SHAP
        values (interventional, against the training rows), shape (n_samples,
        n_features); they sum with ``expected_value`` to :meth:`decision_function`."""
        return self._terms(self._matrix(X)) - self.term_means_

    @property
    def expected_value(self) -> float:
        """The log-odds with every term at its training mean."""
        check_is_fitted(self, "lr_")
        return float(self.lr_.intercept_[0] + self.term_means_.sum())

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the second class."""
        A = self._matrix(X)
        return self.lr_.decision_function((A - self.mean_) / self.scale_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities, columns ``[P(first class), P(second class)]``."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """The second class where its probability is at least 0.5."""
        positive = self.decision_function(X) >= 0
        return self.classes_[positive.astype(int)]

    def feature_importance(self) -> pd.Series:
        """Mean absolute term (log-odds) per feature on the training rows, largest first."""
        check_is_fitted(self, "lr_")
        return pd.Series(self.term_spread_, index=self.features_).sort_values(ascending=False)
