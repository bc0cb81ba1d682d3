"""Jobs that can't destroy data: a corpus of bad inputs and careless invocations.

Every case runs through the command line and must end with exit 1, one message naming the
column, part or option at fault, no traceback, and the folder it ran in byte-identical to
before (nothing written, nothing deleted, no mode changed). Then the guarantees that need a
running job: one writer per output, SIGTERM leaves a KILLED run and a resumable job, a
resumed job with other settings starts again, buckets planned from row counts.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from segments.cli import app
from segments.core.data.panel import inspect_panel
from segments.engines.local import plan_buckets
from segments.jobs.score import load_scorer, read_output
from tests.banks import promoted_bank

pytestmark = pytest.mark.slow
AS_OF = "2025-06"
runner = CliRunner()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A 1,000-customer, 18-month bank with promoted models in a SQLite store."""
    root = tmp_path_factory.mktemp("safety")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mp.chdir(root)
    bank = promoted_bank(root, "safety", 1000, 18, seed=3)
    up, gr = bank["upgrade"], bank["groups"]
    yield {
        "root": root,
        "panel": bank["panel_path"],
        "raw": pd.read_parquet(bank["panel_path"]),
        "config": bank["config"],
        "cfg": bank["cfg"],
        "groups_uri": f"models:/{gr.registered_model}/{gr.model_version}",
        "upgrade_uri": f"models:/{up.registered_model}/{up.model_version}",
    }
    mp.undo()


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder below ``folder``: content digest and mode."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[str(p.relative_to(folder))] = (digest, st.st_mode)
    return out


@dataclass
class Case:
    """Build the inputs in a fresh folder; return the command's arguments."""

    build: Callable[[Path, dict], list[str]]
    expected: tuple[str, ...]


def _panel_copy(d: Path, c: dict, name: str = "panel.parquet", change=None) -> Path:
    df = c["raw"].copy()
    if change is not None:
        df = change(df)
    path = d / name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def _parts(
    d: Path, c: dict, second: Callable[[pd.DataFrame], pd.DataFrame], name: str = "parts"
) -> Path:
    folder = d / name
    folder.mkdir(parents=True)
    df = c["raw"]
    ids = df["customer_id"].unique()
    first, rest = df[df["customer_id"].isin(ids[:500])], df[~df["customer_id"].isin(ids[:500])]
    first.to_parquet(folder / "part-0.parquet", index=False)
    second(rest.copy()).to_parquet(folder / "part-1.parquet", index=False)
    return folder


def _score(c: dict, panel: Path | str, out: Path | str, *extra: str) -> list[str]:
    return [
        "score",
        "--panel",
        str(panel),
        "--out",
        str(out),
        "--config",
        str(c["config"]),
        "--no-track",
        *extra,
    ]


def _scoring_output(d: Path, c: dict, name: str = "old") -> Path:
    """A real scoring output of segments (a tiny bank), to overwrite."""
    out = d / name
    res = runner.invoke(app, _score(c, c["panel"], out, "--as-of", AS_OF))
    assert res.exit_code == 0, res.output
    return out


def _scored_with(config: bytes) -> Callable[[Path, dict], list[str]]:
    """A case that scores the bank with an experiment YAML of these bytes."""
    return lambda d, c: _score(
        c, c["panel"], d / "o", "--config", str(_write(d / "c.yaml", config))
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _tz_months(df: pd.DataFrame) -> pd.DataFrame:
    # Month starts in Shanghai stored as UTC instants: 2024-01-01 00:00+08 is 16:00 UTC on
    # 2023-12-31, a month early if read as UTC.
    local = pd.to_datetime(df["month"].astype(str)).dt.tz_localize("Asia/Shanghai")
    return df.assign(month=local.dt.tz_convert("UTC"))


def _tx(d: Path, amount: str = "12.5") -> Path:
    """A small transaction file (two customers, three dates)."""
    text = f"customer_id,date,amount\nA,2024-01-03,5\nA,2024-03-09,{amount}\nB,2024-02-01,7\n"
    return _write(d / "tx.csv", text.encode())


def _from_tx(d: Path, *extra: str, amount: str = "12.5") -> list[str]:
    return ["panel", "from-transactions", str(_tx(d, amount)), *extra]


CASES: dict[str, Case] = {
    # --- data loss: outputs on, in or around an input -------------------------------------
    "panel_from_transactions_out_onto_input": Case(
        lambda d, c: _from_tx(d, "--out", str(d / "tx.csv"), "--overwrite"),
        ("--out", "is the input"),
    ),
    "panel_from_transactions_wrong_column": Case(
        lambda d, c: _from_tx(d, "--out", str(d / "p.parquet"), "--amount", "usd"),
        ("`usd`", "is not a column of the transactions", "--amount"),
    ),
    "panel_from_transactions_amount_not_a_number": Case(
        lambda d, c: _from_tx(d, "--out", str(d / "p.parquet"), amount="12.5 CNY"),
        ("`amount`", "not numbers", "1 row", "customers A"),
    ),
    "panel_from_transactions_empty": Case(
        lambda d, c: [
            "panel",
            "from-transactions",
            str(_write(d / "tx.csv", b"customer_id,date,amount\n")),
            "--out",
            str(d / "p.parquet"),
        ],
        ("`date`", "no transactions"),
    ),
    "panel_from_transactions_sentinel_date": Case(
        lambda d, c: [
            "panel",
            "from-transactions",
            str(_write(d / "tx.csv", b"customer_id,date,amount\nA,2024-01-03,5\nB,2099-12-31,1\n")),
            "--out",
            str(d / "p.parquet"),
        ],
        ("`date`", "dates after", "customers B", "--end"),
    ),
    "panel_from_transactions_out_not_a_table": Case(
        lambda d, c: _from_tx(d, "--out", str(d / "panel.txt")),
        ("--out", "unknown format"),
    ),
    "panel_from_transactions_bad_end": Case(
        lambda d, c: _from_tx(d, "--out", str(d / "p.parquet"), "--end", "2024-13"),
        ("--end",),
    ),
    "tiers_out_onto_input": Case(
        lambda d, c: ["tiers", str(_panel_copy(d, c)), "--out", str(d / "panel.parquet")],
        ("--out", "is the input"),
    ),
    "tiers_out_onto_input_with_overwrite": Case(
        lambda d, c: [
            "tiers",
            str(_panel_copy(d, c)),
            "--out",
            str(d / "panel.parquet"),
            "--overwrite",
        ],
        ("--out", "is the input"),
    ),
    "score_out_holds_the_panel": Case(
        lambda d, c: _score(
            c, _panel_copy((d / "dir").mkdir() or d / "dir", c), d / "dir", "--overwrite"
        ),
        ("--out", "holds the input"),
    ),
    "score_out_inside_input_folder": Case(
        lambda d, c: _score(c, _parts(d, c, lambda x: x), d / "parts" / "scores"),
        ("--out", "inside the input folder"),
    ),
    "score_partial_is_the_input": Case(
        lambda d, c: _score(c, _parts(d, c, lambda x: x, "x.partial"), d / "x"),
        ("--out", "is the input"),
    ),
    "score_out_is_working_folder": Case(
        lambda d, c: _score(c, c["panel"], ".", "--overwrite"), ("--out", "working folder")
    ),
    "tiers_out_is_working_folder": Case(
        lambda d, c: ["tiers", str(c["panel"]), "--out", "."], ("--out", "working folder")
    ),
    "score_overwrite_unrelated_folder": Case(
        lambda d, c: (
            _write((d / "mine").mkdir() or d / "mine" / "notes.txt", b"keep me"),
            _score(c, c["panel"], d / "mine", "--overwrite"),
        )[1],
        ("--out", "not a scoring output segments wrote"),
    ),
    "score_overwrite_output_with_a_stranger_inside": Case(
        lambda d, c: (
            _write(_scoring_output(d, c) / "notes.txt", b"keep me"),
            _score(c, c["panel"], d / "old", "--overwrite", "--as-of", AS_OF),
        )[1],
        ("--out", "not a scoring output segments wrote"),
    ),
    "score_out_exists_without_overwrite": Case(
        lambda d, c: _score(c, c["panel"], _scoring_output(d, c), "--as-of", AS_OF),
        ("--out", "exists", "--overwrite"),
    ),
    "score_out_is_a_file": Case(
        lambda d, c: _score(c, c["panel"], _write(d / "out", b"x"), "--overwrite"),
        ("--out", "not a scoring output"),
    ),
    "tiers_overwrite_a_file_segments_did_not_write": Case(
        lambda d, c: [
            "tiers",
            str(c["panel"]),
            "--out",
            str(_panel_copy(d, c, "other.parquet")),
            "--overwrite",
        ],
        ("--out", "not a tier table segments wrote"),
    ),
    "tiers_out_exists_without_overwrite": Case(
        lambda d, c: ["tiers", str(c["panel"]), "--out", str(_write(d / "t.csv", b"a,b\n"))],
        ("--out", "exists", "--overwrite"),
    ),
    "tiers_out_under_a_file": Case(
        lambda d, c: [
            "tiers",
            str(c["panel"]),
            "--out",
            str(_write(d / "f.txt", b"x") / "t.parquet"),
        ],
        ("--out", "is a file"),
    ),
    "score_out_where_nothing_can_be_written": Case(
        lambda d, c: _score(c, c["panel"], "/proc/segments-test/out"),
        ("--out", "cannot be written"),
    ),
    "synth_overwrite_a_bank_segments_did_not_write": Case(
        lambda d, c: (
            _panel_copy(d, c),
            ["synth", "--customers", "10", "--months", "3", "--out", str(d), "--overwrite"],
        )[1],
        ("--out", "panel.parquet", "not a synthetic bank file"),
    ),
    "synth_out_exists_without_overwrite": Case(
        lambda d, c: (_panel_copy(d, c), ["synth", "--customers", "10", "--out", str(d)])[1],
        ("--out", "exists"),
    ),
    # --- inputs that would give wrong output --------------------------------------------
    "score_folder_part_lacks_columns": Case(
        lambda d, c: _score(
            c, _parts(d, c, lambda x: x.drop(columns=["funds", "txn_count"])), d / "out"
        ),
        ("part-1.parquet", "lacks funds, txn_count"),
    ),
    "validate_folder_part_lacks_columns": Case(
        lambda d, c: ["validate", str(_parts(d, c, lambda x: x.drop(columns=["funds"])))],
        ("part-1.parquet", "lacks funds"),
    ),
    "tiers_folder_part_lacks_columns": Case(
        lambda d, c: ["tiers", str(_parts(d, c, lambda x: x.drop(columns=["funds"])))],
        ("part-1.parquet", "lacks funds"),
    ),
    "train_folder_part_lacks_columns": Case(
        lambda d, c: [
            "train",
            "upgrade",
            "--panel",
            str(_parts(d, c, lambda x: x.drop(columns=["funds"]))),
            "--config",
            str(c["config"]),
        ],
        ("part-1.parquet", "lacks funds"),
    ),
    "folder_part_with_another_type": Case(
        lambda d, c: [
            "validate",
            str(_parts(d, c, lambda x: x.assign(funds=x["funds"].astype(str)))),
        ],
        ("part-1.parquet", "`funds`", "string"),
    ),
    "folder_with_a_csv_inside": Case(
        lambda d, c: (
            _write(_parts(d, c, lambda x: x) / "extra.csv", b"a\n1\n"),
            ["validate", str(d / "parts")],
        )[1],
        ("extra.csv", "not Parquet parts"),
    ),
    "empty_folder": Case(
        lambda d, c: ["validate", str((d / "e").mkdir() or d / "e")], ("no Parquet parts",)
    ),
    "float_ids_not_whole": Case(
        lambda d, c: _score(
            c,
            _panel_copy(
                d, c, change=lambda x: x.assign(customer_id=pd.factorize(x["customer_id"])[0] + 0.5)
            ),
            d / "out",
        ),
        ("customer_id", "not whole"),
    ),
    "zoned_month_stamps_off_midnight": Case(
        lambda d, c: _score(c, _panel_copy(d, c, change=_tz_months), d / "out"),
        ("month", "time zone", "panel.timezone"),
    ),
    "as_of_with_too_little_history": Case(
        lambda d, c: _score(c, c["panel"], d / "out", "--as-of", "2024-04"),
        ("--as-of", "4 month(s)", "--allow-short-history"),
    ),
    "as_of_month_not_in_panel": Case(
        lambda d, c: _score(c, c["panel"], d / "out", "--as-of", "2031-01"),
        ("month", "no rows for the as-of month 2031-01"),
    ),
    # --- checked before any work: models, columns, files --------------------------------
    "groups_model_given_as_upgrade_model": Case(
        lambda d, c: _score(c, c["panel"], d / "out", "--upgrade-model", c["groups_uri"]),
        ("--upgrade-model", "is a groups model, not a upgrade model"),
    ),
    "panel_lacks_a_column_the_models_need": Case(
        lambda d, c: _score(
            c, _panel_copy(d, c, change=lambda x: x.drop(columns=["txn_count"])), d / "out"
        ),
        ("txn_count", "lacks columns the models"),
    ),
    "panel_without_customer_id": Case(
        lambda d, c: _score(
            c, _panel_copy(d, c, change=lambda x: x.drop(columns=["customer_id"])), d / "out"
        ),
        ("customer_id", "required"),
    ),
    "zero_byte_parquet": Case(
        lambda d, c: _score(c, _write(d / "p.parquet", b""), d / "o"),
        ("p.parquet", "empty (0 bytes)"),
    ),
    "zero_byte_csv": Case(
        lambda d, c: ["validate", str(_write(d / "p.csv", b""))], ("p.csv", "empty (0 bytes)")
    ),
    "gzip_named_csv": Case(
        lambda d, c: [
            "tiers",
            str(_write(d / "p.csv", gzip.compress(c["raw"].head(50).to_csv(index=False).encode()))),
        ],
        ("p.csv", "gzip"),
    ),
    "csv_named_parquet": Case(
        lambda d, c: [
            "validate",
            str(_write(d / "p.parquet", c["raw"].head(5).to_csv(index=False).encode())),
        ],
        ("p.parquet", "not a Parquet file"),
    ),
    "non_utf8_csv": Case(
        lambda d, c: _score(
            c,
            _write(
                d / "p.csv", c["raw"].assign(region="华东").to_csv(index=False).encode("gb18030")
            ),
            d / "o",
        ),
        ("p.csv", "not UTF-8"),
    ),
    "duplicate_column_names": Case(
        lambda d, c: [
            "validate",
            str(_write(d / "p.csv", b"customer_id,month,aum,aum\nC1,2024-01,5,6\n")),
        ],
        ("duplicate column names: aum",),
    ),
    "panel_does_not_exist": Case(
        lambda d, c: _score(c, d / "none.parquet", d / "o"), ("none.parquet", "does not exist")
    ),
    "unknown_format": Case(
        lambda d, c: ["tiers", str(_write(d / "p.txt", b"a\n"))], ("unknown format",)
    ),
    "zip_csv_no_engine_reads": Case(
        lambda d, c: ["validate", str(_write(d / "p.csv.zip", b"PK"))], ("unknown format",)
    ),
    # --- bad option values --------------------------------------------------------------
    "as_of_banana": Case(
        lambda d, c: _score(c, c["panel"], d / "o", "--as-of", "banana"), ("--as-of", "banana")
    ),
    "month_2025_13": Case(
        lambda d, c: ["tiers", str(c["panel"]), "--month", "2025-13"], ("--month", "2025-13")
    ),
    "tiers_month_with_no_rows": Case(
        lambda d, c: [
            "tiers",
            str(c["panel"]),
            "--month",
            "2031-01",
            "--out",
            str(d / "t.parquet"),
        ],
        ("--month", "no rows"),
    ),
    "train_as_of_banana": Case(
        lambda d, c: ["train", "groups", "--panel", str(c["panel"]), "--as-of", "banana"],
        ("--as-of", "banana"),
    ),
    "synth_start_2024_13": Case(
        lambda d, c: ["synth", "--start", "2024-13", "--out", str(d / "b")], ("--start", "2024-13")
    ),
    "model_name_with_path": Case(
        lambda d, c: ["promote", "../../x", "--version", "1"], ("MODEL", "'../../x'")
    ),
    "history_model_name_with_path": Case(lambda d, c: ["history", "../x"], ("MODEL",)),
    "model_uri_with_path": Case(
        lambda d, c: _score(c, c["panel"], d / "o", "--groups-model", "models:/../../x@c"),
        ("--groups-model", "'../../x'"),
    ),
    "engine_banana": Case(
        lambda d, c: _score(c, c["panel"], d / "o", "--engine", "banana"), ("--engine", "banana")
    ),
    "spark_on_a_csv": Case(
        lambda d, c: _score(c, _panel_copy(d, c, "p.csv"), d / "o", "--engine", "spark"),
        ("--engine", "Parquet"),
    ),
    # --- configuration --------------------------------------------------------------------
    "psi_warn_above_psi_alert": Case(
        _scored_with(b"scoring: {psi_warn: 0.5, psi_alert: 0.2}\n"),
        ("scoring.psi_warn", "psi_alert"),
    ),
    "ladder_path_missing_in_validate": Case(
        lambda d, c: [
            "validate",
            str(c["panel"]),
            "--config",
            str(_write(d / "c.yaml", b"tiers: {ladder: no_such_ladder.yaml}\n")),
        ],
        ("tiers.ladder", "no_such_ladder.yaml"),
    ),
    "config_not_utf8": Case(
        lambda d, c: [
            "validate",
            str(c["panel"]),
            "--config",
            str(_write(d / "c.yaml", "name: 银行\n".encode("gb18030"))),
        ],
        ("c.yaml", "UTF-8"),
    ),
    "column_map_names_an_absent_column": Case(
        _scored_with(b"name: safety\npanel: {column_map: {cust_no: customer_id}}\n"),
        ("cust_no", "no such column"),
    ),
    # --- found by an adversarial pass ------------------------------------------------------
    "scored_at_banana": Case(
        lambda d, c: _score(c, c["panel"], d / "o", "--scored-at", "banana"),
        ("--scored-at", "banana"),
    ),
    "empty_model_uri": Case(
        lambda d, c: _score(c, c["panel"], d / "o", "--groups-model", ""),
        ("--groups-model", "empty"),
    ),
    "windows_given_twice": Case(
        _scored_with(b"name: safety\nfeatures: {windows: [3, 3]}\n"),
        ("features.windows", "once"),
    ),
    "reasons_k_1000": Case(
        _scored_with(b"name: safety\nupgrade: {reasons_k: 1000}\n"),
        ("upgrade.reasons_k", "at most 20"),
    ),
    "workers_zero": Case(
        _scored_with(b"name: safety\nscoring: {workers: 0}\n"),
        ("scoring.workers", ">= 1"),
    ),
    "psi_warn_nan": Case(
        _scored_with(b"name: safety\nscoring: {psi_warn: .nan}\n"),
        ("scoring.psi_warn",),
    ),
    "yaml_key_given_twice": Case(
        lambda d, c: _score(
            c,
            c["panel"],
            d / "o",
            "--config",
            str(
                _write(
                    d / "c.yaml",
                    b"name: safety\nscoring: {engine: local}\nscoring: {engine: spark}\n",
                )
            ),
        ),
        ("c.yaml", "appears twice"),
    ),
    "tier_values_of_an_unknown_tier": Case(
        _scored_with(b"name: safety\nupgrade: {tier_values: {platinum: 5}}\n"),
        ("upgrade.tier_values", "platinum"),
    ),
    "folder_with_hidden_parts": Case(
        lambda d, c: (
            _write(
                _parts(d, c, lambda x: x) / ".late.parquet",
                (d / "parts" / "part-1.parquet").read_bytes(),
            ),
            ["validate", str(d / "parts")],
        )[1],
        (".late.parquet", "hidden"),
    ),
    "tiers_overwrite_a_scoring_part": Case(
        lambda d, c: [
            "tiers",
            str(c["panel"]),
            "--overwrite",
            "--out",
            str(_scoring_output(d, c) / "part-00000.parquet"),
        ],
        ("--out", "not a tier table"),
    ),
    "tiers_overwrite_a_synthetic_panel": Case(
        lambda d, c: (
            shutil.copy(c["panel"], d / "bank.parquet"),
            ["tiers", str(c["panel"]), "--out", str(d / "bank.parquet"), "--overwrite"],
        )[1],
        ("--out", "not a tier table"),
    ),
    "synth_into_a_folder_of_other_files": Case(
        lambda d, c: [
            "synth",
            "--customers",
            "10",
            "--months",
            "3",
            "--overwrite",
            "--out",
            str(_scoring_output(d, c)),
        ],
        ("--out", "holds files segments did not write"),
    ),
    "previous_model_of_the_wrong_kind": Case(
        lambda d, c: [
            "train",
            "groups",
            "--panel",
            str(c["panel"]),
            "--config",
            str(c["config"]),
            "--previous",
            c["upgrade_uri"],
        ],
        ("--previous", "not a groups model"),
    ),
    "train_groups_as_of_without_history": Case(
        lambda d, c: [
            "train",
            "groups",
            "--panel",
            str(c["panel"]),
            "--config",
            str(c["config"]),
            "--as-of",
            "2024-02",
        ],
        ("--as-of", "2 month(s)"),
    ),
}


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_or_invocation_fails_named_and_leaves_nothing(ctx, tmp_path, monkeypatch, name):
    case = CASES[name]
    args = case.build(tmp_path, ctx)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    db = ctx["root"] / "mlflow.db"
    runs_before = db.stat().st_size
    res = runner.invoke(app, args)
    text = res.output
    assert res.exit_code == 1, f"{name}: exit {res.exit_code}\n{text}\n{res.exception!r}"
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in text
    for expected in case.expected:
        assert expected in text, f"{name}: {expected!r} not in {text!r}"
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert snapshot(tmp_path) == before, f"{name} changed its folder"
    assert db.stat().st_size == runs_before  # no MLflow run either


# ---- the guarantees of a running job -----------------------------------------------------


def _cmd(ctx, out, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "segments",
        "score",
        "--panel",
        str(ctx["panel"]),
        "--out",
        str(out),
        "--config",
        str(ctx["config"]),
        "--batch-customers",
        "60",
        "--scored-at",
        "2026-01-01T00:00:00+00:00",
        *extra,
    ]


def _wait_for(pred, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_two_jobs_one_output_the_second_fails_naming_the_first(ctx, tmp_path):
    out = tmp_path / "scores"
    first = subprocess.Popen(
        _cmd(ctx, out, "--as-of", AS_OF, "--no-track"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Hold the first job mid-way (SIGSTOP) so the second surely starts while it runs.
    assert _wait_for(lambda: (tmp_path / "scores.partial" / "parts").exists())
    first.send_signal(signal.SIGSTOP)
    try:
        second = subprocess.run(
            _cmd(ctx, out, "--as-of", "2025-05", "--no-track"), capture_output=True, text=True
        )
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1, second.stderr
    assert f"pid {first.pid}" in second.stderr and "another segments job" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.wait(timeout=300) == 0, first.stderr
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["as_of"] == AS_OF
    assert set(read_output(out)["as_of"]) == {AS_OF}
    assert not (tmp_path / ".scores.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores"]


def _children(pid):
    """The live child processes of ``pid`` (Linux /proc)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.update(int(c) for c in (task / "children").read_text().split())
    return found


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_kills_the_run_keeps_the_job_and_a_rerun_resumes(ctx, tmp_path, workers):
    import mlflow

    full = tmp_path / "full"
    subprocess.run(_cmd(ctx, full, "--as-of", AS_OF, "--no-track"), check=True, capture_output=True)
    out = tmp_path / "scores"
    proc = subprocess.Popen(
        _cmd(ctx, out, "--as-of", AS_OF, "--workers", workers),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    parts = tmp_path / "scores.partial" / "parts"
    assert _wait_for(lambda: len(list(parts.glob("part-*.parquet"))) >= 2)
    pool = _children(proc.pid)
    assert len(pool) >= int(workers) - 1  # the worker processes really ran
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("stopped by SIGTERM") and "Traceback" not in stderr
    job = json.loads((tmp_path / "scores.partial" / "_job.json").read_text())
    client = mlflow.MlflowClient()
    assert client.get_run(job["run_id"]).info.status == "KILLED"
    assert not out.exists() and not (tmp_path / ".scores.lock").exists()

    def alive():
        return [p for p in pool if Path(f"/proc/{p}").exists()]

    assert _wait_for(lambda: not alive(), timeout=15), [  # no worker left running
        Path(f"/proc/{p}/cmdline").read_bytes() for p in alive()
    ]
    done = subprocess.run(
        _cmd(ctx, out, "--as-of", AS_OF, "--workers", workers), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["resumed"] == 1 and manifest["run_id"] == job["run_id"]
    assert manifest["engine"] == ("local" if workers == "1" else "local (2 workers)")
    assert client.get_run(job["run_id"]).info.status == "FINISHED"
    a, b = read_output(full), read_output(out)
    pd.testing.assert_frame_equal(a.drop(columns="run_id"), b.drop(columns="run_id"))


def test_a_resumed_job_with_other_settings_starts_again(ctx, tmp_path):
    out = tmp_path / "scores"
    proc = subprocess.Popen(
        _cmd(ctx, out, "--as-of", AS_OF, "--no-track"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = tmp_path / "scores.partial" / "parts"
    assert _wait_for(lambda: len(list(parts.glob("part-*.parquet"))) >= 1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    valued = tmp_path / "valued.yaml"
    raw = yaml.safe_load(Path(ctx["config"]).read_text())
    raw["name"] = "safety"
    raw["upgrade"] = {
        "tier_values": {"gold": 1000, "sunflower": 9000, "diamond": 30000, "private": 90000}
    }
    valued.write_text(yaml.safe_dump(raw))
    cmd = _cmd(ctx, out, "--as-of", AS_OF, "--no-track")
    cmd[cmd.index("--config") + 1] = str(valued)
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["resumed"] == 0  # not resumed: the tier values change the output
    frame = read_output(out)
    assert frame["expected_value"].notna().any()


def test_overwrite_replaces_only_segments_output_and_leaves_no_old_copies(
    ctx, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    t = tmp_path / "t.parquet"
    for extra in ([], ["--overwrite"]):
        res = runner.invoke(app, ["tiers", str(ctx["panel"]), "--out", str(t), *extra])
        assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]
    assert t.stat().st_mode & 0o777 == 0o666 & ~_umask()
    scores = tmp_path / "s"
    for extra in ([], ["--overwrite"]):
        res = runner.invoke(app, _score(ctx, ctx["panel"], scores, "--as-of", AS_OF, *extra))
        assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s", "t.parquet"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_exact_float_ids_are_integers_and_zoned_months_read_in_the_bank_zone(ctx, tmp_path):
    raw = ctx["raw"]
    codes = pd.factorize(raw["customer_id"])[0] + 1
    floats = _panel_copy(
        tmp_path,
        ctx,
        "f.parquet",
        change=lambda x: _tz_months(x.assign(customer_id=codes.astype(float))),
    )
    out = tmp_path / "o"
    zoned = tmp_path / "zoned.yaml"
    raw_cfg = yaml.safe_load(Path(ctx["config"]).read_text())
    raw_cfg.update({"name": "safety", "panel": {"timezone": "Asia/Shanghai"}})
    zoned.write_text(yaml.safe_dump(raw_cfg))
    res = runner.invoke(
        app,
        [
            "score",
            "--panel",
            str(floats),
            "--out",
            str(out),
            "--config",
            str(zoned),
            "--no-track",
            "--as-of",
            AS_OF,
        ],
    )
    assert res.exit_code == 0, res.output
    frame = read_output(out)
    active = raw.loc[raw["month"].astype(str).str[:7] == AS_OF, "customer_id"]
    assert len(frame) == len(active)
    assert not frame["customer_id"].str.contains(r"\.").any()
    assert set(frame["customer_id"]) == {str(codes[i]) for i in active.index}


def test_short_history_can_be_allowed_and_is_named_in_the_manifest(ctx, tmp_path):
    out = tmp_path / "o"
    res = runner.invoke(
        app, _score(ctx, ctx["panel"], out, "--as-of", "2024-06", "--allow-short-history")
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "_manifest.json").read_text())
    short = manifest["short_history"]["features"]
    assert manifest["history_months"] == 6
    assert "aum_avg_12m" in short and "aum_avg_3m" not in short


def test_buckets_are_planned_from_rows_for_every_input_kind(ctx, tmp_path):
    raw = ctx["raw"]
    kinds = {
        "parquet": tmp_path / "p.parquet",
        "csv": tmp_path / "p.csv",
        "csv.gz": tmp_path / "p.csv.gz",
    }
    raw.to_parquet(kinds["parquet"], index=False)
    raw.to_csv(kinds["csv"], index=False)
    raw.to_csv(kinds["csv.gz"], index=False, compression="gzip")
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, chunk in enumerate(range(0, len(raw), 3000)):
        raw.iloc[chunk : chunk + 3000].to_parquet(folder / f"part-{i}.parquet", index=False)
    kinds["folder"] = folder
    found = {k: inspect_panel(p, months=True) for k, p in kinds.items()}
    assert {k: f.rows for k, f in found.items()} == dict.fromkeys(kinds, len(raw))
    plans = {k: plan_buckets(f, 100) for k, f in found.items()}
    assert set(plans.values()) == {10}, plans  # 1,000 customers, 100 a bucket


def test_scorer_stamps_the_version_it_loaded(ctx):
    scorer = load_scorer(ctx["cfg"])
    name, version = scorer.upgrade_model.split("/")
    assert ctx["upgrade_uri"].endswith(f"{name}/{version}")
    assert version.isdigit()


def test_folder_input_is_read_alike_by_every_command(ctx, tmp_path):
    folder = _parts(tmp_path, ctx, lambda x: x)
    res = runner.invoke(app, ["validate", str(folder)])
    assert res.exit_code == 0, res.output
    assert "1,000 customers" in res.output
    res = runner.invoke(app, ["tiers", str(folder), "--out", str(tmp_path / "t.parquet")])
    assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == len(ctx["raw"])
    shutil.rmtree(folder)


def test_synth_reruns_over_its_own_bank_beside_what_was_made_of_it(ctx, tmp_path, monkeypatch):
    # make demo's pattern: the bank, its tier table and its scores in one folder, rerun.
    monkeypatch.chdir(tmp_path)
    bank = tmp_path / "demo"
    synth = ["synth", "--customers", "30", "--months", "3", "--out", str(bank)]
    assert runner.invoke(app, synth).exit_code == 0
    res = runner.invoke(
        app, ["tiers", str(bank / "panel.parquet"), "--out", str(bank / "tiers.parquet")]
    )
    assert res.exit_code == 0, res.output
    (bank / "notes.txt").write_text("mine")
    res = runner.invoke(app, [*synth, "--overwrite"])
    assert res.exit_code == 1 and "notes.txt" in res.stderr  # a stranger: refused
    (bank / "notes.txt").unlink()
    res = runner.invoke(app, [*synth, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in bank.iterdir()) == [
        "panel.parquet",
        "tiers.parquet",
        "truth.parquet",
    ]
