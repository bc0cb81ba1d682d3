"""Model selection for the upgrade model: the candidates, their search, the calibration map.

The candidates are LightGBM with the configured parameters and a small seeded search around
them (leaves, learning rate, minimum child size, L2 regularisation, column sampling, class
weighting), each early-stopped on the validation months; a regularised logistic
regression on spline-expanded features (:class:`~segments.core.upgrade.splines.SplineLogistic`);
and blends of the best trees and the splines in log-odds. Every candidate is Platt-calibrated
on the validation months and scored there by log loss; the lowest wins (:func:`choose`).

With only a handful of trials a Bayesian optimiser (Optuna's TPE starts with ten random
trials) would sample at random too: the search draws distinct points of a small grid with
the estimator's ``random_state``, so the same data and seed give the same candidates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

__all__ = [
    "BLEND_WEIGHTS",
    "CANDIDATES",
    "SEARCH_SPACE",
    "Candidate",
    "carry_map",
    "check_choices",
    "choose",
    "fit_candidates",
    "gbm_trials",
    "match_rate",
    "platt",
    "platt_log_loss",
    "prior_shifted",
    "shift_intercept",
    "trend_rate",
]

#: The candidate kinds the upgrade model chooses among.
CANDIDATES = ("gbm", "spline", "blend")
#: The grid the search draws LightGBM parameters from.
SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "num_leaves": (7, 15, 31, 63),
    "learning_rate": (0.05, 0.1),
    "min_child_samples": (20, 50, 100, 200),
    "reg_lambda": (0.0, 1.0, 5.0, 20.0),
    "colsample_bytree": (0.5, 0.8, 1.0),
    "class_weight": (None, "balanced"),
}
#: Weights of the trees in the blends tried (the splines get the rest).
BLEND_WEIGHTS = (0.25, 0.5, 0.75)


@dataclass
class Candidate:
    """One candidate as validated.

    Attributes
    ----------
    name : str
        ``gbm`` (the configured parameters), ``gbm_search_<i>``, ``spline`` or
        ``blend_<w>``.
    kind : {"gbm", "spline", "blend"}
    params : dict
        Its LightGBM parameters (for the trees of a blend too), ``C`` for the splines and
        ``weight`` (of the trees) for a blend.
    trees : int
        Trees kept (0 for the splines).
    valid_log_loss, valid_auc : float
        On the validation months, after the Platt map fitted there.
    calibration : tuple of float
        That map: calibrated log-odds = ``a * margin + b``.
    margin : ndarray
        Its margin on the validation rows.
    seconds : float
        The time its fit took (a blend: the time to weigh its parts).
    """

    name: str
    kind: str
    params: dict[str, Any]
    trees: int
    valid_log_loss: float
    valid_auc: float
    calibration: tuple[float, float]
    margin: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        """The candidate as a row of the selection table."""
        params = {k: v for k, v in self.params.items() if k != "weight"}
        return {
            "candidate": self.name,
            "kind": self.kind,
            "trees": self.trees,
            "blend_weight": self.params.get("weight"),
            "valid_log_loss": self.valid_log_loss,
            "valid_auc": self.valid_auc,
            "fit_seconds": round(self.seconds, 2),
            "params": ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
        }


def gbm_trials(base: dict[str, Any], n: int, seed: int | None) -> list[dict[str, Any]]:
    """The configured LightGBM parameters, then ``n`` distinct draws from
    :data:`SEARCH_SPACE` (the other parameters as configured)."""
    rng = np.random.default_rng(seed if seed is not None else 0)
    keys = list(SEARCH_SPACE)
    seen = {tuple(base.get(k) for k in keys)}
    out = [dict(base)]
    for _ in range(50 * max(n, 1)):
        if len(out) > n:
            break
        point = {k: SEARCH_SPACE[k][rng.integers(len(SEARCH_SPACE[k]))] for k in keys}
        key = tuple(point[k] for k in keys)
        if key not in seen:
            seen.add(key)
            out.append({**base, **point})
    return out


def platt(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The Platt map ``(a, b)`` of a margin onto labels (log-odds = ``a * margin + b``)."""
    if np.ptp(margin) == 0:
        rate = float(np.clip(y.mean(), 1e-9, 1 - 1e-9))
        return 0.0, float(np.log(rate / (1 - rate)))
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin[:, None], y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def platt_log_loss(margin: np.ndarray, y: np.ndarray) -> tuple[float, float, tuple[float, float]]:
    """Log loss and AUC of a margin after its Platt map on the same rows, and the map."""
    a, b = platt(margin, y)
    p = 1.0 / (1.0 + np.exp(-(a * margin + b)))
    auc = float(roc_auc_score(y, margin)) if len(np.unique(y)) == 2 else float("nan")
    return float(log_loss(y, np.clip(p, 1e-12, 1 - 1e-12), labels=[0, 1])), auc, (a, b)


def choose(candidates: list[Candidate]) -> Candidate:
    """The candidate with the lowest validation log loss (the first on a tie)."""
    return min(candidates, key=lambda c: c.valid_log_loss)


def table(candidates: list[Candidate], chosen: Candidate) -> pd.DataFrame:
    """Every candidate as validated, best first, with which one was chosen."""
    out = pd.DataFrame([c.row() for c in candidates])
    out["chosen"] = out["candidate"] == chosen.name
    return out.sort_values("valid_log_loss", kind="stable").reset_index(drop=True)


def match_rate(margin: np.ndarray, ab: tuple[float, float], rate: float) -> tuple[float, float]:
    """The Platt map ``ab`` with its intercept moved so the mean probability over
    ``margin`` equals ``rate``."""
    from scipy.optimize import brentq

    a, b = ab
    rate = float(np.clip(rate, 1e-6, 1 - 1e-6))
    z = a * margin + b

    def gap(delta: float) -> float:
        return float(np.mean(1.0 / (1.0 + np.exp(-(z + delta))))) - rate

    return a, b + float(brentq(gap, -20.0, 20.0))


def shift_intercept(
    margin: np.ndarray, y: np.ndarray, ab: tuple[float, float], months: np.ndarray | None
) -> tuple[float, float]:
    """The Platt map with its intercept moved so the mean probability on the latest month
    of ``months`` (all rows when None) equals that month's observed rate: a prior-shift
    correction for a base rate that moves over time."""
    rows = np.ones(len(y), dtype=bool) if months is None else months == np.max(months)
    return match_rate(margin[rows], ab, float(y[rows].mean()))


def _ordinals(months: np.ndarray) -> np.ndarray:
    return np.array([pd.Period(m, "M").ordinal for m in np.asarray(months).astype(str)])


def trend_rate(months: np.ndarray, y: np.ndarray, at: str | pd.Period | int) -> float | None:
    """The upgrade rate a trend in the monthly rates reaches in month ``at``.

    The monthly rates of ``months`` / ``y`` are fitted with a straight line in log-odds,
    weighted by rows, and read at ``at`` (a month, or its period ordinal). None with fewer
    than three months (no trend to read).
    """
    frame = pd.DataFrame({"m": _ordinals(months), "y": np.asarray(y, dtype=float)})
    by = frame.groupby("m")["y"].agg(["mean", "size"])
    if len(by) < 3:
        return None
    rate = by["mean"].clip(1e-4, 1 - 1e-4).to_numpy()
    line = np.polyfit(by.index.to_numpy(float), np.log(rate / (1 - rate)), 1,
                      w=np.sqrt(by["size"].to_numpy(float)))  # fmt: skip
    x = at if isinstance(at, (int, np.integer)) else pd.Period(at, "M").ordinal
    z = float(np.polyval(line, x))
    return 1.0 / (1.0 + np.exp(-z))


def prior_shifted(
    mode: bool | str,
    ab: tuple[float, float],
    margin: np.ndarray,
    y: np.ndarray,
    months: np.ndarray | None,
    history: tuple[np.ndarray, np.ndarray] | None,
    lead: int,
) -> tuple[float, float]:
    """A Platt map fitted on calibration rows (their ``margin``, labels ``y`` and as-of
    ``months``) after the ``prior_shift`` correction: none (False), the latest month's rate
    (True or ``"latest"``, :func:`shift_intercept`), or the rate the trend of every row
    learnt from (``history``: their months and labels) reaches ``lead`` months after the
    latest calibration month (``"trend"``, :func:`trend_rate`), matched on the calibration
    rows. Matching the rate over the rows, not the line's log-odds, keeps a population
    trend from being diluted across customers' different chances."""
    if mode is False or mode is None:
        return ab
    if mode != "trend":
        return shift_intercept(margin, y, ab, months)
    if months is None or history is None:
        return ab
    rate = trend_rate(history[0], history[1], int(_ordinals(months).max()) + lead)
    return ab if rate is None else match_rate(margin, ab, rate)


def check_choices(monotone: dict[str, int] | None, candidates: Any, features: list[str]) -> None:
    """Refuse monotone constraints on features the model does not use (or with a
    direction other than 1 or -1) and unknown candidate kinds, naming the setting.

    Raises
    ------
    ConfigError
    """
    from segments.exceptions import ConfigError, Violation

    bad = [
        Violation(
            f"upgrade.model.monotone.{k}",
            f"is {v!r}; expected 1 (never lowers) or -1 (never raises)"
            if k in features
            else "is not a feature of the model",
        )
        for k, v in (monotone or {}).items()
        if k not in features or v not in (1, -1)
    ]
    unknown = [c for c in candidates if c not in CANDIDATES]
    if unknown or not len(candidates):
        bad.append(
            Violation(
                "upgrade.model.candidates",
                f"is {list(candidates)!r}; expected some of {list(CANDIDATES)}",
            )
        )
    if bad:
        raise ConfigError(bad)


def carry_map(ab: tuple[float, float], old: np.ndarray, new: np.ndarray) -> tuple[float, float]:
    """A Platt map fitted on one model's margins (``old``, on the calibration rows) carried
    to a refitted model (``new``, its margins on the same rows): the slope kept, the
    intercept moved so both give the same mean probability there. The refitted model has
    seen those rows, so its margins already hold part of their base rate; reusing the
    intercept as it is would count that part twice."""
    from scipy.optimize import brentq

    a, b = ab
    target = float(np.mean(1.0 / (1.0 + np.exp(-(a * old + b)))))
    z = a * new

    def gap(c: float) -> float:
        return float(np.mean(1.0 / (1.0 + np.exp(-(z + c))))) - target

    return a, float(brentq(gap, b - 20.0, b + 20.0))


def fit_candidates(
    model: Any, frame: pd.DataFrame, y: np.ndarray, Xv: pd.DataFrame, yv: np.ndarray
) -> tuple[list[Candidate], dict[str, Any]]:
    """Every candidate of an :class:`~segments.core.upgrade.model.UpgradeModel` (its
    parameters, ``features_`` set) fitted on the training rows and scored on the
    validation rows, and the fitted models by candidate name."""
    from segments.core.upgrade.splines import SplineLogistic

    fitted: dict[str, Any] = {}
    out: list[Candidate] = []
    kinds = set(model.candidates)
    valid = (Xv[model.features_], yv)
    trees = kinds & {"gbm", "blend"} or (set() if "spline" in kinds else {"gbm"})
    if trees:
        seed = model.random_state if isinstance(model.random_state, int) else 0
        for i, params in enumerate(gbm_trials(model._gbm_params(), model.search, seed)):
            name = "gbm" if i == 0 else f"gbm_search_{i}"
            start = time.perf_counter()
            trees_fit, n = model._fit_gbm(params, frame, y, valid)
            margin = trees_fit.predict(valid[0], raw_score=True, num_iteration=n)
            ll, auc, ab = platt_log_loss(margin, yv)
            fitted[name] = (trees_fit, n)
            took = time.perf_counter() - start
            out.append(Candidate(name, "gbm", params, n, ll, auc, ab, margin, took))
    splines = kinds & {"spline", "blend"} and not model.monotone
    if splines:
        start = time.perf_counter()
        spline = SplineLogistic(model.features_, C=model.spline_C).fit(frame, y)
        margin = spline.decision_function(Xv)
        took = time.perf_counter() - start
        ll, auc, ab = platt_log_loss(margin, yv)
        fitted["spline"] = spline
        if "spline" in kinds:
            out.append(Candidate("spline", "spline", {"C": model.spline_C}, 0, ll, auc, ab, margin))
        if "blend" in kinds and out:
            best = choose([c for c in out if c.kind == "gbm"])
            for w in BLEND_WEIGHTS:
                m = w * best.margin + (1 - w) * margin
                ll, auc, ab = platt_log_loss(m, yv)
                params = {**best.params, "C": model.spline_C, "weight": w, "trees_of": best.name}
                out.append(Candidate(f"blend_{w:g}", "blend", params, best.trees, ll, auc, ab, m))
    return out, fitted
