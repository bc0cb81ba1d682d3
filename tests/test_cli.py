"""The command line end to end: synth -> validate -> tiers, exit codes, nothing partial."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from segments.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bank")
    result = runner.invoke(
        app, ["synth", "--customers", "1500", "--months", "12", "--seed", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_synth_writes_the_contract_files(bank_dir):
    panel = pd.read_parquet(bank_dir / "panel.parquet")
    truth = pd.read_parquet(bank_dir / "truth.parquet")
    assert panel["customer_id"].nunique() == len(truth) == 1500
    assert {"customer_id", "persona", "upgrade_propensity"} <= set(truth.columns)


def test_validate_prints_summary(bank_dir):
    result = runner.invoke(app, ["validate", str(bank_dir / "panel.parquet")])
    assert result.exit_code == 0, result.output
    assert "1,500 customers, 12 months (2024-01 .. 2024-12)" in result.output
    assert "AUM (CNY)" in result.output


def test_validate_lists_every_violation_and_exits_1(tmp_path):
    raw = pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C2", "C3"],
            "month": ["2024-01", "2024-01", "2024-13", "2024-01"],
            "aum": ["5", "6", "7", "-1"],
        }
    )
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    err = result.stderr
    assert "has 3 problems" in err
    assert "column `month`: has values that are not calendar months" in err
    assert "column `aum`: has negative values" in err and "C3" in err
    assert "duplicate (customer, month) rows (2 rows; e.g. customers C1)" in err
    assert "Traceback" not in err


def test_tiers_prints_tables_and_writes_table(bank_dir, tmp_path):
    out = tmp_path / "tiers.parquet"
    result = runner.invoke(app, ["tiers", str(bank_dir / "panel.parquet"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for text in (
        "Tiers in 2024-12 (ladder cmb)",
        "near_gold",
        "Migration 2024-11 -> 2024-12",
        "Upgrades and downgrades by month",
    ):
        assert text in result.output
    table = pd.read_parquet(out)
    panel = pd.read_parquet(bank_dir / "panel.parquet")
    assert len(table) == len(panel)
    assert {
        "tier",
        "tier_rank",
        "next_tier",
        "gap_to_next",
        "gap_ratio",
        "near_tier",
        "near_band",
        "tier_status",
    } <= set(table.columns)


def test_tiers_with_ccb_ladder_and_month(bank_dir):
    result = runner.invoke(
        app, ["tiers", str(bank_dir / "panel.parquet"), "--ladder", "ccb", "--month", "2024-06"]
    )
    assert result.exit_code == 0, result.output
    assert "Tiers in 2024-06 (ladder ccb)" in result.output
    assert "tier status: active" in result.output


def test_tiers_on_points_ladders_print_points_and_write_the_components(bank_dir, tmp_path):
    out = tmp_path / "stars.parquet"
    args = ["tiers", str(bank_dir / "panel.parquet"), "--ladder", "stars7", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for text in ("Tiers in 2024-12 (ladder stars7)", "min points", "Mean points by component"):
        assert text in result.output
    table = pd.read_parquet(out)
    assert set(table["basis_unit"]) == {"points"}
    assert {"points_assets", "points_products", "points_tenure"} <= set(table.columns)
    # member growth: a 12-month expiry on a 12-month panel, with hysteresis.
    result = runner.invoke(
        app, ["tiers", str(bank_dir / "panel.parquet"), "--ladder", "member_growth"]
    )
    assert result.exit_code == 0, result.output
    assert "tier status: active" in result.output


def test_a_ladder_longer_than_the_panel_or_a_basis_window_on_points_is_named(bank_dir, tmp_path):
    ladder = tmp_path / "long.yaml"
    ladder.write_text(
        "name: long\nkind: growth\nexpiry_months: 24\n"
        "activities: [{name: logins, column: app_logins, points: 1}]\n"
        "tiers: [{name: a, min_points: 0}, {name: b, min_points: 100}]\n"
    )
    out = tmp_path / "t.parquet"
    args = ["tiers", str(bank_dir / "panel.parquet"), "--ladder", str(ladder), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "ladder.expiry_months" in result.stderr and "the panel holds 12" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    result = runner.invoke(
        app,
        ["tiers", str(bank_dir / "panel.parquet"), "--ladder", "stars7", "--basis-window", "3"],
    )
    assert result.exit_code == 1 and "applies to AUM ladders" in result.stderr


def test_ladders_lists_and_shows_the_points_presets():
    result = runner.invoke(app, ["ladders"])
    assert result.exit_code == 0, result.output
    assert "stars7" in result.output and "member_growth" in result.output
    result = runner.invoke(app, ["ladders", "member_growth"])
    assert "points expire after 12 months" in result.output
    assert "logins: 1 point per 1 of app_logins, at most 30 a month" in result.output


def test_bad_input_writes_nothing(tmp_path):
    raw = pd.DataFrame({"customer_id": ["C1"], "month": ["2024-01"], "aum": [-3.0]})
    raw.to_csv(tmp_path / "p.csv", index=False)
    out = tmp_path / "tiers.parquet"
    result = runner.invoke(app, ["tiers", str(tmp_path / "p.csv"), "--out", str(out)])
    assert result.exit_code == 1
    assert "negative" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


def test_bad_config_and_ladder_exit_1(bank_dir, tmp_path):
    result = runner.invoke(app, ["tiers", str(bank_dir / "panel.parquet"), "--ladder", "nope"])
    assert result.exit_code == 1
    assert "packaged: bos, ccb, cmb, member_growth, spdb, stars7" in result.stderr
    cfg = tmp_path / "x.yaml"
    cfg.write_text("panel: {column_map: {cust: customer_id}}\n")
    result = runner.invoke(app, ["validate", str(bank_dir / "panel.parquet"), "--config", str(cfg)])
    assert result.exit_code == 1
    assert "column `cust`" in result.stderr


def test_missing_file_and_usage_errors(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "none.parquet")])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    result = runner.invoke(app, ["validate", str(tmp_path / "x.txt")])
    assert result.exit_code == 1 and "unknown format" in result.stderr
    assert runner.invoke(app, ["synth", "--customers", "0"]).exit_code == 2
    assert runner.invoke(app, ["frobnicate"]).exit_code == 2


def test_python_dash_m_and_console_script(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "segments", "ladders", "ccb"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "card_spend over 12m" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "segments", "validate", str(tmp_path / "none.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: file")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_panel_from_transactions_replaces_only_its_own_csv_and_says_what_end_leaves_out(
    tmp_path,
):
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,date,amount\nA,2024-01-03,5\nA,2024-03-09,12\nB,2024-02-01,7\n")
    out = tmp_path / "panel.csv"
    build = ["panel", "from-transactions", str(tx), "--out", str(out)]
    assert runner.invoke(app, build).exit_code == 0
    first = out.read_text()
    assert first.splitlines()[0] == "customer_id,month,aum,txn_count"
    res = runner.invoke(app, [*build, "--end", "2024-02", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert "1 transaction(s) after 2024-02" in res.stderr and "customers A" in res.stderr
    assert out.read_text() != first and "2024-03" not in out.read_text()
    foreign = tmp_path / "theirs.csv"
    foreign.write_text("x,y\n1,2\n")
    res = runner.invoke(
        app, ["panel", "from-transactions", str(tx), "--out", str(foreign), "--overwrite"]
    )
    assert res.exit_code == 1 and "not a panel segments wrote" in res.output
    assert foreign.read_text() == "x,y\n1,2\n"
