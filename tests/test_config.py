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


def test_registry_section_names_and_thresholds(tmp_path):
    cfg = load_config(overrides={"name": "bank_a"})
    assert cfg.registry.model_name("upgrade", cfg.name) == "bank_a-upgrade"
    assert cfg.registry.promotion["upgrade"]["min_auc_gain_over_rule"] == 0.0
    cfg = load_config(
        overrides={
            "registry": {"groups_model": "cmb-groups", "promotion": {"upgrade": {"min_auc": 0.75}}}
        }
    )
    assert cfg.registry.model_name("groups", "x") == "cmb-groups"
    assert cfg.registry.promotion["upgrade"] == {
        "min_auc": 0.75,
        "min_auc_gain_over_rule": 0.0,
        "max_ece": 0.1,
    }  # the rest keep defaults
    with pytest.raises(ConfigError) as info:
        load_config(
            overrides={
                "registry": {
                    "register": "yes",
                    "promotion": {"upgrade": {"min_auk": 0.7, "max_ece": "low"}, "churn": {}},
                }
            }
        )
    columns = {v.column for v in info.value.violations}
    assert columns == {
        "registry.register",
        "registry.promotion.upgrade.min_auk",
        "registry.promotion.upgrade.max_ece",
        "registry.promotion.churn",
    }
