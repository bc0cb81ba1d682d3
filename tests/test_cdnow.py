"""The upgrade pipeline on a real panel: CDNOW (23,570 customers, 18 months).

Monthly spend stands in for a balance. The test checks that the public API runs end to end
on real data and evaluates the model against the rule of thumb out of time; it asserts no
margin for the model, since the figures are reported as they come (see the issue notes).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from segments import load_config, panel_from_transactions, train_upgrade, validate_panel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cdnow"
EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "cdnow.yaml"
pytestmark = pytest.mark.skipif(
    not (DATA / "cdnow_transactions.csv.gz").exists(),
    reason="the shared CDNOW data is not beside the repository",
)


@pytest.fixture(scope="module")
def panel():
    tx = pd.read_csv(DATA / "cdnow_transactions.csv.gz")
    return validate_panel(panel_from_transactions(tx, date="date", amount="amount_usd"))


def test_transactions_become_a_monthly_panel(panel):
    assert panel["customer_id"].nunique() == 23_570
    assert str(panel["month"].min()) == "1997-01" and str(panel["month"].max()) == "1998-06"
    total = pd.read_csv(DATA / "cdnow_transactions.csv.gz")["amount_usd"].sum()
    assert panel["aum"].sum() == pytest.approx(total)  # README: USD 2,500,315.63
    # Zero-filled from each customer's first month to the end: no gaps.
    per = panel.groupby("customer_id")["month"].agg(["min", "max", "size"])
    assert ((per["max"] - per["min"]).map(lambda d: d.n) + 1 == per["size"]).all()


def test_upgrade_pipeline_runs_out_of_time_on_real_data(panel, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = train_upgrade(panel, load_config(EXPERIMENT))
    assert result.split["test"] == ["1998-03"]
    comp = result.comparison()
    for model in ("model", "rule_of_thumb", "logistic"):
        assert 0.4 < comp.loc["roc_auc", model] < 1.0
        assert (
            comp.loc["n", model]
            == result.label_counts.loc["1998-03", "positives"]
            + result.label_counts.loc["1998-03", "negatives"]
        )
    assert result.run_id is not None
