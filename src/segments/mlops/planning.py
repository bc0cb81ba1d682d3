"""The MLflow run of a service plan: aggregates only, never a customer row.

A planning run is tagged ``segments.model_kind=plan`` with the as-of month, the service map
and the scoring run it planned from. It logs the staffing per service model and per branch,
the call list in and outside capacity, the levers per group and branch (shares), and the
summary as the run's card.
"""

from __future__ import annotations

from segments.core.plan import Plan, ServiceMap
from segments.mlops import tags as tag_names

__all__ = ["log_plan"]


def _metrics(plan: Plan, service: ServiceMap) -> dict[str, float]:
    totals = plan.totals(service)
    on_list = plan.customers["call_rank"].notna()
    outside = plan.customers["in_capacity"] == False  # noqa: E712
    metrics = {
        "plan.customers": float(len(plan.customers)),
        "plan.call_list": float(on_list.sum()),
        "plan.call_list_outside_capacity": float(outside.sum()),
        "plan.managers_needed": float(totals["managers_needed"].sum()),
        "plan.managers_short": float(totals["shortfall"].sum()),
        "plan.expected_gain_outside": float(plan.staffing["expected_gain_outside"].sum()),
    }
    for model, row in totals.iterrows():
        for col in ("customers", "managers_needed", "shortfall", "prospects_outside"):
            metrics[f"plan.{model}.{col}"] = float(row[col])
    return metrics


def log_plan(plan: Plan, service: ServiceMap, experiment: str, summary: str) -> str:
    """Log a service plan as a run of ``experiment`` and return its id.

    Parameters
    ----------
    plan : Plan
    service : ServiceMap
    experiment : str
        The MLflow experiment (the configuration's name).
    summary : str
        The plan's summary (Markdown), logged as the run's card.

    Returns
    -------
    str
        The run id.
    """
    from segments.mlops.cards import render_html
    from segments.mlops.review import log_card_first
    from segments.mlops.tracking import code_version, log_frame, mlflow_module, start_run

    mlflow = mlflow_module()
    scoring_run = ",".join(plan.scoring_runs)[:250]
    tags = {
        tag_names.KIND: "plan",
        tag_names.AS_OF: plan.as_of,
        tag_names.CODE_VERSION: code_version(),
        "segments.service_map": service.name,
        "segments.scoring_run": scoring_run,
    }
    with start_run(experiment, f"plan {plan.as_of}", tags) as run:
        mlflow.log_params(
            {
                "service_map": service.name,
                "as_of": plan.as_of,
                **{
                    f"model.{m.name}.capacity": m.capacity or "none"
                    for m in service.models.values()
                },
            }
        )
        mlflow.log_metrics(_metrics(plan, service))
        log_frame(plan.totals(service), "staffing/by_service_model.csv")
        log_frame(plan.staffing, "staffing/by_branch.csv", index=False)
        log_frame(plan.levers_by_group.round(4), "levers/by_group.csv")
        log_frame(plan.levers_by_branch.round(4), "levers/by_branch.csv")
        mlflow.log_text(summary, "plan_summary.md")
        html = render_html(summary, f"Service plan {plan.as_of}")
        mlflow.log_text(html, "plan_summary.html")
        log_card_first(summary, html)
        return str(run.info.run_id)
