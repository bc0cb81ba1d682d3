"""The model registry: versions, ``challenger`` and ``champion`` aliases, and an audit trail.

Every tracked training registers its model as a new version of a registered model
(``<experiment>-groups`` or ``<experiment>-upgrade`` unless configured) and points the alias
``challenger`` at it. :func:`promote` moves ``champion`` to a version only after checks (the
version exists, its run finished, its logged metrics meet the configured thresholds, its
signature matches the current feature contract), with a comparison against the current
champion logged as an MLflow run.

MLflow keeps no history of alias changes, so segments keeps its own, in the registry:
each change is a registered-model tag ``segments.audit.<UTC time>-<random>`` holding a JSON
event (who, when, alias, from and to version, reason, metrics, evidence run). Tags live in
the tracking server's backend store, so the log survives restarts; keys never collide, so
nothing is overwritten. :func:`history` reads it back in time order.

Two guarantees hold when processes die or run at the same time (``docs/registry-safety.md``):

- **A registration is recoverable.** A new version is created tagged
  ``segments.registration=pending`` (with the challenger it replaces); the alias move and the
  audit event follow, then the tag becomes ``complete``. A process killed in between leaves a
  pending version, which :func:`reconcile` completes; :func:`register_version`,
  :func:`promote`, :func:`history` and :func:`aliases` call it first, so the next command on
  that model repairs it. :func:`promote` refuses a version whose registration is pending.
- **One promotion wins.** MLflow has no compare-and-set on aliases, so alias changes hold a
  lock: a registered model ``segments-lock--<name>``, whose creation fails when it exists
  (the one atomic operation every registry backend offers across machines). Under the lock
  :func:`promote` re-reads the champion and refuses if it moved since its checks ran. A lock
  whose holder died on this machine, or older than :data:`LOCK_TIMEOUT_S`, is broken.
"""

from __future__ import annotations

import contextlib
import getpass
import io
import json
import os
import socket
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segments.exceptions import (
    ConfigError,
    PromotionConflict,
    PromotionError,
    RegistryError,
    SegmentsWarning,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "KEY_METRICS",
    "LOCK_TIMEOUT_S",
    "PromotionConflict",
    "PromotionReport",
    "aliases",
    "history",
    "promote",
    "reconcile",
    "register_version",
    "signature_problems",
]

CHALLENGER = "challenger"
CHAMPION = "champion"
AUDIT_PREFIX = "segments.audit."
KIND_TAG = "segments.model_kind"

#: Model-version tag: ``pending`` from creation until the alias and audit event are written,
#: then ``complete``. Versions registered before it existed have no tag and count as complete.
REGISTRATION_TAG = "segments.registration"
PENDING, COMPLETE = "pending", "complete"
_REG = REGISTRATION_TAG + "."  # .previous_challenger, .reason, .run_id, .by, .started_at
#: Model-version tag: ``pending`` from just before ``champion`` moves to the version until
#: its audit event is written, then ``complete`` (``abandoned`` when the process died
#: before the alias moved, so nothing took effect).
PROMOTION_TAG = "segments.promotion"
ABANDONED = "abandoned"
_PRO = PROMOTION_TAG + "."  # .from_version, .reason, .by, .started_at, .evidence_run

#: Registered-model name prefix of the per-model lock that serialises alias changes.
LOCK_PREFIX = "segments-lock--"
_LOCK = "segments.lock."  # tags: holder, purpose, user, pid, host, pidns, acquired_at
#: A lock older than this (seconds, by the holder's clock) is taken to be abandoned and broken.
LOCK_TIMEOUT_S = 600
#: How long a registration waits for the lock before leaving its version to be reconciled.
REGISTER_LOCK_WAIT_S = 30.0
#: How long :func:`reconcile` waits for the lock before leaving pending versions for later.
RECONCILE_LOCK_WAIT_S = 5.0

#: Metrics quoted in audit events and comparisons, per model kind.
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "upgrade": (
        "model.roc_auc",
        "rule_of_thumb.roc_auc",
        "logistic.roc_auc",
        "model.pr_auc",
        "model.brier",
        "model.ece",
        "model.lift_top10",
    ),
    "groups": (
        "n_groups",
        "stability_ari_mean",
        "stability_jaccard_min",
        "surrogate_fidelity",
        "chosen_silhouette",
        "smallest_group_share",
        "reference_ari",
    ),
}

# threshold -> (what it measures, how to compute it from run metrics, comparison)
_CHECKS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "min_auc": ("out-of-time ROC-AUC", ("model.roc_auc",), ">="),
    "min_auc_gain_over_rule": (
        "ROC-AUC minus the rule of thumb's",
        ("model.roc_auc", "rule_of_thumb.roc_auc"),
        ">",
    ),
    "max_ece": ("expected calibration error", ("model.ece",), "<="),
    "min_stability": ("bootstrap ARI (mean)", ("stability_ari_mean",), ">="),
    "min_group_jaccard": ("smallest group's bootstrap Jaccard", ("stability_jaccard_min",), ">="),
    "min_surrogate_fidelity": ("surrogate fidelity", ("surrogate_fidelity",), ">="),
}


def _client() -> Any:
    from segments.mlops.tracking import _mlflow, configure_tracking

    mlflow = _mlflow()
    configure_tracking()
    return mlflow.MlflowClient()


def _not_found(exc: Exception) -> bool:
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


def _now() -> datetime:
    return datetime.now(UTC)


def _append_audit(client: Any, name: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """Append one event to the registered model's audit log (a new, unique tag)."""
    at = _now()
    record = {"at": at.isoformat(timespec="microseconds"), "by": current_user(), **event}
    key = f"{AUDIT_PREFIX}{at.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:8]}"
    client.set_registered_model_tag(name, key, json.dumps(record, sort_keys=True, default=str))
    return record


def _get_model(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if _not_found(exc):
            known = sorted(
                m.name
                for m in client.search_registered_models(max_results=100)
                if not m.name.startswith(LOCK_PREFIX)
            )
            raise RegistryError(
                f"registered model {name!r} does not exist"
                + (f"; known: {', '.join(known)}" if known else "")
            ) from None
        raise


def _run_metrics(client: Any, run_id: str | None, kind: str) -> dict[str, float]:
    if not run_id:
        return {}
    metrics = client.get_run(run_id).data.metrics
    return {k: float(metrics[k]) for k in KEY_METRICS.get(kind, ()) if k in metrics}


def _aliases(model: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(model.aliases).items()}


def _events(model: Any) -> list[dict[str, Any]]:
    """The audit events stored on a registered model, oldest first."""
    return [json.loads(v) for k, v in sorted(model.tags.items()) if k.startswith(AUDIT_PREFIX)]


# --- the registry lock ----------------------------------------------------------------------


class _LockHeld(Exception):
    """The registry lock of a model is held by someone else (internal)."""

    def __init__(self, name: str, tags: Mapping[str, str]) -> None:
        self.name, self.tags = name, dict(tags)
        super().__init__(self.holder)

    @property
    def holder(self) -> str:
        t = self.tags
        return (
            f"{t.get(_LOCK + 'purpose', 'an unknown change')} by "
            f"{t.get(_LOCK + 'user', '?')} (pid {t.get(_LOCK + 'pid', '?')} on "
            f"{t.get(_LOCK + 'host', '?')}, since {t.get(_LOCK + 'acquired_at', '?')})"
        )


def _lock_name(name: str) -> str:
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
        if _not_found(exc):
            return None
        raise
    return dict(model.tags), int(model.creation_timestamp or 0)


def _stale(tags: Mapping[str, str], created_ms: int) -> str:
    """Why a lock may be broken ("" when it may not)."""
    try:
        since = datetime.fromisoformat(tags[_LOCK + "acquired_at"])
    except (KeyError, ValueError):
        since = datetime.fromtimestamp(created_ms / 1000, UTC)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    age = (_now() - since).total_seconds()
    if age > LOCK_TIMEOUT_S:
        return f"older than {LOCK_TIMEOUT_S // 60} minutes ({age / 60:.0f} min)"
    pid = tags.get(_LOCK + "pid", "")
    same_machine = (
        tags.get(_LOCK + "host") == socket.gethostname()
        and tags.get(_LOCK + "pidns", "") == _pid_namespace()
    )
    if same_machine and pid.isdigit() and int(pid) != os.getpid() and _pid_ended(int(pid)):
        return f"its process (pid {pid} on this machine) has ended"
    return ""


def _acquire_lock(client: Any, name: str, purpose: str, wait_s: float = 0.0) -> str:
    """Take the registry lock of ``name``; return the holder token.

    Raises ``_LockHeld`` when someone else still holds it after ``wait_s`` seconds. A stale
    lock (see :func:`_stale`) is deleted with a warning, then taken.
    """
    from mlflow.exceptions import MlflowException

    lock, token = _lock_name(name), uuid.uuid4().hex
    deadline = time.monotonic() + wait_s
    for _ in range(1000):
        tags = {
            _LOCK + "holder": token,
            _LOCK + "purpose": purpose,
            _LOCK + "user": current_user(),
            _LOCK + "pid": str(os.getpid()),
            _LOCK + "host": socket.gethostname(),
            _LOCK + "pidns": _pid_namespace(),
            _LOCK + "acquired_at": _now().isoformat(timespec="microseconds"),
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
            if not (_already_exists(exc) or _not_found(exc)):
                raise
        held = _read_lock(client, lock)
        if held is None:
            continue
        why = _stale(*held)
        if why:
            _break_lock(client, name, held[0], why)
            continue
        if time.monotonic() >= deadline:
            raise _LockHeld(name, held[0])
        time.sleep(0.25)
    raise RegistryError(f"could not take the registry lock {lock!r}")


def _break_lock(client: Any, name: str, tags: Mapping[str, str], why: str) -> None:
    """Delete an abandoned lock, if it is still the one that was judged stale."""
    from mlflow.exceptions import MlflowException

    lock = _lock_name(name)
    again = _read_lock(client, lock)
    if again is None or again[0].get(_LOCK + "holder") != tags.get(_LOCK + "holder"):
        return  # released or re-taken meanwhile: not ours to break
    try:
        client.delete_registered_model(lock)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
    warnings.warn(
        SegmentsWarning(
            f"broke the registry lock of {name}, held by {_LockHeld(name, tags).holder}: {why}"
        ),
        stacklevel=3,
    )


def _release_lock(client: Any, name: str, token: str) -> None:
    """Delete the lock if this holder still holds it; never raise (it is called in finally)."""
    lock = _lock_name(name)
    try:
        held = _read_lock(client, lock)
        if held is not None and held[0].get(_LOCK + "holder") == token:
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
def _registry_lock(client: Any, name: str, purpose: str, wait_s: float = 0.0) -> Iterator[None]:
    token = _acquire_lock(client, name, purpose, wait_s)
    try:
        yield
    finally:
        _release_lock(client, name, token)


# --- recoverable registration ---------------------------------------------------------------


def _newer(a: str, b: str) -> bool:
    try:
        return int(a) > int(b)
    except ValueError:
        return a != b


def _complete_registration(
    client: Any, name: str, version: str, *, reconciled: bool
) -> dict[str, Any] | None:
    """Move ``challenger`` to a pending version, append its audit event, mark it complete.

    Idempotent, and called under the registry lock: a version no longer pending is left
    alone, an alias already moved is not moved again, and an audit event already written is
    not written twice. ``challenger`` is not taken from a newer version.
    """
    mv = client.get_model_version(name, version)
    if mv.tags.get(REGISTRATION_TAG) != PENDING:
        return None
    model = client.get_registered_model(name)
    kind = model.tags.get(KIND_TAG) or mv.tags.get(KIND_TAG, "")
    current = _aliases(model).get(CHALLENGER)
    previous = mv.tags.get(_REG + "previous_challenger") or None
    run_id = mv.tags.get(_REG + "run_id") or mv.run_id
    logged = any(
        e.get("event") == "register" and str(e.get("to_version")) == version for e in _events(model)
    )
    alias: str | None = CHALLENGER
    moved = False
    if current == version:  # the interrupted process moved it already
        source = previous
    elif current is None or _newer(version, current):
        client.set_registered_model_alias(name, CHALLENGER, version)
        moved, source = True, current
    else:
        alias, source = None, None
    reason = mv.tags.get(_REG + "reason") or "trained"
    if reconciled:
        reason += (
            f" (reconciled after an interrupted registration started by "
            f"{mv.tags.get(_REG + 'by', '?')} at {mv.tags.get(_REG + 'started_at', '?')})"
        )
    if alias is None:
        reason += f"; challenger left on v{current}, a newer version"
    if not logged:
        _append_audit(
            client,
            name,
            {
                "event": "register",
                "alias": alias,
                "from_version": source,
                "to_version": version,
                "reason": reason,
                "run_id": run_id,
                "metrics": _run_metrics(client, run_id, kind),
            },
        )
    client.set_model_version_tag(name, version, REGISTRATION_TAG, COMPLETE)
    return {
        "version": version,
        "challenger_moved": moved,
        "audit_appended": not logged,
        "challenger": version if alias else current,
    }


def _pending(client: Any, name: str, tag: str = REGISTRATION_TAG) -> list[str]:
    found = client.search_model_versions(f"name='{name}' and tags.`{tag}` = '{PENDING}'")
    return sorted({str(mv.version) for mv in found}, key=int)


def _complete_promotion(
    client: Any, name: str, version: str, *, reconciled: bool
) -> dict[str, Any] | None:
    """Finish a promotion whose ``champion`` move is recorded as pending: the version tags
    and the audit event, once. Idempotent; called under the registry lock. A promotion
    whose process died before ``champion`` moved took no effect and is marked abandoned."""
    mv = client.get_model_version(name, version)
    if mv.tags.get(PROMOTION_TAG) != PENDING:
        return None
    model = client.get_registered_model(name)
    if _aliases(model).get(CHAMPION) != version:
        client.set_model_version_tag(name, version, PROMOTION_TAG, ABANDONED)
        return {"version": version, "promoted": False, "audit_appended": False}
    t = {k[len(_PRO) :]: v for k, v in mv.tags.items() if k.startswith(_PRO)}
    evidence = t.get("evidence_run", "")
    logged = any(
        e.get("event") == "promote"
        and str(e.get("to_version")) == version
        and e.get("evidence_run_id") == evidence
        for e in _events(model)
    )
    reason = t.get("reason") or "(none given)"
    for key, value in {
        "segments.promoted_at": t.get("started_at", ""),
        "segments.promoted_by": t.get("by", ""),
        "segments.promotion_reason": reason,
        "segments.promotion_run": evidence,
    }.items():
        if mv.tags.get(key) != value:
            client.set_model_version_tag(name, version, key, value)
    if reconciled:
        reason += (
            f" (reconciled after an interrupted promotion by {t.get('by', '?')} at "
            f"{t.get('started_at', '?')})"
        )
    if not logged:
        kind = model.tags.get(KIND_TAG) or mv.tags.get(KIND_TAG, "")
        _append_audit(
            client,
            name,
            {
                "event": "promote",
                "alias": CHAMPION,
                "from_version": t.get("from_version") or None,
                "to_version": version,
                "reason": reason,
                "run_id": mv.run_id,
                "evidence_run_id": evidence,
                "metrics": _run_metrics(client, mv.run_id, kind),
            },
        )
    client.set_model_version_tag(name, version, PROMOTION_TAG, COMPLETE)
    return {"version": version, "promoted": True, "audit_appended": not logged}


def _reconcile(client: Any, name: str, *, strict: bool = False) -> list[dict[str, Any]]:
    """Complete pending registrations; unless ``strict``, a failure (say, a reader without
    write access to the registry) is a warning and leaves them for the next command."""
    from mlflow.exceptions import MlflowException

    try:
        if not _pending(client, name) and not _pending(client, name, PROMOTION_TAG):
            return []
        with _registry_lock(client, name, "reconcile", RECONCILE_LOCK_WAIT_S):
            fixed = [
                _complete_registration(client, name, v, reconciled=True)
                for v in _pending(client, name)
            ]
            fixed += [
                _complete_promotion(client, name, v, reconciled=True)
                for v in _pending(client, name, PROMOTION_TAG)
            ]
    except _LockHeld:
        return []  # the holder (or the next command) completes them
    except MlflowException as exc:
        if strict:
            raise
        warnings.warn(
            SegmentsWarning(
                f"could not complete the pending registrations of "
                f"{name} ({exc}); the next command tries again"
            ),
            stacklevel=3,
        )
        return []
    return [f for f in fixed if f is not None]


def reconcile(name: str) -> list[dict[str, Any]]:
    """Complete the registrations and promotions of ``name`` that a killed process left
    pending.

    A version tagged ``segments.registration=pending`` was created but its process stopped
    before (or while) moving ``challenger`` and appending the audit event. Each one, oldest
    first, under the registry lock: ``challenger`` moves to it unless a newer version holds
    it; the missing ``register`` audit event is appended, its reason saying it was
    reconciled after an interrupted registration; the version is marked ``complete``.
    A version tagged ``segments.promotion=pending`` passed every promotion check but its
    process stopped around the ``champion`` move: when ``champion`` points at it, its
    ``promote`` event (and version tags) are written once and it is marked ``complete``;
    otherwise the promotion took no effect and it is marked ``abandoned``.
    :func:`register_version`, :func:`promote`, :func:`history` and :func:`aliases` call it
    first, so the next command on the model repairs it.

    Parameters
    ----------
    name : str
        Registered model name.

    Returns
    -------
    list of dict
        One entry per version completed: for a registration ``version``,
        ``challenger_moved`` (bool), ``audit_appended`` (bool) and ``challenger`` (the
        version it points at now); for a promotion ``version``, ``promoted`` (bool) and
        ``audit_appended`` (bool). Empty
        when nothing was pending, or when another process holds the lock (it, or the next
        command, completes them).

    Raises
    ------
    RegistryError
        The registered model does not exist.
    mlflow.exceptions.MlflowException
        The registry refused a change (the commands that call this first warn instead).
    """
    client = _client()
    _get_model(client, name)
    return _reconcile(client, name, strict=True)


def aliases(name: str) -> dict[str, str]:
    """The registered model's aliases: ``{"champion": "3", "challenger": "4"}``.

    Pending registrations are reconciled first (:func:`reconcile`).
    """
    client = _client()
    _get_model(client, name)
    _reconcile(client, name)
    return _aliases(_get_model(client, name))


def register_version(
    model_uri: str,
    name: str,
    *,
    run_id: str,
    kind: str,
    tags: Mapping[str, str] | None = None,
    description: str = "",
    reason: str = "trained",
) -> str:
    """Register a logged model as a new version of ``name`` aliased ``challenger``.

    The registered model is created on first use (tagged with its kind); a model of another
    kind under the same name is refused. The alias change is appended to the audit log.

    The version is created tagged ``segments.registration=pending`` (with the challenger it
    replaces, the reason and the run); then, under the registry lock, ``challenger`` moves to
    it (unless a newer version holds it), the audit event is appended and the tag becomes
    ``complete``. If the process dies in between, the next command on the model completes
    it (:func:`reconcile`, which this function also calls first). If the lock stays held
    for :data:`REGISTER_LOCK_WAIT_S` seconds the version is left pending, with a
    :class:`~segments.exceptions.SegmentsWarning`, for the next command to complete.

    Parameters
    ----------
    model_uri : str
        The logged model (``models:/m-...`` or ``runs:/...``).
    name : str
        Registered model name.
    run_id : str
        The training run (its metrics are quoted in the audit event).
    kind : {"groups", "upgrade"}
    tags : mapping, optional
        Model-version tags.
    description : str, optional
        Model-version description (shown in the UI).
    reason : str, default "trained"

    Returns
    -------
    str
        The new version number.
    """
    from mlflow.exceptions import MlflowException

    from segments.mlops.tracking import _mlflow

    client = _client()
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        model = client.create_registered_model(
            name,
            tags={KIND_TAG: kind},
            description=f"segments {kind} model; versions aliased 'challenger' when trained "
            "and 'champion' when promoted (segments promote). Alias history: "
            "segments history " + name,
        )
    else:
        if _reconcile(client, name):
            model = client.get_registered_model(name)
    existing = model.tags.get(KIND_TAG)
    if existing and existing != kind:
        raise RegistryError(
            f"registered model {name!r} holds {existing} models; cannot "
            f"register a {kind} model under it (set registry.{kind}_model)"
        )
    mlflow = _mlflow()
    pending = {
        **dict(tags or {}),
        REGISTRATION_TAG: PENDING,
        _REG + "previous_challenger": _aliases(model).get(CHALLENGER) or "",
        _REG + "reason": reason,
        _REG + "run_id": run_id or "",
        _REG + "by": current_user(),
        _REG + "started_at": _now().isoformat(timespec="seconds"),
    }
    with contextlib.redirect_stderr(io.StringIO()):  # "Created version ..." chatter
        mv = mlflow.register_model(model_uri, name, tags=pending)
    version = str(mv.version)
    if description:
        client.update_model_version(name, version, description=description[:4900])
    try:
        with _registry_lock(client, name, f"register v{version}", REGISTER_LOCK_WAIT_S):
            _complete_registration(client, name, version, reconciled=False)
    except _LockHeld as held:
        warnings.warn(
            SegmentsWarning(
                f"registered {name} version {version}, but the registry lock is held by "
                f"{held.holder}; the next segments command on {name} moves challenger to it "
                "and logs the change"
            ),
            stacklevel=2,
        )
    return version


def history(name: str) -> pd.DataFrame:
    """The audit log of a registered model's alias changes, oldest first.

    Pending registrations are reconciled first (:func:`reconcile`).

    Returns
    -------
    DataFrame
        ``at``, ``by``, ``event``, ``alias``, ``from_version``, ``to_version``, ``reason``,
        ``run_id``, ``evidence_run_id`` and ``metrics`` (a dict) per change.
    """
    client = _client()
    _get_model(client, name)
    _reconcile(client, name)
    events = _events(_get_model(client, name))
    cols = [
        "at",
        "by",
        "event",
        "alias",
        "from_version",
        "to_version",
        "reason",
        "run_id",
        "evidence_run_id",
        "metrics",
    ]
    frame = pd.DataFrame(events, columns=cols)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="n")
    return frame


_TYPES = {"category": {"string"}}
_NUMERIC = {"double", "float", "long", "integer", "boolean"}


def signature_problems(model_uri: str, windows: tuple[int, ...]) -> list[str]:
    """How a logged model's input signature departs from the current feature contract.

    Every input column must be a feature of the catalogue built with ``windows`` (plus the
    tier features), with a matching type: text for categorical features, numbers for the
    rest. An empty list means it matches.
    """
    from mlflow.models import get_model_info

    from segments.core.features import catalogue_frame

    sig = get_model_info(model_uri).signature
    if sig is None or sig.inputs is None:
        return ["the model was logged without an input signature"]
    units = catalogue_frame(windows).set_index("name")["unit"]
    problems = []
    unknown, wrong = [], []
    for col in sig.inputs.inputs:
        name = getattr(col, "name", None)
        dtype = str(getattr(getattr(col, "type", None), "name", getattr(col, "type", "")))
        if name not in units.index:
            unknown.append(name)
            continue
        allowed = _TYPES.get(units[name], _NUMERIC)
        if dtype not in allowed:
            wrong.append(f"{name} is {dtype}, the contract has {units[name]}")
    if unknown:
        problems.append(
            f"signature: {len(unknown)} input column(s) not in the current feature "
            f"contract (windows {list(windows)}): {', '.join(map(str, unknown[:8]))}"
        )
    if wrong:
        problems.append("signature: type mismatch: " + "; ".join(wrong[:8]))
    return problems


@dataclass
class PromotionReport:
    """What :func:`promote` checked and compared.

    Attributes
    ----------
    name, version, kind : str
    champion : str or None
        The champion version before the promotion.
    checks : DataFrame
        ``check``, ``passed``, ``detail`` per check.
    logged : DataFrame
        Challenger vs champion on the metrics their training runs logged (with the months
        each was tested on).
    same_months : DataFrame or None
        When a panel was given: both models (and the rule of thumb) on the challenger's
        held-out months (upgrade), or both assignments of the same customers (groups).
    promoted : bool
    evidence_run_id : str or None
        The MLflow run that logged the checks and comparison.
    """

    name: str
    version: str
    kind: str
    champion: str | None
    checks: pd.DataFrame
    logged: pd.DataFrame
    same_months: pd.DataFrame | None = None
    promoted: bool = False
    evidence_run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """One line per failed check."""
        bad = self.checks[~self.checks["passed"]]
        return [f"{r.check}: {r.detail}" for r in bad.itertuples()]


def _threshold_checks(
    kind: str, metrics: Mapping[str, float], thresholds: Mapping[str, float]
) -> list[tuple[str, bool, str]]:
    out = []
    for key, limit in thresholds.items():
        what, needs, op = _CHECKS[key]
        missing = [m for m in needs if m not in metrics or not np.isfinite(metrics[m])]
        if missing:
            out.append((key, False, f"{what}: metric {', '.join(missing)} not logged by the run"))
            continue
        value = metrics[needs[0]] - (metrics[needs[1]] if len(needs) > 1 else 0.0)
        ok = {">=": value >= limit, ">": value > limit, "<=": value <= limit}[op]
        out.append(
            (key, bool(ok), f"{what} {value:.4f} {'meets' if ok else 'fails'} {op} {limit:g}")
        )
    return out


def _download_config(client: Any, run_id: str) -> Any:
    from segments.core.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "config.yaml", tmp)
        return load_config(path)


def _compare_upgrade(
    client: Any,
    name: str,
    versions: dict[str, str],
    run: Any,
    panel: pd.DataFrame,
    notes: list[str],
) -> pd.DataFrame:
    from segments.core.tiers import assign_tiers, load_ladder
    from segments.core.upgrade import build_training_set, evaluate
    from segments.mlops.tracking import load_model, model_input

    cfg = _download_config(client, run.info.run_id)
    up = cfg.upgrade
    months = run.data.params["split.test"].split(",")
    ladder = load_ladder(
        cfg.tiers.ladder, basis_window=cfg.tiers.basis_window, hysteresis=cfg.tiers.hysteresis
    )
    data, _ = build_training_set(
        panel,
        assign_tiers(panel, ladder),
        months,
        horizon=up.horizon,
        population=up.population,
        kind=up.label,
        sustain_months=up.sustain_months,
        windows=cfg.features.windows,
    )
    y = data["label"].to_numpy()
    notes.append(
        f"same held-out months {', '.join(months)} rebuilt from the panel: "
        f"{len(data):,} labelled customer-months, {int(y.sum()):,} upgrades"
    )
    cols = {}
    for role, version in versions.items():
        model = load_model(f"models:/{name}/{version}")
        try:
            frame = model_input(data, model)
        except ConfigError as exc:
            notes.append(f"{role} v{version} cannot score these rows: {exc}")
            continue
        p = model.predict(frame)["p_upgrade"].to_numpy()
        cols[f"{role} v{version}"] = evaluate(y, p)
    rule = evaluate(y, data["gap_ratio"].fillna(0).clip(0, 1).to_numpy())
    cols["rule of thumb"] = {k: v for k, v in rule.items() if k not in ("brier", "log_loss", "ece")}
    keep = ["n", "positives", "roc_auc", "pr_auc", "brier", "ece", "lift_top10", "capture_top10"]
    return pd.DataFrame(cols).reindex(keep)


def _compare_groups(
    client: Any,
    name: str,
    versions: dict[str, str],
    run: Any,
    panel: pd.DataFrame,
    notes: list[str],
) -> pd.DataFrame:
    from sklearn.metrics import adjusted_rand_score

    from segments.core.features import build_features
    from segments.mlops.tracking import load_groups_estimator

    cfg = _download_config(client, run.info.run_id)
    as_of = run.data.params["as_of"]
    X = build_features(panel, pd.Period(as_of, "M"), windows=cfg.features.windows)
    labels = {}
    for role, version in versions.items():
        est = load_groups_estimator(f"models:/{name}/{version}")
        missing = [c for c in est.features_ if c not in X]
        if missing:
            notes.append(
                f"{role} v{version} cannot assign these customers: missing {', '.join(missing[:5])}"
            )
            continue
        labels[f"{role} v{version}"] = est.predict(X)
    rows: dict[str, dict[str, float]] = {}
    for col, lab in labels.items():
        shares = np.bincount(lab) / len(lab)
        rows[col] = {
            "customers": float(len(lab)),
            "groups": float(len(np.unique(lab))),
            "smallest_share": float(shares[shares > 0].min()),
        }
    if len(labels) == 2:
        a, b = labels.values()
        ari = float(adjusted_rand_score(a, b))
        notes.append(
            f"assignments of the {len(X):,} customers of {as_of}: agreement between "
            f"challenger and champion (ARI) {ari:.3f}"
        )
        for col in rows:
            rows[col]["agreement_ari"] = ari
    return pd.DataFrame(rows)


def promote(
    name: str,
    version: int | str,
    *,
    reason: str = "",
    config: Any = None,
    panel: pd.DataFrame | None = None,
    dry_run: bool = False,
) -> PromotionReport:
    """Move the ``champion`` alias of ``name`` to ``version`` after checks.

    Checks: the version exists and its registration completed; its training run finished;
    its logged metrics meet ``config.registry.promotion[kind]``; its input signature matches
    the current feature contract (``config.features.windows``). The challenger is compared
    with the current champion on their logged metrics and, when ``panel`` is given, on the
    same held-out months (upgrade) or customers (groups) rebuilt from it. Checks and
    comparison are logged to an MLflow run (tag ``segments.model_kind=promotion``) in the
    training run's experiment, promoted or refused; on success the alias change is appended
    to the audit log with that run as evidence.

    Pending registrations are reconciled first (:func:`reconcile`). The decision is taken
    under the model's registry lock: if another process holds it, or the champion moved
    after the checks read it, the promotion is refused (:class:`PromotionConflict`) and
    only the refusal is logged. A dry run takes no lock and reconciles nothing.

    Parameters
    ----------
    name : str
        Registered model name.
    version : int or str
    reason : str, optional
        Why (kept in the audit log).
    config : ExperimentConfig, optional
        Thresholds and feature contract; default the packaged defaults.
    panel : DataFrame, optional
        A validated panel to compare both models on the same months.
    dry_run : bool, default False
        Check and compare only; change and log nothing.

    Returns
    -------
    PromotionReport

    Raises
    ------
    RegistryError
        The model or version does not exist.
    PromotionError
        A check failed (all failures are listed); nothing was changed.
    PromotionConflict
        Another process holds the registry lock, or promoted meanwhile (one line naming it);
        nothing was changed.
    """
    from mlflow.exceptions import MlflowException

    from segments.core.config import load_config

    cfg = config or load_config()
    version = str(version)
    client = _client()
    model = _get_model(client, name)
    if not dry_run and _reconcile(client, name):
        model = _get_model(client, name)
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        versions = sorted(
            (int(v.version) for v in client.search_model_versions(f"name='{name}'")), reverse=True
        )
        raise RegistryError(
            f"{name} has no version {version}; versions: "
            f"{', '.join(map(str, versions[:10])) or 'none'}"
        ) from None
    kind = model.tags.get(KIND_TAG) or mv.tags.get(KIND_TAG, "")
    champion = _aliases(model).get(CHAMPION)
    checks: list[tuple[str, bool, str]] = [
        ("version_exists", True, f"version {version} (source {mv.source})")
    ]
    if mv.tags.get(REGISTRATION_TAG) == PENDING:
        checks.append(
            (
                "registration_complete",
                False,
                (
                    f"the registration of version {version} (started by "
                    f"{mv.tags.get(_REG + 'by', '?')} at "
                    f"{mv.tags.get(_REG + 'started_at', '?')}) has "
                    "not completed: its challenger alias or audit event may be missing; the next "
                    f"segments command on {name} completes it once the registry lock is free"
                ),
            )
        )
    else:
        checks.append(
            (
                "registration_complete",
                True,
                (
                    "challenger alias and audit event written"
                    if mv.tags.get(REGISTRATION_TAG)
                    else "registered before registrations were tracked"
                ),
            )
        )
    run = None
    if mv.run_id:
        run = client.get_run(mv.run_id)
        status = run.info.status
        checks.append(
            ("run_finished", status == "FINISHED", f"training run {mv.run_id} is {status}")
        )
    else:
        checks.append(("run_finished", False, "the version has no training run"))
    metrics = dict(run.data.metrics) if run else {}
    thresholds = cfg.registry.promotion.get(kind, {})
    if not thresholds:
        checks.append(("thresholds", False, f"unknown model kind {kind!r}"))
    checks += _threshold_checks(kind, metrics, thresholds)
    sig = signature_problems(f"models:/{name}/{version}", cfg.features.windows)
    checks.append(
        (
            "signature",
            not sig,
            "; ".join(sig)
            or "every input column is in the "
            f"current feature contract (windows {list(cfg.features.windows)})",
        )
    )
    if champion == version:
        checks.append(("not_already_champion", False, f"version {version} is already the champion"))
    report_checks = pd.DataFrame(checks, columns=["check", "passed", "detail"])

    notes: list[str] = []
    logged: dict[str, dict[str, Any]] = {
        f"challenger v{version}": {
            **{k: metrics.get(k, np.nan) for k in KEY_METRICS.get(kind, ())},
            "months": run.data.tags.get(
                "segments.test_months", run.data.tags.get("segments.as_of", "")
            )
            if run
            else "",
        }
    }
    if champion and champion != version:
        cmv = client.get_model_version(name, champion)
        cm = client.get_run(cmv.run_id) if cmv.run_id else None
        logged[f"champion v{champion}"] = {
            **{
                k: (cm.data.metrics.get(k, np.nan) if cm else np.nan)
                for k in KEY_METRICS.get(kind, ())
            },
            "months": cm.data.tags.get(
                "segments.test_months", cm.data.tags.get("segments.as_of", "")
            )
            if cm
            else "",
        }
        months = {str(v["months"]) for v in logged.values()}
        if len(months) > 1 and panel is None:
            notes.append(
                "the logged metrics are on different months ("
                + " vs ".join(sorted(months))
                + "); pass a panel to compare both "
                "on the challenger's held-out months"
            )
    else:
        notes.append("no current champion: this is the first promotion" if not champion else "")
    same = None
    if panel is not None and run is not None:
        versions = {"challenger": version}
        if champion and champion != version:
            versions["champion"] = champion
        compare = _compare_upgrade if kind == "upgrade" else _compare_groups
        same = compare(client, name, versions, run, panel, notes)
    report = PromotionReport(
        name,
        version,
        kind,
        champion,
        report_checks,
        pd.DataFrame(logged),
        same,
        notes=[n for n in notes if n],
    )
    if dry_run:
        return report
    try:
        token = _acquire_lock(client, name, f"promote v{version}")
    except _LockHeld as held:
        _add_checks(
            report,
            [
                (
                    _LOCK_CHECK,
                    False,
                    f"the registry lock of {name} is held by "
                    f"{held.holder}; try again when it is done",
                )
            ],
        )
        _refuse(client, report, run, reason)
        raise  # not reached: _refuse raises on the failed lock check
    try:
        now = _aliases(_get_model(client, name)).get(CHAMPION)
        _add_checks(
            report,
            [
                (_LOCK_CHECK, True, "held by this promotion"),
                (
                    _MOVED_CHECK,
                    now == champion,
                    f"champion still {_v(champion)} under the lock"
                    if now == champion
                    else _moved(client, name, champion, now, version),
                ),
            ],
        )
        _refuse(client, report, run, reason)  # returns when every check passed
        # Recorded first, so a kill between the alias move and the audit event is
        # completed by the next command (reconcile), never left without its event.
        for key, value in {
            _PRO + "from_version": champion or "",
            _PRO + "reason": reason or "(none given)",
            _PRO + "by": current_user(),
            _PRO + "started_at": _now().isoformat(timespec="seconds"),
            _PRO + "evidence_run": report.evidence_run_id or "",
            PROMOTION_TAG: PENDING,
        }.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_registered_model_alias(name, CHAMPION, version)
        _complete_promotion(client, name, version, reconciled=False)
    finally:
        _release_lock(client, name, token)
    report.promoted = True
    return report


_LOCK_CHECK, _MOVED_CHECK = "registry_lock", "champion_unchanged"


def _v(version: str | None) -> str:
    return f"v{version}" if version else "(none)"


def _add_checks(report: PromotionReport, rows: list[tuple[str, bool, str]]) -> None:
    report.checks = pd.concat(
        [report.checks, pd.DataFrame(rows, columns=report.checks.columns)], ignore_index=True
    )


def _moved(client: Any, name: str, before: str | None, now: str | None, version: str) -> str:
    """Name the change that moved ``champion`` from ``before`` to ``now`` meanwhile."""
    what = (
        f"version {version} became champion"
        if now == version
        else f"champion moved from {_v(before)} to {_v(now)}"
    )
    done = [
        e
        for e in _events(_get_model(client, name))
        if e.get("event") == "promote" and str(e.get("to_version")) == str(now)
    ]
    if not done:
        return f"{what} while the checks ran, outside segments (no audit event)"
    e = done[-1]
    return (
        f"{what} while the checks ran: promoted by {e.get('by')} at {e.get('at')} "
        f"(evidence run {e.get('evidence_run_id')})"
    )


def _refuse(client: Any, report: PromotionReport, run: Any, reason: str) -> None:
    """Log the evidence run; raise if a check failed (one line for a conflict)."""
    report.evidence_run_id = _log_promotion(client, report, run, reason)
    if not report.failed:
        return
    bad = report.checks[~report.checks["passed"]]
    conflict = bad[bad["check"].isin([_LOCK_CHECK, _MOVED_CHECK])]
    if conflict.empty:
        error: PromotionError = PromotionError(report.name, report.version, report.failed)
    else:
        others = len(bad) - len(conflict)
        error = PromotionConflict(
            report.name,
            report.version,
            report.failed,
            f"promotion of {report.name} version {report.version} refused: "
            + "; ".join(conflict["detail"])
            + (f" ({others} other check{'s' if others != 1 else ''} failed too)" if others else "")
            + f"; evidence in MLflow run {report.evidence_run_id}",
        )
    error.report = report
    raise error


def _log_promotion(client: Any, report: PromotionReport, run: Any, reason: str) -> str:
    """Log checks and comparison to a new run in the training run's experiment."""
    from segments.mlops.cards import markdown_table, render_html

    experiment_id = run.info.experiment_id if run else "0"
    decision = "refused" if report.failed else "promoted"
    tags = {
        KIND_TAG: "promotion",
        "segments.registered_model": report.name,
        "segments.version": report.version,
        "segments.decision": decision,
        "segments.champion_before": report.champion or "",
        "segments.promoted_by": current_user(),
        "mlflow.user": current_user(),
        "mlflow.note.content": reason or "",
    }
    evidence = client.create_run(
        experiment_id, run_name=f"promote {report.name} v{report.version} ({decision})", tags=tags
    )
    rid = evidence.info.run_id
    client.log_param(rid, "reason", (reason or "(none given)")[:500])
    for r in report.checks.itertuples():
        client.log_metric(rid, f"check.{r.check}", float(r.passed))
    client.log_text(rid, report.logged.to_csv(), "comparison_logged.csv")
    if report.same_months is not None:
        client.log_text(rid, report.same_months.to_csv(), "comparison_same_months.csv")
    text = (
        f"# Promotion of {report.name} version {report.version}: {decision}\n\n"
        f"- by {current_user()}\n- champion before: {report.champion or 'none'}\n"
        f"- reason: {reason or '(none given)'}\n\n## Checks\n\n"
        + markdown_table(report.checks, index=False)
        + "\n\n## Challenger vs champion: logged metrics\n\n"
        + markdown_table(report.logged.map(_cell))
        + "\n\n"
        + (
            "## On the same held-out months\n\n"
            + markdown_table(report.same_months.map(_cell))
            + "\n\n"
            if report.same_months is not None
            else ""
        )
        + "".join(f"- {n}\n" for n in report.notes)
    )
    client.log_text(rid, text, "promotion.md")
    client.log_text(rid, render_html(text, f"Promotion of {report.name}"), "promotion.html")
    client.log_dict(
        rid,
        {"checks": report.checks.to_dict(orient="records"), "notes": report.notes},
        "checks.json",
    )
    client.set_terminated(rid, "FINISHED")
    return rid


def _cell(v: Any) -> Any:
    return v if not isinstance(v, float) or np.isfinite(v) else "-"
