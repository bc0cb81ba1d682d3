"""What a reviewer meets in the MLflow UI: where it opens, what each experiment says about
itself, the model card first, and charts that read by month.

Read from MLflow 3.17's UI (``mlflow/server/js/build``): it shows one of two workflows,
"GenAI" (the default: a home page of traces, experiments opening on an Overview of
traces) or "Model training" (runs, charts, the model registry in the sidebar). The
workflow comes from the URL's ``workflowType`` parameter, else the browser's last choice
of the sidebar toggle, and 3.17 opens an experiment by it; its code for a kind per
experiment (behind a switch this build turns off) reads the experiment's
``mlflow.experimentKind`` tag instead. So the URLs ``segments ui`` prints name the workflow
(``#/experiments/<id>/runs?workflowType=machine_learning``,
``#/models?workflowType=machine_learning``), and every segments experiment carries
:data:`MODEL_TRAINING` and a description (``mlflow.note.content``).

The UI lists a run's artifacts folders first, then files, each in the server's order
(sorted by path), so a file at the top level is never first: the card is also logged in
the folder :data:`CARD_DIR`, which sorts before every other name segments logs, and the
run's description (its Overview tab, the first thing a run shows) links to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

import pandas as pd

from segments.mlops import tags as tag_names

__all__ = [
    "CARD_DIR",
    "EXPERIMENT_KIND",
    "MODEL_TRAINING",
    "NOTE",
    "experiment_note",
    "experiment_tags",
    "landing_urls",
    "log_by_month",
    "log_card_first",
    "mark_experiment",
    "month_span",
    "month_step",
    "registry_url",
    "review_experiments",
    "runs_url",
    "segments_experiments",
]

#: The experiment tag MLflow's UI reads for what an experiment is for.
EXPERIMENT_KIND = "mlflow.experimentKind"
#: The kind the UI files under "Model training" (its other values: ``genai_development``...).
MODEL_TRAINING = "custom_model_development"
#: Every kind the UI treats as model training: a user's choice among them is kept.
TRAINING_KINDS = frozenset(
    {
        MODEL_TRAINING,
        "custom_model_development_inferred",
        "finetuning",
        "forecasting",
        "classification",
        "regression",
        "automl",
    }
)
#: The description of an experiment or a run, markdown (MLflow's "Description").
NOTE = "mlflow.note.content"
#: The digest of the description segments wrote: a description that no longer matches it
#: was edited by someone, and is left alone.
NOTE_DIGEST = "segments.note_digest"
#: The URL parameter that selects the UI's "Model training" workflow.
WORKFLOW = "workflowType=machine_learning"
#: The artifact folder holding the model card, named to be listed first.
CARD_DIR = "0_model_card"


def experiment_note(name: str) -> str:
    """The description of segments experiment ``name``: what it holds, how to read it.

    Parameters
    ----------
    name : str
        The experiment (and config) name.
    """
    # One line per paragraph or item: the UI's markdown (GitHub flavour) keeps line breaks.
    lines = [
        f"**segments experiment `{name}`**: the runs of the experiment config named "
        f"`{name}` (e.g. `experiments/{name}.yaml`).",
        "",
        "Its runs, by tag `segments.model_kind` (and named like):",
        "",
        "- `groups` (`groups 2025-12 k=7`): a strategic-groups training: the model, "
        "profiles, k selection, stability;",
        "- `upgrade` (`upgrade reach 3m test 2025-08..2025-09`): an upgrade-model training, "
        "tested out of time on the months named;",
        "- `scoring` (`score 2025-12`): a batch scoring: counts per tier and group, drift (PSI);",
        f"- `promotion` (`promote {name}-upgrade v3 (promoted)`): the evidence of a "
        "promotion, promoted or refused: checks and comparison.",
        "",
        "Filter them with e.g. ``tags.`segments.model_kind` = 'upgrade'``.",
        "",
        "**Reading a training run.** Start with its model card: the run's description links "
        f"to it, and it is the first folder of the run's artifacts (`{CARD_DIR}/"
        "model_card.html`, the same card as `model_card.html`): purpose, data and digest, "
        "population and label, features, metrics against the baselines, calibration, "
        "stability, known limits, configuration.",
        "",
        "**Metrics.** Upgrade: `model.roc_auc`, `model.pr_auc`, `model.lift_top10`, "
        "`model.brier`, `model.ece`; the same for the baselines (`rule_of_thumb.*`, "
        "`logistic.*`) and per near band (`model.near_gold.roc_auc`); `labels.*` by as-of "
        "month (step YYYYMM, e.g. 202508). Groups: `stability_ari_mean`, "
        "`surrogate_fidelity`, `n_groups`, `k_*` by k tried (step k). Scoring: `psi.max`, "
        "`rows`, `tier.*`, `segment.*`.",
        "",
        f"**Registry.** Trainings register `{name}-groups` and `{name}-upgrade` (unless the "
        "config's `registry` section names them) and move the alias `challenger` to the new "
        f"version; `champion` is the version scoring loads (`models:/{name}-upgrade@champion`"
        "), moved only by `segments promote` after its checks. `segments history MODEL` "
        "prints every alias change: who, when, from, to, why, and the evidence run.",
    ]
    return "\n".join(lines) + "\n"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def experiment_tags(name: str) -> dict[str, str]:
    """The tags a new segments experiment is created with: kind and description."""
    note = experiment_note(name)
    return {EXPERIMENT_KIND: MODEL_TRAINING, NOTE: note, NOTE_DIGEST: _digest(note)}


def mark_experiment(client: Any, experiment: Any) -> list[str]:
    """Give an existing experiment the model-training kind and segments' description.

    The kind is set unless it is one the UI already treats as model training; the
    description when there is none, or when it is segments' own older text (a
    description a user wrote or edited is kept).

    Parameters
    ----------
    client : mlflow.MlflowClient
    experiment : mlflow.entities.Experiment
        As read from the store (with its tags).

    Returns
    -------
    list of str
        The tags written (empty when the experiment had them).
    """
    have = dict(experiment.tags or {})
    want = experiment_tags(experiment.name)
    write = {}
    if have.get(EXPERIMENT_KIND) not in TRAINING_KINDS:
        write[EXPERIMENT_KIND] = want[EXPERIMENT_KIND]
    note = have.get(NOTE) or ""
    ours = not note.strip() or _digest(note) == have.get(NOTE_DIGEST)
    if ours and note != want[NOTE]:
        write |= {NOTE: want[NOTE], NOTE_DIGEST: want[NOTE_DIGEST]}
    for key, value in write.items():
        client.set_experiment_tag(experiment.experiment_id, key, value)
    return sorted(write)


def segments_experiments(client: Any) -> list[Any]:
    """The active experiments that hold a segments run (any ``segments.model_kind``),
    oldest first."""
    found = []
    for exp in client.search_experiments(order_by=["creation_time ASC"]):
        runs = client.search_runs(
            [exp.experiment_id], f"tags.`{tag_names.KIND}` LIKE '%'", max_results=1
        )
        if runs:
            found.append(exp)
    return found


def runs_url(base: str, experiment_id: str) -> str:
    """The UI page listing an experiment's runs, in the "Model training" workflow."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{WORKFLOW}"


def registry_url(base: str) -> str:
    """The UI's model registry, in the "Model training" workflow."""
    return f"{base.rstrip('/')}/#/models?{WORKFLOW}"


def landing_urls(experiments: Iterable[Any], base: str) -> list[tuple[str, str]]:
    """``(label, url)`` for each experiment's runs, then the registry; the experiments
    list when there is none yet."""
    pages = [(f"experiment {e.name}", runs_url(base, e.experiment_id)) for e in experiments]
    if not pages:
        pages = [("experiments", f"{base.rstrip('/')}/#/experiments?{WORKFLOW}")]
    return [*pages, ("registry", registry_url(base))]


def log_card_first(markdown: str, html: str) -> None:
    """Log the card again in :data:`CARD_DIR` (the artifacts' first line) and make the
    active run's description a link to it."""
    from segments.mlops.tracking import mlflow_module

    mlflow = mlflow_module()
    mlflow.log_text(html, f"{CARD_DIR}/model_card.html")
    mlflow.log_text(markdown, f"{CARD_DIR}/model_card.md")
    info = mlflow.active_run().info
    page = (
        f"#/experiments/{info.experiment_id}/runs/{info.run_id}/artifacts/"
        f"{CARD_DIR}/model_card.html?{WORKFLOW}"
    )
    mlflow.set_tag(
        NOTE,
        f"**Start with the [model card]({page})**: Artifacts, first folder `{CARD_DIR}` "
        "(the same card as `model_card.html`; the configuration in `config.yaml`).",
    )


def month_span(months: Sequence[str]) -> str:
    """Months as a run name says them: ``2025-08``, ``2025-08..2025-10`` when consecutive,
    else each (``2025-06,2025-08``)."""
    periods = sorted({pd.Period(m, "M") for m in months})
    if len(periods) > 1 and all((b - a).n == 1 for a, b in pairwise(periods)):
        return f"{periods[0]}..{periods[-1]}"
    return ",".join(map(str, periods))


def month_step(month: Any) -> int:
    """A month as a metric step that reads as one: ``2025-08`` -> ``202508``."""
    p = pd.Period(month, "M")
    return p.year * 100 + p.month


def log_by_month(mlflow: Any, prefix: str, table: pd.DataFrame, columns: Sequence[str]) -> None:
    """Log ``prefix.<column>`` for each month of ``table``'s index, at step YYYYMM and at
    that month's first day (UTC), so a chart reads by month on either axis."""
    for month, row in table.iterrows():
        first = pd.Period(month, "M").to_timestamp().tz_localize("UTC")
        mlflow.log_metrics(
            {f"{prefix}.{c}": float(row[c]) for c in columns},
            step=month_step(month),
            timestamp=int(first.timestamp() * 1000),
        )


def review_experiments(uri: str) -> list[Any]:
    """The segments experiments of the store at ``uri``, each given the model-training kind
    and segments' description where it lacks them (see :func:`mark_experiment`).

    Parameters
    ----------
    uri : str
        A tracking store (``sqlite:///...``, ``http://...``).
    """
    from segments.mlops.tracking import mlflow_module

    client = mlflow_module().MlflowClient(uri)
    found = segments_experiments(client)
    for exp in found:
        mark_experiment(client, exp)
    return found
