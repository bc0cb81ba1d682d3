"""The server behind ``segments ui``: started in a process group of its own, watched until it
answers, and stopped whole.

``mlflow server`` starts uvicorn, which starts its workers. Stopping the first process
alone counts on it to pass the signal on, and on uvicorn, which then waits for every open
request (a browser's) before it exits: ``segments ui`` waited with it, and whatever stopped
``segments ui`` meanwhile left the server running. So the server is started in a new
session (its own process group), and SIGTERM, SIGINT or SIGHUP to ``segments ui`` stops that
whole group: SIGTERM, :data:`GRACE` seconds, then SIGKILL. Should ``segments ui`` itself be
killed (SIGKILL, which no handler sees), the server's group is stopped by the watchdog that
leads it (:mod:`segments.cli._watchdog`): it sees the end of a pipe only ``segments ui`` holds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from segments.exceptions import INTERRUPTS, Interrupted, SegmentsError

__all__ = ["ServerExited", "browse_host", "check_port", "serve", "stop_group"]

#: Seconds the server's process group has to end after SIGTERM, before SIGKILL.
GRACE = 5.0
#: What stops ``segments ui``, and so its server: the server's own group no longer hears the
#: terminal, so Ctrl-C (SIGINT) and a closed terminal (SIGHUP) come through here too.
_STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: The script that leads the server's group and stops it when ``segments ui`` is gone.
WATCHDOG = Path(__file__).with_name("_watchdog.py")


class ServerExited(SegmentsError):
    """The server ended before it answered on its health URL."""


def browse_host(host: str) -> str:
    """The address a browser on this machine opens for a server bound to ``host``."""
    if host in ("localhost", "0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def check_port(host: str, port: int) -> None:
    """Refuse, with a named error, a port the server could not bind.

    Raises
    ------
    SegmentsError
        Something listens on ``host:port`` already, or ``host`` is not this machine's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host, port))
        except OSError as exc:
            why = (
                "the port is in use (another MLflow UI?): choose another with --port"
                if exc.errno == errno.EADDRINUSE
                else exc.strerror
            )
            raise SegmentsError(f"cannot serve on {host}:{port}: {why}") from None


@contextlib.contextmanager
def _signals(handler: Callable[..., object] | int) -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP handled by ``handler`` meanwhile (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, handler) for s in _STOPS}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


class _Handler:
    """The stopping signals as :class:`~segments.exceptions.Interrupted`, held back while a
    start is recorded (so a signal cannot come between starting a server and knowing it)."""

    def __init__(self) -> None:
        self.holding = False
        self.pending: int | None = None

    def __call__(self, signum: int, frame: object) -> None:
        if self.holding:
            self.pending = signum
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending is not None:
            raise Interrupted(self.pending)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(proc: subprocess.Popen, grace: float = GRACE) -> None:
    """Stop ``proc`` and every process of its group: SIGTERM, ``grace`` seconds, SIGKILL.

    Parameters
    ----------
    proc : subprocess.Popen
        Started with ``start_new_session=True`` (it leads its group).
    grace : float
        Seconds between SIGTERM and SIGKILL.
    """
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()
    if proc.stdin is not None:
        proc.stdin.close()
    deadline = time.monotonic() + 2.0  # SIGKILL is not instant
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _answers(url: str) -> bool:
    """Whether ``url`` answers 200 (straight, never through an HTTP proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def serve(
    cmd: Sequence[str],
    env: dict[str, str],
    health: str,
    on_ready: Callable[[], None],
    on_slow: Callable[[float], None] = lambda waited: None,
) -> int:
    """Run a server until it ends or SIGTERM/SIGINT/SIGHUP stops it; return its exit code.

    Parameters
    ----------
    cmd, env : the server's command line and environment.
    health : str
        A URL that answers 200 once the server serves; polled until it does.
    on_ready : callable
        Called once, when ``health`` answers.
    on_slow : callable
        Called with the seconds waited, every 30 s the server takes to answer.

    Returns
    -------
    int
        The server's exit code; 0 when a signal stopped it (its whole group is stopped).

    Raises
    ------
    ServerExited
        The server ended before ``health`` answered.
    """
    procs: list[subprocess.Popen] = []
    handler = _Handler()
    try:
        with _signals(handler):
            with handler.held():
                # Led by the watchdog, whose standard input only this process writes to.
                watched = [sys.executable, str(WATCHDOG), str(GRACE), *cmd]
                procs.append(
                    subprocess.Popen(
                        watched, env=env, stdin=subprocess.PIPE, start_new_session=True
                    )
                )
            proc, start, slow = procs[0], time.monotonic(), 30.0
            while not _answers(health):
                if proc.poll() is not None:
                    raise ServerExited(
                        f"the MLflow server exited (code {proc.returncode}) before it answered "
                        f"on {health}: its messages are above"
                    )
                if time.monotonic() - start > slow:
                    on_slow(slow)
                    slow += 30.0
                time.sleep(0.5)
            on_ready()
            return proc.wait()
    except INTERRUPTS:
        return 0
    finally:
        with _signals(signal.SIG_IGN):  # a second Ctrl-C does not cut the cleanup short
            for p in procs:
                stop_group(p)
