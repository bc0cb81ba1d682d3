"""Upgrade potential: the upgrade model and the baselines it is compared with.

The model is LightGBM (exact TreeSHAP through :mod:`segments.core.explain.treeshap`), with class
imbalance re-weighted, early stopping on the validation months, and Platt calibration on
the validation months; the bank's rule of thumb (closeness to the threshold, the gap ratio)
and a logistic regression are evaluated the same way on the same months. Labels, the
training set and the out-of-time split are in :mod:`segments.core.upgrade.labels`, the
metrics in :mod:`segments.core.upgrade.metrics`, expected gain and call lists in
:mod:`segments.core.upgrade.calls`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from segments.core.config.params import ValidatedParams, as_frame, name_features
from segments.core.data.panel import ID
from segments.core.explain.treeshap import MAX_LEAVES
from segments.core.features import is_log_scale
from segments.core.upgrade.labels import NotEnoughDataError
from segments.exceptions import ConfigError, SegmentsWarning, Violation

__all__ = ["LogisticBaseline", "RuleOfThumb", "UpgradeModel"]


def _feature_columns(data: pd.DataFrame, features: Sequence[str] | None) -> list[str]:
    if features is not None:
        missing = [c for c in features if c not in data.columns]
        if missing:
            raise ConfigError(
                [Violation(c, "is a configured upgrade feature but missing") for c in missing]
            )
        return list(features)
    skip = {ID, "as_of", "label", "months_observed"}
    return [c for c in data.columns if c not in skip]


def _fitted_columns(X: pd.DataFrame, features: list[str], model: str) -> pd.DataFrame:
    missing = [c for c in features if c not in X.columns]
    if missing:
        raise ConfigError(
            [
                Violation(c, f"is a feature the {model} was fitted on but is missing")
                for c in missing
            ]
        )
    return X[features]


def _binary_classes(estimator: Any, y: np.ndarray) -> np.ndarray:
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


class UpgradeModel(ValidatedParams, ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (LightGBM) for P(reach the next tier within H months).

    Parameters
    ----------
    features : sequence of str or None, default None
        Columns to use; None uses every column but ids, ``as_of``, ``label``.
    n_estimators : int, default 600
        Upper bound on trees; early stopping on the validation months picks the number.
    learning_rate : float, default 0.05
    num_leaves : int, default 15
        At most :data:`segments.core.explain.treeshap.MAX_LEAVES` (65), so every tree can be
        explained exactly; more is refused before training.
    max_depth : int, default 6
        -1 (or 0) for no limit.
    min_child_samples : int, default 50
    subsample : float, default 0.8
    colsample_bytree : float, default 0.8
    reg_lambda : float, default 1.0
    class_weight : {"balanced", None} or dict, default "balanced"
        Re-weight the rare positives during training; calibration afterwards restores
        honest probabilities.
    calibration : {"platt", None}, default "platt"
        Platt scaling (a logistic map of the raw margin) fitted on the validation months
        (``eval_set``). Being affine in log-odds, it keeps the ranking and the additivity
        of SHAP values. Without an ``eval_set`` it is fitted on the training rows, with a
        :class:`~segments.exceptions.SegmentsWarning` (the trees fit those rows, so the
        probabilities come out overconfident).
    early_stopping_rounds : int, default 50
    random_state : int, RandomState or None, default 0

    Attributes
    ----------
    classifier_ : lightgbm.LGBMClassifier
        The fitted trees.
    booster_ : lightgbm.Booster
        The classifier's booster (``classifier_.booster_``), what TreeSHAP reads.
    features_ : list of str
        The columns used (``x0, x1, ...`` for arrays).
    feature_names_in_ : ndarray of str
        The input features used (only when fitted on a DataFrame).
    n_features_in_ : int
        The number of input features.
    categories_ : dict
        The categories of each categorical feature (scoring input must use them).
    best_iteration_ : int
        The number of trees kept by early stopping.
    calibration_ : tuple of float
        ``(a, b)``: calibrated log-odds = ``a * margin + b``.
    calibrated_on_ : {"eval", "train"} or None
        Where the Platt map was fitted: the ``eval_set`` (validation months), the training
        rows (no ``eval_set`` was given), or None without calibration.
    classes_ : ndarray
        The two classes; the second is the upgrade.
    """

    _config_key = "upgrade.model"
    _parameter_constraints: ClassVar[dict] = {
        "features": ["array-like", None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "num_leaves": [Interval(Integral, 2, MAX_LEAVES, closed="both")],
        "max_depth": [Interval(Integral, -1, None, closed="left")],
        "min_child_samples": [Interval(Integral, 1, None, closed="left")],
        "subsample": [Interval(Real, 0, 1, closed="right")],
        "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "calibration": [StrOptions({"platt"}), None],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        features: Sequence[str] | None = None,
        *,
        n_estimators: int = 600,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        max_depth: int = 6,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        class_weight: str | dict | None = "balanced",
        calibration: str | None = "platt",
        early_stopping_rounds: int = 50,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.features = features
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.class_weight = class_weight
        self.calibration = calibration
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # LightGBM routes missing values itself
        tags.classifier_tags.multi_class = False
        return tags

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Models pickled by segments <= 0.2 kept the LGBMClassifier as ``booster_``.
        if "booster_" in state and "classifier_" not in state:
            state = dict(state)
            state["classifier_"] = state.pop("booster_")
            # They did not record where the Platt map was fitted.
            state.setdefault("calibrated_on_", "unknown" if state.get("calibration") else None)
        super().__setstate__(state)

    @property
    def booster_(self) -> Any:
        """The fitted ``lightgbm.Booster`` (``classifier_.booster_``)."""
        return self.classifier_.booster_

    def _lgbm(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lightgbm as lgb
        return lgb.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            max_depth=self.max_depth,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1 else 0,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            class_weight=self.class_weight,
            random_state=self.random_state,
            n_jobs=2,
            verbose=-1,
            deterministic=True,
            force_row_wise=True,
        )

    def fit(
        self, X: pd.DataFrame, y: Any, *, eval_set: tuple[pd.DataFrame, Any] | None = None
    ) -> UpgradeModel:
        """Fit the trees; early stopping and calibration on ``eval_set``.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The training rows (a DataFrame may hold other columns: ``features`` or, when
            None, every column but ids, ``as_of`` and ``label`` is used).
        y : array-like of shape (n_samples,)
            The labels (two classes).
        eval_set : tuple (X_valid, y_valid), optional
            The validation months: early stopping and the Platt calibration. Without it the
            calibration is fitted on the training rows, with a
            :class:`~segments.exceptions.SegmentsWarning`.

        Returns
        -------
        self

        Raises
        ------
        ParameterError
            A parameter out of range (e.g. ``num_leaves`` above 65), before any training.
        """
        self._validate_params()
        frame, y = as_frame(self, X, y, reset=True)
        self.features_ = _feature_columns(frame, self.features)
        name_features(self, X, self.features_)
        self.categories_ = {
            c: list(frame[c].cat.categories)
            for c in self.features_
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
        }
        y = _binary_classes(self, y)
        model = self._lgbm()
        kwargs: dict[str, Any] = {}
        if eval_set is not None:
            import lightgbm as lgb

            Xv, yv = eval_set
            Xv, _ = as_frame(self, Xv, reset=False)
            yv = np.searchsorted(self.classes_, np.asarray(yv))
            kwargs = {
                "eval_set": [(Xv[self.features_], yv)],
                "callbacks": [lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
            }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(frame[self.features_], y, **kwargs)
        self.classifier_ = model
        self.best_iteration_ = int(model.best_iteration_ or model.n_estimators)
        self.calibration_ = (1.0, 0.0)
        self.calibrated_on_ = None
        if self.calibration == "platt":
            if eval_set is None:
                warnings.warn(
                    "UpgradeModel: no eval_set, so the Platt calibration is fitted on the "
                    "training rows the trees were fitted on; the probabilities will be "
                    "overconfident. Pass eval_set=(X_valid, y_valid) (validation months).",
                    SegmentsWarning,
                    stacklevel=2,
                )
                Xc, yc = frame, y
            else:
                Xc, yc = kwargs["eval_set"][0]
            margin = self._margin(Xc)
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin[:, None], yc)
            self.calibration_ = (float(lr.coef_[0, 0]), float(lr.intercept_[0]))
            self.calibrated_on_ = "train" if eval_set is None else "eval"
        return self

    def _margin(self, X: pd.DataFrame) -> np.ndarray:
        return self.classifier_.predict(
            _fitted_columns(X, self.features_, "upgrade model"),
            raw_score=True,
            num_iteration=self.best_iteration_,
        )

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated log-odds of upgrading."""
        check_is_fitted(self, "classifier_")
        frame, _ = as_frame(self, X, reset=False)
        a, b = self.calibration_
        return a * self._margin(frame) + b

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, columns ``[P(no upgrade), P(upgrade)]``."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The upgrade class when P(upgrade) >= 0.5, else the other."""
        positive = self.decision_function(X) >= 0
        return self.classes_[positive.astype(int)]

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        check_is_fitted(self, "classifier_")
        gain = self.booster_.feature_importance("gain", iteration=self.best_iteration_)
        return pd.Series(gain, index=self.features_).sort_values(ascending=False)


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
