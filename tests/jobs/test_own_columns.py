"""A bank's own panel columns as features, through the jobs: they reach the upgrade model,
its reason codes, the groups, the training run's record and the drift report; a bank with
six months trains, promotes and scores on them from its YAML alone (spawned workers
register them); scoring a model with them under a config that does not declare them is
refused before any work; and no job leaves them registered."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from segments import load_config, make_bank, train_upgrade, validate_panel
from segments.cli import app
from segments.core.features import FEATURE_CATALOGUE, declarations

pytestmark = pytest.mark.slow
runner = CliRunner()

CARD = {
    "column": "card_bal",
    "kind": "numeric",
    "unit": "money",
    "aggregations": ["last", "mean", "max", "trend", "share_above"],
    "above": 0,
    "en": "credit card balance",
    "zh": "信用卡余额",
}
GRADE = {
    "column": "risk_grade",
    "kind": "ordinal",
    "order": ["A", "B", "C", "D"],
    "aggregations": ["last", "worst", "months_in"],
    "state": "D",
    "en": "internal risk grade",
    "zh": "内部风险等级",
}


def _with_own_columns(raw: pd.DataFrame, ahead: int, seed: int) -> pd.DataFrame:
    """The bank's panel with two own columns: ``card_bal``, a noisy copy of the AUM
    ``ahead`` months later (a signal the contract's columns do not carry), and
    ``risk_grade``, noise."""
    raw = raw.sort_values(["customer_id", "month"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    future = raw.groupby("customer_id")["aum"].shift(-ahead).fillna(raw["aum"])
    raw["card_bal"] = (future * rng.lognormal(0.0, 0.05, len(raw))).round(2)
    raw["risk_grade"] = rng.choice(list("ABCD"), len(raw), p=[0.4, 0.3, 0.2, 0.1])
    return raw


def _catalogue_now() -> tuple[dict, int]:
    return dict(FEATURE_CATALOGUE), len(declarations())


def test_declared_features_reach_the_model_and_its_reasons(tmp_path):
    """train_upgrade on a panel validated before the columns were declared: the own
    features are built, fitted on (the signal they carry shows in the importance), and
    explained in both languages; the catalogue is as it was afterwards."""
    before = _catalogue_now()
    raw, _ = make_bank(2_000, 10, seed=7)
    panel = validate_panel(_with_own_columns(raw, ahead=2, seed=1))
    exp = tmp_path / "own.yaml"
    exp.write_text(
        yaml.safe_dump(
            {
                "features": {"windows": [2, 3], "columns": [CARD, GRADE]},
                "upgrade": {"horizon": 2, "test_months": 1, "valid_months": 1},
            }
        ),
        encoding="utf-8",
    )
    result = train_upgrade(panel, load_config(exp))
    own = [f for f in result.model.features_ if f.startswith(("card_bal_", "risk_grade_"))]
    assert {"card_bal_last", "card_bal_mean_3m", "card_bal_share_above_2m"} <= set(own)
    assert {"risk_grade_last", "risk_grade_worst_3m", "risk_grade_months_in_D_3m"} <= set(own)
    assert result.importance[own].sum() > 0
    top = result.shap_importance.index[:3]
    assert any(f.startswith("card_bal_") for f in top), list(top)
    first = result.test[result.test["reason_1_feature"].astype(str).str.startswith("card_bal_")]
    assert len(first) > 0
    assert first["reason_1_text"].str.startswith("Credit card balance, ").all()
    assert first["reason_1_text_zh"].str.startswith("信用卡余额(").all()
    assert _catalogue_now() == before


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    """A 2,000-customer bank with six months and two own columns, trained and promoted
    from a YAML alone through the command line; local jobs run in two spawned workers."""
    root = tmp_path_factory.mktemp("own")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    before = _catalogue_now()
    raw, _ = make_bank(2_000, 6, seed=3)
    raw = _with_own_columns(raw, ahead=1, seed=2)
    panel = root / "cards.parquet"
    raw.to_parquet(panel, index=False)
    config = {
        "features": {"windows": [2, 3], "columns": [CARD, GRADE]},
        "groups": {
            "n_bootstrap": 2,
            "k_max": 6,
            "features": ["aum_avg_3m", "n_products", "card_bal_mean_3m", "risk_grade_worst_3m"],
        },
        "upgrade": {"horizon": 1, "test_months": 1, "valid_months": 1},
        "registry": {"promotion": {"upgrade": {"min_auc": 0.5, "min_auc_gain_over_rule": -1.0}}},
        "scoring": {"workers": 2, "batch_customers": 1_000},
    }
    yml = root / "cards.yaml"
    yml.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    commands = [
        ["train", "upgrade", "--panel", str(panel), "--config", str(yml)],
        ["train", "groups", "--panel", str(panel), "--config", str(yml)],
        ["promote", "cards-upgrade", "--version", "1", "--config", str(yml), "--reason", "first"],
        ["promote", "cards-groups", "--version", "1", "--config", str(yml), "--reason", "first"],
        ["score", "--panel", str(panel), "--out", str(root / "scores"), "--config", str(yml)],
    ]
    results = [runner.invoke(app, c) for c in commands]
    yield {"root": root, "panel": panel, "config": config, "raw": raw, "results": results,
           "catalogue": before}  # fmt: skip
    mp.undo()


def _score(cards, out: str, config: dict, panel=None):
    yml = cards["root"] / f"{out}.yaml"
    yml.write_text(yaml.safe_dump({"name": "cards", **config}), encoding="utf-8")
    panel = panel or cards["panel"]
    args = ["score", "--panel", str(panel), "--out", str(cards["root"] / out), "--config", str(yml)]
    return runner.invoke(app, args)


def test_six_months_with_own_columns_train_promote_and_score_from_the_yaml(cards):
    """Every command exits 0; the scores carry the own features' reasons in both
    languages; the drift report checks them; the training run records the declarations."""
    for r in cards["results"]:
        assert r.exit_code == 0, r.output + r.stderr
    out = pd.read_parquet(cards["root"] / "scores")
    assert len(out) == cards["raw"]["month"].astype(str).str.startswith("2024-06").sum()
    reasons = out.filter(like="_feature").stack().astype(str)
    assert reasons.str.startswith("card_bal_").any()
    texts = out.filter(regex=r"reason_\d_text$").stack().astype(str)
    assert texts.str.contains("Credit card balance, ").any()
    assert out.filter(like="_text_zh").stack().astype(str).str.contains("信用卡余额").any()
    drift = pd.read_csv(cards["root"] / "scores" / "_drift.csv")
    checked = set(drift["column"])
    assert {"card_bal_last", "card_bal_mean_3m", "risk_grade_worst_3m"} <= checked
    assert "risk_grade_last" in checked  # a category: PSI over its states
    import mlflow

    client = mlflow.MlflowClient()
    version = client.get_model_version("cards-upgrade", "1")
    run = client.get_run(version.run_id)
    assert run.data.params["features.columns"].startswith(
        "card_bal numeric money: last, mean, max, trend, share_above (above=0.0); "
        "risk_grade ordinal category: last, worst, months_in (order=A,B,C,D state=D)"
    )
    logged = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/own_columns.json"))
    assert [c["column"] for c in logged["columns"]] == ["card_bal", "risk_grade"]
    groups_run = client.get_run(client.get_model_version("cards-groups", "1").run_id)
    card = mlflow.artifacts.load_text(f"runs:/{groups_run.info.run_id}/model_card.md")
    assert "credit card balance, average over the last 3 months" in card
    assert _catalogue_now() == cards["catalogue"]  # no job left them registered


def test_scoring_without_the_declaration_is_refused_before_any_work(cards):
    """The same models under a config that does not declare the columns: a named error
    that says to declare them, and no output."""
    config = {k: v for k, v in cards["config"].items() if k != "features"}
    result = _score(cards, "undeclared", {**config, "features": {"windows": [2, 3]}})
    assert result.exit_code == 1
    err = result.stderr
    assert "not in the current feature contract" in err and "card_bal_" in err
    assert "must be declared in features.columns" in err
    assert not (cards["root"] / "undeclared").exists()


def test_another_definition_of_a_column_is_refused(cards):
    """share_above over another value gives the same names but other numbers: refused."""
    changed = {**CARD, "above": 500}
    config = {**cards["config"], "features": {"windows": [2, 3], "columns": [changed, GRADE]}}
    result = _score(cards, "changed", config)
    assert result.exit_code == 1
    assert "trained with the own column 'card_bal' declared as" in result.stderr
    assert not (cards["root"] / "changed").exists()


def test_a_panel_without_a_declared_column_is_refused_before_any_work(cards):
    panel = cards["root"] / "no_grade.parquet"
    cards["raw"].drop(columns="risk_grade").to_parquet(panel, index=False)
    result = _score(cards, "no_grade", cards["config"], panel=panel)
    assert result.exit_code == 1
    assert "`risk_grade`: is declared in features.columns but the input has no such" in (
        result.stderr
    )
    assert not (cards["root"] / "no_grade").exists()
