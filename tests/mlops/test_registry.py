"""Registry, promotion, audit trail and the review flow against a real ``mlflow server``.

One server with a fresh backend store serves the whole module; the flow runs once (train,
register, promote, refuse, retrain, promote again) and the tests read what it left behind,
through the CLI, the Python API and the REST API a reviewer's browser uses.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from segments import (
    load_config,
    log_groups,
    log_upgrade,
    read_panel,
    train_groups,
    train_upgrade,
    validate_panel,
    write_bank,
)
from segments.cli import app
from segments.exceptions import PromotionError, RegistryError
from segments.mlops.promotion import promote
from segments.mlops.registry import aliases, history
from segments.mlops.tracking import load_model
from tests.banks import QUICK_MODEL
from tests.mlflow_server import MlflowServer, free_port, stop_group, wait_for_health

pytestmark = pytest.mark.slow

runner = CliRunner()
UP, GR = "review-upgrade", "review-groups"


def _cli(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _get(url: str, path: str, **params) -> dict:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}{path}?{query}", timeout=30) as r:
        return json.loads(r.read())


def _post(url: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    server = MlflowServer(root).start()
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("MLFLOW_TRACKING_URI", server.url)
    mp.setenv("SEGMENTS_USER", "reviewer-a")
    paths = write_bank(root / "bank", 2_500, 18, seed=5)
    panel = validate_panel(read_panel(paths["panel"]))
    exp = root / "review.yaml"
    # A 2,500-customer bank is too small for the model to beat the rule of thumb on every
    # seed; the review's own thresholds say so explicitly (strict.yaml tests a refusal).
    exp.write_text(
        yaml.safe_dump(
            {
                "groups": {"n_bootstrap": 2, "k_max": 8},
                "upgrade": {"model": QUICK_MODEL},
                "registry": {
                    "promotion": {"upgrade": {"min_auc": 0.7, "min_auc_gain_over_rule": -0.1}}
                },
            }
        )
    )
    strict = root / "strict.yaml"
    strict.write_text(yaml.safe_dump({"registry": {"promotion": {"upgrade": {"min_auc": 0.99}}}}))
    windows = root / "windows.yaml"
    windows.write_text(yaml.safe_dump({"features": {"windows": [4, 8]}}))
    cfg = load_config(exp)
    out: dict = {
        "server": server,
        "root": root,
        "panel": panel,
        "cfg": cfg,
        "panel_path": str(paths["panel"]),
    }
    out["up1"] = log_upgrade(train_upgrade(panel, cfg), panel)
    out["groups"] = log_groups(train_groups(panel, cfg), panel)
    out["aliases_after_training"] = aliases(UP)
    out["promote1"] = _cli(
        "promote",
        UP,
        "--version",
        "1",
        "--reason",
        "first model",
        "--config",
        str(exp),
        "--panel",
        out["panel_path"],
    )
    cfg2 = load_config(exp, {"upgrade": {"model": {"num_leaves": 3}}})
    out["up2"] = log_upgrade(train_upgrade(panel, cfg2), panel)
    out["refused"] = _cli("promote", UP, "--version", "2", "--config", str(strict))
    out["missing"] = _cli("promote", UP, "--version", "7")
    out["signature"] = _cli("promote", GR, "--version", "1", "--config", str(windows))
    out["promote_groups"] = _cli(
        "promote", GR, "--version", "1", "--config", str(exp), "--reason", "groups reviewed"
    )
    mp.setenv("SEGMENTS_USER", "reviewer-b")
    out["promote2"] = _cli(
        "promote",
        UP,
        "--version",
        "2",
        "--reason",
        "smaller trees",
        "--config",
        str(exp),
        "--panel",
        out["panel_path"],
    )
    yield out
    mp.undo()
    server.stop()


def test_training_registers_a_challenger(flow):
    up1, groups = flow["up1"], flow["groups"]
    assert (up1.registered_model, up1.model_version) == (UP, "1")
    assert (groups.registered_model, groups.model_version) == (GR, "1")
    assert flow["aliases_after_training"] == {"challenger": "1"}
    assert flow["up2"].model_version == "2"


def test_a_passing_promotion_moves_champion_and_logs_evidence(flow):
    res = flow["promote1"]
    assert res.exit_code == 0, res.output
    assert "champion (none) -> v1" in res.output
    assert "On the challenger's held-out months" in res.output
    res2 = flow["promote2"]
    assert res2.exit_code == 0, res2.output
    assert "champion v1 -> v2" in res2.output
    assert aliases(UP) == {"champion": "2", "challenger": "2"}
    assert aliases(GR)["champion"] == "1"
    import mlflow

    client = mlflow.MlflowClient()
    mv = client.get_model_version(UP, "2")
    assert mv.tags["segments.promoted_by"] == "reviewer-b"
    assert mv.tags["segments.promotion_reason"] == "smaller trees"
    evidence = client.get_run(mv.tags["segments.promotion_run"])
    assert evidence.data.tags["segments.decision"] == "promoted"
    assert evidence.data.tags["segments.champion_before"] == "1"
    # Its description: the decision, the reason, the checks and links to the evidence.
    note = evidence.data.tags["mlflow.note.content"]
    assert note.startswith(f"**Promoted**: {UP} version 2 (champion before: 1). Reason: smaller")
    n = sum(1 for k in evidence.data.metrics if k.startswith("check."))
    assert f"Checks: {n} of {n} passed." in note
    rid, eid = evidence.info.run_id, evidence.info.experiment_id
    assert f"(#/experiments/{eid}/runs/{rid}/artifacts/promotion.html?workflowType=" in note
    assert f"runs/{mv.run_id}?workflowType=machine_learning)" in note
    files = {a.path for a in client.list_artifacts(evidence.info.run_id)}
    assert {
        "promotion.md",
        "promotion.html",
        "checks.json",
        "comparison_logged.csv",
        "comparison_same_months.csv",
    } <= files


def test_the_comparison_uses_the_same_held_out_months(flow):
    # v2 is champion now; v1 as the challenger is compared with it on v1's test months.
    report = promote(UP, 1, config=flow["cfg"], panel=flow["panel"], dry_run=True)
    same = report.same_months
    assert list(same.columns) == [
        "challenger v1 out of time",
        "challenger v1 in sample",
        "champion v2",
        "rule of thumb",
        "logistic baseline",
    ]
    assert same.index.name == "metric"
    assert same.loc["n"].nunique() == 1 and same.loc["n"].iloc[0] > 100

    # Rebuilt from the panel, each version's figures are those of the model it deploys on
    # the training run's own test rows (both runs were tested on the same months).
    def deployed_auc(up) -> float:
        return roc_auc_score(up.test["label"], up.deployed.predict_proba(up.test)[:, 1])

    assert same.loc["roc_auc", "challenger v1 in sample"] == pytest.approx(
        deployed_auc(flow["up1"]), abs=1e-9
    )
    assert same.loc["roc_auc", "champion v2"] == pytest.approx(deployed_auc(flow["up2"]), abs=1e-9)
    # Those versions were refitted on every labelled month, these months included: the
    # comparison scores them in sample and says so; the gates read the logged out-of-time
    # AUC, which is lower.
    assert any("in sample" in n for n in report.notes), report.notes
    # AUC, which is lower: the column "out of time" beside it is that logged figure.
    oot = report.logged.loc["model.roc_auc", "challenger v1"]
    assert same.loc["roc_auc", "challenger v1 in sample"] > oot
    assert same.loc["roc_auc", "challenger v1 out of time"] == oot
    assert same.loc["n", "challenger v1 out of time"] == same.loc["n", "rule of thumb"]
    assert same.loc["roc_auc", "rule of thumb"] == pytest.approx(
        flow["up2"].comparison().loc["roc_auc", "rule_of_thumb"], abs=1e-9
    )
    assert not report.failed and not report.promoted  # a dry run changes nothing
    assert aliases(UP)["champion"] == "2"
    again = promote(UP, 2, config=flow["cfg"], dry_run=True)
    assert any("already the champion" in f for f in again.failed)


def test_a_failing_promotion_names_the_check_and_changes_nothing(flow):
    res = flow["refused"]
    assert res.exit_code == 1
    assert "min_auc" in res.output and "FAIL" in res.output
    import mlflow

    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("review").experiment_id],
        f"tags.`segments.decision` = 'refused' and tags.`segments.registered_model` = '{UP}'",
    )
    assert len(runs) == 1 and runs[0].data.tags["segments.version"] == "2"
    assert runs[0].data.metrics["check.min_auc"] == 0.0
    assert flow["missing"].exit_code == 1
    assert "has no version 7; versions: 2, 1" in flow["missing"].output
    with pytest.raises(RegistryError, match="does not exist"):
        promote("no-such-model", 1)


# gate -> (model kind, registered model, the value it judges from the run's metrics, rule)
GATES = {
    "min_auc": ("upgrade", UP, lambda m: m["model.roc_auc"], ">="),
    "min_auc_gain_over_rule": (
        "upgrade",
        UP,
        lambda m: m["model.roc_auc"] - m["rule_of_thumb.roc_auc"],
        ">",
    ),
    "max_ece": ("upgrade", UP, lambda m: m["model.ece"], "<="),
    "min_stability": ("groups", GR, lambda m: m["stability_ari_mean"], ">="),
    "min_group_jaccard": ("groups", GR, lambda m: m["stability_jaccard_min"], ">="),
    "min_surrogate_fidelity": ("groups", GR, lambda m: m["surrogate_fidelity"], ">="),
}


@pytest.mark.parametrize("gate", sorted(GATES))
def test_each_gate_refuses_just_outside_and_passes_just_inside(flow, gate):
    import mlflow

    kind, name, judged, rule = GATES[gate]
    client = mlflow.MlflowClient()
    metrics = client.get_run(client.get_model_version(name, "1").run_id).data.metrics
    value = judged(metrics)
    assert np.isfinite(value)
    up, down = np.nextafter(value, np.inf), np.nextafter(value, -np.inf)
    # (threshold, passes): the boundary itself passes for min/max, fails for "above"
    cases = {
        ">=": [(value, True), (up, False)],
        "<=": [(value, True), (down, False)],
        ">": [(down, True), (value, False)],
    }[rule]
    for limit, passes in cases:
        cfg = load_config(overrides={"registry": {"promotion": {kind: {gate: float(limit)}}}})
        report = promote(name, 1, config=cfg, panel=None, dry_run=True)
        row = report.checks.set_index("check").loc[gate]
        assert bool(row["passed"]) is passes, (limit, row["detail"])
        assert any(f.startswith(f"{gate}:") for f in report.failed) is not passes
        assert ("fails" in row["detail"]) is not passes, row["detail"]


def test_ece_by_hand():
    from segments.core.upgrade.metrics import evaluate, expected_calibration_error

    # Twenty customers, ten equal-count bins of two (sorted by p):
    #   p pair        y     mean p  observed  |gap|
    #   .02 .04      0 0    .03     0         .03
    #   .06 .10      0 0    .08     0         .08
    #   .12 .14      0 1    .13     .5        .37
    #   .20 .24      0 0    .22     0         .22
    #   .30 .34      1 0    .32     .5        .18
    #   .40 .44      0 1    .42     .5        .08
    #   .50 .60      1 1    .55     1         .45
    #   .62 .66      0 1    .64     .5        .14
    #   .80 .84      1 1    .82     1         .18
    #   .90 .96      1 1    .93     1         .07
    # each bin holds 2/20 of the customers: ECE = 0.1 * 1.80 = 0.18
    p = [.02, .04, .06, .10, .12, .14, .20, .24, .30, .34,
         .40, .44, .50, .60, .62, .66, .80, .84, .90, .96]  # fmt: skip
    y = [0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1]
    order = np.random.default_rng(0).permutation(20)  # input order does not matter
    p, y = np.array(p)[order], np.array(y)[order]
    assert expected_calibration_error(y, p) == pytest.approx(0.18, abs=1e-12)
    assert evaluate(y, p)["ece"] == pytest.approx(0.18, abs=1e-12)  # what model.ece logs
    # Ties stay in one bin: ten at p = .1 with 3 upgrades, ten at p = .8 with 6:
    # 0.5 * |.3 - .1| + 0.5 * |.6 - .8| = 0.2 (mean |y - p| would be 0.39).
    p = np.repeat([0.1, 0.8], 10)
    y = np.array([1, 1, 1] + [0] * 7 + [1] * 6 + [0] * 4)
    assert expected_calibration_error(y, p) == pytest.approx(0.2, abs=1e-12)


def test_a_signature_that_breaks_the_feature_contract_is_refused(flow):
    res = flow["signature"]
    assert res.exit_code == 1
    assert "signature" in res.output and "not in the current feature contract" in res.output
    assert "aum_avg_6m" in res.output  # the groups use 6-month windows; [4, 8] has none
    assert flow["promote_groups"].exit_code == 0, flow["promote_groups"].output
    with pytest.raises(PromotionError) as info:
        promote(
            GR, 1, config=load_config(overrides={"features": {"windows": [4, 8]}}), dry_run=False
        )
    assert info.value.report is not None
    assert any(f.startswith("signature") for f in info.value.failed)


def test_history_survives_a_server_restart(flow):
    before = history(UP)
    flow["server"].restart()
    res = _cli("history", UP, "--json")
    assert res.exit_code == 0, res.output
    events = json.loads(res.output)
    assert len(events) == len(before) == 4
    assert [(e["event"], e["alias"], e["from_version"], e["to_version"]) for e in events] == [
        ("register", "challenger", None, "1"),
        ("promote", "champion", None, "1"),
        ("register", "challenger", "1", "2"),
        ("promote", "champion", "1", "2"),
    ]
    assert [e["by"] for e in events] == ["reviewer-a", "reviewer-a", "reviewer-a", "reviewer-b"]
    assert events[3]["reason"] == "smaller trees"
    assert events[3]["metrics"]["model.roc_auc"] == pytest.approx(
        flow["up2"].comparison().loc["roc_auc", "model"]
    )
    assert events[1]["evidence_run_id"]
    table = _cli("history", UP)
    assert "aliases now: challenger -> v2, champion -> v2" in table.output


def test_load_by_alias_and_predict(flow):
    model = load_model(f"models:/{UP}@champion")
    up2 = flow["up2"]
    rows = up2.test.head(50)
    frame = rows[list(up2.model.features_)].copy()
    for c in up2.model.categories_:
        frame[c] = frame[c].astype(str)
    p = model.predict(frame)["p_upgrade"].to_numpy()
    np.testing.assert_allclose(p, up2.deployed.predict_proba(rows)[:, 1], rtol=1e-12)
    groups = load_model(f"models:/{GR}@champion")
    X = flow["groups"].features.head(40)
    assigned = groups.predict(X[list(flow["groups"].model.features_)])
    np.testing.assert_array_equal(assigned["group_id"], flow["groups"].groups.head(40))


def test_rest_api_shows_what_a_reviewer_needs(flow):
    url = flow["server"].url
    exp = _get(url, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="review")
    eid = exp["experiment"]["experiment_id"]
    runs = _post(url, "/api/2.0/mlflow/runs/search", {"experiment_ids": [eid], "max_results": 100})[
        "runs"
    ]
    kinds = {}
    for r in runs:
        tags = {t["key"]: t["value"] for t in r["data"].get("tags", [])}
        kinds.setdefault(tags.get("segments.model_kind"), []).append((r, tags))
    assert len(kinds["upgrade"]) == 2 and len(kinds["groups"]) == 1
    decisions = sorted(t["segments.decision"] for _, t in kinds["promotion"])
    # promoted: upgrade v1, groups v1, upgrade v2; refused: min_auc, and the signature twice
    # (CLI and API); dry runs log nothing.
    assert decisions == ["promoted"] * 3 + ["refused"] * 3
    run, tags = kinds["upgrade"][0]
    assert {
        "segments.ladder",
        "segments.as_of",
        "segments.test_months",
        "segments.data_digest",
        "segments.code_version",
        "segments.registered_model",
    } <= set(tags)
    metrics = {m["key"] for m in run["data"]["metrics"]}
    assert {"model.roc_auc", "rule_of_thumb.roc_auc", "model.ece"} <= metrics
    rid = run["info"]["run_id"]
    files = {
        f["path"] for f in _get(url, "/api/2.0/mlflow/artifacts/list", run_id=rid).get("files", [])
    }
    assert {"model_card.md", "model_card.html", "config.yaml", "plots", "evaluation"} <= files
    with urllib.request.urlopen(
        f"{url}/get-artifact?path=model_card.html&run_uuid={rid}", timeout=30
    ) as r:
        card = r.read().decode()
    for section in (
        "Purpose",
        "Data",
        "Population and label",
        "Features used",
        "Metrics against the baselines",
        "Calibration",
        "Stability",
        "Known limits",
        "Configuration",
    ):
        assert f"<h2>{section}" in card, section
    alias = _get(url, "/api/2.0/mlflow/registered-models/alias", name=UP, alias="champion")
    assert alias["model_version"]["version"] == "2"
    model = _get(url, "/api/2.0/mlflow/registered-models/get", name=UP)
    audit = [t for t in model["registered_model"]["tags"] if t["key"].startswith("segments.audit.")]
    assert len(audit) == 4


def _listeners(port: int) -> list[str]:
    """Local addresses of sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, state = fields[1], fields[3]
            host, hexport = addr.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.append(host)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux /proc")
def test_segments_ui_serves_on_loopback_only(tmp_path):
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segments", "ui", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        hosts = _listeners(port)
        assert hosts and all(h == "0100007F" for h in hosts), hosts
        # Not reachable on the machine's other addresses.
        try:
            others = {
                a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
            }
        except OSError:
            others = set()
        for ip in others - {"127.0.0.1"}:
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((ip, port)) != 0, ip
    finally:
        stop_group(proc)
    printed = proc.stdout.read().decode()
    assert f"http://127.0.0.1:{port}" in printed
