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


@pytest.mark.parametrize(
    ("section", "key", "value", "allowed"),
    [
        ("groups", "algorithm", "dbscan", "'kmeans'"),
        ("groups", "winsor", 3, "[0.0, 0.5)"),
        ("upgrade.model", "learning_rate", "fast", "(0.0, inf)"),
        ("upgrade.model", "num_leaves", 200, "[2, 65]"),
    ],
)
def test_estimator_parameters_checked_on_load(tmp_path, section, key, value, allowed):
    path = tmp_path / "bad.yaml"
    if section == "groups":
        path.write_text(f"groups:\n  {key}: {value!r}\n".replace("'", ""))
    else:
        path.write_text(f"upgrade:\n  model:\n    {key}: {value!r}\n".replace("'", ""))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [v] = info.value.violations
    assert v.column == f"{section}.{key}"  # the YAML key
    assert repr(value) in v.problem and allowed in v.problem  # the value, what is allowed


def test_model_parameter_at_the_top_of_upgrade_is_named():
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"upgrade": {"learning_rate": "fast"}})
    [v] = info.value.violations
    assert v.column == "upgrade.learning_rate"
    assert "under upgrade.model" in v.problem and "'fast'" in v.problem


def test_group_defaults_are_the_estimators():
    from segments import StrategicGroups

    cfg = load_config()
    est = StrategicGroups()
    params = cfg.groups.estimator_params()
    for key, value in est.get_params().items():
        expected = 0 if key == "random_state" else value  # the configuration's own default
        assert params[key] == expected, key
    assert (cfg.groups.k_min, cfg.groups.k_max) == est.k_range
    assert cfg.raw["groups"]["n_init"] == est.n_init  # logged, though not in default.yaml
    cfg = load_config(overrides={"groups": {"k_max": 6, "n_init": 4}})
    assert cfg.groups.estimator_params()["k_range"] == (3, 6)
    assert cfg.groups.n_init == 4
    with pytest.raises(ConfigError, match=r"groups\.k_min"):
        load_config(overrides={"groups": {"k_min": 7, "k_max": 6}})


def test_paths_in_an_experiment_yaml_are_relative_to_its_folder(tmp_path, monkeypatch):
    import shutil
    from importlib import resources

    import yaml

    from segments import load_ladder

    bank = tmp_path / "bank"
    (bank / "ladders").mkdir(parents=True)
    cmb = resources.files("segments") / "presets" / "ladders" / "cmb.yaml"
    ladder = yaml.safe_load(cmb.read_text(encoding="utf-8"))
    ladder["name"] = "ours"
    (bank / "ladders" / "ours.yaml").write_text(yaml.safe_dump(ladder))
    shutil.copy(bank / "ladders" / "ours.yaml", bank / "beside.yaml")
    (bank / "names.yaml").write_text("{}\n")
    exp = bank / "exp.yaml"
    exp.write_text(
        "tiers:\n  ladder: ladders/ours.yaml\n  hysteresis: ccb\n"
        "groups:\n  names_file: names.yaml\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the command runs from another folder
    cfg = load_config(exp)
    assert cfg.tiers.ladder == str(bank / "ladders" / "ours.yaml")
    assert load_ladder(cfg.tiers.ladder).name == "ours"
    assert cfg.groups.names_file == str(bank / "names.yaml")
    assert cfg.tiers.hysteresis == "ccb"  # a preset's name stays a name
    # A bare file name is the YAML's neighbour too; an absolute path is kept.
    exp.write_text("tiers:\n  ladder: beside.yaml\n")
    assert load_config(exp).tiers.ladder == str(bank / "beside.yaml")
    exp.write_text(f"tiers:\n  ladder: {bank / 'beside.yaml'}\n")
    assert load_config(exp).tiers.ladder == str(bank / "beside.yaml")
    # Overrides (command-line options) stay relative to where the command runs.
    (elsewhere / "cli.yaml").write_text(yaml.safe_dump(ladder))
    assert load_config(exp, {"tiers": {"ladder": "cli.yaml"}}).tiers.ladder == "cli.yaml"
    # A missing file is named where it was looked for.
    exp.write_text("tiers:\n  ladder: missing.yaml\n")
    with pytest.raises(ConfigError, match=str(bank / "missing.yaml")):
        load_config(exp)


def test_a_relative_config_path_logs_absolute_file_paths(tmp_path, monkeypatch):
    """The config a run logs must load again from anywhere (promotion reads it back from
    a temporary folder): the resolved paths are absolute even for a relative YAML path."""
    import shutil
    from importlib import resources

    (tmp_path / "bank" / "ladders").mkdir(parents=True)
    cmb = resources.files("segments") / "presets" / "ladders" / "cmb.yaml"
    shutil.copy(str(cmb), tmp_path / "bank" / "ladders" / "mine.yaml")
    (tmp_path / "bank" / "exp.yaml").write_text("tiers:\n  ladder: ladders/mine.yaml\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config("bank/exp.yaml")
    assert cfg.tiers.ladder == str(tmp_path.resolve() / "bank" / "ladders" / "mine.yaml")
    logged = tmp_path / "elsewhere" / "config.yaml"
    logged.parent.mkdir()
    import yaml

    logged.write_text(yaml.safe_dump(cfg.raw))
    assert load_config(logged).tiers.ladder == cfg.tiers.ladder
