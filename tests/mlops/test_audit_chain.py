"""The tamper-evident audit trail (issue 17) against a real ``mlflow server``.

Each model gets a chain of four events written by segments itself (register v1, promote
v1, register v2, promote v2); each test then tampers with it the way someone with UI or
API access could, with a plain ``MlflowClient``, and checks that ``verify_audit`` and
``segments history --verify`` name what was done.
"""

from __future__ import annotations

import itertools
import json
import warnings

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from segments import load_config
from segments.cli import app
from segments.mlops.audit import AUDIT_PREFIX, event_hash, genesis, stored_events
from segments.mlops.audit_verify import check_audit, verify_audit
from segments.mlops.promotion import promote
from segments.mlops.registry import history, register_version
from segments.mlops.tracking import experiment_id, mlflow_module
from tests.mlflow_server import MlflowServer

pytestmark = pytest.mark.slow

runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit-chain")
    server = MlflowServer(root).start()
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("MLFLOW_TRACKING_URI", server.url)
    mp.setenv("SEGMENTS_USER", "tester")
    exp = root / "exp.yaml"
    thresholds = {"min_auc": 0.6, "min_auc_gain_over_rule": 0.0, "max_ece": 0.1}
    exp.write_text(yaml.safe_dump({"registry": {"promotion": {"upgrade": thresholds}}}))
    mlflow = mlflow_module()
    mlflow.set_tracking_uri(server.url)
    yield {"cfg": load_config(exp), "client": mlflow.MlflowClient()}
    mp.undo()
    server.stop()


def _register(name: str) -> str:
    """A tiny logged upgrade model that passes the thresholds, registered under ``name``."""
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    mlflow = mlflow_module()
    X = pd.DataFrame({"aum_avg_3m": [1.0, 2.0, 3.0, 4.0], "wealth_share": [0.1, 0.2, 0.3, 0.4]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(experiment_id=experiment_id("audit")) as run:
            mlflow.log_metrics(
                {"model.roc_auc": 0.8, "rule_of_thumb.roc_auc": 0.6, "model.ece": 0.02}
            )
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(X, [0, 0, 1, 1]),
                name="model",
                signature=infer_signature(X),
                pip_requirements=["scikit-learn"],
            )
    return register_version(info.model_uri, name, run_id=run.info.run_id, kind="upgrade")


def _chain(env, name: str) -> None:
    """register v1, promote v1, register v2, promote v2: seq 1 to 4."""
    for reason in ("first model", "smaller trees"):
        version = _register(name)
        assert promote(name, version, config=env["cfg"], reason=reason).promoted


def _stored(client, name: str) -> dict[int, tuple[str, dict]]:
    """seq -> (registry tag key, event), as stored."""
    found = stored_events(client.get_registered_model(name))
    return {e["seq"]: (k, e) for k, e in found if e and "seq" in e}


def _kinds(problems) -> list[tuple[str, int | None, str | None]]:
    return sorted(((p.kind, p.seq, p.alias) for p in problems), key=str)


def _cli_verify(name: str):
    return runner.invoke(app, ["history", name, "--verify"])


def test_an_intact_chain_verifies_and_is_mirrored_on_its_runs(env):
    client, name = env["client"], "intact"
    _chain(env, name)
    events = [e for _, e in sorted(_stored(client, name).values(), key=lambda s: s[1]["seq"])]
    assert [(e["seq"], e["event"], e["to_version"]) for e in events] == [
        (1, "register", "1"),
        (2, "promote", "1"),
        (3, "register", "2"),
        (4, "promote", "2"),
    ]
    assert events[0]["prev"] == genesis(name)
    for before, after in itertools.pairwise(events):
        assert after["prev"] == before["hash"] == event_hash(before)
    assert events[3]["hash"] == event_hash(events[3])
    # Mirrored: register events on their training runs, promotions on their evidence runs.
    for e in events:
        run = client.get_run(e["evidence_run_id"] if e["event"] == "promote" else e["run_id"])
        link = json.loads(run.data.tags[f"segments.audit_event.{e['seq']}"])
        assert (link["model"], link["seq"], link["hash"]) == (name, e["seq"], e["hash"])
        assert run.data.tags["segments.audit_model"] == name
    check = check_audit(name)
    assert check.ok and verify_audit(name) == []
    assert (check.chained, check.legacy, check.head_seq) == (4, 0, 4)
    assert check.head_hash == events[3]["hash"]
    frame = history(name)
    assert frame["seq"].tolist() == [1, 2, 3, 4]
    assert frame["hash"].tolist() == [e["hash"] for e in events]
    res = _cli_verify(name)
    assert res.exit_code == 0, res.output
    assert f"audit chain: OK (4 chained event(s), head seq 4, hash {events[3]['hash']})" in (
        res.output
    )
    res = runner.invoke(app, ["history", name, "--json", "--verify"])
    assert res.exit_code == 0, res.output
    assert [e["seq"] for e in json.loads(res.stdout)] == [1, 2, 3, 4]


@pytest.mark.parametrize("mirror", ["kept", "deleted too"])
def test_a_deleted_event_is_detected_and_recovered_from_its_run(env, mirror):
    client, name = env["client"], f"deleted-{mirror.split()[0]}"
    _chain(env, name)
    key, event = _stored(client, name)[2]
    client.delete_registered_model_tag(name, key)
    if mirror == "deleted too":
        client.delete_tag(event["evidence_run_id"], "segments.audit_event.2")
    assert len(history(name)) == 3  # what a reader sees, silently before issue 17
    check = check_audit(name)
    if mirror == "kept":
        assert _kinds(check.problems) == [("deleted", 2, None)]
        assert event["evidence_run_id"] in check.problems[0].detail
        assert "promote champion (none) -> v1 by tester" in check.problems[0].detail
        assert check.recovered == [event]  # the whole event, read back from the run
    else:  # no copy left: a gap in seq
        assert _kinds(check.problems) == [("gap", 2, None)]
    res = _cli_verify(name)
    assert res.exit_code == 1, res.output
    assert "seq 2 is missing" in res.output
    assert "failed verification: 1 problem(s)" in res.output


def test_deleting_the_newest_event_is_detected_by_its_mirror_and_the_aliases(env):
    client, name = env["client"], "deleted-head"
    _chain(env, name)
    key, event = _stored(client, name)[4]
    client.delete_registered_model_tag(name, key)
    client.delete_tag(event["evidence_run_id"], "segments.audit_event.4")
    # No copy, no later event to break: champion v2 now has no event that set it.
    assert _kinds(verify_audit(name)) == [("alias_moved", None, "champion")]
    assert "the last event (seq 2) set it to v1" in verify_audit(name)[0].detail


def test_an_edited_event_is_detected(env):
    client, name = env["client"], "edited"
    _chain(env, name)
    stored = _stored(client, name)
    key, event = stored[2]
    client.set_registered_model_tag(name, key, json.dumps({**event, "reason": "board approved"}))
    problems = verify_audit(name)
    assert _kinds(problems) == [("edited", 2, None)]
    assert "differs from the copy" in problems[0].detail and "reason" in problems[0].detail
    res = _cli_verify(name)
    assert res.exit_code == 1 and "edited: seq 2 was edited" in res.output


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link_and_the_mirror(env):
    client, name = env["client"], "rehashed"
    _chain(env, name)
    key, event = _stored(client, name)[3]
    forged = {**event, "reason": "forged"}
    forged["hash"] = event_hash(forged)
    client.set_registered_model_tag(name, key, json.dumps(forged))
    assert _kinds(verify_audit(name)) == [("broken_link", 4, None), ("mirror_mismatch", 3, None)]
    assert _cli_verify(name).exit_code == 1


def test_moving_the_champion_outside_segments_is_detected(env):
    client, name = env["client"], "moved"
    _chain(env, name)
    client.set_registered_model_alias(name, "champion", "1")
    problems = verify_audit(name)
    assert _kinds(problems) == [("alias_moved", None, "champion")]
    assert problems[0].detail == (
        "champion -> v1 was moved outside segments: the last event (seq 4) set it to v2"
    )
    res = _cli_verify(name)
    assert res.exit_code == 1 and "alias_moved: champion -> v1" in res.output
    res = runner.invoke(app, ["history", name])  # without --verify: warned, exit 0
    assert res.exit_code == 0 and "audit chain: 1 PROBLEM(S)" in res.output


def test_deleting_the_champion_alias_is_detected(env):
    client, name = env["client"], "alias-deleted"
    _chain(env, name)
    client.delete_registered_model_alias(name, "champion")
    assert _kinds(verify_audit(name)) == [("alias_deleted", None, "champion")]
    res = _cli_verify(name)
    assert res.exit_code == 1 and "champion was deleted outside segments" in res.output


def test_a_champion_set_outside_segments_is_detected(env):
    client, name = env["client"], "alias-added"
    _register(name)
    client.set_registered_model_alias(name, "champion", "1")
    assert _kinds(verify_audit(name)) == [("alias_added", None, "champion")]


def test_legacy_events_are_read_as_unchained_and_the_chain_starts_after_them(env):
    client, name = env["client"], "legacy"
    _register(name)  # seq 1 written by segments, then made to look like an old event
    key, event = _stored(client, name)[1]
    old = {k: v for k, v in event.items() if k not in ("seq", "prev", "hash")}
    client.delete_registered_model_tag(name, key)
    client.set_registered_model_tag(
        name, AUDIT_PREFIX + "20240101T000000.000000Z-0", json.dumps(old)
    )
    client.delete_tag(event["run_id"], "segments.audit_event.1")  # never mirrored either
    assert promote(name, "1", config=env["cfg"], reason="first").promoted
    check = check_audit(name)
    assert check.ok, check.problems
    assert (check.legacy, check.chained, check.head_seq) == (1, 1, 1)
    assert any("1 legacy event(s)" in n for n in check.notes)
    frame = history(name)
    assert frame["event"].tolist() == ["register", "promote"]
    assert frame["seq"].isna().tolist() == [True, False]
    res = runner.invoke(app, ["history", name, "--verify"])
    assert res.exit_code == 0, res.output
    assert "legacy" in res.output and "unchained, not verifiable" in res.output
    # An unchained event written after the chain started is not legacy: it is named.
    late = AUDIT_PREFIX + "29990101T000000.000000Z-late"
    client.set_registered_model_tag(name, late, json.dumps(old))
    assert _kinds(verify_audit(name)) == [("unchained", None, None)]


def test_two_events_with_the_same_seq_are_a_fork(env):
    client, name = env["client"], "fork"
    _register(name)
    key, event = _stored(client, name)[1]
    client.set_registered_model_tag(name, key[:-8] + "f0f0f0f0", json.dumps(event))
    assert _kinds(verify_audit(name)) == [("duplicate", 1, None)]


def test_a_deleted_mirror_is_detected(env):
    client, name = env["client"], "unmirrored"
    _chain(env, name)
    _, event = _stored(client, name)[3]
    client.delete_tag(event["run_id"], "segments.audit_event.3")
    problems = verify_audit(name)
    assert _kinds(problems) == [("unmirrored", 3, None)]
    assert event["run_id"] in problems[0].detail
