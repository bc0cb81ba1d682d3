"""Upgrade potential: the upgrade model and the baselines it is compared with.

The model is chosen on the validation months among LightGBM candidates (the configured
parameters and a small search around them, each early-stopped), a spline logistic
regression and their blends (:mod:`segments.core.upgrade.selection`), by calibrated log
loss; the winner is refitted on the training and validation months together (its trees
scaled to the rows), and Platt-calibrated with the map fitted on the validation months. A
deployed version is refitted on every labelled month (:meth:`UpgradeModel.refitted`). The
bank's rule of thumb (closeness to the threshold, the gap ratio) and a logistic regression
(:mod:`segments.core.upgrade.baselines`) are evaluated the same way on the same months. Labels, the
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
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from segments.core.config.params import ValidatedParams, as_frame, name_features
from segments.core.explain.treeshap import MAX_LEAVES
from segments.core.upgrade.baselines import LogisticBaseline, RuleOfThumb
from segments.core.upgrade.inputs import binary_classes as _binary_classes
from segments.core.upgrade.inputs import categories_of, stack_rows
from segments.core.upgrade.inputs import feature_columns as _feature_columns
from segments.core.upgrade.inputs import fitted_columns as _fitted_columns
from segments.core.upgrade.selection import (
    CANDIDATES,
    Candidate,
    carry_map,
    check_choices,
    choose,
    fit_candidates,
    platt,
    prior_shifted,
    table,
)
from segments.core.upgrade.splines import SplineLogistic
from segments.exceptions import SegmentsWarning

__all__ = ["LogisticBaseline", "RuleOfThumb", "UpgradeModel"]


class UpgradeModel(ValidatedParams, ClassifierMixin, BaseEstimator):
    """P(reach the next tier within H months): the best of gradient-boosted trees
    (LightGBM), a spline logistic regression and their blend, chosen out of time.

    Parameters
    ----------
    features : sequence of str or None, default None
        Columns to use; None uses every column but ids, ``as_of``, ``label``.
    n_estimators : int, default 1000
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
    class_weight : {"balanced", None} or dict, default None
        Re-weight the rare positives during training (the calibration restores honest
        probabilities); the search also tries the other choice.
    calibration : {"platt", None}, default "platt"
        Platt scaling (a logistic map of the margin), fitted on the validation months
        (``eval_set``). Affine in log-odds, it keeps the ranking and the additivity of SHAP
        values. Without an ``eval_set`` it is fitted on the training rows, with a
        :class:`~segments.exceptions.SegmentsWarning` (overconfident).
    prior_shift : {False, True, "latest", "trend"}, default False
        A correction of the Platt map's intercept for a base rate that moves over time
        (it needs the ``as_of`` column of the rows). ``True`` or ``"latest"``: the mean
        probability on the latest calibration month matches its observed upgrade rate.
        ``"trend"``: the monthly rates of every row learnt from are fitted with a line in
        log-odds and the intercept moves by its rise from the calibration months to
        ``prior_shift_lead`` months after the latest one.
    prior_shift_lead : int, default 3
        Months from the latest calibration month to the month scored (the label horizon:
        the training job sets it), for ``prior_shift="trend"``.
    early_stopping_rounds : int, default 50
    search : int, default 4
        LightGBM parameter sets drawn from
        :data:`~segments.core.upgrade.selection.SEARCH_SPACE` besides the configured one
        (0: the configured one only). Needs an ``eval_set``.
    candidates : sequence of {"gbm", "spline", "blend"}, default ("gbm", "spline", "blend")
        The kinds of model compared on the validation months.
    min_trees : int, default 20
        A floor on the trees kept when early stopping would keep fewer.
    spline_C : float, default 0.1
        Inverse L2 strength of the spline candidate.
    refit : bool, default True
        Refit the chosen candidate on the training and validation rows together (the trees
        scaled to the rows); False keeps the candidate as fitted on the training rows.
    monotone : mapping of str to {-1, 1} or None, default None
        Known directions, e.g. ``{"gap_ratio": 1}`` (closer to the threshold never lowers
        the probability): LightGBM's monotone constraints. The spline and blend candidates
        are not constrained, so with constraints only the trees are compared.
    random_state : int, RandomState or None, default 0

    Attributes
    ----------
    kind_ : {"gbm", "spline", "blend"}
        The chosen candidate's kind.
    classifier_ : lightgbm.LGBMClassifier or None
        The fitted trees (None when the splines won).
    booster_ : lightgbm.Booster
        The classifier's booster, what TreeSHAP reads.
    spline_ : SplineLogistic or None
        The fitted spline logistic regression (None when the trees won alone).
    blend_weight_ : float
        The trees' weight in the margin (1 for trees, 0 for splines).
    params_ : dict
        The chosen LightGBM parameters.
    best_iteration_ : int
        Trees used (0 when the splines won).
    selection_ : DataFrame or None
        Every candidate's validation log loss and AUC, and which was chosen (None
        without an ``eval_set``).
    fitted_rows_ : int
        Rows the final model was fitted on.
    refitted_ : bool
        Whether the final model was refitted on the training and validation rows.
    features_ : list of str
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame.
    n_features_in_ : int
    categories_ : dict
        The categories of each categorical feature (scoring input must use them).
    calibration_ : tuple of float
        ``(a, b)``: calibrated log-odds = ``a * margin + b``.
    calibrated_on_ : str or None
        ``eval`` (validation months), ``train`` (no ``eval_set``), ``recent`` (the months
        given to :meth:`refitted`), or None without calibration.
    classes_ : ndarray
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
        "prior_shift": ["boolean", StrOptions({"latest", "trend"})],
        "prior_shift_lead": [Interval(Integral, 0, None, closed="left")],
        "early_stopping_rounds": [Interval(Integral, 1, None, closed="left")],
        "search": [Interval(Integral, 0, 50, closed="both")],
        "candidates": ["array-like"],
        "min_trees": [Interval(Integral, 1, None, closed="left")],
        "spline_C": [Interval(Real, 0, None, closed="neither")],
        "refit": ["boolean"],
        "monotone": [dict, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        features: Sequence[str] | None = None,
        *,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        max_depth: int = 6,
        min_child_samples: int = 50,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        class_weight: str | dict | None = None,
        calibration: str | None = "platt",
        prior_shift: bool | str = False,
        prior_shift_lead: int = 3,
        early_stopping_rounds: int = 50,
        search: int = 4,
        candidates: Sequence[str] = CANDIDATES,
        min_trees: int = 20,
        spline_C: float = 0.1,
        refit: bool = True,
        monotone: dict[str, int] | None = None,
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
        self.prior_shift = prior_shift
        self.prior_shift_lead = prior_shift_lead
        self.early_stopping_rounds = early_stopping_rounds
        self.search = search
        self.candidates = candidates
        self.min_trees = min_trees
        self.spline_C = spline_C
        self.refit = refit
        self.monotone = monotone
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # LightGBM routes missing values itself
        tags.classifier_tags.multi_class = False
        return tags

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        # Models pickled by segments <= 0.2 kept the LGBMClassifier as ``booster_``.
        if "booster_" in state and "classifier_" not in state:
            state["classifier_"] = state.pop("booster_")
            state.setdefault("calibrated_on_", "unknown" if state.get("calibration") else None)
        # Models before model selection were trees alone, fitted on the training months.
        if "classifier_" in state and "kind_" not in state:
            state.update(kind_="gbm", spline_=None, blend_weight_=1.0, selection_=None)
            state.setdefault("refitted_", False)
        for name, default in (("prior_shift", False), ("prior_shift_lead", 3), ("search", 0),
                              ("refit", False), ("candidates", ("gbm",)), ("min_trees", 1),
                              ("spline_C", 0.1), ("monotone", None)):  # fmt: skip
            state.setdefault(name, default)
        super().__setstate__(state)

    @property
    def booster_(self) -> Any:
        """The fitted ``lightgbm.Booster`` (``classifier_.booster_``)."""
        if self.classifier_ is None:
            raise AttributeError("the chosen upgrade model has no trees (the splines won)")
        return self.classifier_.booster_

    def _gbm_params(self) -> dict[str, Any]:
        """The configured LightGBM parameters (the search varies some of them)."""
        names = ("n_estimators", "learning_rate", "num_leaves", "max_depth",
                 "min_child_samples", "subsample", "colsample_bytree", "reg_lambda",
                 "class_weight")  # fmt: skip
        return {k: getattr(self, k) for k in names}

    def _lgbm(self, params: dict[str, Any]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lightgbm as lgb
        monotone = dict(self.monotone or {})
        extra = (
            {"monotone_constraints": [int(monotone.get(c, 0)) for c in self.features_]}
            if monotone
            else {}
        )
        return lgb.LGBMClassifier(
            **params,
            subsample_freq=1 if params["subsample"] < 1 else 0,
            random_state=self.random_state,
            n_jobs=2,
            verbose=-1,
            deterministic=True,
            force_row_wise=True,
            **extra,
        )

    def _fit_gbm(
        self,
        params: dict[str, Any],
        frame: pd.DataFrame,
        y: np.ndarray,
        valid: tuple[pd.DataFrame, np.ndarray] | None = None,
    ) -> tuple[Any, int]:
        """Trees fitted with ``params`` and how many to use: early-stopped on ``valid``
        (its log loss weighted as the training rows are), at least ``min_trees``."""
        import lightgbm as lgb

        model = self._lgbm(params)
        kwargs: dict[str, Any] = {}
        if valid is not None:
            kwargs = {
                "eval_X": (valid[0],),
                "eval_y": (valid[1],),
                "eval_class_weight": [params["class_weight"]],
                "callbacks": [lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
            }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(frame[self.features_], y, **kwargs)
            trees = model.booster_.num_trees()  # early stopping keeps the best iteration
            if trees < self.min_trees:  # the floor: refit to it without early stopping
                model = self._lgbm({**params, "n_estimators": self.min_trees})
                model.fit(frame[self.features_], y)
                trees = self.min_trees
        return model, int(trees)

    def _candidates(
        self, frame: pd.DataFrame, y: np.ndarray, Xv: pd.DataFrame, yv: np.ndarray
    ) -> tuple[list[Candidate], dict[str, Any]]:
        """Every candidate fitted on the training rows and scored on the validation rows
        (:func:`~segments.core.upgrade.selection.fit_candidates`)."""
        return fit_candidates(self, frame, y, Xv, yv)

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        eval_set: tuple[pd.DataFrame, Any] | None = None,
        refit_on: tuple[pd.DataFrame, Any] | None = None,
    ) -> UpgradeModel:
        """Choose, fit and calibrate the model.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            The training rows (a DataFrame may hold other columns: ``features`` or, when
            None, every column but ids, ``as_of`` and ``label`` is used).
        y : array-like of shape (n_samples,)
            The labels (two classes).
        eval_set : tuple (X_valid, y_valid), optional
            The validation months: early stopping, the choice among the candidates, the
            Platt map and (``prior_shift``) its latest month's rate. Without it, trees with
            the configured parameters, calibrated on the training rows with a
            :class:`~segments.exceptions.SegmentsWarning`.
        refit_on : tuple (X_refit, y_refit), optional
            With ``refit``, the rows the chosen candidate is refitted on (e.g. the training
            months, the embargo after them and the validation months); by default the
            training and validation rows together.

        Returns
        -------
        self

        Raises
        ------
        ParameterError
            A parameter out of range (e.g. ``num_leaves`` above 65), before any training.
        ConfigError
            A monotone constraint on a feature the model does not use, or an unknown
            candidate.
        """
        self._validate_params()
        frame, y = as_frame(self, X, y, reset=True)
        self.features_ = _feature_columns(frame, self.features)
        name_features(self, X, self.features_)
        check_choices(self.monotone, self.candidates, self.features_)
        y = _binary_classes(self, y)
        self.selection_ = None
        if eval_set is None:
            self.categories_ = categories_of(frame, self.features_)
            kind = "spline" if set(self.candidates) == {"spline"} else "gbm"
            self._set(
                kind,
                *self._fit_kind(kind, self._gbm_params(), frame, y, None),
                float(kind == "gbm"),
            )
            self.fitted_rows_, self.refitted_ = len(frame), False
            self._calibrate(frame, y, "train")
            return self
        Xv, _ = as_frame(self, eval_set[0], reset=False)
        yv = np.searchsorted(self.classes_, np.asarray(eval_set[1]))
        self.categories_ = categories_of(frame, self.features_)
        cands, fitted = self._candidates(frame, y, Xv, yv)
        win = choose(cands)
        self.selection_ = table(cands, win)
        weight = {"gbm": 1.0, "spline": 0.0}.get(win.kind, win.params.get("weight", 1.0))
        trees_of = win.params.get("trees_of", win.name)
        params = {k: v for k, v in win.params.items() if k not in ("C", "weight", "trees_of")}
        if self.refit:
            if refit_on is None:
                both, y_both = stack_rows(frame, Xv, self.features_), np.concatenate([y, yv])
            else:
                both, _ = as_frame(self, refit_on[0], reset=False)
                y_both = np.searchsorted(self.classes_, np.asarray(refit_on[1]))
            n = round(win.trees * len(both) / len(frame)) if win.trees else 0
            self.categories_ = categories_of(both, self.features_)
            self._set(win.kind, *self._fit_kind(win.kind, {**params, "n_estimators": n},
                                                both, y_both, None), weight)  # fmt: skip
            self.fitted_rows_, self.refitted_ = len(both), True
        else:
            gbm, trees = fitted.get(trees_of, (None, 0))
            self._set(win.kind, gbm, trees, fitted.get("spline"), weight)
            self.fitted_rows_, self.refitted_ = len(frame), False
        self.params_ = params
        self.calibration_, self.calibrated_on_ = (1.0, 0.0), None
        if self.calibration == "platt":
            if refit_on is not None and self.refit:
                seen = (refit_on[0], y_both)
            elif self.prior_shift == "trend":  # the rows learnt from, only when read
                seen = (pd.concat([frame, Xv]), np.concatenate([y, yv]))
            else:
                seen = (frame, y)
            ab = self._shifted(win.calibration, win.margin, Xv, yv, seen)
            if self.refitted_:
                ab = carry_map(ab, win.margin, self._margin(Xv))
            self.calibration_, self.calibrated_on_ = ab, "eval"
        return self

    def _fit_kind(
        self, kind: str, params: dict[str, Any], frame: pd.DataFrame, y: np.ndarray,
        valid: tuple[pd.DataFrame, np.ndarray] | None,
    ) -> tuple[Any, int, Any]:  # fmt: skip
        """The trees (and how many to use) and the splines a kind of candidate needs."""
        self.params_ = params
        gbm, trees, spline = None, 0, None
        if kind in ("gbm", "blend"):
            gbm, trees = self._fit_gbm(params, frame, y, valid)
        if kind in ("spline", "blend"):
            spline = SplineLogistic(self.features_, C=self.spline_C).fit(frame[self.features_], y)
        return gbm, trees, spline

    def _set(self, kind: str, gbm: Any, trees: int, spline: Any, weight: float) -> None:
        self.kind_, self.classifier_, self.best_iteration_ = kind, gbm, int(trees)
        self.spline_, self.blend_weight_ = spline, float(weight)

    def _calibrate(self, frame: pd.DataFrame, y: np.ndarray, where: str) -> None:
        """The Platt map on ``frame`` (the training rows when there is no ``eval_set``)."""
        self.calibration_, self.calibrated_on_ = (1.0, 0.0), None
        if self.calibration != "platt":
            return
        if where == "train":
            warnings.warn(
                "UpgradeModel: no eval_set, so the Platt calibration is fitted on the "
                "training rows the model was fitted on; the probabilities will be "
                "overconfident. Pass eval_set=(X_valid, y_valid) (validation months).",
                SegmentsWarning,
                stacklevel=3,
            )
        self.calibration_ = platt(self._margin(frame), y)
        self.calibrated_on_ = where

    def refitted(
        self, X: pd.DataFrame, y: Any, *, calibrate_on: tuple[pd.DataFrame, Any] | None = None
    ) -> UpgradeModel:
        """The chosen candidate refitted on other rows (every labelled month, for the
        deployed version), its trees scaled to the rows.

        Parameters
        ----------
        X, y
            The rows to fit on and their labels.
        calibrate_on : tuple (X_recent, y_recent), optional
            The most recent labelled months, out of time for this model: the Platt map is
            fitted on this model's margins there (and, with ``prior_shift``, moved to the
            latest month's rate) and carried to the refitted model. Without it, this
            model's map is kept.

        Returns
        -------
        UpgradeModel
            A new fitted model; this one is unchanged.
        """
        from sklearn.base import clone

        check_is_fitted(self, "kind_")
        new = clone(self)
        frame, yy = as_frame(new, X, y, reset=True)
        new.features_ = list(self.features_)
        name_features(new, X, new.features_)
        yy = _binary_classes(new, yy)
        new.categories_ = categories_of(frame, new.features_)
        n = round(self.best_iteration_ * len(frame) / self.fitted_rows_)
        params = {**self.params_, "n_estimators": max(n, self.min_trees) if n else 0}
        new._set(self.kind_, *new._fit_kind(self.kind_, params, frame, yy, None),
                 self.blend_weight_)  # fmt: skip
        new.fitted_rows_, new.refitted_ = len(frame), True
        new.selection_ = self.selection_
        new.calibration_, new.calibrated_on_ = self.calibration_, self.calibrated_on_
        if calibrate_on is not None and self.calibration == "platt":
            Xc, _ = as_frame(self, calibrate_on[0], reset=False)
            yc = np.searchsorted(self.classes_, np.asarray(calibrate_on[1]))
            margin = self._margin(Xc)
            ab = self._shifted(platt(margin, yc), margin, Xc, yc, (frame, yy))
            new.calibration_ = carry_map(ab, margin, new._margin(Xc))
            new.calibrated_on_ = "recent"
        return new

    def _shifted(
        self, ab: tuple[float, float], margin: np.ndarray, Xc: pd.DataFrame, yc: np.ndarray,
        learnt: tuple[pd.DataFrame, np.ndarray],
    ) -> tuple[float, float]:  # fmt: skip
        """The Platt map ``ab`` of the calibration rows after ``prior_shift``."""
        months = Xc["as_of"].astype(str).to_numpy() if "as_of" in Xc else None
        X, y = learnt
        history = (X["as_of"].astype(str).to_numpy(), y) if "as_of" in X else None
        return prior_shifted(self.prior_shift, ab, margin, yc, months, history,
                             self.prior_shift_lead)  # fmt: skip

    def _margin(self, X: pd.DataFrame) -> np.ndarray:
        cols = _fitted_columns(X, self.features_, "upgrade model")
        w = self.blend_weight_
        margin = np.zeros(len(cols))
        if w > 0:
            margin += w * self.classifier_.predict(
                cols, raw_score=True, num_iteration=self.best_iteration_
            )
        if w < 1:
            margin += (1 - w) * self.spline_.decision_function(cols)
        return margin

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated log-odds of upgrading."""
        check_is_fitted(self, "kind_")
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
        """Each feature's share of the model, largest first: of the trees' total gain, of
        the splines' mean absolute term, or the blend of both by its weight."""
        check_is_fitted(self, "kind_")
        w = self.blend_weight_
        share = pd.Series(0.0, index=self.features_)
        if w > 0:
            gain = self.booster_.feature_importance("gain", iteration=self.best_iteration_)
            share += w * pd.Series(gain, index=self.features_) / max(gain.sum(), 1e-12)
        if w < 1:
            spread = self.spline_.feature_importance().reindex(self.features_)
            share += (1 - w) * spread / max(spread.sum(), 1e-12)
        return share.sort_values(ascending=False)
