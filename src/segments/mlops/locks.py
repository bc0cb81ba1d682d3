"""The registry lock: one alias change at a time per registered model, across machines.

MLflow has no compare-and-set on aliases, so segments serialises alias changes with a lock
that every registry backend can offer: a registered model ``segments-lock--<name>``, whose
creation fails when it exists. Its tags say who holds it (user, pid, host, pid namespace,
purpose, time). A lock whose holder died on this machine, or older than
:data:`LOCK_TIMEOUT_S`, is broken with a warning. See ``docs/registry-safety.md``.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segments.exceptions import RegistryError, SegmentsWarning

__all__ = [
    "LOCK_PREFIX",
    "LOCK_TIMEOUT_S",
    "LockHeld",
    "acquire_lock",
    "current_user",
    "lock_name",
    "not_found",
    "now_utc",
    "registry_lock",
    "release_lock",
]

#: Registered-model name prefix of the per-model lock that serialises alias changes.
LOCK_PREFIX = "segments-lock--"
LOCK_TAGS = "segments.lock."  # tags: holder, purpose, user, pid, host, pidns, acquired_at
#: A lock older than this (seconds, by the holder's clock) is taken to be abandoned and broken.
LOCK_TIMEOUT_S = 600


def not_found(exc: Exception) -> bool:
    """Whether an MLflow error says the thing asked for does not exist."""
    return (
        "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", ""))
        or "not found" in str(exc).lower()
        or "does not exist" in str(exc).lower()
    )


def current_user() -> str:
    """Who is acting: ``SEGMENTS_USER``, else ``MLFLOW_TRACKING_USERNAME``, else the login."""
    return (
        os.environ.get("SEGMENTS_USER")
        or os.environ.get("MLFLOW_TRACKING_USERNAME")
        or getpass.getuser()
    )


def now_utc() -> datetime:
    """The time now, in UTC (one clock for audit events and locks; tests may replace it)."""
    return datetime.now(UTC)


class LockHeld(Exception):
    """The registry lock of a model is held by someone else (internal)."""

    def __init__(self, name: str, tags: Mapping[str, str]) -> None:
        self.name, self.tags = name, dict(tags)
        super().__init__(self.holder)

    @property
    def holder(self) -> str:
        t = self.tags
        return (
            f"{t.get(LOCK_TAGS + 'purpose', 'an unknown change')} by "
            f"{t.get(LOCK_TAGS + 'user', '?')} (pid {t.get(LOCK_TAGS + 'pid', '?')} on "
            f"{t.get(LOCK_TAGS + 'host', '?')}, since {t.get(LOCK_TAGS + 'acquired_at', '?')})"
        )


def lock_name(name: str) -> str:
    """The registered model that is the lock of ``name``."""
    return f"{LOCK_PREFIX}{name}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _pid_ended(pid: int) -> bool:
    """Whether no live process has ``pid`` here (a zombie counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def _already_exists(exc: Exception) -> bool:
    return "ALREADY_EXISTS" in str(getattr(exc, "error_code", ""))


def _read_lock(client: Any, lock: str) -> tuple[dict[str, str], int] | None:
    """The lock's tags and creation time (ms), or None when there is no lock."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(lock)
    except MlflowException as exc:
        if not_found(exc):
            return None
        raise
    return dict(model.tags), int(model.creation_timestamp or 0)


def _stale(tags: Mapping[str, str], created_ms: int) -> str:
    """Why a lock may be broken ("" when it may not)."""
    try:
        since = datetime.fromisoformat(tags[LOCK_TAGS + "acquired_at"])
    except (KeyError, ValueError):
        since = datetime.fromtimestamp(created_ms / 1000, UTC)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    age = (now_utc() - since).total_seconds()
    if age > LOCK_TIMEOUT_S:
        return f"older than {LOCK_TIMEOUT_S // 60} minutes ({age / 60:.0f} min)"
    pid = tags.get(LOCK_TAGS + "pid", "")
    same_machine = (
        tags.get(LOCK_TAGS + "host") == socket.gethostname()
        and tags.get(LOCK_TAGS + "pidns", "") == _pid_namespace()
    )
    if same_machine and pid.isdigit() and int(pid) != os.getpid() and _pid_ended(int(pid)):
        return f"its process (pid {pid} on this machine) has ended"
    return ""


def acquire_lock(client: Any, name: str, purpose: str, wait_s: float = 0.0) -> str:
    """Take the registry lock of ``name``; return the holder token.

    Raises ``LockHeld`` when someone else still holds it after ``wait_s`` seconds. A stale
    lock (see :func:`_stale`) is deleted with a warning, then taken.
    """
    from mlflow.exceptions import MlflowException

    lock, token = lock_name(name), uuid.uuid4().hex
    deadline = time.monotonic() + wait_s
    for _ in range(1000):
        tags = {
            LOCK_TAGS + "holder": token,
            LOCK_TAGS + "purpose": purpose,
            LOCK_TAGS + "user": current_user(),
            LOCK_TAGS + "pid": str(os.getpid()),
            LOCK_TAGS + "host": socket.gethostname(),
            LOCK_TAGS + "pidns": _pid_namespace(),
            LOCK_TAGS + "acquired_at": now_utc().isoformat(timespec="microseconds"),
        }
        try:
            client.create_registered_model(
                lock,
                tags=tags,
                description=f"Lock held by segments while it changes the aliases of {name!r}; "
                "deleted when done. Broken when its process has ended (seen from "
                f"its own machine) or after {LOCK_TIMEOUT_S // 60} minutes.",
            )
            return token
        except MlflowException as exc:
            # "does not exist": the lock vanished between the store's check and its read.
            if not (_already_exists(exc) or not_found(exc)):
                raise
        held = _read_lock(client, lock)
        if held is None:
            continue
        why = _stale(*held)
        if why:
            _break_lock(client, name, held[0], why)
            continue
        if time.monotonic() >= deadline:
            raise LockHeld(name, held[0])
        time.sleep(0.25)
    raise RegistryError(f"could not take the registry lock {lock!r}")


def _break_lock(client: Any, name: str, tags: Mapping[str, str], why: str) -> None:
    """Delete an abandoned lock, if it is still the one that was judged stale."""
    from mlflow.exceptions import MlflowException

    lock = lock_name(name)
    again = _read_lock(client, lock)
    if again is None or again[0].get(LOCK_TAGS + "holder") != tags.get(LOCK_TAGS + "holder"):
        return  # released or re-taken meanwhile: not ours to break
    try:
        client.delete_registered_model(lock)
    except MlflowException as exc:
        if not not_found(exc):
            raise
    warnings.warn(
        SegmentsWarning(
            f"broke the registry lock of {name}, held by {LockHeld(name, tags).holder}: {why}"
        ),
        stacklevel=3,
    )


def release_lock(client: Any, name: str, token: str) -> None:
    """Delete the lock if this holder still holds it; never raise (it is called in finally)."""
    lock = lock_name(name)
    try:
        held = _read_lock(client, lock)
        if held is not None and held[0].get(LOCK_TAGS + "holder") == token:
            client.delete_registered_model(lock)
    except Exception as exc:
        warnings.warn(
            SegmentsWarning(
                f"could not release the registry lock {lock!r} ({exc}); it is broken after "
                f"{LOCK_TIMEOUT_S // 60} minutes, or delete that registered model"
            ),
            stacklevel=2,
        )


@contextlib.contextmanager
def registry_lock(client: Any, name: str, purpose: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the registry lock of ``name`` for the ``with`` block (see :func:`acquire_lock`)."""
    token = acquire_lock(client, name, purpose, wait_s)
    try:
        yield
    finally:
        release_lock(client, name, token)


# --- recoverable registration ---------------------------------------------------------------
