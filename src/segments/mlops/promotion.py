"""Promotion: ``champion`` moves to a version only after checks, with the evidence logged.

:func:`promote` checks that the version exists, its registration completed, its run
finished, its logged metrics meet the configured thresholds (:data:`GATES`), its signature
matches the current feature contract and it is not already champion; it compares the version
with the current champion on held-out months (upgrade) or on the latest month (groups),
logs that comparison as an MLflow run, then moves the alias under the registry lock and
appends the audit event. See :mod:`segments.mlops.registry` for the guarantees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from segments.exceptions import (
    PromotionConflict,
    PromotionError,
    RegistryError,
)
from segments.mlops import tags as tag_names
from segments.mlops.evidence import (
    compare_groups,
    compare_upgrade,
    ladder_of,
    run_panel_digest,
    signature_problems,
)
from segments.mlops.locks import (
    LockHeld,
    acquire_lock,
    current_user,
    not_found,
    now_utc,
    release_lock,
)
from segments.mlops.promotion_log import log_promotion
from segments.mlops.registry import (
    CHAMPION,
    KEY_METRICS,
    KIND_TAG,
    PENDING,
    PRO_PREFIX,
    PROMOTION_TAG,
    REG_PREFIX,
    REGISTRATION_TAG,
    alias_map,
    audit_events,
    complete_promotion,
    get_model,
    reconcile_locked,
    registry_client,
)

__all__ = ["GATES", "PromotionConflict", "PromotionReport", "promote"]

#: Promotion gate (config threshold) -> (what it measures, the run metrics it reads, test).
GATES: dict[str, tuple[str, tuple[str, ...], str]] = {
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
    notes : list of str
    data_digest : str
        The content digest of the panel the comparison was rebuilt from ("" without one):
        the ``segments.data_digest`` a training or scoring of that panel logs.
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
    data_digest: str = ""

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
        what, needs, op = GATES[key]
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

    from segments.core.config.experiment import load_config

    cfg = config or load_config()
    version = str(version)
    client = registry_client()
    model = get_model(client, name)
    if not dry_run and reconcile_locked(client, name):
        model = get_model(client, name)
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        if not not_found(exc):
            raise
        versions = sorted(
            (int(v.version) for v in client.search_model_versions(f"name='{name}'")), reverse=True
        )
        raise RegistryError(
            f"{name} has no version {version}; versions: "
            f"{', '.join(map(str, versions[:10])) or 'none'}"
        ) from None
    kind = model.tags.get(KIND_TAG) or mv.tags.get(KIND_TAG, "")
    champion = alias_map(model).get(CHAMPION)
    run = client.get_run(mv.run_id) if mv.run_id else None
    metrics = dict(run.data.metrics) if run else {}
    checks = _version_checks(name, version, mv, run, kind, champion, metrics, cfg)
    report_checks = pd.DataFrame(checks, columns=["check", "passed", "detail"])

    notes: list[str] = []
    logged = _logged_metrics(client, name, version, champion, kind, run, metrics, panel, notes)
    same, digest = None, ""
    if panel is not None and run is not None:
        versions = {"challenger": version}
        if champion and champion != version:
            versions["champion"] = champion
        compare = compare_upgrade if kind == "upgrade" else compare_groups
        same = compare(client, name, versions, run, panel, notes)
        digest = run_panel_digest(client, run, panel)
        notes.append(_panel_note(digest, run, version))
    report = PromotionReport(
        name,
        version,
        kind,
        champion,
        report_checks,
        pd.DataFrame(logged).rename_axis("metric"),
        same,
        notes=[n for n in notes if n],
        data_digest=digest,
    )
    if dry_run:
        return report
    _move_champion(client, report, run, reason)
    report.promoted = True
    return report


def _version_checks(
    name: str,
    version: str,
    mv: Any,
    run: Any,
    kind: str,
    champion: str | None,
    metrics: dict[str, float],
    cfg: Any,
) -> list[tuple[str, bool, str]]:
    """The checks on the version itself: registration, run, gates, signature, champion."""
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
                    f"{mv.tags.get(REG_PREFIX + 'by', '?')} at "
                    f"{mv.tags.get(REG_PREFIX + 'started_at', '?')}) has "
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
    if run is not None:
        status = run.info.status
        checks.append(
            ("run_finished", status == "FINISHED", f"training run {mv.run_id} is {status}")
        )
    else:
        checks.append(("run_finished", False, "the version has no training run"))
    thresholds = cfg.registry.promotion.get(kind, {})
    if not thresholds:
        checks.append(("thresholds", False, f"unknown model kind {kind!r}"))
    checks += _threshold_checks(kind, metrics, thresholds)
    sig = signature_problems(
        f"models:/{name}/{version}", cfg.features.windows, cfg.features.columns, ladder_of(cfg)
    )
    checks.append(
        (
            "signature",
            not sig,
            "; ".join(sig)
            or "every input column is in the "
            f"current feature contract (windows {list(cfg.features.windows)})",
        )
    )
    checks.append(
        (
            "not_already_champion",
            champion != version,
            f"version {version} is already the champion"
            if champion == version
            else f"the champion is {_v(champion)}",
        )
    )
    return checks


def _panel_note(digest: str, run: Any, version: str) -> str:
    """Whether the panel given is the one the version was trained on (by content)."""
    trained = run.data.tags.get(tag_names.DATA_DIGEST, "")
    if digest == trained:
        return f"the panel given is the one version {version} was trained on (content digest)"
    return (
        f"the panel given (content digest {digest[:12]}) is not the one version {version}'s "
        f"training run logged ({trained[:12] or 'none'}): another panel, or a training "
        "logged before digests were of content"
    )


def _logged_metrics(
    client: Any,
    name: str,
    version: str,
    champion: str | None,
    kind: str,
    run: Any,
    metrics: dict[str, float],
    panel: pd.DataFrame | None,
    notes: list[str],
) -> dict[str, dict[str, Any]]:
    """The key metrics each version's training run logged, and the months they are on."""
    logged: dict[str, dict[str, Any]] = {
        f"challenger v{version}": {
            **{k: metrics.get(k, np.nan) for k in KEY_METRICS.get(kind, ())},
            "months": _months(run),
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
            "months": _months(cm),
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
    return logged


def _months(run: Any) -> str:
    """The months a training run's metrics are on: its test months, else its as-of."""
    if run is None:
        return ""
    return run.data.tags.get(tag_names.TEST_MONTHS, run.data.tags.get(tag_names.AS_OF, ""))


def _move_champion(client: Any, report: PromotionReport, run: Any, reason: str) -> None:
    """Under the registry lock: re-check the champion, then move the alias and write the
    audit event (a pending promotion tag first, so a kill in between is reconciled).
    Refuses (raises) when the lock is held or the champion moved since the checks."""
    name, version, champion = report.name, report.version, report.champion
    try:
        token = acquire_lock(client, name, f"promote v{version}")
    except LockHeld as held:
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
        now = alias_map(get_model(client, name)).get(CHAMPION)
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
            PRO_PREFIX + "from_version": champion or "",
            PRO_PREFIX + "reason": reason or "(none given)",
            PRO_PREFIX + "by": current_user(),
            PRO_PREFIX + "started_at": now_utc().isoformat(timespec="seconds"),
            PRO_PREFIX + "evidence_run": report.evidence_run_id or "",
            PROMOTION_TAG: PENDING,
        }.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_registered_model_alias(name, CHAMPION, version)
        complete_promotion(client, name, version, reconciled=False)
    finally:
        release_lock(client, name, token)


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
        for e in audit_events(get_model(client, name))
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
    report.evidence_run_id = log_promotion(client, report, run, reason)
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
