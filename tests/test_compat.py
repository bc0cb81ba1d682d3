"""Models logged by segments 0.1 pickled their estimators under the old module names."""

import pickle
import warnings

import numpy as np
import pandas as pd

from segments.compat import MOVED
from segments.core.upgrade.model import RuleOfThumb


def test_a_pickle_naming_an_old_module_loads_as_the_same_class():
    X = pd.DataFrame({"gap_ratio": np.linspace(0, 1, 40)})
    y = (X["gap_ratio"] > 0.5).astype(int)
    model = RuleOfThumb().fit(X, y)
    home = RuleOfThumb.__module__
    RuleOfThumb.__module__ = "segments.upgrade"  # as segments 0.1 wrote it
    try:
        blob = pickle.dumps(model)
    finally:
        RuleOfThumb.__module__ = home
    assert b"segments.upgrade" in blob and home.encode() not in blob
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = pickle.loads(blob)
    assert type(loaded) is RuleOfThumb
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_every_old_name_imports_its_new_module():
    import importlib

    for old, new in MOVED.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            assert importlib.import_module(old) is importlib.import_module(new), old
