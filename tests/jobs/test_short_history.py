"""A bank with a short history: the feature windows are what the config says, windows longer
than the history are not built (and the run says so), and the models train, promote and
score from the config alone, without false drift alarms."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from segments.core.features.registry import not_built
from segments.exceptions import SegmentsWarning
from segments.jobs.score import load_scorer, score_local
from tests.banks import LENIENT, promoted_bank

pytestmark = pytest.mark.slow


def _trained(tmp_path, monkeypatch, name, months, config):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SegmentsWarning)
        bank = promoted_bank(tmp_path, name, 2_000, months, seed=3, config={**LENIENT, **config})
    notes = [str(w.message) for w in caught if issubclass(w.category, SegmentsWarning)]
    return bank, notes


def _scored(bank, tmp_path):
    as_of = str(bank["panel"]["month"].max())
    return score_local(bank["panel_path"], as_of, tmp_path / "out", load_scorer(bank["cfg"]))


def test_six_months_and_short_windows_train_and_score_without_listing_months(tmp_path, monkeypatch):
    """Windows [2, 3] on 6 months: no 6-month feature is added behind the config's back
    (the model's signature stays inside the contract scoring checks), and the as-of
    months are found without being listed."""
    config = {
        "features": {"windows": [2, 3]},
        "upgrade": {"horizon": 1, "test_months": 1, "valid_months": 1},
    }
    bank, notes = _trained(tmp_path, monkeypatch, "short", 6, config)
    lost = not_built((2, 3))
    # the 6-month features, and the 12-month count of months past due
    assert lost and all(name.endswith(("_6m", "_12m")) for name in lost)
    for model in (bank["upgrade"].model, bank["groups"].model):
        assert not set(model.features_) & set(lost)
        assert not any(f.endswith(("_6m", "_12m")) for f in model.features_)
    assert any(", ".join(lost) in n and "not built" in n for n in notes), notes
    assert bank["upgrade"].split == {
        "train": ["2024-03"],
        "valid": ["2024-04"],
        "test": ["2024-05"],
        "refit": ["2024-03", "2024-04"],  # the months whose labels end by the test month
        "deploy": ["2024-03", "2024-04", "2024-05"],  # every labelled month
    }
    res = _scored(bank, tmp_path)
    assert res.manifest["rows"] == (bank["panel"]["month"] == pd.Period("2024-06", "M")).sum()


def test_a_window_longer_than_the_history_is_not_built_and_raises_no_drift(tmp_path, monkeypatch):
    """The default windows (3, 6, 12) on 10 months: the 12-month features would be empty
    (growth) or mean fewer months than their names say; they are left out of both models
    and of the drift reference, so scoring reports no drift on them (it reported PSI 18)."""
    config = {"upgrade": {"horizon": 1, "min_history": 3}}
    bank, notes = _trained(tmp_path, monkeypatch, "ten", 10, config)
    assert any("have a window longer than the" in n and "aum_avg_12m" in n for n in notes), notes
    assert bank["upgrade"].data.attrs["not_built"][:1] == ["aum_avg_12m"]
    for model in (bank["upgrade"].model, bank["groups"].model):
        assert not any(f.endswith("_12m") for f in model.features_)
        assert any(f.endswith("_6m") for f in model.features_)
    res = _scored(bank, tmp_path)
    drift = res.drift
    assert not drift["column"].astype(str).str.endswith("_12m").any()
    assert drift["psi"].max() < 0.25, drift.sort_values("psi").tail()
