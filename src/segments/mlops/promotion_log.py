"""The MLflow run a promotion leaves, promoted or refused: tags, checks and comparisons.

A promotion run sits in its training run's experiment and carries the tags a training run
carries, so a reviewer filters both the same way: the model kind (``promotion``), the
registered model and version (``segments.model_version``, and ``segments.version``, its
older name), the ladder, the as-of (and test) months and the data digest of the run it
judged, the code that promoted, and the training run itself (``segments.training_run``).
:func:`segments.mlops.promotion.promote` decides; this module writes what it decided on.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from segments.mlops import tags as tag_names
from segments.mlops.locks import current_user
from segments.mlops.review import NOTE, WORKFLOW

if TYPE_CHECKING:
    from segments.mlops.promotion import PromotionReport

__all__ = ["log_promotion", "promotion_tags"]


def promotion_tags(report: PromotionReport, run: Any, reason: str) -> dict[str, str]:
    """The tags of a promotion's evidence run.

    Parameters
    ----------
    report : PromotionReport
        The checks and comparison (``data_digest``: the panel's, when one was given).
    run : mlflow Run or None
        The version's training run: its ladder, months and data digest are copied.
    reason : str

    Returns
    -------
    dict
        ``segments.data_digest`` is the content digest of the panel the comparison was
        rebuilt from, else (no panel) of the training run's panel, whose logged metrics
        the checks judged.
    """
    from segments.mlops.tracking import code_version

    trained = dict(run.data.tags) if run is not None else {}
    decision = "refused" if report.failed else "promoted"
    tags = {
        tag_names.KIND: "promotion",
        tag_names.REGISTERED_MODEL: report.name,
        tag_names.MODEL_VERSION: report.version,
        tag_names.VERSION_OLD: report.version,
        tag_names.DECISION: decision,
        "segments.champion_before": report.champion or "",
        tag_names.PROMOTED_BY: current_user(),
        tag_names.CODE_VERSION: code_version(),
        tag_names.TRAINING_RUN: run.info.run_id if run is not None else "",
        tag_names.DATA_DIGEST: report.data_digest or trained.get(tag_names.DATA_DIGEST, ""),
        "mlflow.user": current_user(),
    }
    for key in (tag_names.LADDER, tag_names.AS_OF, tag_names.TEST_MONTHS):
        if trained.get(key):
            tags[key] = trained[key]
    return tags


def log_promotion(client: Any, report: PromotionReport, run: Any, reason: str) -> str:
    """Log checks and comparison to a new run in the training run's experiment.

    Returns
    -------
    str
        The evidence run's id.
    """
    from mlflow.entities import Metric, Param

    from segments.mlops.cards import markdown_table, render_html

    experiment_id = run.info.experiment_id if run else "0"
    tags = promotion_tags(report, run, reason)
    decision = tags[tag_names.DECISION]
    evidence = client.create_run(
        experiment_id, run_name=f"promote {report.name} v{report.version} ({decision})", tags=tags
    )
    rid = evidence.info.run_id
    trained = dict(run.data.tags) if run is not None else {}
    now = int(time.time() * 1000)
    client.log_batch(  # one request
        rid,
        metrics=[
            Metric(f"check.{r.check}", float(r.passed), now, 0) for r in report.checks.itertuples()
        ],
        params=[
            Param("reason", (reason or "(none given)")[:500]),
            Param("training_data_digest", trained.get(tag_names.DATA_DIGEST, "")),
            Param("panel_data_digest", report.data_digest or "(no panel given)"),
        ],
    )
    client.set_tag(rid, NOTE, _description(report, decision, reason, experiment_id, rid, run))
    client.log_text(rid, report.logged.to_csv(), "comparison_logged.csv")
    if report.same_months is not None:
        client.log_text(rid, report.same_months.to_csv(), "comparison_same_months.csv")
    text = (
        f"# Promotion of {report.name} version {report.version}: {decision}\n\n"
        f"- by {current_user()}\n- champion before: {report.champion or 'none'}\n"
        f"- reason: {reason or '(none given)'}\n"
        f"- training run: {tags[tag_names.TRAINING_RUN] or 'none'} (ladder "
        f"{tags.get(tag_names.LADDER, '?')}, as of {tags.get(tag_names.AS_OF, '?')})\n"
        f"- code: {tags[tag_names.CODE_VERSION]}\n\n## Checks\n\n"
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


def _description(
    report: PromotionReport, decision: str, reason: str, eid: str, rid: str, run: Any
) -> str:
    """The evidence run's description (its Overview's first lines): the decision, the
    checks passed and failed, and links to the evidence and the training run."""
    checks = report.checks
    passed = int(checks["passed"].astype(bool).sum()) if len(checks) else 0
    failed = [str(c) for c in checks.loc[~checks["passed"].astype(bool), "check"]]
    base = f"#/experiments/{eid}/runs"
    lines = [
        f"**{decision.capitalize()}**: {report.name} version {report.version} "
        f"(champion before: {report.champion or 'none'}). Reason: {reason or '(none given)'}.",
        f"Checks: {passed} of {len(checks)} passed"
        + (f"; failed: {', '.join(failed)}." if failed else "."),
        f"Evidence: [promotion.html]({base}/{rid}/artifacts/promotion.html?{WORKFLOW}) "
        "(each check with its value and threshold; the comparisons)"
        + (
            f"; training run [{run.info.run_name}]({base}/{run.info.run_id}?{WORKFLOW})."
            if run is not None
            else "."
        ),
    ]
    return "\n\n".join(lines)


def _cell(v: Any) -> Any:
    return v if not isinstance(v, float) or np.isfinite(v) else "-"
