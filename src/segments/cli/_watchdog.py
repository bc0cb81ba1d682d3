"""Run a server and stop its whole process group once the process that started it is gone.

Run by path (``python _watchdog.py GRACE CMD...``, so it imports nothing of segments), as the
leader of a new process group, with a pipe as its standard input whose only writer is the
process that started it. A process ends however it ends (SIGKILL included) with its files
closed, so the end of that input means the starter is gone: the watchdog then sends SIGTERM
to its group, waits ``GRACE`` seconds for the server, and sends SIGKILL to what is left,
itself included. Portable where process groups are (Linux, macOS), unlike a parent-death
signal. SIGTERM to the group (the starter's own way to stop the server) ends the server; the
watchdog outlives it only to return its exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading


def _ignore(signum: int, frame: object) -> None:
    """A handler, not SIG_IGN: the server started after it gets the default back on exec."""


def _guard(server: subprocess.Popen, grace: float, orphaned: threading.Event) -> None:
    while os.read(0, 4096):  # returns b"" at end of input: the starter has ended
        pass
    orphaned.set()
    os.killpg(0, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=grace)
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Start ``argv[2:]``, guard it, and return its exit code (128 + signal if signalled)."""
    grace = float(argv[1])
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _ignore)
    server = subprocess.Popen(argv[2:], stdin=subprocess.DEVNULL)
    orphaned = threading.Event()
    guard = threading.Thread(target=_guard, args=(server, grace, orphaned), daemon=True)
    guard.start()
    code = server.wait()
    if orphaned.is_set():  # the guard stops the rest of the group (and this process)
        guard.join()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    os._exit(main(sys.argv))  # not sys.exit: the guard thread is blocked reading stdin
