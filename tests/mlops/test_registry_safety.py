"""Registry safety against a real ``mlflow server``: kills and races (issue 13).

- A registration killed between ``register_model`` and the alias move (or the audit event)
  leaves a version that ``promote`` refuses and that the next command completes, with
  exactly one audit event.
- Two ``segments promote`` processes of one version at once: exactly one wins.
- The registry lock is released after a refused promotion; a lock held by another machine
  refuses, and one older than the timeout is broken.

The processes are real: ``python -m segments promote`` and a small registering script,
killed with SIGKILL. To put the kill and the race at a known point, the test's own code
pauses them there: the registering script wraps an ``MlflowClient`` method to wait, and a
``sitecustomize.py`` the test puts on ``PYTHONPATH`` makes each ``segments promote`` wait at
a barrier just before it takes the registry lock. segments itself has no test hook.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import warnings
from datetime import timedelta

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from segments import load_config
from segments.cli import app
from segments.exceptions import PromotionError, SegmentsWarning
from segments.mlops.locks import LOCK_PREFIX, LOCK_TIMEOUT_S
from segments.mlops.promotion import PromotionConflict, promote
from segments.mlops.registry import history, reconcile, register_version
from segments.mlops.tracking import experiment_id, mlflow_module
from tests.mlflow_server import MlflowServer

pytestmark = pytest.mark.slow

runner = CliRunner()

KILL_SCRIPT = """
import sys, time
from mlflow import MlflowClient

point, uri, name, run_id = sys.argv[1:5]
method = "set_registered_model_alias" if point == "alias" else "set_registered_model_tag"
original = getattr(MlflowClient, method)

def paused(self, *args, **kwargs):
    if point == "alias" or str(args[1]).startswith("segments.audit."):
        print("paused", flush=True)
        time.sleep(600)
    return original(self, *args, **kwargs)

setattr(MlflowClient, method, paused)
from segments.mlops.registry import register_version

register_version(uri, name, run_id=run_id, kind="upgrade")
print("not killed", flush=True)
"""

BARRIER = """
import os

if os.environ.get("SAFETY_BARRIER"):
    import time
    from pathlib import Path

    import segments.mlops.promotion as promotion

    _barrier, _me = Path(os.environ["SAFETY_BARRIER"]), os.environ["SAFETY_ID"]
    _acquire = promotion.acquire_lock

    def _acquire_at_barrier(client, name, purpose, *args, **kwargs):
        if purpose.startswith("promote"):
            (_barrier / f"ready-{_me}").touch()
            deadline = time.monotonic() + 120
            while not (_barrier / f"go-{_me}").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        return _acquire(client, name, purpose, *args, **kwargs)

    promotion.acquire_lock = _acquire_at_barrier
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry-safety")
    server = MlflowServer(root).start()
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("MLFLOW_TRACKING_URI", server.url)
    mp.setenv("SEGMENTS_USER", "tester")
    thresholds = {"min_auc": 0.6, "min_auc_gain_over_rule": 0.0, "max_ece": 0.1}
    exp = root / "exp.yaml"
    exp.write_text(yaml.safe_dump({"registry": {"promotion": {"upgrade": thresholds}}}))
    strict = root / "strict.yaml"
    strict.write_text(yaml.safe_dump({"registry": {"promotion": {"upgrade": {"min_auc": 0.99}}}}))
    site = root / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BARRIER)
    (root / "kill.py").write_text(KILL_SCRIPT)
    mlflow = mlflow_module()
    mlflow.set_tracking_uri(server.url)
    yield {
        "server": server,
        "root": root,
        "exp": exp,
        "cfg": load_config(exp),
        "strict": load_config(strict),
        "site": site,
        "client": mlflow.MlflowClient(),
    }
    mp.undo()
    server.stop()


def _log_model() -> tuple[str, str]:
    """A tiny logged upgrade model whose run passes the thresholds and the feature contract."""
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    mlflow = mlflow_module()
    X = pd.DataFrame({"aum_avg_3m": [1.0, 2.0, 3.0, 4.0], "wealth_share": [0.1, 0.2, 0.3, 0.4]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run(experiment_id=experiment_id("safety")) as run:
            mlflow.log_metrics(
                {"model.roc_auc": 0.8, "rule_of_thumb.roc_auc": 0.6, "model.ece": 0.02}
            )
            info = mlflow.sklearn.log_model(
                LogisticRegression().fit(X, [0, 0, 1, 1]),
                name="model",
                signature=infer_signature(X),
                pip_requirements=["scikit-learn"],
            )
    return info.model_uri, run.info.run_id


def _register(name: str) -> str:
    uri, run_id = _log_model()
    return register_version(uri, name, run_id=run_id, kind="upgrade")


def _raw(client, name: str) -> tuple[dict[str, str], list[dict]]:
    """Aliases and audit events as stored, read without reconciling."""
    model = client.get_registered_model(name)
    events = [
        json.loads(v) for k, v in sorted(model.tags.items()) if k.startswith("segments.audit.")
    ]
    return dict(model.aliases), events


def _events(events: list[dict], event: str, version: str) -> list[dict]:
    return [e for e in events if e["event"] == event and e["to_version"] == version]


def _lock_exists(client, name: str) -> bool:
    return bool(client.search_registered_models(f"name = '{LOCK_PREFIX}{name}'"))


def _read_line(proc: subprocess.Popen, timeout: float = 120) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the subprocess printed nothing"
    return proc.stdout.readline().decode().strip()


@pytest.mark.parametrize("point", ["alias", "audit"])
def test_a_registration_killed_midway_is_completed_by_the_next_command(env, point):
    client, name = env["client"], f"kill-{point}"
    assert _register(name) == "1"
    uri, run_id = _log_model()
    proc = subprocess.Popen(
        [sys.executable, str(env["root"] / "kill.py"), point, uri, name, run_id],
        cwd=env["root"],
        env={**os.environ, "SEGMENTS_USER": "killed-trainer"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = _read_line(proc)
        assert line == "paused", (line, proc.stderr.read().decode()[-2000:])
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # What the kill left: version 2, pending, without its audit event; with point="alias"
    # not even the challenger alias. The lock of the dead process is still there.
    mv = client.get_model_version(name, "2")
    assert mv.tags["segments.registration"] == "pending"
    assert mv.tags["segments.registration.previous_challenger"] == "1"
    stored, events = _raw(client, name)
    assert stored["challenger"] == ("1" if point == "alias" else "2")
    assert not _events(events, "register", "2")
    assert _lock_exists(client, name)
    # promote refuses it while it is pending (a dry run reconciles nothing)
    check = promote(name, 2, config=env["cfg"], dry_run=True)
    assert [f.split(":")[0] for f in check.failed] == ["registration_complete"]

    # The next command completes it: `segments history` here, `promote` there.
    if point == "alias":
        res = runner.invoke(app, ["history", name, "--json"])
        assert res.exit_code == 0, res.output
        assert "broke the registry lock" in res.stderr and "has ended" in res.stderr
        shown = json.loads(res.stdout)
        assert [(e["event"], e["from_version"], e["to_version"]) for e in shown] == [
            ("register", None, "1"),
            ("register", "1", "2"),
        ]
    else:
        with pytest.warns(SegmentsWarning, match="broke the registry lock"):
            report = promote(name, 2, config=env["cfg"], reason="after the kill")
        assert report.promoted
    stored, events = _raw(client, name)
    assert stored["challenger"] == "2"
    registered = _events(events, "register", "2")
    assert len(registered) == 1
    assert registered[0]["from_version"] == "1" and registered[0]["alias"] == "challenger"
    assert (
        "reconciled after an interrupted registration started by killed-trainer"
        in (registered[0]["reason"])
    )
    assert registered[0]["run_id"] == run_id
    assert client.get_model_version(name, "2").tags["segments.registration"] == "complete"
    assert not _lock_exists(client, name)
    # Nothing left to do; the log is not written twice.
    assert reconcile(name) == []
    assert len(_events(_raw(client, name)[1], "register", "2")) == 1
    if point == "audit":
        assert len(_events(events, "promote", "2")) == 1
        assert stored["champion"] == "2"
    # A later registration reconciles nothing more and moves challenger on.
    assert _register(name) == "3"
    assert history(name)["to_version"].tolist().count("2") == (1 if point == "alias" else 2)


def _race(env, name: str, order: str) -> list[subprocess.CompletedProcess]:
    """Two ``segments promote NAME --version 2`` processes, released together or in turn."""
    barrier = env["root"] / f"barrier-{name}"
    barrier.mkdir()
    procs = {}
    for who in ("alice", "bob"):
        procs[who] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "segments",
                "promote",
                name,
                "--version",
                "2",
                "--config",
                str(env["exp"]),
                "--reason",
                f"{who} promotes",
            ],
            cwd=env["root"],
            env={
                **os.environ,
                "SEGMENTS_USER": who,
                "SAFETY_BARRIER": str(barrier),
                "SAFETY_ID": who,
                "PYTHONPATH": str(env["site"]),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    try:
        deadline = time.monotonic() + 120
        while not all((barrier / f"ready-{w}").exists() for w in procs):
            assert time.monotonic() < deadline, "the promotions did not reach the lock"
            assert all(p.poll() is None for p in procs.values()), "a promotion ended early"
            time.sleep(0.05)
        # Both have read the champion and passed their checks.
        if order == "together":
            for w in procs:
                (barrier / f"go-{w}").touch()
        else:  # alice completes before bob takes the lock
            (barrier / "go-alice").touch()
            procs["alice"].wait(timeout=120)
            (barrier / "go-bob").touch()
        done = []
        for w, p in procs.items():
            out, err = p.communicate(timeout=120)
            done.append(subprocess.CompletedProcess(w, p.returncode, out.decode(), err.decode()))
        return done
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


@pytest.mark.parametrize("order", ["together", "in_turn"])
def test_two_promotions_of_one_version_at_once_exactly_one_wins(env, order):
    client, name = env["client"], f"race-{order}"
    assert _register(name) == "1"
    promote(name, 1, config=env["cfg"], reason="first")
    assert _register(name) == "2"

    done = _race(env, name, order)
    assert sorted(d.returncode for d in done) == [0, 1], [(d.stdout, d.stderr) for d in done]
    win = next(d for d in done if d.returncode == 0)
    lose = next(d for d in done if d.returncode == 1)
    if order == "in_turn":
        assert (win.args, lose.args) == ("alice", "bob")
    for d in done:
        assert "Traceback" not in d.stdout + d.stderr, d.stderr
    assert f"{name}: champion v1 -> v2" in win.stdout
    lines = lose.stderr.strip().splitlines()
    assert len(lines) == 1, lose.stderr
    assert lines[0].startswith(f"error: promotion of {name} version 2 refused: ")
    assert "evidence in MLflow run" in lines[0]
    if order == "in_turn":  # bob's checks saw v1; under the lock it was alice's v2
        assert (
            f"version 2 became champion while the checks ran: promoted by {win.args}" in (lines[0])
        )
    else:  # either bob found the lock held, or he took it after alice: both name her
        assert win.args in lines[0]
        assert "registry lock" in lines[0] or "became champion" in lines[0]

    stored, events = _raw(client, name)
    assert stored["champion"] == "2"
    promoted = _events(events, "promote", "2")
    assert len(promoted) == 1 and promoted[0]["by"] == win.args
    assert promoted[0]["from_version"] == "1"
    runs = client.search_runs(
        [client.get_experiment_by_name("safety").experiment_id],
        f"tags.`segments.registered_model` = '{name}' and tags.`segments.version` = '2'",
    )
    decisions = {
        r.data.tags["segments.promoted_by"]: r.data.tags["segments.decision"] for r in runs
    }
    assert decisions == {win.args: "promoted", lose.args: "refused"}
    assert not _lock_exists(client, name)


def test_the_lock_is_released_after_a_refused_promotion(env):
    client, name = env["client"], "refused"
    assert _register(name) == "1"
    with pytest.raises(PromotionError) as info:
        promote(name, 1, config=env["strict"])
    assert not isinstance(info.value, PromotionConflict)
    assert [f.split(":")[0] for f in info.value.failed] == ["min_auc"]
    assert not _lock_exists(client, name)
    report = promote(name, 1, config=env["cfg"])
    assert report.promoted and not _lock_exists(client, name)
    assert set(report.checks["check"]) >= {"registry_lock", "champion_unchanged"}


def _hold_lock(client, name: str, age: timedelta) -> None:
    """A lock as another machine's ``segments promote`` writes it, taken ``age`` ago."""
    from segments.mlops.locks import now_utc

    client.create_registered_model(
        f"{LOCK_PREFIX}{name}",
        tags={
            "segments.lock.holder": "other-holder",
            "segments.lock.purpose": "promote v9",
            "segments.lock.user": "carol",
            "segments.lock.pid": "4242",
            "segments.lock.host": "build-7",
            "segments.lock.pidns": "pid:[1]",
            "segments.lock.acquired_at": (now_utc() - age).isoformat(timespec="microseconds"),
        },
    )


def test_a_held_lock_refuses_and_a_stale_one_is_broken(env):
    client, name = env["client"], "locked"
    assert _register(name) == "1"
    _hold_lock(client, name, timedelta(minutes=2))
    with pytest.raises(PromotionConflict) as info:
        promote(name, 1, config=env["cfg"])
    message = str(info.value)
    assert "\n" not in message
    assert "held by promote v9 by carol (pid 4242 on build-7" in message
    assert _lock_exists(client, name)  # not ours to delete
    evidence = client.get_run(info.value.report.evidence_run_id)
    assert evidence.data.tags["segments.decision"] == "refused"
    assert evidence.data.metrics["check.registry_lock"] == 0.0
    assert "champion" not in _raw(client, name)[0]

    client.delete_registered_model(f"{LOCK_PREFIX}{name}")
    _hold_lock(client, name, timedelta(seconds=LOCK_TIMEOUT_S + 60))
    with pytest.warns(SegmentsWarning, match="older than 10 minutes"):
        report = promote(name, 1, config=env["cfg"])
    assert report.promoted and not _lock_exists(client, name)
    assert len(_events(_raw(client, name)[1], "promote", "1")) == 1


def test_versions_registered_before_the_change_count_as_complete(env):
    client, name = env["client"], "legacy"
    uri, _ = _log_model()
    mlflow = mlflow_module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.create_registered_model(name, tags={"segments.model_kind": "upgrade"})
        mlflow.register_model(uri, name)
    assert reconcile(name) == []
    report = promote(name, 1, config=env["cfg"])
    assert report.promoted
    detail = report.checks.set_index("check").loc["registration_complete", "detail"]
    assert detail == "registered before registrations were tracked"


PROMOTE_KILL_SCRIPT = """
import sys, time
from mlflow import MlflowClient

point, name, exp = sys.argv[1:4]
method = "set_registered_model_alias" if point == "alias" else "set_registered_model_tag"
original = getattr(MlflowClient, method)

def paused(self, *args, **kwargs):
    if (point == "alias" and args[1] == "champion") or str(args[1]).startswith(
            "segments.audit."):
        print("paused", flush=True)
        time.sleep(600)
    return original(self, *args, **kwargs)

setattr(MlflowClient, method, paused)
from segments import load_config
from segments.mlops.promotion import promote

promote(name, 2, config=load_config(exp), reason="killed midway")
print("not killed", flush=True)
"""


@pytest.mark.parametrize("point", ["alias", "audit"])
def test_a_promotion_killed_midway_is_completed_or_abandoned_by_the_next_command(env, point):
    client, name = env["client"], f"kill-promote-{point}"
    assert _register(name) == "1"
    promote(name, 1, config=env["cfg"], reason="first")
    assert _register(name) == "2"
    script = env["root"] / "kill_promote.py"
    script.write_text(PROMOTE_KILL_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), point, name, str(env["exp"])],
        cwd=env["root"],
        env={**os.environ, "SEGMENTS_USER": "killed-promoter"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        seen = []  # MLflow prints its run links on stdout before the pause
        while not seen or seen[-1] not in ("paused", "not killed", ""):
            seen.append(_read_line(proc))
        assert seen[-1] == "paused", seen
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    # What the kill left: the promotion recorded as pending, no promote event for v2.
    assert client.get_model_version(name, "2").tags["segments.promotion"] == "pending"
    stored, events = _raw(client, name)
    assert stored["champion"] == ("1" if point == "alias" else "2")
    assert not _events(events, "promote", "2")

    res = runner.invoke(app, ["history", name, "--json"])  # the next command
    assert res.exit_code == 0, res.output
    stored, events = _raw(client, name)
    promoted = _events(events, "promote", "2")
    tags = client.get_model_version(name, "2").tags
    if point == "alias":  # died before champion moved: nothing took effect
        assert stored["champion"] == "1" and promoted == []
        assert tags["segments.promotion"] == "abandoned"
    else:  # champion moved: its event is written once, saying it was reconciled
        assert stored["champion"] == "2" and len(promoted) == 1
        assert promoted[0]["from_version"] == "1"
        assert (
            "reconciled after an interrupted promotion by killed-promoter"
            in (promoted[0]["reason"])
        )
        assert tags["segments.promotion"] == "complete"
        assert tags["segments.promoted_by"] == "killed-promoter"
    assert not _lock_exists(client, name)
    assert reconcile(name) == []
    assert _events(_raw(client, name)[1], "promote", "2") == promoted
