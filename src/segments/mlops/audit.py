"""The audit chain: registry audit events linked by hashes and mirrored on their runs.

Each alias change segments makes is a registered-model tag ``segments.audit.<UTC time>-
<random>`` holding a JSON event (see :mod:`segments.mlops.registry`). Since issue 17 each
event also carries ``seq`` (1, 2, ...), ``prev`` (the :func:`event_hash` of the event before
it; :func:`genesis` of the model name for the first) and its own ``hash``, so an event
edited, deleted or reordered in the registry no longer matches the chain. Each event is
also mirrored on the run that caused it (the promotion's evidence run, else the training
run): a run tag ``segments.audit_event.<seq>`` with its hash, and a JSON artifact with the
whole event, so an event deleted from the registry is detected and recovered from there.

:mod:`segments.mlops.audit_verify` verifies the chain (``segments history``). Events
written before the chain existed (no ``seq``) are *legacy*: read and shown, not verifiable.
What the chain can and cannot detect: ``docs/review.md``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segments.exceptions import SegmentsWarning
from segments.mlops import tags as tag_names
from segments.mlops.locks import current_user, now_utc

__all__ = [
    "AUDIT_PREFIX",
    "Mirror",
    "append_audit",
    "audit_events",
    "canonical",
    "event_hash",
    "genesis",
    "is_chained",
    "load_copy",
    "mirror_target",
    "ordered",
    "read_mirrors",
    "stored_events",
]

#: Registered-model tag prefix of the audit events.
AUDIT_PREFIX = "segments.audit."
#: Where the mirrored copy of an event goes in its run's artifacts.
MIRROR_DIR = "segments_audit"


def canonical(event: Mapping[str, Any]) -> bytes:
    """The canonical encoding of an event: sorted keys, no spaces, UTF-8, ``hash`` left out.

    The one definition both the writer and the verifier hash.
    """
    body = {k: v for k, v in event.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def event_hash(event: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical` ``(event)``: its content with its ``seq`` and
    ``prev``, without its own ``hash``."""
    return hashlib.sha256(canonical(event)).hexdigest()


def genesis(name: str) -> str:
    """The ``prev`` of a model's first chained event: a hash of the registered model name."""
    return hashlib.sha256(f"segments.audit.genesis:{name}".encode()).hexdigest()


def is_chained(event: Mapping[str, Any]) -> bool:
    """Whether an event belongs to the chain (a positive integer ``seq``), not legacy."""
    seq = event.get("seq")
    return isinstance(seq, int) and not isinstance(seq, bool) and seq > 0


def stored_events(model: Any) -> list[tuple[str, dict[str, Any] | None]]:
    """(tag key, event) of every audit tag of a registered model in key (time) order; the
    event is None when the tag does not hold a JSON object."""
    found: list[tuple[str, dict[str, Any] | None]] = []
    for key, value in sorted(model.tags.items()):
        if not key.startswith(AUDIT_PREFIX):
            continue
        try:
            event = json.loads(value)
        except ValueError:
            event = None
        found.append((key, event if isinstance(event, dict) else None))
    return found


def ordered(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Legacy events in time order, then the chained ones by ``seq``."""
    events = list(events)
    legacy = [e for e in events if not is_chained(e)]
    return legacy + sorted((e for e in events if is_chained(e)), key=lambda e: e["seq"])


def audit_events(model: Any) -> list[dict[str, Any]]:
    """The audit events stored on a registered model: legacy (unchained) events in time
    order, then the chained ones by ``seq``. Tags that are not JSON events are skipped
    (:func:`segments.mlops.audit_verify.check_audit` reports them)."""
    return ordered(e for _, e in stored_events(model) if e is not None)


def mirror_target(event: Mapping[str, Any]) -> str:
    """The run an event is mirrored on: the evidence run of a promotion, else its run."""
    return str(event.get("evidence_run_id") or event.get("run_id") or "")


def append_audit(client: Any, name: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """Append one event to the audit chain of ``name`` and mirror it on its run.

    Call it under the registry lock: it reads the chain head (the event with the highest
    ``seq``) and links the new event to it, so two writers cannot fork the chain. The
    event is stored as a new, unique registered-model tag; a mirror that cannot be
    written is a :class:`~segments.exceptions.SegmentsWarning` (the verifier reports it).

    Returns
    -------
    dict
        The stored event, with ``at``, ``by``, ``seq``, ``prev`` and ``hash``.
    """
    at = now_utc()
    record = {"at": at.isoformat(timespec="microseconds"), "by": current_user(), **event}
    record = json.loads(json.dumps(record, default=str))  # hash what a reader reads back
    events = [e for _, e in stored_events(client.get_registered_model(name)) if e]
    head = max((e for e in events if is_chained(e)), key=lambda e: e["seq"], default=None)
    record["seq"] = head["seq"] + 1 if head else 1
    record["prev"] = event_hash(head) if head else genesis(name)
    record["hash"] = event_hash(record)
    key = f"{AUDIT_PREFIX}{at.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:8]}"
    client.set_registered_model_tag(name, key, json.dumps(record, sort_keys=True))
    run_id = mirror_target(record)
    if run_id:
        try:
            _mirror(client, name, run_id, record)
        except Exception as exc:  # the registry event is written; the verifier names the gap
            warnings.warn(
                SegmentsWarning(
                    f"audit event {record['seq']} of {name} is in the registry but could not "
                    f"be mirrored on run {run_id} ({exc}); segments history reports it"
                ),
                stacklevel=3,
            )
    return record


def _mirror(client: Any, name: str, run_id: str, record: Mapping[str, Any]) -> None:
    """Tag ``run_id`` with the event's seq and hash and log the whole event beside it."""
    seq = record["seq"]
    path = f"{MIRROR_DIR}/seq-{seq:06d}.json"
    link = {"model": name, "seq": seq, "hash": record["hash"], "artifact": path}
    client.set_tag(run_id, tag_names.AUDIT_MODEL, name)
    client.set_tag(run_id, f"{tag_names.AUDIT_EVENT}{seq}", json.dumps(link, sort_keys=True))
    client.log_dict(run_id, {"model": name, "event": dict(record)}, path)


@dataclass(frozen=True)
class Mirror:
    """A copy of a chained event found on a run: its seq, hash and artifact."""

    run_id: str
    seq: int
    hash: str
    artifact: str


def _pages(search: Callable[..., Any], **kwargs: Any) -> list[Any]:
    """Every result of a paged MLflow search."""
    found: list[Any] = []
    token = None
    while True:
        page = search(page_token=token, **kwargs)
        found.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return found


def read_mirrors(client: Any, name: str) -> dict[int, list[Mirror]]:
    """The mirrored copies of the audit events of ``name``, by seq, from every run (deleted
    runs included) of every experiment tagged with it."""
    from mlflow.entities import ViewType

    experiments = [
        e.experiment_id
        for e in _pages(client.search_experiments, view_type=ViewType.ALL, max_results=1000)
    ]
    found: dict[int, list[Mirror]] = {}
    for i in range(0, len(experiments), 100):
        runs = _pages(
            client.search_runs,
            experiment_ids=experiments[i : i + 100],
            filter_string=f"tags.`{tag_names.AUDIT_MODEL}` = '{name}'",
            run_view_type=ViewType.ALL,
            max_results=1000,
        )
        for run in runs:
            for key, value in run.data.tags.items():
                if not key.startswith(tag_names.AUDIT_EVENT):
                    continue
                try:
                    link = json.loads(value)
                    if link["model"] != name:
                        continue
                    mirror = Mirror(
                        run.info.run_id, int(link["seq"]), link["hash"], link["artifact"]
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # not a link segments wrote: ignored
                found.setdefault(mirror.seq, []).append(mirror)
    return found


def load_copy(client: Any, mirror: Mirror) -> dict[str, Any] | None:
    """The whole event a mirror holds (None when its artifact cannot be read)."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(mirror.run_id, mirror.artifact, tmp)
            event = json.loads(Path(path).read_text(encoding="utf-8"))["event"]
    except Exception:  # a deleted artifact, an unreachable store: no copy
        return None
    return event if isinstance(event, dict) else None
