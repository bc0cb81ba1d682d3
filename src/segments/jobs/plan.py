"""The planning job (``segments plan``): a scoring output in, a service plan out.

Checked before any work (:func:`prepare_plan`: the scoring output, the service map against
its tiers and groups, the managers table, the output folder), then built
(:func:`segments.core.plan.build_plan`), written into ``OUT.partial/`` and renamed to ``OUT``
in one step, and logged to MLflow as a planning run holding aggregates only (no customer
row): staffing per service model and branch, the call list in and outside capacity, the
levers per group and branch, and the summary.

``OUT/`` holds ``plan.parquet`` (one row per customer,
:data:`~segments.core.plan.PLAN_COLUMNS`), ``staffing.csv`` (per branch and service model),
``levers_by_group.csv``, ``levers_by_branch.csv``, ``summary.md`` and ``_plan.json``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from segments.core.data.outputs import check_output, output_lock, write_table
from segments.core.growth.levers import LEVER_LABELS
from segments.core.plan import Plan, ServiceMap, build_plan, check_managers
from segments.core.scoring.output import is_scoring_output, read_output
from segments.exceptions import ConfigError, Violation
from segments.jobs.contract import publish

__all__ = ["PLAN_FILES", "PlanJob", "is_plan_output", "plan_markdown", "prepare_plan", "run_plan"]

#: The files of a plan folder.
PLAN_FILES = (
    "plan.parquet",
    "staffing.csv",
    "levers_by_group.csv",
    "levers_by_branch.csv",
    "summary.md",
    "_plan.json",
)


def is_plan_output(path: Path) -> bool:
    """Whether ``path`` is a plan folder segments wrote (its manifest and files only)."""
    if not path.is_dir():
        return False
    try:
        manifest = json.loads((path / "_plan.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("kind") != "service plan":
        return False
    return all(f.name in PLAN_FILES for f in path.iterdir())


@dataclass(frozen=True)
class PlanJob:
    """A checked planning job: its inputs read, nothing written yet."""

    scores_path: Path
    out: Path
    scores: pd.DataFrame
    service: ServiceMap
    managers: pd.DataFrame | None
    call_model: str
    overwrite: bool
    basis_unit: str = ""


def prepare_plan(
    scores: str | Path,
    out: str | Path,
    cfg: Any,
    *,
    managers: str | Path | None = None,
    overwrite: bool = False,
) -> PlanJob:
    """Check a planning job before any work.

    Raises
    ------
    ConfigError
        Not a scoring output; a service map naming tiers or groups the scores lack; a bad
        managers table; an output that would touch an input or data segments did not
        write. Nothing is written.
    """
    scores_path = Path(scores)
    if not is_scoring_output(scores_path):
        raise ConfigError(
            [Violation("--scores", f"{scores_path} is not a segments scoring output folder")]
        )
    managers_path = managers if managers is not None else cfg.service.managers
    inputs = [scores_path, *([Path(managers_path)] if managers_path else [])]
    if managers_path is not None and not Path(managers_path).is_file():
        raise ConfigError([Violation("--managers", f"{managers_path} is not a file")])
    dest = check_output(
        out,
        inputs,
        overwrite=overwrite,
        ours=is_plan_output,
        siblings=(".partial",),
        what="service plan",
    )
    service = cfg.service.load()
    table = None
    if managers_path is not None:
        table = pd.read_csv(managers_path, dtype={"branch_id": str, "service_model": str})
        check_managers(table, service)
    frame = read_output(scores_path)
    unit = json.loads((Path(scores_path) / "_manifest.json").read_text()).get("basis_unit", "")
    return PlanJob(
        scores_path, dest, frame, service, table, cfg.service.call_model, overwrite, unit
    )


def plan_markdown(
    plan: Plan, service: ServiceMap, top_branches: int = 15, basis_unit: str = ""
) -> str:
    """The plan's summary as Markdown: service models, the call list, levers (expected
    gains in ``basis_unit``: the ladder's, money or points)."""
    from segments.mlops.cards.markdown import markdown_table

    totals = plan.totals(service)
    for col in ("contacts_per_month", "expected_gain_outside"):  # whole numbers to read
        totals[col] = totals[col].round().astype("int64")
    on_list = plan.customers["call_rank"].notna()
    outside = int((plan.customers["in_capacity"] == False).sum())  # noqa: E712
    n = int(on_list.sum())
    lines = [f"# Service plan, {plan.as_of}", "", f"Service map `{service.name}`:", ""]
    lines += [
        f"- {m.name} ({m.label_zh}): "
        + (f"{m.capacity:,} customers per manager" if m.has_managers else "no manager")
        + (
            ", a contact every month, "
            if m.cadence_months == 1
            else f", a contact every {m.cadence_months} months, "
        )
        + f"{m.prospects_per_manager} near-tier prospects per manager a month"
        for m in service.models.values()
    ]
    lines += ["", "## Service models", "", markdown_table(totals), ""]
    lines += [
        "## Near-tier call list",
        "",
        f"{n:,} near-tier customers with a probability: {n - outside:,} within the managers' "
        f"capacity, {outside:,} outside it (their expected gain: "
        f"{plan.staffing['expected_gain_outside'].sum():,.0f}"
        + (f" {basis_unit}" if basis_unit else "")
        + ").",
        "",
    ]
    short = plan.staffing[plan.staffing["prospects_outside"] > 0]
    if len(short):
        worst = short.sort_values("prospects_outside", ascending=False).head(top_branches)
        cols = ["service_model", "managers", "prospects", "prospects_outside"]
        lines += [
            f"{short['branch_id'].nunique():,} branches have prospects outside capacity; "
            f"the {len(worst)} largest:",
            "",
            markdown_table(worst.set_index("branch_id")[cols]),
            "",
        ]
    labels = {f"share_{k}": f"{k} ({v})" for k, v in LEVER_LABELS.items()}
    lines += [
        "## Levers on the call list, by strategic group",
        "",
        markdown_table(plan.levers_by_group.rename(columns=labels)),
        "",
    ]
    lines += [f"- note: {note}" for note in plan.notes]
    return "\n".join(lines).rstrip() + "\n"


def _write(plan: Plan, service: ServiceMap, folder: Path, manifest: dict[str, Any]) -> None:
    folder.mkdir(parents=True)
    write_table(plan.customers, folder / "plan.parquet", kind="service plan")
    plan.staffing.to_csv(folder / "staffing.csv", index=False)
    plan.levers_by_group.to_csv(folder / "levers_by_group.csv")
    plan.levers_by_branch.to_csv(folder / "levers_by_branch.csv")
    summary = plan_markdown(plan, service, basis_unit=manifest.get("basis_unit", ""))
    (folder / "summary.md").write_text(summary, encoding="utf-8")
    (folder / "_plan.json").write_text(json.dumps(manifest, indent=2, default=str))


def run_plan(job: PlanJob, *, track: bool = True, experiment: str = "default") -> tuple[Plan, str]:
    """Build the plan, publish its folder, and log the planning run.

    Returns
    -------
    plan : Plan
    run_id : str
        The MLflow planning run ("" when not tracked).
    """
    plan = build_plan(job.scores, job.service, managers=job.managers, call_model=job.call_model)
    manifest = {
        "kind": "service plan",
        "as_of": plan.as_of,
        "scores": str(job.scores_path),
        "service_map": job.service.name,
        "call_model": job.call_model,
        "basis_unit": job.basis_unit,
        "rows": len(plan.customers),
        "call_list": int(plan.customers["call_rank"].notna().sum()),
        "outside_capacity": int((plan.customers["in_capacity"] == False).sum()),  # noqa: E712
        "files": list(PLAN_FILES),
    }
    partial = job.out.with_name(job.out.name + ".partial")
    with output_lock(job.out, {"command": "segments plan", "input": str(job.scores_path)}):
        if partial.exists():
            shutil.rmtree(partial)
        try:
            _write(plan, job.service, partial, manifest)
            publish(partial, job.out, job.overwrite)
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
    run_id = ""
    if track:
        from segments.mlops.planning import log_plan

        summary = plan_markdown(plan, job.service, basis_unit=job.basis_unit)
        run_id = log_plan(plan, job.service, experiment, summary)
    return plan, run_id
