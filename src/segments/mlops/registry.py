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
nothing is overwritten. :func:`history` reads it back in order. The events form a hash
chain mirrored on their runs, verified by :func:`segments.mlops.audit_verify.check_audit`
(``segments history``), so edits, deletions and alias moves made outside segments show.

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
import io
import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from segments.exceptions import (
    RegistryError,
    SegmentsWarning,
)
from segments.mlops import tags as tag_names
from segments.mlops.audit import AUDIT_PREFIX, append_audit, audit_events
from segments.mlops.locks import (
    LOCK_PREFIX,
    LOCK_TIMEOUT_S,
    LockHeld,
    current_user,
    not_found,
    now_utc,
    registry_lock,
)

__all__ = [
    "AUDIT_PREFIX",
    "CHALLENGER",
    "CHAMPION",
    "KEY_METRICS",
    "LOCK_TIMEOUT_S",
    "alias_map",
    "aliases",
    "append_audit",
    "audit_events",
    "complete_promotion",
    "current_user",
    "get_model",
    "history",
    "reconcile",
    "reconcile_locked",
    "register_version",
    "registry_client",
    "run_metrics",
]

CHALLENGER = "challenger"
CHAMPION = "champion"
KIND_TAG = tag_names.KIND  # the registry reads the kind of a model by it

#: Model-version tag: ``pending`` from creation until the alias and audit event are written,
#: then ``complete``. Versions registered before it existed have no tag and count as complete.
REGISTRATION_TAG = "segments.registration"
PENDING, COMPLETE = "pending", "complete"
REG_PREFIX = REGISTRATION_TAG + "."  # .previous_challenger, .reason, .run_id, .by, .started_at
#: Model-version tag: ``pending`` from just before ``champion`` moves to the version until
#: its audit event is written, then ``complete`` (``abandoned`` when the process died
#: before the alias moved, so nothing took effect).
PROMOTION_TAG = "segments.promotion"
ABANDONED = "abandoned"
PRO_PREFIX = PROMOTION_TAG + "."  # .from_version, .reason, .by, .started_at, .evidence_run

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


def registry_client() -> Any:
    """An ``MlflowClient`` on the configured tracking store (see :func:`configure_tracking`)."""
    from segments.mlops.tracking import configure_tracking, mlflow_module

    mlflow = mlflow_module()
    configure_tracking()
    return mlflow.MlflowClient()


def get_model(client: Any, name: str) -> Any:
    """The registered model ``name``.

    Raises
    ------
    RegistryError
        It does not exist (the error lists the registered models).
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not_found(exc):
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


def run_metrics(client: Any, run_id: str | None, kind: str) -> dict[str, float]:
    """The :data:`KEY_METRICS` of ``kind`` a training run logged (empty without a run)."""
    if not run_id:
        return {}
    metrics = client.get_run(run_id).data.metrics
    return {k: float(metrics[k]) for k in KEY_METRICS.get(kind, ()) if k in metrics}


def alias_map(model: Any) -> dict[str, str]:
    """Alias -> version of a registered model."""
    return {str(k): str(v) for k, v in dict(model.aliases).items()}


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
    current = alias_map(model).get(CHALLENGER)
    previous = mv.tags.get(REG_PREFIX + "previous_challenger") or None
    run_id = mv.tags.get(REG_PREFIX + "run_id") or mv.run_id
    logged = any(
        e.get("event") == "register" and str(e.get("to_version")) == version
        for e in audit_events(model)
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
    reason = mv.tags.get(REG_PREFIX + "reason") or "trained"
    if reconciled:
        reason += (
            f" (reconciled after an interrupted registration started by "
            f"{mv.tags.get(REG_PREFIX + 'by', '?')} at "
            f"{mv.tags.get(REG_PREFIX + 'started_at', '?')})"
        )
    if alias is None:
        reason += f"; challenger left on v{current}, a newer version"
    if not logged:
        append_audit(
            client,
            name,
            {
                "event": "register",
                "alias": alias,
                "from_version": source,
                "to_version": version,
                "reason": reason,
                "run_id": run_id,
                "metrics": run_metrics(client, run_id, kind),
            },
        )
    client.set_model_version_tag(name, version, REGISTRATION_TAG, COMPLETE)
    return {
        "version": version,
        "challenger_moved": moved,
        "audit_appended": not logged,
        "challenger": version if alias else current,
    }


def pending_versions(client: Any, name: str, tag: str = REGISTRATION_TAG) -> list[str]:
    """The versions of ``name`` whose ``tag`` (registration or promotion) is ``pending``."""
    found = client.search_model_versions(f"name='{name}' and tags.`{tag}` = '{PENDING}'")
    return sorted({str(mv.version) for mv in found}, key=int)


def complete_promotion(
    client: Any, name: str, version: str, *, reconciled: bool
) -> dict[str, Any] | None:
    """Finish a promotion whose ``champion`` move is recorded as pending: the version tags
    and the audit event, once. Idempotent; called under the registry lock. A promotion
    whose process died before ``champion`` moved took no effect and is marked abandoned."""
    mv = client.get_model_version(name, version)
    if mv.tags.get(PROMOTION_TAG) != PENDING:
        return None
    model = client.get_registered_model(name)
    if alias_map(model).get(CHAMPION) != version:
        client.set_model_version_tag(name, version, PROMOTION_TAG, ABANDONED)
        return {"version": version, "promoted": False, "audit_appended": False}
    t = {k[len(PRO_PREFIX) :]: v for k, v in mv.tags.items() if k.startswith(PRO_PREFIX)}
    evidence = t.get("evidence_run", "")
    logged = any(
        e.get("event") == "promote"
        and str(e.get("to_version")) == version
        and e.get("evidence_run_id") == evidence
        for e in audit_events(model)
    )
    reason = t.get("reason") or "(none given)"
    for key, value in {
        "segments.promoted_at": t.get("started_at", ""),
        tag_names.PROMOTED_BY: t.get("by", ""),
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
        append_audit(
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
                "metrics": run_metrics(client, mv.run_id, kind),
            },
        )
    client.set_model_version_tag(name, version, PROMOTION_TAG, COMPLETE)
    return {"version": version, "promoted": True, "audit_appended": not logged}


def reconcile_locked(client: Any, name: str, *, strict: bool = False) -> list[dict[str, Any]]:
    """Complete pending registrations; unless ``strict``, a failure (say, a reader without
    write access to the registry) is a warning and leaves them for the next command."""
    from mlflow.exceptions import MlflowException

    try:
        if not pending_versions(client, name) and not pending_versions(client, name, PROMOTION_TAG):
            return []
        with registry_lock(client, name, "reconcile", RECONCILE_LOCK_WAIT_S):
            fixed = [
                _complete_registration(client, name, v, reconciled=True)
                for v in pending_versions(client, name)
            ]
            fixed += [
                complete_promotion(client, name, v, reconciled=True)
                for v in pending_versions(client, name, PROMOTION_TAG)
            ]
    except LockHeld:
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
    client = registry_client()
    get_model(client, name)
    return reconcile_locked(client, name, strict=True)


def aliases(name: str) -> dict[str, str]:
    """The registered model's aliases: ``{"champion": "3", "challenger": "4"}``.

    Pending registrations are reconciled first (:func:`reconcile`).
    """
    client = registry_client()
    get_model(client, name)
    reconcile_locked(client, name)
    return alias_map(get_model(client, name))


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

    from segments.mlops.tracking import mlflow_module

    client = registry_client()
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if not not_found(exc):
            raise
        model = client.create_registered_model(
            name,
            tags={KIND_TAG: kind},
            description=f"segments {kind} model; versions aliased 'challenger' when trained "
            "and 'champion' when promoted (segments promote). Alias history: "
            "segments history " + name,
        )
    else:
        if reconcile_locked(client, name):
            model = client.get_registered_model(name)
    existing = model.tags.get(KIND_TAG)
    if existing and existing != kind:
        raise RegistryError(
            f"registered model {name!r} holds {existing} models; cannot "
            f"register a {kind} model under it (set registry.{kind}_model)"
        )
    mlflow = mlflow_module()
    pending = {
        **dict(tags or {}),
        REGISTRATION_TAG: PENDING,
        REG_PREFIX + "previous_challenger": alias_map(model).get(CHALLENGER) or "",
        REG_PREFIX + "reason": reason,
        REG_PREFIX + "run_id": run_id or "",
        REG_PREFIX + "by": current_user(),
        REG_PREFIX + "started_at": now_utc().isoformat(timespec="seconds"),
    }
    with contextlib.redirect_stderr(io.StringIO()):  # "Created version ..." chatter
        mv = mlflow.register_model(model_uri, name, tags=pending)
    version = str(mv.version)
    if description:
        client.update_model_version(name, version, description=description[:4900])
    try:
        with registry_lock(client, name, f"register v{version}", REGISTER_LOCK_WAIT_S):
            _complete_registration(client, name, version, reconciled=False)
    except LockHeld as held:
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

    Pending registrations are reconciled first (:func:`reconcile`). Legacy events (written
    before the audit chain, no ``seq``) come first, then the chained ones by ``seq``; to
    verify the chain use :func:`segments.mlops.audit_verify.check_audit`.

    Returns
    -------
    DataFrame
        ``seq`` (None for a legacy event), ``at``, ``by``, ``event``, ``alias``,
        ``from_version``, ``to_version``, ``reason``, ``run_id``, ``evidence_run_id``,
        ``metrics`` (a dict) and ``hash`` (None for a legacy event) per change.
    """
    client = registry_client()
    get_model(client, name)
    reconcile_locked(client, name)
    events = audit_events(get_model(client, name))
    cols = [
        "seq",
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
        "hash",
    ]
    frame = pd.DataFrame(events, columns=cols)
    frame["seq"] = frame["seq"].astype("Int64")  # null for legacy events, not 1.0, 2.0
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="n")
    return frame
