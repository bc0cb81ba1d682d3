"""The MLflow run of a scoring job: created at its start, ended however it ends.

A scoring run is tagged ``segments.model_kind=scoring`` and carries what a reviewer needs:
counts per tier and group, upgrade probabilities, PSI per feature, the drift report (CSV,
Markdown, HTML, a plot of the largest shifts) and the output's manifest. The job decides
*when* (:func:`segments.jobs.score.run_scoring`); this module talks to MLflow.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segments.core.scoring.output import ScoreResult
from segments.mlops import tags as tag_names
from segments.mlops.review import NOTE

__all__ = [
    "drift_summary",
    "end_abandoned_run",
    "end_scoring_run",
    "log_scoring_run",
    "probabilities",
    "start_scoring_run",
]


def start_scoring_run(cfg: Any, as_of: str, scorer: Any, input_path: str) -> str:
    """Create the MLflow run of a scoring job (tagged ``segments.model_kind=scoring``).

    Parameters
    ----------
    cfg : ExperimentConfig
        Its name is the MLflow experiment (created when missing).
    as_of : str
    scorer : Scorer
        The ladder, the model names and their training runs become tags.
    input_path : str

    Returns
    -------
    str
        The run id.
    """
    from segments.mlops.registry import current_user, registry_client
    from segments.mlops.tracking import code_version, experiment_id

    client = registry_client()
    eid = experiment_id(cfg.name)  # created or marked for review when needed
    tags = {
        tag_names.KIND: "scoring",
        tag_names.AS_OF: as_of,
        tag_names.LADDER: scorer.ladder.name,
        "segments.groups_model": scorer.groups_model,
        "segments.upgrade_model": scorer.upgrade_model,
        tag_names.GROUPS_RUN: scorer.sources.get("groups", {}).get("run_id", ""),
        tag_names.UPGRADE_RUN: scorer.sources.get("upgrade", {}).get("run_id", ""),
        tag_names.CODE_VERSION: code_version(),
        "segments.input": input_path,
        "mlflow.user": current_user(),
    }
    run = client.create_run(eid, run_name=f"score {as_of}", tags=tags)
    return run.info.run_id


def end_scoring_run(run_id: str, status: str) -> None:
    """Mark a scoring run ended (``FINISHED``, ``FAILED`` or ``KILLED``)."""
    from segments.mlops.registry import registry_client

    registry_client().set_terminated(run_id, status)


def end_abandoned_run(run_id: str) -> bool:
    """Mark the run of a killed job that will not be resumed ``KILLED`` if still running.

    Returns
    -------
    bool
        Whether the run was marked (False for a run in another store, or already ended).
    """
    from segments.mlops.registry import registry_client

    client = registry_client()
    with contextlib.suppress(Exception):  # a run in another store: nothing to end
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "KILLED")
            return True
    return False


def _metrics(result: ScoreResult, p: np.ndarray) -> dict[str, float]:
    """Counts, timings, PSIs and probability quantiles of a finished job."""
    m = result.manifest
    metrics = {
        "rows": m["rows"],
        "scored_upgrade": m["scored_upgrade"],
        **{f"tier.{k}": v for k, v in m["tiers"].items()},
        **{f"segment.{k}": v for k, v in m["segments"].items()},
        **{f"time.{k}": v for k, v in m["timings_s"].items()},
    }
    kinds = {
        "feature": "feature",
        "upgrade feature": "upgrade_feature",
        "score": "score",
        "group shares": "groups",
    }
    for r in result.drift.itertuples():
        if np.isfinite(r.psi):
            metrics[f"psi.{kinds[r.kind]}.{r.column}"] = r.psi
    d = m["drift"]
    if d.get("checked"):
        metrics.update(
            {
                "psi.max": d["max_psi"],
                "psi.n_moderate": d["moderate"],
                "psi.n_significant": d["significant"],
            }
        )
    if len(p):
        metrics.update(
            {
                "p_upgrade.mean": float(p.mean()),
                **{f"p_upgrade.q{q}": float(np.quantile(p, q / 100)) for q in (10, 50, 90)},
            }
        )
    return metrics


def probabilities(out: str | os.PathLike[str]) -> np.ndarray:
    """The upgrade probabilities of a scoring output (the near-tier customers'), read as
    one column: the job's memory stays bounded by its batches, not by the book."""
    import pyarrow.dataset as ds

    parts = sorted(str(f) for f in Path(out).glob("*.parquet"))
    if not parts:
        return np.empty(0)
    column = ds.dataset(parts, format="parquet").to_table(columns=["p_upgrade"]).column(0)
    return column.drop_null().to_numpy().astype(float, copy=False)


def log_scoring_run(result: ScoreResult, cfg: Any, status: str = "FINISHED") -> None:
    """Log a finished scoring job to its MLflow run and end the run.

    Counts, scores, PSI, the drift report and its plots, the manifest.

    Parameters
    ----------
    result : ScoreResult
        With the ``run_id`` of :func:`start_scoring_run`.
    cfg : ExperimentConfig
        The PSI thresholds (``scoring.psi_warn``, ``scoring.psi_alert``).
    status : str, default "FINISHED"
    """
    from mlflow.entities import Metric, Param, RunTag

    from segments.mlops.cards import markdown_table, render_html
    from segments.mlops.registry import registry_client

    client = registry_client()
    rid = result.run_id
    m = result.manifest
    now = int(time.time() * 1000)
    p = probabilities(result.out)
    items = [Metric(k, float(v), now, 0) for k, v in _metrics(result, p).items()]
    for i in range(0, len(items), 900):
        client.log_batch(rid, metrics=items[i : i + 900])
    params = {
        "as_of": m["as_of"],
        "engine": m["engine"],
        "batches": m["batches"],
        "input": m["input"],
        "input_digest": m["input_digest"],
        "out": str(result.out),
        "groups_model": m["groups_model"],
        "upgrade_model": m["upgrade_model"],
        "psi_warn": cfg.scoring.psi_warn,
        "psi_alert": cfg.scoring.psi_alert,
    }
    reference = m["drift"].get("reference") or {}
    for role, source in reference.items():
        params.update({f"reference.{role}.{k}": v for k, v in source.items()})
    client.log_batch(
        rid,
        params=[Param(k, str(v)[:500]) for k, v in params.items()],
        tags=[RunTag(tag_names.DATA_DIGEST, m.get("data_digest", ""))],
    )
    client.log_dict(rid, m, "manifest.json")
    rep = result.drift
    client.log_text(rid, rep.to_csv(index=False), "drift/psi.csv")
    text = (
        f"# Drift report: scoring {m['as_of']}\n\nPSI of each feature, the upgrade score "
        f"and the group shares against the training reference; flags at "
        f"{cfg.scoring.psi_warn} (moderate) and {cfg.scoring.psi_alert} (significant)."
        f"\n\n{_reference_lines(reference)}"
        f"{drift_summary(rep, m['as_of'], reference)[1]}\n\n"
        f"Panel content digest (`segments.data_digest`): `{m.get('data_digest', '')}`"
        f"\n\n{markdown_table(rep, index=False)}\n"
    )
    client.log_text(rid, text, "drift/report.md")
    client.log_text(rid, render_html(text, f"Drift {m['as_of']}"), "drift/report.html")
    _log_plots(client, rid, rep, p, m["as_of"], (cfg.scoring.psi_warn, cfg.scoring.psi_alert))
    level, summary = drift_summary(rep, m["as_of"], reference)
    client.set_tag(rid, tag_names.DRIFT, level)
    client.set_tag(rid, NOTE, summary)
    client.set_terminated(rid, status)


def drift_summary(
    rep: pd.DataFrame, as_of: str, reference: dict[str, dict[str, str]]
) -> tuple[str, str]:
    """The drift level of a scoring run (``significant``, ``moderate`` or ``none``) and its
    description: the flags counted, the largest shift named, and a reference that holds the
    scored month itself (against which nothing can drift) said so."""
    flags = rep["flag"].astype(str) if "flag" in rep else pd.Series(dtype=str)
    counts = {f: int((flags == f).sum()) for f in ("significant", "moderate")}
    level = next((f for f in ("significant", "moderate") if counts[f]), "none")
    lines = [
        f"**Scoring {as_of}**: drift **{level}** ({counts['significant']} significant, "
        f"{counts['moderate']} moderate PSI of {len(rep)}); the report: "
        "`drift/report.html`."
    ]
    if len(rep) and rep["psi"].notna().any():
        top = rep.loc[rep["psi"].idxmax()]
        lines.append(f"Largest shift: {top['kind']} `{top['column']}`, PSI {top['psi']:.3f}.")
    for role, source in reference.items():
        if as_of in str(source.get("months", "")).split(","):
            lines.append(
                f"The {role} model's reference is {as_of}, the scored month itself: its "
                "features cannot drift against it here."
            )
    return level, " ".join(lines)


def _reference_lines(reference: dict[str, dict[str, str]]) -> str:
    """What the report compares with, one line per model: its version, the months its
    reference profiles and its training run."""
    what = {
        "groups": ("features (all customers) and group shares", "as of"),
        "upgrade": ("features of the upgrade population and the upgrade score", "test months"),
    }
    lines = []
    for role, (rows, months) in what.items():
        s = reference.get(role)
        if s:
            lines.append(
                f"- {rows}: the {role} model {s.get('model') or '?'}'s training reference, "
                f"{months} {s.get('months') or '?'} (training run `{s.get('run_id') or '?'}`)"
            )
    return "".join(f"{line}\n" for line in lines) + ("\n" if lines else "")


def _log_plots(
    client: Any,
    rid: str,
    rep: pd.DataFrame,
    p: np.ndarray,
    as_of: str,
    thresholds: tuple[float, float],
) -> None:
    """The largest shifts and the distribution of upgrade probabilities, as figures."""
    import matplotlib.pyplot as plt

    if not rep.empty:
        top = rep.head(20).iloc[::-1]
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(top) + 1.2))
        colours = [
            "#c0392b" if f == "significant" else "#e67e22" if f == "moderate" else "#7f8c8d"
            for f in top["flag"]
        ]
        ax.barh(
            [f"{k}: {c}" for k, c in zip(top["kind"], top["column"], strict=True)],
            top["psi"],
            color=colours,
        )
        for x in thresholds:
            ax.axvline(x, ls="--", lw=0.8, color="black")
        ax.set_xlabel("PSI against the training reference")
        ax.set_title(f"Largest shifts, scoring {as_of}")
        fig.tight_layout()
        client.log_figure(rid, fig, "drift/psi_top20.png")
        plt.close(fig)
    if len(p):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(p, bins=40, color="#2c7fb8")
        ax.set_xlabel("p_upgrade")
        ax.set_ylabel("customers")
        ax.set_title(f"Upgrade probabilities, {as_of} ({len(p):,} customers)")
        fig.tight_layout()
        client.log_figure(rid, fig, "plots/p_upgrade.png")
        plt.close(fig)
