"""Upgrade potential: labels, training data, the upgrade model, baselines and evaluation.

For customers in a near-tier band at as-of month ``t``, the label says whether they reach
the next tier within ``(t, t + H]``. Features come from months ``<= t`` only; labels from
``t + 1 .. t + H`` (plus ``M - 1`` months for "sustain" labels); validation is out of time,
with an embargo so that no label window of the training months reaches into the test
months. The model is LightGBM (exact TreeSHAP through its own ``pred_contrib``), with class
imbalance re-weighted, early stopping on the validation months, and Platt calibration on
the validation months; the bank's rule of thumb (closeness to the threshold, the gap ratio)
and a logistic regression are evaluated the same way on the same months.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)
from sklearn.utils.validation import check_is_fitted

from segments.core.features import build_features, is_log_scale
from segments.core.panel import ID, MONTH
from segments.exceptions import ConfigError, SegmentsError, Violation

__all__ = [
    "LABEL_KINDS",
    "POPULATIONS",
    "LogisticBaseline",
    "RuleOfThumb",
    "UpgradeModel",
    "build_training_set",
    "calibration_table",
    "call_list",
    "decile_table",
    "evaluate",
    "expected_gain",
    "make_labels",
    "oot_split",
    "rank_within",
]

LABEL_KINDS = ("reach", "sustain")
POPULATIONS = ("near_tier", "below_top")
#: Tier-table columns used as features (known at the as-of month).
TIER_FEATURES = ("gap_ratio", "gap_to_next", "tier_rank", "near_band")


class NotEnoughDataError(SegmentsError, ValueError):
    """Too few months, customers or positive labels to train or evaluate."""


def make_labels(
    tiers: pd.DataFrame,
    as_of: str | pd.Period,
    *,
    horizon: int = 3,
    population: str = "near_tier",
    kind: str = "reach",
    sustain_months: int = 3,
) -> pd.DataFrame:
    """Upgrade labels for the population at ``as_of``.

    Parameters
    ----------
    tiers : DataFrame
        The tier table (:func:`segments.assign_tiers`).
    as_of : str or Period
        The month ``t`` the population and features are taken at.
    horizon : int, default 3
        ``H``: the label looks at months ``t + 1 .. t + H``.
    population : {"near_tier", "below_top"}, default "near_tier"
        Customers in a near-tier band at ``t``, or every customer below the top tier.
    kind : {"reach", "sustain"}, default "reach"
        ``reach``: at or above the next tier in any month of the window. ``sustain``: a
        run of ``sustain_months`` consecutive months whose basis qualifies for the next
        tier, starting in the window (what hysteresis ladders demand; the held tier of a
        hysteresis ladder is not used, so a one-month touch is not a sustained upgrade).
    sustain_months : int, default 3
        ``M`` for ``sustain``.

    Returns
    -------
    DataFrame
        One row per customer of the population: ``customer_id``, ``as_of``, the tier columns
        at ``t`` (``tier``, ``tier_rank``, ``next_tier``, ``near_band``, ``gap_to_next``,
        ``gap_ratio``), ``label`` (1, 0, or missing when censored) and ``censored``.
        A customer is censored when a month needed to decide is missing (left the bank, or
        the panel ends) and the upgrade has not already been seen; never labelled 0.
    """
    problems = []
    if kind not in LABEL_KINDS:
        problems.append(Violation("upgrade.label", f"is {kind!r}; expected {LABEL_KINDS}"))
    if population not in POPULATIONS:
        problems.append(
            Violation("upgrade.population", f"is {population!r}; expected {POPULATIONS}")
        )
    if not isinstance(horizon, int) or horizon < 1:
        problems.append(Violation("upgrade.horizon", f"is {horizon!r}; expected >= 1"))
    if kind == "sustain" and (not isinstance(sustain_months, int) or sustain_months < 1):
        problems.append(
            Violation("upgrade.sustain_months", f"is {sustain_months!r}; expected >= 1")
        )
    if problems:
        raise ConfigError(problems)
    t = pd.Period(as_of, "M")
    ordinals = tiers[MONTH].array.asi8
    now = tiers[ordinals == t.ordinal]
    top = len(tiers["tier"].cat.categories) - 1
    if population == "near_tier":
        pop = now[now["near_tier"].to_numpy()]
    else:
        pop = now[now["tier_rank"].to_numpy() < top]
    span = horizon + (sustain_months - 1 if kind == "sustain" else 0)
    ahead = tiers[(ordinals > t.ordinal) & (ordinals <= t.ordinal + span)]
    # "reach": the tier held (upgrades are immediate on every ladder). "sustain": the tier the
    # basis qualifies for, so a hysteresis ladder's held tier cannot make a touch look kept.
    future_rank = (
        ahead["tier_rank"].to_numpy()
        if kind == "reach"
        else ahead["qualifying_tier"].cat.codes.to_numpy()
    )
    ids = pop[ID].to_numpy()
    target = pop["tier_rank"].to_numpy().astype(np.int16) + 1
    # Grid of future ranks: customers x months ahead (-1 = no row).
    pos = pd.Index(ids)
    rows = pos.get_indexer(ahead[ID])
    keep = rows >= 0
    lag = ahead[MONTH].array.asi8[keep] - t.ordinal - 1
    grid = np.full((len(ids), span), -1, dtype=np.int16)
    grid[rows[keep], lag] = future_rank[keep]
    above = grid >= target[:, None]
    present = grid >= 0
    if kind == "reach":
        positive = above[:, :horizon].any(axis=1)
        complete = present[:, :horizon].all(axis=1)
    else:
        M = sustain_months
        positive = np.zeros(len(ids), dtype=bool)
        possible = np.zeros(len(ids), dtype=bool)  # a run could still start, data missing
        for start in range(horizon):
            run = above[:, start : start + M]
            positive |= run.all(axis=1) & (run.shape[1] == M)
            window = present[:, start : start + M]
            # Unknown when no month of the run is known to be below and some are missing.
            known_below = (present[:, start : start + M] & ~above[:, start : start + M]).any(axis=1)
            possible |= ~known_below & ~window.all(axis=1)
        complete = ~possible
    label = np.where(positive, 1.0, np.where(complete, 0.0, np.nan))
    out = pop[
        [ID, "tier", "tier_rank", "next_tier", "near_band", "gap_to_next", "gap_ratio"]
    ].copy()
    out.insert(1, "as_of", str(t))
    out["label"] = pd.array(label, dtype="Float64").astype("Int8")
    out["censored"] = np.isnan(label)
    return out.reset_index(drop=True)


def build_training_set(
    panel: pd.DataFrame,
    tiers: pd.DataFrame,
    as_of_months: Sequence[str | pd.Period],
    *,
    horizon: int = 3,
    population: str = "near_tier",
    kind: str = "reach",
    sustain_months: int = 3,
    windows: Sequence[int] = (3, 6, 12),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stack features and labels over several as-of months.

    Parameters
    ----------
    panel, tiers : DataFrame
        A validated panel and its tier table.
    as_of_months : sequence
        The as-of months to stack.
    horizon, population, kind, sustain_months
        See :func:`make_labels`.
    windows : sequence of int
        Feature windows (:func:`segments.build_features`).

    Returns
    -------
    data : DataFrame
        One row per (customer, as-of) with a label (censored rows dropped): ``customer_id``,
        ``as_of``, the features at ``as_of`` (months <= as-of only), the tier features
        (``gap_ratio``, ``gap_to_next``, ``tier_rank``, ``near_band``) and ``label``.
    counts : DataFrame
        Per as-of month: population, positives, negatives, censored, positive rate.
    """
    frames, counts = [], []
    for t in as_of_months:
        labels = make_labels(
            tiers,
            t,
            horizon=horizon,
            population=population,
            kind=kind,
            sustain_months=sustain_months,
        )
        n_cens = int(labels["censored"].sum())
        labelled = labels[~labels["censored"]]
        pos = int((labelled["label"] == 1).sum())
        counts.append(
            {
                "as_of": str(pd.Period(t, "M")),
                "population": len(labels),
                "positives": pos,
                "negatives": len(labelled) - pos,
                "censored": n_cens,
                "positive_rate": pos / len(labelled) if len(labelled) else np.nan,
            }
        )
        if labelled.empty:
            continue
        X = build_features(panel, t, windows=windows)
        X = X.reindex(labelled[ID])
        X.index.name = ID
        tier_cols = labelled.set_index(ID)[list(TIER_FEATURES)]
        block = X.join(tier_cols).reset_index()
        block.insert(1, "as_of", str(pd.Period(t, "M")))
        block["label"] = labelled["label"].to_numpy().astype(np.int8)
        frames.append(block)
    if not frames:
        raise NotEnoughDataError(
            f"no labelled customers in any as-of month ({', '.join(map(str, as_of_months))})"
        )
    data = pd.concat(frames, ignore_index=True)
    for c in ("near_band", "age_band", "gender", "region", "occupation"):
        if c in data.columns:
            data[c] = data[c].astype("category")
    return data, pd.DataFrame(counts).set_index("as_of")


def oot_split(
    as_of_months: Sequence[str | pd.Period],
    *,
    horizon: int,
    test_months: int = 2,
    valid_months: int = 2,
) -> dict[str, list[str]]:
    """Out-of-time split of as-of months with an embargo of ``horizon`` months.

    Pass as ``horizon`` every month a label reads ahead (``H + M - 1`` for sustain labels).

    The last ``test_months`` as-of months are the test; the ``valid_months`` before them
    (that also end their label window by the first test month) validate; earlier months
    whose label windows end by the first validation month train. So no label of a
    training (or validation) row uses a month after the test's first as-of month.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}`` as ``YYYY-MM`` strings.

    Raises
    ------
    NotEnoughDataError
        When there are not enough as-of months for all three parts.
    """
    months = sorted({pd.Period(m, "M") for m in as_of_months})
    if len(months) < test_months + valid_months + 1:
        raise NotEnoughDataError(
            f"upgrade: {len(months)} as-of months are too few for {test_months} test, "
            f"{valid_months} validation and at least 1 training month"
        )
    test = months[-test_months:]
    valid = [m for m in months if m.ordinal + horizon <= test[0].ordinal][-valid_months:]
    if not valid:
        raise NotEnoughDataError(
            "upgrade: no validation month ends its label window "
            f"before the first test month {test[0]}"
        )
    train = [m for m in months if m.ordinal + horizon <= valid[0].ordinal]
    if not train:
        raise NotEnoughDataError(
            "upgrade: no training month ends its label window before "
            f"the first validation month {valid[0]}"
        )
    return {
        "train": [str(m) for m in train],
        "valid": [str(m) for m in valid],
        "test": [str(m) for m in test],
    }


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


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


class UpgradeModel(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees (LightGBM) for P(reach the next tier within H months).

    Parameters
    ----------
    features : sequence of str or None, default None
        Columns to use; None uses every column but ids, ``as_of``, ``label``.
    n_estimators : int, default 600
        Upper bound on trees; early stopping on the validation months picks the number.
    learning_rate : float, default 0.05
    num_leaves : int, default 15
    max_depth : int, default 6
    min_child_samples : int, default 50
    subsample : float, default 0.8
    colsample_bytree : float, default 0.8
    reg_lambda : float, default 1.0
    class_weight : {"balanced", None}, default "balanced"
        Re-weight the rare positives during training; calibration afterwards restores
        honest probabilities.
    calibration : {"platt", None}, default "platt"
        Platt scaling (a logistic map of the raw margin) fitted on the validation months.
        Being affine in log-odds, it keeps the ranking and the additivity of SHAP values.
    early_stopping_rounds : int, default 50
    random_state : int or None, default 0

    Attributes
    ----------
    booster_ : lightgbm.LGBMClassifier
        The fitted trees.
    features_ : list of str
    categories_ : dict
        The categories of each categorical feature (scoring input must use them).
    best_iteration_ : int
        The number of trees kept by early stopping.
    calibration_ : tuple of float
        ``(a, b)``: calibrated log-odds = ``a * margin + b``.
    classes_ : ndarray
    """

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
        class_weight: str | None = "balanced",
        calibration: str | None = "platt",
        early_stopping_rounds: int = 50,
        random_state: int | None = 0,
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
        """Fit the trees (early stopping and calibration on ``eval_set`` when given)."""
        if self.calibration not in ("platt", None):
            raise ConfigError(
                [
                    Violation(
                        "upgrade.calibration", f"is {self.calibration!r}; expected 'platt' or null"
                    )
                ]
            )
        self.features_ = _feature_columns(X, self.features)
        self.categories_ = {
            c: list(X[c].cat.categories)
            for c in self.features_
            if isinstance(X[c].dtype, pd.CategoricalDtype)
        }
        y = np.asarray(y).astype(int)
        if len(np.unique(y)) < 2:
            raise NotEnoughDataError("upgrade: the training months have only one class")
        self.classes_ = np.array([0, 1])
        model = self._lgbm()
        kwargs: dict[str, Any] = {}
        if eval_set is not None:
            import lightgbm as lgb

            Xv, yv = eval_set
            kwargs = {
                "eval_set": [(Xv[self.features_], np.asarray(yv).astype(int))],
                "callbacks": [lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
            }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X[self.features_], y, **kwargs)
        self.booster_ = model
        self.best_iteration_ = int(model.best_iteration_ or model.n_estimators)
        self.calibration_ = (1.0, 0.0)
        if self.calibration == "platt":
            Xc, yc = eval_set if eval_set is not None else (X, y)
            margin = self._margin(Xc)
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(
                margin[:, None], np.asarray(yc).astype(int)
            )
            self.calibration_ = (float(lr.coef_[0, 0]), float(lr.intercept_[0]))
        self.n_features_in_ = len(self.features_)
        return self

    def _margin(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster_.predict(
            X[self.features_], raw_score=True, num_iteration=self.best_iteration_
        )

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated log-odds of upgrading."""
        check_is_fitted(self, "booster_")
        a, b = self.calibration_
        return a * self._margin(X) + b

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, columns ``[P(no upgrade), P(upgrade)]``."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 when P(upgrade) >= 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        check_is_fitted(self, "booster_")
        gain = self.booster_.booster_.feature_importance("gain", iteration=self.best_iteration_)
        return pd.Series(gain, index=self.features_).sort_values(ascending=False)


class RuleOfThumb(ClassifierMixin, BaseEstimator):
    """The bank's rule: the closer to the threshold (higher gap ratio), the likelier.

    Ranking uses the gap ratio alone; probabilities come from a one-variable logistic map
    (fitted, in :func:`segments.train_upgrade`, on the validation months where the model is
    calibrated), so calibration metrics compare like with like.
    """

    def fit(self, X: pd.DataFrame, y: Any) -> RuleOfThumb:
        """Fit the logistic map of the gap ratio."""
        self.classes_ = np.array([0, 1])
        self.lr_ = LogisticRegression(max_iter=1000).fit(
            X[["gap_ratio"]].fillna(0).to_numpy(), np.asarray(y).astype(int)
        )
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """The score: the gap ratio itself."""
        return X["gap_ratio"].fillna(0).to_numpy(dtype=float)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities from the logistic map of the gap ratio."""
        check_is_fitted(self, "lr_")
        return self.lr_.predict_proba(X[["gap_ratio"]].fillna(0).to_numpy())


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """Logistic regression on the same numeric features (log money, median-imputed, scaled)."""

    def __init__(self, features: Sequence[str] | None = None, C: float = 1.0) -> None:
        self.features = features
        self.C = C

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        A = X[self.features_].to_numpy(dtype=float).copy()
        for j, c in enumerate(self.features_):
            if is_log_scale(c):
                A[:, j] = np.log1p(np.clip(A[:, j], 0, None))
        A = np.where(np.isnan(A), self.median_, A)
        return (A - self.mean_) / self.scale_

    def fit(self, X: pd.DataFrame, y: Any) -> LogisticBaseline:
        """Fit on the numeric features."""
        cols = _feature_columns(X, self.features)
        self.features_ = [c for c in cols if pd.api.types.is_numeric_dtype(X[c].dtype)]
        A = X[self.features_].to_numpy(dtype=float).copy()
        for j, c in enumerate(self.features_):
            if is_log_scale(c):
                A[:, j] = np.log1p(np.clip(A[:, j], 0, None))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.median_ = np.nan_to_num(np.nanmedian(A, axis=0))
        A = np.where(np.isnan(A), self.median_, A)
        self.mean_ = A.mean(axis=0)
        scale = A.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.classes_ = np.array([0, 1])
        self.lr_ = LogisticRegression(C=self.C, max_iter=2000).fit(
            (A - self.mean_) / self.scale_, np.asarray(y).astype(int)
        )
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds."""
        return self.lr_.decision_function(self._matrix(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities."""
        return self.lr_.predict_proba(self._matrix(X))


def _ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(err)


def _lift_capture(y: np.ndarray, score: np.ndarray, top: float) -> tuple[float, float]:
    n = max(1, int(np.ceil(top * len(y))))
    order = np.argsort(-score, kind="stable")[:n]
    rate = y.mean()
    hit = y[order].mean()
    return (
        float(hit / rate) if rate > 0 else np.nan,
        float(y[order].sum() / y.sum()) if y.sum() > 0 else np.nan,
    )


def evaluate(y: Any, p: Any, score: Any | None = None) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier, log loss, ECE, lift and capture at the top 5/10/20%.

    Parameters
    ----------
    y : array-like of {0, 1}
    p : array-like of float
        Probabilities (for the calibration metrics).
    score : array-like, optional
        The ranking score (default ``p``), for AUCs, lift and capture.
    """
    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    s = p if score is None else np.asarray(score, dtype=float)
    out: dict[str, float] = {
        "n": float(len(y)),
        "positives": float(y.sum()),
        "positive_rate": float(y.mean()) if len(y) else np.nan,
    }
    if len(np.unique(y)) < 2:
        return out
    out.update(
        {
            "roc_auc": float(roc_auc_score(y, s)),
            "pr_auc": float(average_precision_score(y, s)),
            "brier": float(brier_score_loss(y, p)),
            "log_loss": float(log_loss(y, p, labels=[0, 1])),
            "ece": _ece(y, p),
        }
    )
    for top in (0.05, 0.10, 0.20):
        lift, capture = _lift_capture(y, s, top)
        out[f"lift_top{int(top * 100)}"] = lift
        out[f"capture_top{int(top * 100)}"] = capture
    return out


def decile_table(y: Any, score: Any, p: Any | None = None) -> pd.DataFrame:
    """Customers ranked by score in ten equal bins (1 = highest): counts, rates, lift."""
    y = np.asarray(y).astype(int)
    s = np.asarray(score, dtype=float)
    order = np.argsort(-s, kind="stable")
    decile = np.empty(len(s), dtype=int)
    decile[order] = np.arange(len(s)) * 10 // max(len(s), 1) + 1
    df = pd.DataFrame(
        {"decile": decile, "y": y, "p": np.asarray(p if p is not None else s, dtype=float)}
    )
    t = df.groupby("decile").agg(
        customers=("y", "size"), upgrades=("y", "sum"), mean_p=("p", "mean")
    )
    t["upgrade_rate"] = t["upgrades"] / t["customers"]
    t["lift"] = t["upgrade_rate"] / y.mean() if y.mean() > 0 else np.nan
    t["cumulative_capture"] = t["upgrades"].cumsum() / max(y.sum(), 1)
    return t


def calibration_table(y: Any, p: Any, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed upgrade rate in ``bins`` equal-size bins of p."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    q = pd.qcut(pd.Series(p).rank(method="first"), bins, labels=False)
    df = pd.DataFrame({"bin": q, "y": y, "p": p})
    return df.groupby("bin").agg(
        customers=("y", "size"), mean_p=("p", "mean"), observed=("y", "mean")
    )


def expected_gain(
    p: Any, gap: Any, *, next_tier: Any | None = None, tier_values: dict[str, float] | None = None
) -> pd.DataFrame:
    """Expected AUM gain ``p x gap``, and ``p x value of the next tier`` when values are given.

    Returns
    -------
    DataFrame
        ``expected_gain`` (money) and, with ``tier_values``, ``expected_value``.
    """
    p = np.asarray(p, dtype=float)
    out = pd.DataFrame({"expected_gain": p * np.asarray(gap, dtype=float)})
    if tier_values and next_tier is not None:
        values = pd.Series(next_tier).astype(str).map(tier_values).astype(float).to_numpy()
        out["expected_value"] = p * np.nan_to_num(values)
    return out


def rank_within(score: pd.Series, by: pd.Series | None = None) -> pd.DataFrame:
    """Percentile (1..100), permille (1..1000) and decile (1..10) of a score within groups
    (1 = the highest scores).

    The one rank rule of :mod:`segments.core.ranks`, which scoring uses too: tied scores
    share the better position (``position = 1 + scores in the group strictly higher``) and
    each rank is ``ceil(scale * position / n)`` in integer arithmetic.

    Parameters
    ----------
    score : Series
    by : Series, optional
        The group of each score (default: one group).

    Returns
    -------
    DataFrame
        ``percentile``, ``permille``, ``decile``.
    """
    from segments.core import ranks

    return ranks.rank_within(score, by)


def call_list(
    scored: pd.DataFrame,
    *,
    capacity_per_rm: int = 50,
    rms_per_branch: int = 2,
    by: str = "expected_gain",
) -> pd.DataFrame:
    """The customers relationship managers should call, within each branch's capacity.

    Parameters
    ----------
    scored : DataFrame
        ``customer_id``, ``p_upgrade``, ``expected_gain`` and, when present, ``branch_id``.
    capacity_per_rm : int, default 50
        Customers one RM works in the period.
    rms_per_branch : int, default 2
    by : str, default "expected_gain"
        What to rank on.

    Returns
    -------
    DataFrame
        The selected customers with ``rank_in_branch`` and ``rm_slot`` (1..rms_per_branch),
        best first within each branch.
    """
    if capacity_per_rm < 1 or rms_per_branch < 1:
        raise ConfigError(
            [Violation("upgrade.call_list", "capacity_per_rm and rms_per_branch must be >= 1")]
        )
    df = scored.copy()
    branch = df["branch_id"].astype(str) if "branch_id" in df else pd.Series("all", index=df.index)
    df["branch"] = branch.to_numpy()
    df = df.sort_values(["branch", by, ID], ascending=[True, False, True], kind="stable")
    df["rank_in_branch"] = df.groupby("branch").cumcount() + 1
    cap = capacity_per_rm * rms_per_branch
    df = df[df["rank_in_branch"] <= cap].copy()
    df["rm_slot"] = (df["rank_in_branch"] - 1) % rms_per_branch + 1
    return df.drop(columns="branch").reset_index(drop=True)
