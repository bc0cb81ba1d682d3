"""What training runs write about customers into MLflow (segments.mlops.samples): nothing
customer-level by default, pseudonymised samples when the config asks, readable UTF-8 HTML
artifacts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from segments import load_config, log_upgrade, make_bank
from segments.cli import app
from segments.core.config.tracking import ID_KEY_ENV
from segments.exceptions import ConfigError
from segments.mlops.samples import REVIEW_COLUMNS, example_rows, pseudonymise
from tests.banks import QUICK_MODEL, logged_runs, tracked_folder

KEY = "a bank's secret"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One groups run and one upgrade run (default tracking), and the upgrade result
    logged again with samples, each in a real SQLite store."""
    import mlflow

    with tracked_folder(tmp_path_factory, "samples") as (_, mp):
        runs = logged_runs("samples_test", 4_000, seed=21)
        panel, upgrade = runs["panel"], runs["upgrade"]
        mp.setenv(ID_KEY_ENV, KEY)
        asked = load_config(
            overrides={
                "name": "samples_test",
                "upgrade": {"model": QUICK_MODEL},
                "tracking": {"log_samples": True, "sample_rows": 300},
            }
        )
        sampled = log_upgrade(dataclasses.replace(upgrade, config=asked, run_id=None), panel)
        client = mlflow.MlflowClient()
        yield {**runs, "sampled": sampled}, client


def _artifacts(client, run_id: str, dest: Path) -> dict[str, bytes]:
    """Every artifact of a run as bytes, by path (the model's files included)."""
    local = Path(client.download_artifacts(run_id, "", str(dest)))
    return {str(p.relative_to(local)): p.read_bytes() for p in local.rglob("*") if p.is_file()}


def _browser_decode(data: bytes) -> str:
    """Decode an HTML file the way a browser does without an HTTP charset: the charset a
    meta tag declares in the first 1,024 bytes, else windows-1252."""
    found = re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", data[:1024], re.IGNORECASE)
    return data.decode(found.group(1).decode() if found else "cp1252", errors="replace")


def test_no_customer_rows_in_any_artifact_by_default(runs, tmp_path):
    results, client = runs
    ids = set(results["panel"]["customer_id"].astype(str))
    for kind in ("groups", "upgrade"):
        files = _artifacts(client, results[kind].run_id, tmp_path / kind)
        text = {p: b for p, b in files.items() if not p.endswith((".pkl", ".png"))}
        tokens = set(re.findall(rb"[A-Za-z0-9_]+", b"\n".join(text.values())))
        leaked = {i for i in ids if i.encode() in tokens}
        assert not leaked, (kind, sorted(leaked)[:5])
        assert not any("sample" in p for p in files), [p for p in files if "sample" in p]
    upgrade = _artifacts(client, results["upgrade"].run_id, tmp_path / "u2")
    assert {"call_list_summary.csv", "explanations/reason_codes_summary.csv"} <= set(upgrade)
    card = upgrade["model_card.md"].decode()
    assert "No customer-level rows" in card


def test_the_input_example_is_nobodys_row(runs):
    results, _ = runs
    model = results["upgrade"].deployed
    data = results["upgrade"].data
    example = example_rows(data, list(model.features_))
    assert list(example.columns) == list(model.features_) and len(example) == 3
    numeric = [c for c in model.features_ if c not in model.categories_]
    real = data[numeric].round(9).drop_duplicates()
    joined = example[numeric].round(9).merge(real, how="inner")
    assert joined.empty  # no example row equals any customer's row
    for c in numeric:  # each value is one the column takes, in its dtype
        assert example[c].dtype == data[c].dtype
        assert example[c].dropna().isin(data[c]).all()


def test_samples_when_asked_are_pseudonymised_with_the_key(runs, tmp_path):
    results, client = runs
    sampled = results["sampled"]
    files = _artifacts(client, sampled.run_id, tmp_path)
    calls = pd.read_csv(tmp_path / "call_list_sample.csv")
    expected = pseudonymise(sampled.call_list["customer_id"].head(300), KEY.encode())
    assert calls["customer_id"].tolist() == expected.tolist()
    assert calls["customer_id"].str.fullmatch(r"h[0-9a-f]{16}").all()
    reasons = pd.read_csv(tmp_path / "explanations" / "reason_codes_sample.csv")
    assert len(reasons) == 300 and reasons["customer_id"].str.startswith("h").all()
    ids = set(results["panel"]["customer_id"].astype(str))
    blob = b"\n".join(b for p, b in files.items() if p.endswith((".csv", ".html", ".json")))
    tokens = set(re.findall(rb"[A-Za-z0-9_]+", blob))
    assert not {i for i in ids if i.encode() in tokens}
    # A different key, a different pseudonym; the same key, the same one.
    one = sampled.call_list["customer_id"].head(3)
    assert (pseudonymise(one, b"other") != pseudonymise(one, KEY.encode())).all()
    assert "pseudonymised by HMAC-SHA256" in files["model_card.md"].decode()


def test_the_call_list_view_shows_the_reviewers_columns_with_money_formatted(runs, tmp_path):
    results, client = runs
    files = _artifacts(client, results["sampled"].run_id, tmp_path)
    page = _browser_decode(files["call_list_sample.html"])
    header = re.findall(r"<th[^>]*>([^<]*)</th>", page)
    shown = [c for c in REVIEW_COLUMNS if c in results["sampled"].call_list.columns]
    assert header == shown
    assert len(results["sampled"].call_list.columns) > len(shown)
    assert "every column in call_list_sample.csv" in page
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page)
    assert not [c for c in cells if re.fullmatch(r"-?[\d.]+e[+-]\d+", c)]  # no 1.2e+05
    assert any(re.fullmatch(r"\d{1,3}(,\d{3})+", c) for c in cells)  # money: 12,345


def test_every_html_artifact_declares_utf8_and_chinese_survives(runs, tmp_path):
    results, client = runs
    seen_chinese = 0
    for kind in ("groups", "upgrade", "sampled"):
        files = _artifacts(client, results[kind].run_id, tmp_path / kind)
        pages = {p: b for p, b in files.items() if p.endswith(".html")}
        assert pages
        for path, data in pages.items():
            assert b'<meta charset="utf-8">' in data[:1024], path
            text = _browser_decode(data)
            assert text == data.decode("utf-8"), path
            csv = tmp_path / kind / str(Path(path).with_suffix(".csv"))
            if csv.exists():  # the Chinese of the columns shown reads the same in the page
                shown = set(re.findall(r"<th[^>]*>([^<]*)</th>", text))
                table = pd.read_csv(csv, dtype=str)
                cells = table[[c for c in table.columns if c in shown]].stack().dropna()
                for zh in set(re.findall(r"[\u4e00-\u9fff]{2,}", " ".join(cells))):
                    assert zh in text, (path, zh)
                    seen_chinese += 1
    assert seen_chinese > 0  # the check read some Chinese


def test_card_tables_have_no_index_header_and_the_formula_reads(runs, tmp_path):
    results, client = runs
    files = _artifacts(client, results["upgrade"].run_id, tmp_path)
    card = files["model_card.md"].decode()
    assert "| index |" not in card
    assert "+ -" not in card and re.search(r"logit\(p\) = [\d.]+ × margin [+-] [\d.]+", card)


def test_samples_without_the_key_are_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv(ID_KEY_ENV, raising=False)
    (tmp_path / "exp.yaml").write_text("name: x\ntracking: {log_samples: true}\n")
    make_bank(200, 12, seed=1)[0].to_parquet(tmp_path / "panel.parquet")
    with pytest.raises(ConfigError, match=ID_KEY_ENV):
        load_config(tmp_path / "exp.yaml").tracking.id_key()
    out = CliRunner().invoke(
        app,
        ["train", "upgrade", "--panel", str(tmp_path / "panel.parquet"), "--config",
         str(tmp_path / "exp.yaml")],
    )  # fmt: skip
    assert out.exit_code != 0 and "tracking.hash_ids" in out.output and ID_KEY_ENV in out.output
    assert "Traceback" not in out.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml", "panel.parquet"]


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"log_samples": "yes"}, "tracking.log_samples"),
        ({"sample_rows": 0}, "tracking.sample_rows"),
        ({"hash_ids": 1}, "tracking.hash_ids"),
    ],
)
def test_bad_tracking_settings_are_named(values, where):
    with pytest.raises(ConfigError, match=re.escape(where)):
        load_config(overrides={"tracking": values})


def test_pseudonyms_are_stable_and_keyed():
    ids = pd.Series(["c1", "c2", "c1"])
    a = pseudonymise(ids, b"k")
    assert a[0] == a[2] != a[1]
    assert (a != pseudonymise(ids, b"k2")).all()
    assert np.all(a.str.len() == 17)


def test_the_input_example_takes_text_and_boolean_columns_by_their_most_frequent_values():
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3, 4, 5],
            "s": pd.Series(["x", "y", "x", "z", "x"], dtype="str"),
            "b": [True, False, True, True, False],
        }
    )
    example = example_rows(frame, ["n", "s", "b"])
    assert example["s"].tolist()[0] == "x" and example["b"].tolist()[0]
    assert example.dtypes.to_dict() == frame.dtypes.to_dict()


def _calls(sizes: dict[tuple[str, str], int]) -> pd.DataFrame:
    rows = [
        {"customer_id": f"C{b}{band}{i}", "branch_id": b, "near_band": band, "p_upgrade": p}
        for (b, band), n in sizes.items()
        for i, p in enumerate(np.linspace(0.1, 0.9, n))
    ]
    frame = pd.DataFrame(rows)
    frame["expected_gain"] = 1000.0
    return frame


def test_no_call_list_aggregate_describes_fewer_customers_than_min_cell():
    from segments.mlops.samples import OTHER_BRANCHES, call_list_summary

    calls = _calls({("A", "near_gold"): 12, ("B", "near_gold"): 3, ("C", "near_gold"): 8})
    out = call_list_summary(calls, min_cell=10).set_index("branch")
    # B (3) and C (8) pooled: 11 customers, their mean and total gain shown.
    assert out["customers"].to_dict() == {"A": 12, OTHER_BRANCHES: 11}
    pooled = calls[calls["branch_id"] != "A"]
    assert out.loc[OTHER_BRANCHES, "mean_p_upgrade"] == pytest.approx(pooled["p_upgrade"].mean())
    assert out.loc[OTHER_BRANCHES, "expected_gain"] == 11_000
    # A pool still too small: its statistics are blank, its count stays.
    small = call_list_summary(_calls({("A", "x"): 12, ("B", "x"): 1}), min_cell=10)
    row = small.set_index("branch").loc[OTHER_BRANCHES]
    assert row["customers"] == 1 and row[["mean_p_upgrade", "expected_gain"]].isna().all()
    # min_cell 1: every branch its own row, as before.
    assert len(call_list_summary(calls, min_cell=1)) == 3


def test_a_reason_named_by_fewer_rows_than_min_cell_has_no_mean_contribution():
    from segments.mlops.samples import reason_summary

    test = pd.DataFrame(
        {
            "reason_1_feature": ["aum"] * 12 + ["age"],
            "reason_1_contribution": [0.5] * 12 + [0.9],
        }
    )
    out = reason_summary(test, min_cell=10).set_index("feature")
    assert out.loc["aum", "contribution"] == pytest.approx(0.5)
    assert np.isnan(out.loc["age", "contribution"]) and out.loc["age", "rows"] == 1


def test_min_cell_must_be_a_whole_number():
    from segments.core.config.tracking import TrackingConfig

    with pytest.raises(ConfigError, match=r"tracking\.min_cell.*is 0; expected a whole number"):
        TrackingConfig(min_cell=0)
