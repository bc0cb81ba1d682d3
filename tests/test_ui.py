"""``segments ui``: the server starts in a process group of its own, says when it is ready,
and SIGTERM or Ctrl-C stops all of it (``mlflow server``, uvicorn and its workers)."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from segments.cli.serve import ServerExited, serve
from segments.exceptions import SegmentsError
from tests.mlflow_server import free_port

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent, process group, state) of a live process; None when gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    state, ppid, pgrp = fields[0], int(fields[1]), int(fields[2])
    return None if state in ("Z", "X") else (ppid, pgrp, state)


def _processes() -> dict[int, tuple[int, int, str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = st
    return found


def _descendants(pid: int) -> set[int]:
    procs, found, todo = _processes(), set(), [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _, _) in procs.items():
            if ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _listening(port: int) -> bool:
    """Whether a socket listens on ``port`` (any address), from /proc/net/tcp and tcp6."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def _seed(store: str) -> dict[str, str]:
    """Two experiments with a segments run each, one without; their ids by name."""
    import mlflow

    client = mlflow.MlflowClient(store)
    ids = {name: client.create_experiment(name) for name in ("alpha", "other", "beta")}
    for name, eid in ids.items():
        tags = {} if name == "other" else {"segments.model_kind": "groups"}
        client.set_terminated(client.create_run(eid, tags=tags).info.run_id)
    return ids


def _lines(stream, into: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)
    into.put(None)


def _wait_for(lines: queue.Queue, text: str, timeout: float) -> list[str]:
    """The lines read until one contains ``text`` (fails after ``timeout`` s or at EOF)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if text in line:
            return seen
    pytest.fail(f"no {text!r} within {timeout:.0f} s; printed:\n{''.join(seen)}")


#: The start of a request whose body never comes, as a browser's request still in flight.
IN_FLIGHT = (
    b"POST /ajax-api/2.0/mlflow/experiments/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_a_signal_to_segments_ui_stops_the_server_and_every_process_it_started(tmp_path, signum):
    """SIGTERM to the ``segments ui`` process alone (as a scheduler or ``kill`` sends it),
    while a browser's request is in flight: ``segments ui`` ends within seconds, nothing
    listens on the port and no process of the server's group survives. SIGKILL, which
    ``segments ui`` cannot see: the same, by the watchdog leading the server's group."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ids = _seed(store)
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segments", "ui", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the test's own cleanup: never signal pytest's group
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    started: set[int] = set()
    browser = None
    try:
        printed = _wait_for(lines, "registry: ", timeout=120)
        base, ml = f"http://127.0.0.1:{port}/segments/#", "?workflowType=machine_learning"
        pages = [line.strip() for line in printed if base in line]
        # The runs of each segments experiment, in the "Model training" workflow; then the
        # registry. No page for the experiment without a segments run.
        assert pages == [
            f"ready: {base}/experiments/{ids['alpha']}/runs{ml}  (experiment alpha)",
            f"experiment beta: {base}/experiments/{ids['beta']}/runs{ml}",
            f"registry: {base}/models{ml}",
        ]
        assert _listening(port)
        started = _descendants(proc.pid)
        procs = _processes()
        groups = {procs[p][1] for p in started if p in procs}
        assert len(started) >= 2, started  # mlflow server and uvicorn at least
        assert proc.pid not in groups  # the server runs in a group of its own
        # A browser's request still in flight: uvicorn's graceful shutdown waits for it.
        browser = socket.create_connection(("127.0.0.1", port))
        browser.sendall(IN_FLIGHT)
        time.sleep(0.5)
        os.kill(proc.pid, signum)
        code = proc.wait(timeout=30)
        if signum == signal.SIGTERM:
            assert code == 0  # stopping the UI is not an error
            rest = "".join(iter(lines.get, None))
            assert "MLflow UI stopped" in rest and "Traceback" not in rest

        def survivors() -> set[int]:
            alive = {p for p in started if _stat(p) is not None}
            return alive | {p for p, (_, g, _) in _processes().items() if g in groups}

        deadline = time.monotonic() + 15  # the watchdog's grace (5 s), then SIGKILL
        while (survivors() or _listening(port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _listening(port)
        assert survivors() == set()
    finally:
        if browser is not None:
            browser.close()
        for pgid in {proc.pid, *started}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        proc.wait()


def test_a_port_in_use_is_a_named_error_and_starts_no_server(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "segments", "ui", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1
    assert f"error: cannot serve on 127.0.0.1:{port}: the port is in use" in done.stderr
    assert "--port" in done.stderr and "Traceback" not in done.stderr
    assert "starting" not in done.stdout


def test_a_server_that_exits_before_answering_is_a_named_error():
    port = free_port()
    with pytest.raises(ServerExited, match=r"exited \(code 3\) before it answered") as caught:
        serve(
            [sys.executable, "-c", "raise SystemExit(3)"],
            dict(os.environ),
            f"http://127.0.0.1:{port}/health",
            on_ready=lambda: pytest.fail("never ready"),
        )
    assert isinstance(caught.value, SegmentsError)  # the CLI prints it on one line, exit 1


#: A stand-in server: answers on its port, and starts a child (in its group) that ignores
#: SIGTERM, as a stuck worker would; writes the child's pid to the file it is given.
FAKE_SERVER = textwrap.dedent(
    """
    import http.server, pathlib, subprocess, sys
    stubborn = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    pathlib.Path(sys.argv[2]).write_text(str(stubborn.pid))
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b"OK")
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_while_serving_stops_the_whole_group_even_a_child_that_ignores_it(
    tmp_path, signum
):
    """``kill``, Ctrl-C or a closed terminal: SIGTERM to the group, then SIGKILL after the
    grace period; nothing of the group is left, and the caller's handlers are back."""
    port = free_port()
    script, pid_file = tmp_path / "fake_server.py", tmp_path / "child.pid"
    script.write_text(FAKE_SERVER)
    seen: dict[str, int] = {}

    def ready() -> None:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        seen["child"] = int(pid_file.read_text())
        assert _stat(seen["child"]) is not None
        os.kill(os.getpid(), signum)  # as `kill <pid of segments ui>` would

    before = signal.getsignal(signum)
    cmd = [sys.executable, str(script), str(port), str(pid_file)]
    code = serve(cmd, dict(os.environ), f"http://127.0.0.1:{port}/", ready)
    assert code == 0
    assert _stat(seen["child"]) is None  # killed although it ignored SIGTERM
    assert not _listening(port)
    assert signal.getsignal(signum) is before


#: ``segments ui`` in small: serves the stand-in server until killed.
STARTER = textwrap.dedent(
    """
    import os, sys
    from segments.cli.serve import serve
    script, port, pid_file = sys.argv[1:]
    cmd = [sys.executable, script, port, pid_file]
    serve(cmd, dict(os.environ), f"http://127.0.0.1:{port}/", lambda: print("ready", flush=True))
    """
)


def test_sigkill_to_the_starter_still_stops_the_whole_group(tmp_path):
    """SIGKILL (no handler runs) to the process serving: its watchdog sees the pipe close and
    stops the server's group, a child that ignores SIGTERM included, within the grace."""
    port = free_port()
    script, pid_file = tmp_path / "fake_server.py", tmp_path / "child.pid"
    script.write_text(FAKE_SERVER)
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(script), str(port), str(pid_file)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    group: set[int] = set()
    try:
        assert starter.stdout.readline().strip() == "ready"
        group = _descendants(starter.pid)
        stubborn = int(pid_file.read_text())
        assert stubborn in group and _listening(port)
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(timeout=10)
        deadline = time.monotonic() + 15  # the grace (5 s) and SIGKILL
        while {p for p in group if _stat(p) is not None} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert {p for p in group if _stat(p) is not None} == set()
        assert not _listening(port)
    finally:
        for pid in {starter.pid, *group}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        starter.wait()


#: A stand-in server that answers its health check once, then is stopped by SIGTERM.
STOPPED_SERVER = textwrap.dedent(
    """
    import http.server, os, signal, sys
    class Once(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b"OK")
            os.kill(os.getpid(), signal.SIGTERM)
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Once).serve_forever()
    """
)


def test_a_server_ended_by_a_signal_returns_128_plus_the_signal(tmp_path):
    """Through its watchdog, as a shell reports it (``segments ui`` takes 143 and 130 as a
    stopped UI, anything else as a failure)."""
    port = free_port()
    script = tmp_path / "stopped.py"
    script.write_text(STOPPED_SERVER)
    code = serve(
        [sys.executable, str(script), str(port)],
        dict(os.environ),
        f"http://127.0.0.1:{port}/",
        on_ready=lambda: None,
    )
    assert code == 128 + signal.SIGTERM
