"""The scoring job's contract between the job and the engines: the prepared job
(:class:`ScoringJob`), what identifies it for a resume (:func:`job_identity`,
:func:`digest_input`), its manifest (:func:`make_manifest`) and the atomic publish
(:func:`publish`). The job (:mod:`segments.jobs.score`) builds and runs it; an engine
(:mod:`segments.engines`) reads it. Neither imports the other at module level."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from segments.core.config.sections import ScoringConfig
from segments.core.data.months import parse_timestamp
from segments.core.data.panel import PanelInput
from segments.core.scoring.batch import Scorer, drift_summary
from segments.exceptions import ConfigError, Violation

__all__ = ["ScoringJob", "digest_input", "job_identity", "make_manifest", "publish"]


@dataclass(frozen=True)
class ScoringJob:
    """A scoring job checked before any work (:func:`prepare_scoring`), ready for an engine.

    Attributes
    ----------
    src, dest : Path
        The panel input and the output folder.
    month : str
        The as-of month, ``YYYY-MM``.
    input : PanelInput
        The inspected input: files, columns, rows and months.
    history_months : int
        Months of panel history up to and including the as-of month.
    scorer : Scorer
        The models and settings.
    short_features : tuple of str
        Model features whose window is longer than that history (only with
        ``allow_short_history``; they are named in the manifest).
    overwrite : bool
    engine : str
        The engine's name (:mod:`segments.engines`).
    batch_customers : int, default 50_000 (``scoring.batch_customers``)
        About how many customers a batch holds (local engine); memory scales with it.
    scored_at : str, optional
        The time stamped on rows (default: now; a resumed job keeps its first start time).
    run_id : str
        Stamped on rows when ``on_start`` is not given.
    options : mapping
        Engine-specific settings (Spark: ``master``, ``partitions``, ``session``).
    progress : callable, optional
        ``progress(stage, done, total)``.
    on_start : callable, optional
        Called with the job's state (before any scoring) and returning the run id to
        stamp; a resumed job does not call it and keeps its stored run id.
    on_discard : callable, optional
        Called with a killed job's stored state when this job cannot resume it (another
        month, input or setting) and starts again, e.g. to end that job's MLflow run.
    """

    src: Path
    dest: Path
    month: str
    input: PanelInput
    history_months: int
    scorer: Scorer = field(repr=False, compare=False)
    short_features: tuple[str, ...] = ()
    overwrite: bool = False
    engine: str = "local"
    batch_customers: int = ScoringConfig.batch_customers
    scored_at: str | None = None
    run_id: str = ""
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)
    progress: Callable[[str, int, int], None] | None = field(default=None, compare=False)
    on_start: Callable[[dict[str, Any]], str] | None = field(default=None, compare=False)
    on_discard: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)

    @property
    def lock_info(self) -> dict[str, str]:
        """What the output lock says about this job (shown to a second job)."""
        return {"command": "segments score", "as_of": self.month, "input": str(self.src)}

    def with_options(self, **changes: Any) -> ScoringJob:
        """A copy with some fields changed (see :func:`dataclasses.replace`); a
        ``scored_at`` must be an ISO 8601 time with its zone."""
        if changes.get("scored_at") is not None:
            parse_timestamp(changes["scored_at"])
        return dataclasses.replace(self, **changes)


def digest_input(path: Path) -> str:
    """SHA-256 of an input file, or of a folder's files (names and bytes, in name order)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def job_identity(job: ScoringJob, input_digest: str, batching: Mapping[str, Any]) -> dict[str, Any]:
    """Everything that changes the output: a stored job resumes only when all match
    (``batching``: how the engine cuts the input into batches)."""
    from segments.mlops.tracking import code_version

    scorer = job.scorer
    return {
        "input_digest": input_digest,
        "as_of": job.month,
        "groups_model": scorer.groups_model,
        "upgrade_model": scorer.upgrade_model,
        "batching": dict(batching),
        "reasons_k": scorer.reasons_k,
        "reasons_direction": scorer.reasons_direction,
        "population": scorer.population,
        "windows": list(scorer.windows),
        "ladder": scorer.ladder.name,
        "tier_values": dict(scorer.tier_values),
        "psi": list(scorer.psi_thresholds),
        "settings": scorer.settings,
        "short_features": list(job.short_features),
        "code_version": code_version(),
    }


def make_manifest(
    job: ScoringJob,
    state: Mapping[str, Any],
    *,
    n_rows: Mapping[str, int],
    counts: Mapping[str, Any],
    engine: str,
    batches: int,
    report: pd.DataFrame,
    timings: Mapping[str, float],
) -> dict[str, Any]:
    """The ``_manifest.json`` of an output folder (every engine).

    Parameters
    ----------
    job : ScoringJob
    state : mapping
        The run's ``identity`` (with ``input_digest``, the bytes' SHA-256 that a resumed
        run must match), ``run_id``, ``scored_at``, ``resumed`` count and ``data_digest``
        (the input's content digest, :mod:`segments.core.data.digest`).
    n_rows : mapping
        Rows per part file.
    counts : mapping
        The batches' counts added up (:func:`segments.core.scoring.batch.add_counts`).
    engine : str
        As shown in the manifest (e.g. ``spark local[2]``).
    batches : int
    report : DataFrame
        The drift report.
    timings : mapping
        Seconds per stage.
    """
    return {
        "as_of": job.month,
        "rows": int(sum(n_rows.values())),
        "parts": dict(n_rows),
        "scored_upgrade": int(counts.get("scored", 0)),
        "input": str(job.src),
        "input_digest": state["identity"]["input_digest"],
        "data_digest": state.get("data_digest", ""),
        "groups_model": job.scorer.groups_model,
        "upgrade_model": job.scorer.upgrade_model,
        "run_id": state["run_id"],
        "scored_at": state["scored_at"],
        "engine": engine,
        "batches": batches,
        "batching": state["identity"].get("batching"),
        "resumed": state.get("resumed", 0),
        "ladder": job.scorer.ladder.name,
        "basis_unit": job.scorer.ladder.basis_unit,
        "tiers": dict(sorted(counts.get("tiers", {}).items())),
        "segments": dict(sorted(counts.get("segments", {}).items(), key=lambda kv: int(kv[0]))),
        "drift": {**drift_summary(report), "reference": dict(job.scorer.sources)},
        "history_months": job.history_months,
        "short_history": {
            "features": list(job.short_features),
            "note": "these features' windows are longer than the panel's "
            "history up to the as-of month (--allow-short-history)",
        }
        if job.short_features
        else None,
        "schema": [{"name": f.name, "type": str(f.type)} for f in job.scorer.schema],
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def publish(folder: Path, dest: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``dest`` (replacing an old one when allowed).

    Raises
    ------
    ConfigError
        ``dest`` appeared while scoring and ``overwrite`` is not set.
    """
    old = None
    if dest.exists():
        if not overwrite:
            raise ConfigError([Violation("--out", f"{dest} appeared while scoring")])
        old = dest.with_name(dest.name + f".old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(folder, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
