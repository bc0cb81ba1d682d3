"""Verifying the audit chain of a registered model (``segments history``).

:func:`check_audit` checks every chained event's hash against its content, its ``prev``
against the event before it, ``seq`` gaps and duplicates, each event against its copy on
the run that caused it (:mod:`segments.mlops.audit`), and the current aliases against
what the last events say. :func:`verify_audit` returns the problems. What the chain can
and cannot detect: ``docs/review.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from segments.mlops.audit import (
    Mirror,
    event_hash,
    genesis,
    is_chained,
    load_copy,
    mirror_target,
    ordered,
    read_mirrors,
    stored_events,
)

__all__ = ["AuditCheck", "AuditProblem", "check_audit", "verify_audit"]


@dataclass(frozen=True)
class AuditProblem:
    """One way the audit trail departs from an intact chain.

    Attributes
    ----------
    kind : str
        ``unreadable``, ``unchained``, ``duplicate``, ``gap``, ``deleted``, ``edited``,
        ``broken_link``, ``mirror_mismatch``, ``unmirrored``, ``alias_moved``,
        ``alias_added`` or ``alias_deleted``.
    detail : str
        One line naming the seq or alias and what is wrong.
    seq : int or None
    alias : str or None
    """

    kind: str
    detail: str
    seq: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        return self.detail


@dataclass
class AuditCheck:
    """What :func:`check_audit` found.

    Attributes
    ----------
    name : str
    chained, legacy : int
        Chained events in the registry; legacy (unchained) events written before the chain.
    head_seq, head_hash : int or None, str or None
        The last chained event in the registry (export the hash to pin the chain).
    problems : list of AuditProblem
    recovered : list of dict
        Events missing from the registry, read back from the runs they were mirrored on.
    notes : list of str
        What is not a problem but worth knowing (legacy events, changes in progress).
    """

    name: str
    chained: int = 0
    legacy: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    problems: list[AuditProblem] = field(default_factory=list)
    recovered: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain, its mirrors and the aliases agree (legacy events aside)."""
        return not self.problems


def _copy_note(client: Any, event: Mapping[str, Any], copies: list[Mirror]) -> str:
    """For an edited event: which fields differ from the copy on its run, if readable."""
    original = next((c for c in (load_copy(client, m) for m in copies) if c), None)
    if original is None:
        return ""
    changed = sorted(k for k in set(event) | set(original) if event.get(k) != original.get(k))
    changed = [k for k in changed if k != "hash"]
    return f"; differs from the copy in run {copies[0].run_id} in: {', '.join(changed)}"


def _v(version: Any) -> str:
    return f"v{version}" if version is not None and version != "" else "(none)"


def _recover(client: Any, seq: int, copies: list[Mirror], check: AuditCheck) -> str:
    """Report seq missing from the registry; read it back from its mirror if possible.
    Returns the hash the next event must link to (the one the mirror recorded)."""
    event = next((c for c in (load_copy(client, m) for m in copies) if c), None)
    good = (
        event is not None
        and event.get("seq") == seq
        and event_hash(event) == event.get("hash") == copies[0].hash
    )
    what = (
        f": {event.get('event')} {event.get('alias') or '(no alias)'} "
        f"{_v(event.get('from_version'))} -> {_v(event.get('to_version'))} by "
        f"{event.get('by')} at {event.get('at')}"
        if good and event
        else " (its copy there is unreadable or does not match its hash)"
    )
    if good and event:
        check.recovered.append(event)
    check.problems.append(
        AuditProblem(
            "deleted",
            f"seq {seq} is missing from the registry but mirrored on run {copies[0].run_id}{what}",
            seq=seq,
        )
    )
    return copies[0].hash


def _check_chain(
    client: Any,
    name: str,
    chained: list[dict[str, Any]],
    mirrors: Mapping[int, list[Mirror]] | None,
    check: AuditCheck,
) -> None:
    """Seq gaps and duplicates, hashes, links to the previous event, and the mirrors
    (``None``: they could not be read, so a missing copy is not a problem)."""
    read, mirrors = mirrors is not None, mirrors or {}
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for e in chained:
        by_seq.setdefault(e["seq"], []).append(e)
    for seq, same in sorted(by_seq.items()):
        if len(same) > 1:
            check.problems.append(
                AuditProblem("duplicate", f"{len(same)} events claim seq {seq} (a fork)", seq=seq)
            )
    expected: str | None = genesis(name)  # what the next prev must be (None: unknown)
    for seq in range(1, max([*by_seq, *mirrors, 0]) + 1):
        copies = list(mirrors.get(seq, []))
        if seq not in by_seq:
            if copies:
                expected = _recover(client, seq, copies, check)
            else:
                check.problems.append(
                    AuditProblem(
                        "gap", f"seq {seq} is missing (deleted) and no run mirrors it", seq=seq
                    )
                )
                expected = None
            continue
        event = by_seq[seq][0]
        intact = event_hash(event) == event.get("hash")
        if not intact:
            check.problems.append(
                AuditProblem(
                    "edited",
                    f"seq {seq} was edited: its content no longer matches its hash"
                    + _copy_note(client, event, copies),
                    seq=seq,
                )
            )
        elif expected is not None and event.get("prev") != expected:
            what = "the genesis of " + name if seq == 1 else f"the hash of seq {seq - 1}"
            check.problems.append(
                AuditProblem(
                    "broken_link",
                    f"seq {seq} does not link to {what}: an event before it was deleted, "
                    "replaced or reordered",
                    seq=seq,
                )
            )
        if copies and intact and all(m.hash != event["hash"] for m in copies):
            check.problems.append(
                AuditProblem(
                    "mirror_mismatch",
                    f"seq {seq} differs from its copy on run {copies[0].run_id}: one of them "
                    "was rewritten",
                    seq=seq,
                )
            )
        elif read and not copies and mirror_target(event):
            check.problems.append(
                AuditProblem(
                    "unmirrored",
                    f"seq {seq} has no copy on run {mirror_target(event)} (the mirror was "
                    "deleted, or could not be written)",
                    seq=seq,
                )
            )
        expected = event.get("hash") if intact else None


def _check_aliases(
    check: AuditCheck,
    events: list[dict[str, Any]],
    now: Mapping[str, str],
    managed: Iterable[str],
    pending: set[str],
) -> None:
    """The aliases now against what the last event of each says: moved, added or deleted
    outside segments. An alias on a version whose change is still pending is a note."""
    said: dict[str, tuple[str, Any]] = {}
    for e in events:
        if e.get("alias") and e.get("to_version") is not None:
            said[str(e["alias"])] = (str(e["to_version"]), e.get("seq", "legacy"))
    for alias in sorted(set(said) | (set(managed) & set(now))):
        want, seq = said.get(alias, (None, None))
        have = now.get(alias)
        if want == have:
            continue
        if have in pending:
            check.notes.append(
                f"{alias} -> v{have}: a change in progress (pending), not logged yet"
            )
        elif want is None:
            check.problems.append(
                AuditProblem(
                    "alias_added",
                    f"{alias} -> v{have} was set outside segments: no event gives it",
                    alias=alias,
                )
            )
        elif have is None:
            check.problems.append(
                AuditProblem(
                    "alias_deleted",
                    f"{alias} was deleted outside segments: the last event (seq {seq}) set "
                    f"it to v{want}",
                    alias=alias,
                )
            )
        else:
            check.problems.append(
                AuditProblem(
                    "alias_moved",
                    f"{alias} -> v{have} was moved outside segments: the last event "
                    f"(seq {seq}) set it to v{want}",
                    alias=alias,
                )
            )


def _split(check: AuditCheck, model: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The model's legacy and chained events; unreadable tags and unchained events written
    after the chain started are problems."""
    stored = stored_events(model)
    start = min((k for k, e in stored if e is not None and is_chained(e)), default=None)
    legacy: list[dict[str, Any]] = []
    chained: list[dict[str, Any]] = []
    for key, event in stored:
        if event is None:
            check.problems.append(
                AuditProblem("unreadable", f"audit tag {key} does not hold a JSON event")
            )
        elif is_chained(event):
            chained.append(event)
        elif start is not None and key > start:
            check.problems.append(
                AuditProblem(
                    "unchained",
                    f"audit tag {key} has no seq or hash but was written after the chain "
                    "started (by hand, or by an older segments)",
                )
            )
        else:
            legacy.append(event)
    return legacy, chained


def check_audit(name: str) -> AuditCheck:
    """Verify the audit trail of a registered model.

    Checks, after reconciling pending registrations (as :func:`~segments.mlops.registry.
    history` does): every chained event's hash against its content (edited); its ``prev``
    against the event before it (deleted, replaced or reordered); gaps and duplicates in
    ``seq``; each event against its mirrored copy on its run, and events present only
    there (deleted from the registry, recovered); unchained events after the chain
    started; and the ``challenger`` and ``champion`` aliases (and any alias an event set)
    against what the last event of each says. Legacy events (written before the chain)
    are counted and noted, not verified.

    Parameters
    ----------
    name : str
        Registered model name.

    Returns
    -------
    AuditCheck
        ``ok`` when nothing is wrong; ``problems`` name the seq or alias involved.

    Raises
    ------
    RegistryError
        The registered model does not exist.
    """
    from mlflow.exceptions import MlflowException

    from segments.mlops import registry as reg

    client = reg.registry_client()
    reg.get_model(client, name)
    reg.reconcile_locked(client, name)
    model = reg.get_model(client, name)
    check = AuditCheck(name)
    legacy, chained = _split(check, model)
    mirrors: dict[int, list[Mirror]] | None = None
    try:
        mirrors = read_mirrors(client, name)
    except MlflowException as exc:
        check.notes.append(f"could not read the mirrored copies from the runs ({exc})")
    _check_chain(client, name, chained, mirrors, check)
    if chained:
        head = max(chained, key=lambda e: e["seq"])
        check.head_seq, check.head_hash = head["seq"], str(head.get("hash"))
    check.chained, check.legacy = len(chained), len(legacy)
    if legacy:
        check.notes.append(
            f"{len(legacy)} legacy event(s) written before the audit chain: unchained, "
            "not verifiable"
        )
    pending = set(reg.pending_versions(client, name))
    pending |= set(reg.pending_versions(client, name, reg.PROMOTION_TAG))
    _check_aliases(
        check,
        legacy + ordered(chained + check.recovered),
        reg.alias_map(model),
        (reg.CHALLENGER, reg.CHAMPION),
        pending,
    )
    return check


def verify_audit(name: str) -> list[AuditProblem]:
    """The problems :func:`check_audit` finds in the audit trail of ``name`` (empty: intact).

    Parameters
    ----------
    name : str
        Registered model name.

    Returns
    -------
    list of AuditProblem
        Each names its ``kind``, the ``seq`` or ``alias`` involved, and a one-line detail.
    """
    return check_audit(name).problems
