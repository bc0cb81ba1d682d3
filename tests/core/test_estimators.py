"""Every estimator of the package passes scikit-learn's own estimator checks.

The instances are configured for the checks' tiny data sets (a few dozen rows): the
defaults are tuned for a bank's book (``min_child_samples=50``, 600 trees, 25 k-means
restarts), which on 30 rows would grow trees of one leaf or take minutes.
"""

from __future__ import annotations

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from segments.core.explain.reasons import GroupSurrogate
from segments.core.groups.model import StrategicGroups
from segments.core.upgrade.model import LogisticBaseline, RuleOfThumb, UpgradeModel
from segments.core.upgrade.splines import SplineLogistic
from segments.exceptions import SegmentsWarning

SMALL = {"n_estimators": 30, "min_child_samples": 2, "subsample": 1.0, "colsample_bytree": 1.0}
ESTIMATORS = [
    UpgradeModel(**SMALL),  # Platt-calibrated, as trained
    UpgradeModel(**SMALL, calibration=None),
    UpgradeModel(candidates=("spline",), calibration=None),  # the splines alone
    SplineLogistic(n_knots=3),
    RuleOfThumb(column=0),  # arrays have no gap_ratio column: score the first
    LogisticBaseline(),
    StrategicGroups(n_groups=3, n_init=2, n_bootstrap=0, random_state=0),
    GroupSurrogate(n_estimators=20),
]

#: Why a check is expected to fail, per estimator class (none today: every estimator takes
#: arrays as well as DataFrames, which it reads by column name).
EXPECTED_FAILURES: dict[str, dict[str, str]] = {}
#: Not a DataFrame matter, and by design: the class weights help the trees learn the rare
#: upgrades, and the Platt map afterwards restores honest probabilities, so extreme class
#: weights do not move the calibrated predictions. Checked uncalibrated (second instance).
PLATT = {
    "check_class_weight_classifiers": "Platt calibration undoes class weights on purpose",
}


def expected_failed_checks(estimator):
    failures = dict(EXPECTED_FAILURES.get(type(estimator).__name__, {}))
    if isinstance(estimator, UpgradeModel) and estimator.calibration == "platt":
        failures.update(PLATT)
    if isinstance(estimator, UpgradeModel) and tuple(estimator.candidates) == ("spline",):
        failures["check_class_weight_classifiers"] = (
            "class_weight is a parameter of the trees; the spline candidate is unweighted"
        )
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        # UpgradeModel without an eval_set calibrates on its training rows, and says so.
        warnings.simplefilter("ignore", SegmentsWarning)
        check(estimator)


def test_every_estimator_in_the_package_is_checked():
    """A new BaseEstimator subclass in src/segments must join ESTIMATORS above."""
    import importlib
    import pkgutil

    from sklearn.base import BaseEstimator

    import segments

    for info in pkgutil.walk_packages(segments.__path__, "segments."):
        if not info.name.startswith(("segments.cli", "segments.engines.spark")):
            importlib.import_module(info.name)
    found = set()
    stack = [BaseEstimator]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("segments."):
                found.add(sub)
    assert found == {type(e) for e in ESTIMATORS}
