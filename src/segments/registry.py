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
"""

from __future__ import annotations

import contextlib
import getpass
import io
import json
import os
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from segments.exceptions import ConfigError, PromotionError, RegistryError

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "KEY_METRICS",
    "PromotionReport",
    "aliases",
    "history",
    "promote",
    "register_version",
    "signature_problems",
]

CHALLENGER = "challenger"
CHAMPION = "champion"
AUDIT_PREFIX = "segments.audit."
KIND_TAG = "segments.model_kind"

#: Metrics quoted in audit events and comparisons, per model kind.
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "upgrade": ("model.roc_auc", "rule_of_thumb.roc_auc", "logistic.roc_auc", "model.pr_auc",
                "model.brier", "model.ece", "model.lift_top10"),
    "groups": ("n_groups", "stability_ari_mean", "stability_jaccard_min",
               "surrogate_fidelity", "chosen_silhouette", "smallest_group_share",
               "reference_ari"),
}

# threshold -> (what it measures, how to compute it from run metrics, comparison)
_CHECKS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "min_auc": ("out-of-time ROC-AUC", ("model.roc_auc",), ">="),
    "min_auc_gain_over_rule": ("ROC-AUC minus the rule of thumb's",
                               ("model.roc_auc", "rule_of_thumb.roc_auc"), ">"),
    "max_ece": ("expected calibration error", ("model.ece",), "<="),
    "min_stability": ("bootstrap ARI (mean)", ("stability_ari_mean",), ">="),
    "min_group_jaccard": ("smallest group's bootstrap Jaccard", ("stability_jaccard_min",),
                          ">="),
    "min_surrogate_fidelity": ("surrogate fidelity", ("surrogate_fidelity",), ">="),
}


def _client() -> Any:
    from segments.tracking import _mlflow, configure_tracking

    mlflow = _mlflow()
    configure_tracking()
    return mlflow.MlflowClient()


def _not_found(exc: Exception) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or \
        "not found" in str(exc).lower() or "does not exist" in str(exc).lower()


def current_user() -> str:
    """Who is acting: ``SEGMENTS_USER``, else ``MLFLOW_TRACKING_USERNAME``, else the login."""
    return (os.environ.get("SEGMENTS_USER") or os.environ.get("MLFLOW_TRACKING_USERNAME")
            or getpass.getuser())


def _now() -> datetime:
    return datetime.now(UTC)


def _append_audit(client: Any, name: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """Append one event to the registered model's audit log (a new, unique tag)."""
    at = _now()
    record = {"at": at.isoformat(timespec="microseconds"), "by": current_user(), **event}
    key = f"{AUDIT_PREFIX}{at.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:8]}"
    client.set_registered_model_tag(name, key, json.dumps(record, sort_keys=True,
                                                          default=str))
    return record


def _get_model(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if _not_found(exc):
            known = sorted(m.name for m in client.search_registered_models(max_results=100))
            raise RegistryError(f"registered model {name!r} does not exist"
                                + (f"; known: {', '.join(known)}" if known else "")) from None
        raise


def _run_metrics(client: Any, run_id: str | None, kind: str) -> dict[str, float]:
    if not run_id:
        return {}
    metrics = client.get_run(run_id).data.metrics
    return {k: float(metrics[k]) for k in KEY_METRICS.get(kind, ()) if k in metrics}


def _aliases(model: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(model.aliases).items()}


def aliases(name: str) -> dict[str, str]:
    """The registered model's aliases: ``{"champion": "3", "challenger": "4"}``."""
    return _aliases(_get_model(_client(), name))


def register_version(model_uri: str, name: str, *, run_id: str, kind: str,
                     tags: Mapping[str, str] | None = None, description: str = "",
                     reason: str = "trained") -> str:
    """Register a logged model as a new version of ``name`` aliased ``challenger``.

    The registered model is created on first use (tagged with its kind); a model of another
    kind under the same name is refused. The alias change is appended to the audit log.

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

    from segments.tracking import _mlflow

    client = _client()
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        model = client.create_registered_model(
            name, tags={KIND_TAG: kind},
            description=f"segments {kind} model; versions aliased 'challenger' when trained "
                        "and 'champion' when promoted (segments promote). Alias history: "
                        "segments history " + name)
    existing = model.tags.get(KIND_TAG)
    if existing and existing != kind:
        raise RegistryError(f"registered model {name!r} holds {existing} models; cannot "
                            f"register a {kind} model under it (set registry.{kind}_model)")
    mlflow = _mlflow()
    with contextlib.redirect_stderr(io.StringIO()):  # "Created version ..." chatter
        mv = mlflow.register_model(model_uri, name, tags=dict(tags or {}))
    version = str(mv.version)
    if description:
        client.update_model_version(name, version, description=description[:4900])
    previous = _aliases(model).get(CHALLENGER)
    client.set_registered_model_alias(name, CHALLENGER, version)
    _append_audit(client, name, {
        "event": "register", "alias": CHALLENGER, "from_version": previous,
        "to_version": version, "reason": reason, "run_id": run_id,
        "metrics": _run_metrics(client, run_id, kind)})
    return version


def history(name: str) -> pd.DataFrame:
    """The audit log of a registered model's alias changes, oldest first.

    Returns
    -------
    DataFrame
        ``at``, ``by``, ``event``, ``alias``, ``from_version``, ``to_version``, ``reason``,
        ``run_id``, ``evidence_run_id`` and ``metrics`` (a dict) per change.
    """
    model = _get_model(_client(), name)
    events = [json.loads(v) for k, v in sorted(model.tags.items())
              if k.startswith(AUDIT_PREFIX)]
    cols = ["at", "by", "event", "alias", "from_version", "to_version", "reason", "run_id",
            "evidence_run_id", "metrics"]
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

    from segments.features import catalogue_frame

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
        problems.append(f"signature: {len(unknown)} input column(s) not in the current feature "
                        f"contract (windows {list(windows)}): {', '.join(map(str, unknown[:8]))}")
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


def _threshold_checks(kind: str, metrics: Mapping[str, float],
                      thresholds: Mapping[str, float]) -> list[tuple[str, bool, str]]:
    out = []
    for key, limit in thresholds.items():
        what, needs, op = _CHECKS[key]
        missing = [m for m in needs if m not in metrics or not np.isfinite(metrics[m])]
        if missing:
            out.append((key, False, f"{what}: metric {', '.join(missing)} not logged by the run"))
            continue
        value = metrics[needs[0]] - (metrics[needs[1]] if len(needs) > 1 else 0.0)
        ok = {">=": value >= limit, ">": value > limit, "<=": value <= limit}[op]
        out.append((key, bool(ok), f"{what} {value:.4f} {'meets' if ok else 'fails'} "
                                   f"{op} {limit:g}"))
    return out


def _download_config(client: Any, run_id: str) -> Any:
    from segments.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "config.yaml", tmp)
        return load_config(path)


def _compare_upgrade(client: Any, name: str, versions: dict[str, str], run: Any,
                     panel: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    from segments.tiers import assign_tiers, load_ladder
    from segments.tracking import load_model, model_input
    from segments.upgrade import build_training_set, evaluate

    cfg = _download_config(client, run.info.run_id)
    up = cfg.upgrade
    months = run.data.params["split.test"].split(",")
    ladder = load_ladder(cfg.tiers.ladder, basis_window=cfg.tiers.basis_window,
                         hysteresis=cfg.tiers.hysteresis)
    data, _ = build_training_set(panel, assign_tiers(panel, ladder), months,
                                 horizon=up.horizon, population=up.population, kind=up.label,
                                 sustain_months=up.sustain_months,
                                 windows=cfg.features.windows)
    y = data["label"].to_numpy()
    notes.append(f"same held-out months {', '.join(months)} rebuilt from the panel: "
                 f"{len(data):,} labelled customer-months, {int(y.sum()):,} upgrades")
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
    cols["rule of thumb"] = {k: v for k, v in rule.items()
                                           if k not in ("brier", "log_loss", "ece")}
    keep = ["n", "positives", "roc_auc", "pr_auc", "brier", "ece", "lift_top10",
            "capture_top10"]
    return pd.DataFrame(cols).reindex(keep)


def _compare_groups(client: Any, name: str, versions: dict[str, str], run: Any,
                    panel: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    from sklearn.metrics import adjusted_rand_score

    from segments.features import build_features
    from segments.tracking import load_groups_estimator

    cfg = _download_config(client, run.info.run_id)
    as_of = run.data.params["as_of"]
    X = build_features(panel, pd.Period(as_of, "M"), windows=cfg.features.windows)
    labels = {}
    for role, version in versions.items():
        est = load_groups_estimator(f"models:/{name}/{version}")
        missing = [c for c in est.features_ if c not in X]
        if missing:
            notes.append(f"{role} v{version} cannot assign these customers: missing "
                         f"{', '.join(missing[:5])}")
            continue
        labels[f"{role} v{version}"] = est.predict(X)
    rows: dict[str, dict[str, float]] = {}
    for col, lab in labels.items():
        shares = np.bincount(lab) / len(lab)
        rows[col] = {"customers": float(len(lab)), "groups": float(len(np.unique(lab))),
                     "smallest_share": float(shares[shares > 0].min())}
    if len(labels) == 2:
        a, b = labels.values()
        ari = float(adjusted_rand_score(a, b))
        notes.append(f"assignments of the {len(X):,} customers of {as_of}: agreement between "
                     f"challenger and champion (ARI) {ari:.3f}")
        for col in rows:
            rows[col]["agreement_ari"] = ari
    return pd.DataFrame(rows)


def promote(name: str, version: int | str, *, reason: str = "", config: Any = None,
            panel: pd.DataFrame | None = None, dry_run: bool = False) -> PromotionReport:
    """Move the ``champion`` alias of ``name`` to ``version`` after checks.

    Checks: the version exists; its training run finished; its logged metrics meet
    ``config.registry.promotion[kind]``; its input signature matches the current feature
    contract (``config.features.windows``). The challenger is compared with the current
    champion on their logged metrics and, when ``panel`` is given, on the same held-out
    months (upgrade) or customers (groups) rebuilt from it. Checks and comparison are
    logged to an MLflow run (tag ``segments.model_kind=promotion``) in the training run's
    experiment, promoted or refused; on success the alias change is appended to the audit
    log with that run as evidence.

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
    """
    from mlflow.exceptions import MlflowException

    from segments.config import load_config

    cfg = config or load_config()
    version = str(version)
    client = _client()
    model = _get_model(client, name)
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        versions = sorted((int(v.version) for v in client.search_model_versions(
            f"name='{name}'")), reverse=True)
        raise RegistryError(f"{name} has no version {version}; versions: "
                            f"{', '.join(map(str, versions[:10])) or 'none'}") from None
    kind = model.tags.get(KIND_TAG) or mv.tags.get(KIND_TAG, "")
    champion = _aliases(model).get(CHAMPION)
    checks: list[tuple[str, bool, str]] = [("version_exists", True,
                                            f"version {version} (source {mv.source})")]
    run = None
    if mv.run_id:
        run = client.get_run(mv.run_id)
        status = run.info.status
        checks.append(("run_finished", status == "FINISHED",
                       f"training run {mv.run_id} is {status}"))
    else:
        checks.append(("run_finished", False, "the version has no training run"))
    metrics = dict(run.data.metrics) if run else {}
    thresholds = cfg.registry.promotion.get(kind, {})
    if not thresholds:
        checks.append(("thresholds", False, f"unknown model kind {kind!r}"))
    checks += _threshold_checks(kind, metrics, thresholds)
    sig = signature_problems(f"models:/{name}/{version}", cfg.features.windows)
    checks.append(("signature", not sig, "; ".join(sig) or "every input column is in the "
                   f"current feature contract (windows {list(cfg.features.windows)})"))
    if champion == version:
        checks.append(("not_already_champion", False, f"version {version} is already the "
                       "champion"))
    report_checks = pd.DataFrame(checks, columns=["check", "passed", "detail"])

    notes: list[str] = []
    logged: dict[str, dict[str, Any]] = {f"challenger v{version}": {
        **{k: metrics.get(k, np.nan) for k in KEY_METRICS.get(kind, ())},
        "months": run.data.tags.get("segments.test_months", run.data.tags.get(
            "segments.as_of", "")) if run else ""}}
    if champion and champion != version:
        cmv = client.get_model_version(name, champion)
        cm = client.get_run(cmv.run_id) if cmv.run_id else None
        logged[f"champion v{champion}"] = {
            **{k: (cm.data.metrics.get(k, np.nan) if cm else np.nan)
               for k in KEY_METRICS.get(kind, ())},
            "months": cm.data.tags.get("segments.test_months", cm.data.tags.get(
                "segments.as_of", "")) if cm else ""}
        months = {str(v["months"]) for v in logged.values()}
        if len(months) > 1 and panel is None:
            notes.append("the logged metrics are on different months ("
                         + " vs ".join(sorted(months)) + "); pass a panel to compare both "
                         "on the challenger's held-out months")
    else:
        notes.append("no current champion: this is the first promotion" if not champion
                     else "")
    same = None
    if panel is not None and run is not None:
        versions = {"challenger": version}
        if champion and champion != version:
            versions["champion"] = champion
        compare = _compare_upgrade if kind == "upgrade" else _compare_groups
        same = compare(client, name, versions, run, panel, notes)
    report = PromotionReport(name, version, kind, champion, report_checks,
                             pd.DataFrame(logged), same, notes=[n for n in notes if n])
    if dry_run:
        return report
    report.evidence_run_id = _log_promotion(client, report, run, reason)
    if report.failed:
        error = PromotionError(name, version, report.failed)
        error.report = report
        raise error
    client.set_registered_model_alias(name, CHAMPION, version)
    when = _now().isoformat(timespec="seconds")
    for key, value in {"segments.promoted_at": when, "segments.promoted_by": current_user(),
                       "segments.promotion_reason": reason or "(none given)",
                       "segments.promotion_run": report.evidence_run_id}.items():
        client.set_model_version_tag(name, version, key, value)
    _append_audit(client, name, {
        "event": "promote", "alias": CHAMPION, "from_version": champion, "to_version": version,
        "reason": reason or "(none given)", "run_id": mv.run_id,
        "evidence_run_id": report.evidence_run_id,
        "metrics": {k: float(metrics[k]) for k in KEY_METRICS.get(kind, ()) if k in metrics}})
    report.promoted = True
    return report


def _log_promotion(client: Any, report: PromotionReport, run: Any, reason: str) -> str:
    """Log checks and comparison to a new run in the training run's experiment."""
    from segments.cards import markdown_table, render_html

    experiment_id = run.info.experiment_id if run else "0"
    decision = "refused" if report.failed else "promoted"
    tags = {KIND_TAG: "promotion", "segments.registered_model": report.name,
            "segments.version": report.version, "segments.decision": decision,
            "segments.champion_before": report.champion or "", "segments.promoted_by":
            current_user(), "mlflow.user": current_user(),
            "mlflow.note.content": reason or ""}
    evidence = client.create_run(experiment_id, run_name=f"promote {report.name} "
                                 f"v{report.version} ({decision})", tags=tags)
    rid = evidence.info.run_id
    client.log_param(rid, "reason", (reason or "(none given)")[:500])
    for r in report.checks.itertuples():
        client.log_metric(rid, f"check.{r.check}", float(r.passed))
    client.log_text(rid, report.logged.to_csv(), "comparison_logged.csv")
    if report.same_months is not None:
        client.log_text(rid, report.same_months.to_csv(), "comparison_same_months.csv")
    text = (f"# Promotion of {report.name} version {report.version}: {decision}\n\n"
            f"- by {current_user()}\n- champion before: {report.champion or 'none'}\n"
            f"- reason: {reason or '(none given)'}\n\n## Checks\n\n"
            + markdown_table(report.checks, index=False)
            + "\n\n## Challenger vs champion: logged metrics\n\n"
            + markdown_table(report.logged.map(_cell)) + "\n\n"
            + ("## On the same held-out months\n\n" + markdown_table(
                report.same_months.map(_cell)) + "\n\n" if report.same_months is not None
               else "")
            + "".join(f"- {n}\n" for n in report.notes))
    client.log_text(rid, text, "promotion.md")
    client.log_text(rid, render_html(text, f"Promotion of {report.name}"), "promotion.html")
    client.log_dict(rid, {"checks": report.checks.to_dict(orient="records"),
                          "notes": report.notes}, "checks.json")
    client.set_terminated(rid, "FINISHED")
    return rid


def _cell(v: Any) -> Any:
    return v if not isinstance(v, float) or np.isfinite(v) else "-"

