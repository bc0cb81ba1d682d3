"""Configuration: packaged defaults, experiment overrides, every problem reported."""

from __future__ import annotations

import pytest

from segments import ConfigError, load_config


def test_defaults():
    cfg = load_config()
    assert cfg.name == "default"
    assert cfg.tiers.ladder == "cmb"
    assert cfg.panel.gaps == "warn"


def test_experiment_overrides_only_what_it_changes(tmp_path):
    path = tmp_path / "near_gold.yaml"
    path.write_text("panel:\n  column_map: {cust_no: customer_id}\ntiers:\n  ladder: ccb\n")
    cfg = load_config(path)
    assert cfg.name == "near_gold"
    assert cfg.tiers.ladder == "ccb"
    assert cfg.panel.column_map == {"cust_no": "customer_id"}
    assert cfg.panel.gaps == "warn"  # untouched default


def test_every_problem_reported_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("panel:\n  gaps: sometimes\n  colour: red\nfeaturez: {}\ntiers:\n  lader: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    columns = {v.column for v in info.value.violations}
    assert columns == {"panel.gaps", "panel.colour", "featurez", "tiers.lader"}
    assert "bad.yaml" in str(info.value)


def test_invalid_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("panel: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
