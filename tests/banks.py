"""A synthetic bank with trained, registered and promoted models, for the scoring tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from segments import (
    load_config,
    log_groups,
    log_upgrade,
    read_panel,
    train_groups,
    train_upgrade,
    validate_panel,
)
from segments.core.data.synthetic import write_bank
from segments.mlops.promotion import promote

#: One LightGBM, no search over candidates: for the tests of what happens around a model
#: (registry, scoring, lineage, safety), not of how good it is (tests/core/test_upgrade*.py,
#: tests/jobs/test_train.py and tests/test_cdnow.py train with the defaults).
QUICK_MODEL = {"search": 0, "candidates": ["gbm"], "min_child_samples": 10}

#: Small banks do not always beat the rule of thumb: the tests' thresholds say so openly.
LENIENT = {
    "groups": {"n_bootstrap": 2, "k_max": 8},
    "upgrade": {"model": QUICK_MODEL},
    "registry": {"promotion": {"upgrade": {"min_auc": 0.5, "min_auc_gain_over_rule": -1.0}}},
}


def promoted_bank(
    root: Path,
    name: str,
    customers: int,
    months: int,
    seed: int,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a bank under ``root``, train both models on the experiment ``name`` and make
    them champions in the current tracking store (the caller sets MLFLOW_TRACKING_URI)."""
    paths = write_bank(root / "bank", customers, months, seed=seed)
    panel = validate_panel(read_panel(paths["panel"]))
    exp = root / f"{name}.yaml"
    exp.write_text(yaml.safe_dump(config or LENIENT))
    cfg = load_config(exp)
    up = log_upgrade(train_upgrade(panel, cfg), panel)
    gr = log_groups(train_groups(panel, cfg), panel)
    promote(up.registered_model, up.model_version, config=cfg)
    promote(gr.registered_model, gr.model_version, config=cfg)
    return {
        "root": root,
        "panel_path": paths["panel"],
        "panel": panel,
        "config": exp,
        "cfg": cfg,
        "upgrade": up,
        "groups": gr,
    }


@contextmanager
def tracked_folder(tmp_path_factory: Any, name: str, **env: str) -> Iterator[tuple[Path, Any]]:
    """A fresh folder, the working directory while it is open, with its own SQLite
    tracking store (MLFLOW_TRACKING_URI) and any other environment variables given;
    yields the folder and the MonkeyPatch (undone on exit)."""
    root = tmp_path_factory.mktemp(name)
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    for key, value in env.items():
        mp.setenv(key, value)
    try:
        yield root, mp
    finally:
        mp.undo()


def logged_runs(name: str, customers: int, seed: int) -> dict[str, Any]:
    """A synthetic bank of ``customers`` x 18 months, a groups and an upgrade training of
    it logged (and registered) to the current tracking store in the experiment ``name``,
    with the quick model: the panel, the config and both results."""
    from segments import make_bank

    panel = validate_panel(make_bank(customers, 18, seed=seed)[0])
    cfg = load_config(
        overrides={"name": name, "groups": {"n_bootstrap": 2}, "upgrade": {"model": QUICK_MODEL}}
    )
    groups = log_groups(train_groups(panel, cfg), panel)
    upgrade = log_upgrade(train_upgrade(panel, cfg), panel)
    return {"panel": panel, "cfg": cfg, "groups": groups, "upgrade": upgrade}
