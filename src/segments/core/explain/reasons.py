"""Explanations: SHAP for the upgrade model and the groups, and plain-language reason codes.

* Upgrade model: exact TreeSHAP (:mod:`segments.core.explain.treeshap`, equal to LightGBM's
  ``pred_contrib`` and ``shap.TreeExplainer``, several times faster) in calibrated log-odds:
  the Platt map is affine in log-odds, so contributions scale by its slope and stay exact
  and additive. Global importance (mean |SHAP|), and per customer the top-k reason codes with
  the feature, its value, the signed contribution and a sentence in English and Chinese built
  from the feature catalogue.
* Groups: a surrogate classifier (LightGBM) trained to predict the group from the features,
  its fidelity (accuracy against the clusterer's assignments on held-out customers), and per
  group the features whose SHAP values set it apart.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from segments.core.config.params import ValidatedParams, as_frame, name_features
from segments.core.explain.ladder_phrases import LadderPhrases
from segments.core.explain.treeshap import FastTreeShap
from segments.core.features import describe
from segments.exceptions import ConfigError, Violation

__all__ = [
    "GroupSurrogate",
    "UpgradeExplainer",
    "reason_sentence",
]

DIRECTIONS = ("up", "down", "both")


def _format_value(feature: str, value: Any, lang: str) -> str:
    spec = describe(feature)  # any window, own columns too
    unit = spec.unit if spec else ""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "unknown" if lang == "en" else "未知"
    if unit == "category" or isinstance(value, str):
        return str(value)
    v = float(value)
    if unit == "money":
        return f"{v:,.0f}"
    if unit == "ratio":
        return f"{v:+.0%}"
    if unit == "share":
        return f"{v:.0%}"
    if unit == "months":
        return f"{v:.0f} months" if lang == "en" else f"{v:.0f}个月"
    if unit == "years":
        return f"{v:.0f}" if lang == "en" else f"{v:.0f}岁"
    if unit in ("count", "per_month"):
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    return f"{v:.3g}"


def reason_sentence(
    feature: str,
    value: Any,
    contribution: float,
    lang: str = "en",
    outcome: str = "reaching the next tier",
) -> str:
    """One reason as a sentence, from the feature catalogue, in English or Chinese.

    Examples
    --------
    >>> reason_sentence("aum_growth_3m", 0.18, 0.4)
    'AUM growth over the last 3 months is +18%, which raises the chance of reaching the next tier'
    >>> reason_sentence("aum_growth_3m", 0.18, 0.4, lang="zh")
    '近3个月资产增长率为+18%，提升升级可能'
    """
    if lang not in ("en", "zh"):
        raise ConfigError([Violation("lang", f"is {lang!r}; expected 'en' or 'zh'")])
    return _sentence(feature, _format_value(feature, value, lang), contribution >= 0, lang, outcome)


def _sentence(
    feature: str, text: str, raises: bool, lang: str, outcome: str = "reaching the next tier"
) -> str:
    """A reason's sentence from its feature, its value as text and its direction."""
    label = _label(feature, lang)
    if lang == "en":
        return (
            f"{label} is {text}, which {'raises' if raises else 'lowers'} the chance of {outcome}"
        )
    return f"{label}为{text}，{'提升' if raises else '降低'}升级可能"


def _label(feature: str, lang: str) -> str:
    """A feature's name in a sentence: the catalogue's text (capitalised in English)."""
    spec = describe(feature)  # any window, own columns too
    if lang == "en":
        label = spec.en if spec else feature.replace("_", " ")
        return label[0].upper() + label[1:]
    return spec.zh if spec else feature


def _matrix(X: pd.DataFrame, features: Sequence[str], categories: dict[str, list]) -> np.ndarray:
    cols = []
    for c in features:
        if c in categories:
            codes = pd.Categorical(X[c].astype(object), categories=categories[c]).codes
            cols.append(np.where(codes < 0, np.nan, codes).astype(float))
        else:
            cols.append(pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float))
    return np.column_stack(cols) if cols else np.empty((len(X), 0))


class UpgradeExplainer:
    """Exact SHAP values and reason codes of a fitted upgrade model.

    The model is a :class:`~segments.core.upgrade.model.UpgradeModel`.

    Parameters
    ----------
    model : UpgradeModel
        Fitted; its trees (up to the best iteration), splines, blend weight and Platt
        calibration are used.
    ladder : Ladder or None, default None
        The ladder the model was trained on. On a points or growth ladder the tier features
        read in points and each component's reason says what more of it would add ("2 more
        products would add 24 points"), see :mod:`segments.core.explain.ladder_phrases`.

    Attributes
    ----------
    expected_value : float
        The base, in calibrated log-odds: contributions sum with it to the model's
        calibrated log-odds for every row.
    """

    def __init__(self, model: Any, ladder: Any | None = None) -> None:
        self.model = model
        self.phrases = LadderPhrases(ladder)
        a, b = model.calibration_
        self.slope = a
        self.features = list(model.features_)
        # The margin is w * trees + (1 - w) * splines: SHAP values add the same way.
        self.weight = float(getattr(model, "blend_weight_", 1.0))
        base = 0.0
        self._shap = None
        if self.weight > 0:
            self._shap = FastTreeShap(model.booster_, num_iteration=model.best_iteration_)
            base += self.weight * self._shap.expected_value
        if self.weight < 1:
            base += (1 - self.weight) * model.spline_.expected_value
        self.expected_value = a * base + b

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """SHAP values in calibrated log-odds, one column per feature (rows as ``X``):
        exact TreeSHAP for the trees, the centred additive terms for the splines."""
        phi = np.zeros((len(X), len(self.features)))
        if self._shap is not None:
            A = _matrix(X, self.features, self.model.categories_)
            phi += self.weight * self._shap.shap_values(A)
        if self.weight < 1:
            phi += (1 - self.weight) * self.model.spline_.terms(X[self.features])
        return pd.DataFrame(phi * self.slope, index=X.index, columns=self.features)

    def global_importance(
        self, X: pd.DataFrame | None = None, contributions: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Mean |SHAP| per feature (largest first), with the mean signed value."""
        phi = contributions if contributions is not None else self.contributions(X)
        out = pd.DataFrame({"mean_abs_shap": phi.abs().mean(), "mean_shap": phi.mean()})
        return out.sort_values("mean_abs_shap", ascending=False)

    def reason_codes(
        self,
        X: pd.DataFrame,
        *,
        k: int = 3,
        direction: str = "up",
        contributions: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """The top-k reasons per customer, as DESIGN.md's scoring columns.

        Parameters
        ----------
        X : DataFrame
            The model's features, one row per customer.
        k : int, default 3
        direction : {"up", "down", "both"}, default "up"
            Reasons that raise the probability, that hold it back, or the largest in
            absolute value.
        contributions : DataFrame, optional
            Precomputed :meth:`contributions`.

        Returns
        -------
        DataFrame
            Same index as ``X``; for i = 1..k: ``reason_{i}_feature``, ``reason_{i}_value``
            (as text), ``reason_{i}_contribution`` (log-odds), ``reason_{i}_text`` (English)
            and ``reason_{i}_text_zh``. Fewer than k qualifying reasons leave the rest empty.
        """
        if direction not in DIRECTIONS:
            raise ConfigError(
                [Violation("explain.direction", f"is {direction!r}; expected one of {DIRECTIONS}")]
            )
        if not isinstance(k, int) or k < 1:
            raise ConfigError([Violation("explain.k", f"is {k!r}; expected >= 1")])
        phi = contributions if contributions is not None else self.contributions(X)
        values = phi.to_numpy()
        key = {"up": -values, "down": values, "both": -np.abs(values)}[direction]
        order = np.argsort(key, axis=1, kind="stable")[:, :k]
        n = len(phi)
        out: dict[str, Any] = {}
        feats = np.array(self.features, dtype=object)
        raw = X[self.features].to_numpy(dtype=object)
        rows = np.arange(n)
        gaps = (
            pd.to_numeric(X["gap_to_next"], errors="coerce").to_numpy(dtype=float)
            if "gap_to_next" in X
            else np.full(n, np.nan)
        )
        for i in range(min(k, len(self.features))):
            idx = order[:, i]
            contrib = values[np.arange(n), idx]
            keep = {"up": contrib > 0, "down": contrib < 0, "both": contrib != 0}[direction]
            names = np.where(keep, feats[idx], None)
            vals = raw[rows, idx]
            raises = contrib >= 0
            texts = {lang: _texts(names, vals, lang) for lang in ("en", "zh")}
            sentences = {
                lang: [
                    _sentence(f, t, r, lang) if f is not None else None
                    for f, t, r in zip(names, texts[lang], raises, strict=True)
                ]
                for lang in ("en", "zh")
            }
            if self.phrases:  # a points ladder: its tier features and components in points
                self.phrases.rewrite(names, vals, raises, gaps, texts, sentences)
            out[f"reason_{i + 1}_feature"] = names
            out[f"reason_{i + 1}_value"] = texts["en"]
            out[f"reason_{i + 1}_contribution"] = np.where(keep, contrib, np.nan)
            out[f"reason_{i + 1}_text"] = sentences["en"]
            out[f"reason_{i + 1}_text_zh"] = sentences["zh"]
        return pd.DataFrame(out, index=phi.index)


def _texts(names: np.ndarray, values: np.ndarray, lang: str) -> list[str | None]:
    """Each reason's value as text (None where there is no reason); a language's text is
    formatted once per row and shared by the value column and the sentence."""
    return [
        _format_value(f, v, lang) if f is not None else None
        for f, v in zip(names, values, strict=True)
    ]


class GroupSurrogate(ValidatedParams, ClassifierMixin, BaseEstimator):
    """A classifier that predicts the group from the features, to explain membership.

    Parameters
    ----------
    n_estimators : int, default 200
    num_leaves : int, default 15
    holdout : float, default 0.25
        Share of customers held out to measure fidelity.
    importance_size : int, default 5_000
        Rows the group importance (mean SHAP among a group's members) is measured on: up
        to ``importance_size / k`` members of each of the k groups, drawn at random (all of
        a smaller group). SHAP for a multiclass model costs k times a binary one, and a
        mean over a few hundred members is as good as over all of them.
    random_state : int or None, default 0

    Attributes
    ----------
    fidelity_ : float
        Accuracy of the surrogate against the clusterer's assignments on held-out customers.
    model_ : lightgbm.LGBMClassifier
    classes_ : ndarray
        The group ids.
    features_ : list of str
        The feature columns (``x0, x1, ...`` for arrays).
    feature_names_in_ : ndarray of str
        The feature columns (only when fitted on a DataFrame).
    n_features_in_ : int
    group_importance_ : DataFrame
        Per group (rows) and feature (columns): the mean SHAP value, in the group's
        log-odds, among the group's own members (see ``importance_size``): what places
        them in it.
    """

    _config_key = "groups.surrogate"
    _parameter_constraints: ClassVar[dict] = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
        "holdout": [Interval(Real, 0, 1, closed="left")],
        "importance_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left"), None],
    }

    def __init__(
        self,
        n_estimators: int = 200,
        num_leaves: int = 15,
        holdout: float = 0.25,
        importance_size: int = 5_000,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.holdout = holdout
        self.importance_size = importance_size
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # LightGBM routes missing values itself
        return tags

    def fit(self, X: pd.DataFrame, y: Any) -> GroupSurrogate:
        """Fit on the group features and measure fidelity on a held-out share.

        Parameters
        ----------
        X : DataFrame or array-like
            The group features (every column is used).
        y : array-like
            Each customer's group id.

        Returns
        -------
        self
        """
        self._validate_params()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lightgbm as lgb
        given = X
        X, y = as_frame(self, X, y, reset=True)
        rng = np.random.default_rng(self.random_state)
        test = rng.random(len(y)) < self.holdout
        self.classes_ = np.unique(y)
        params = dict(
            n_estimators=self.n_estimators,
            num_leaves=self.num_leaves,
            learning_rate=0.1,
            random_state=self.random_state,
            verbose=-1,
            n_jobs=2,
            deterministic=True,
            force_row_wise=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if test.any() and len(np.unique(y[~test])) > 1:
                probe = lgb.LGBMClassifier(**params).fit(X[~test], y[~test])
                self.fidelity_ = float((probe.predict(X[test]) == y[test]).mean())
            else:
                self.fidelity_ = float("nan")
            self.model_ = lgb.LGBMClassifier(**params).fit(X, y)
        self.features_ = list(X.columns)
        name_features(self, given, self.features_)
        cap = max(1, self.importance_size // len(self.classes_))
        members = {g: np.flatnonzero(y == g) for g in self.classes_}
        members = {
            g: np.sort(rng.choice(m, cap, replace=False)) if len(m) > cap else m
            for g, m in members.items()
        }
        at = np.concatenate(list(members.values()))
        contrib = self.contributions(X.iloc[at])
        rows, start = {}, 0
        for g, m in members.items():
            rows[g] = contrib[g].iloc[start : start + len(m)].mean()
            start += len(m)
        self.group_importance_ = pd.DataFrame(rows).T
        self.group_importance_.index.name = "group_id"
        return self

    def _features(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        frame, _ = as_frame(self, X, reset=False)
        return frame[self.features_]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each group (columns in the order of ``classes_``)."""
        frame = self._features(X)
        return self.model_.predict_proba(frame)

    def predict(self, X: Any) -> np.ndarray:
        """The group the surrogate assigns."""
        frame = self._features(X)
        return self.model_.predict(frame)

    def contributions(self, X: pd.DataFrame) -> dict[Any, pd.DataFrame]:
        """Per group: SHAP values of each row toward that group (LightGBM pred_contrib)."""
        frame = self._features(X)
        raw = self.model_.booster_.predict(frame, pred_contrib=True)
        width = len(self.features_) + 1
        if len(self.classes_) == 2:  # binary: one column block, toward the second group
            phi = raw[:, : width - 1]
            raw = np.hstack([-phi, np.zeros((len(phi), 1)), phi, np.zeros((len(phi), 1))])
        return {
            g: pd.DataFrame(
                raw[:, i * width : (i + 1) * width - 1], index=frame.index, columns=self.features_
            )
            for i, g in enumerate(self.classes_)
        }

    def top_features(self, k: int = 5) -> pd.DataFrame:
        """Per group, the k features that most set it apart (largest mean SHAP)."""
        rows = []
        for g, row in self.group_importance_.iterrows():
            for rank, (feat, val) in enumerate(
                row.sort_values(ascending=False).head(k).items(), start=1
            ):
                rows.append({"group_id": g, "rank": rank, "feature": feat, "mean_shap": float(val)})
        return pd.DataFrame(rows)

    def customer_reasons(self, X: pd.DataFrame, groups: Any, k: int = 3) -> pd.DataFrame:
        """Per customer, the top-k features that placed them in their own group."""
        contrib = self.contributions(X)
        y = np.asarray(groups)
        out = {f"group_reason_{i + 1}": np.empty(len(X), dtype=object) for i in range(k)}
        for g in self.classes_:
            m = y == g
            if not m.any():
                continue
            vals = contrib[g].to_numpy()[m]
            order = np.argsort(-vals, axis=1)[:, :k]
            for i in range(k):
                out[f"group_reason_{i + 1}"][m] = np.array(self.features_, dtype=object)[
                    order[:, i]
                ]
        return pd.DataFrame(out, index=X.index)
