"""The local engine's batches, run in worker processes (or inline for a small job).

A :class:`Batches` describes the job's batches and everything a worker needs to read and
work on one (the month, the columns and months to read, the scorer or the feature
windows); a worker loads it once,
from a file, with its first task. A task is then a batch's number. Workers validate
(:func:`validate_task`), score (:func:`score_task`), rank (:func:`rank_task`) a batch, or
validate it and do a job's own work on it (:func:`validated_task`: features, training
rows): each reads its own rows,
only the columns and months the job needs, and a scored batch is written by its worker
straight to its part file, so what crosses between processes is a few numbers.

Workers are fresh interpreters (``spawn``), one thread each for OpenMP, BLAS and numba
(the processes share the cores instead), and they ignore Ctrl-C: the job that started
them stops them (:func:`pool`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.data.batches import BatchPlan, read_batch
from segments.core.data.digest import PanelDigest
from segments.core.data.panel import (
    MONTH,
    STATIC_CATEGORICAL,
    PanelConfig,
    month_ordinals,
    panel_frame,
)
from segments.core.data.validation import check_panel
from segments.core.features.own import OwnColumn, own_features
from segments.core.scoring.batch import (
    Scorer,
    month_window,
    score_batch,
    select_months,
    validate_batch,
)
from segments.core.scoring.output import write_part
from segments.core.upgrade.ranks import RankTable, rank_columns

__all__ = [
    "THREAD_ENV",
    "Batches",
    "Runner",
    "default_workers",
    "pool",
    "rank_task",
    "score_task",
    "validate_task",
    "validated_task",
]

#: Inputs smaller than this many rows run inline by default: starting workers costs more.
INLINE_ROWS = 500_000
#: One thread per worker for the libraries that would otherwise each start one per core.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass
class Batches:
    """The job's batches and what reading and working on one needs.

    Attributes
    ----------
    month : str
        The as-of month.
    columns : list of str
        The input columns to read (the bank's names).
    plan : BatchPlan or None
        Row ranges of a customer-sorted input, or None when the batches are bucket files.
    panel : PanelConfig
        The column map and policies.
    months : int or None
        Months up to ``month`` the work reads (None: all of them). Scoring validates every
        month (:func:`validate_task`); a job's own work validates the months it reads
        (:func:`validated_task`).
    scorer : Scorer or None
        The models and settings (scoring).
    windows : tuple of int
        Feature windows (scoring).
    work : callable or None
        What a job other than scoring does with a validated batch (a picklable callable
        taking the batch's validated frame, e.g. building its features):
        :func:`validated_task` returns its result.
    buckets : list of Path
        The spooled bucket files (when ``plan`` is None).
    parts : Path
        Where scored parts go (``part-NNNNN.parquet`` and its ``.counts.json``).
    final : Path
        Where ranked parts go.
    ranks : RankTable or None
        Every score of the month by band, once all batches are scored.
    run_id, scored_at : str
        Stamped on every row.
    own : tuple of OwnColumn
        The bank's own columns declared as features (``features.columns``): a worker
        registers them for each task (:func:`~segments.core.features.own.own_features`).
    digest : tuple of str or None
        Digest each validated batch's content (:class:`~segments.core.data.digest.
        PanelDigest`) with these extra columns (the ladder's); None: no digest.
    """

    month: str
    columns: list[str]
    plan: BatchPlan | None
    panel: PanelConfig = field(default_factory=PanelConfig)
    months: int | None = None
    scorer: Scorer | None = None
    windows: tuple[int, ...] = ()
    work: Callable[[pd.DataFrame], Any] | None = None
    buckets: list[Path] = field(default_factory=list)
    parts: Path = Path()
    final: Path = Path()
    ranks: RankTable | None = None
    run_id: str = ""
    scored_at: str = ""
    own: tuple[OwnColumn, ...] = ()
    digest: tuple[str, ...] | None = None

    @classmethod
    def scoring(cls, scorer: Scorer, month: str, columns: list[str], plan: BatchPlan | None,
                **more: Any) -> Batches:  # fmt: skip
        """The batches of a scoring job: the scorer's panel settings and months."""
        more.setdefault("own", scorer.own)
        more.setdefault("digest", tuple(scorer.ladder.columns))
        return cls(month, columns, plan, scorer.panel, scorer.months_needed, scorer, **more)

    @property
    def the_scorer(self) -> Scorer:
        """The scorer (a scoring job's batches have one)."""
        assert self.scorer is not None, "not a scoring job's batches"
        return self.scorer

    def __len__(self) -> int:
        return len(self.plan.batches) if self.plan is not None else len(self.buckets)

    def part(self, i: int) -> Path:
        """The output part of batch ``i``."""
        return self.parts / f"part-{i:05d}.parquet"

    def read(self, i: int, *, every_month: bool = False) -> pd.DataFrame:
        """Batch ``i``'s rows, as the panel readers return them: of the months a score
        reads, or of every month (validation covers the whole input)."""
        panel = self.panel
        month_col = panel.source_name(MONTH)
        # Handed over, not kept here: panel_frame frees the Arrow buffers as it converts
        # them, so the batch is not held twice; and Arrow's pool gives them back, for
        # pandas (another allocator) to use.
        frame = panel_frame(self._table(i, every_month), panel, month_col)
        pa.default_memory_pool().release_unused()
        if every_month:
            return frame
        return select_months(frame, self.month, self.months, panel)

    def _table(self, i: int, every_month: bool) -> pa.Table:
        """Batch ``i``'s rows as Arrow: every month, or the months a score reads (kept
        piece by piece as the input is read, when the months are dates)."""
        names = {self.panel.source_name(c) for c in STATIC_CATEGORICAL}
        dictionary = [c for c in self.columns if c in names]
        keep = None if every_month else self._scored_months
        if self.plan is not None:
            return read_batch(self.plan, self.plan.batches[i], self.columns, dictionary, keep)
        table = pq.read_table(self.buckets[i], read_dictionary=dictionary or None)
        table = table.select([c for c in self.columns if c in table.column_names])
        return table if keep is None else keep(table)

    def _scored_months(self, table: pa.Table) -> pa.Table:
        """The rows of the months a score reads; every row when the months are not dates
        (:func:`select_months` keeps them after conversion)."""
        month_col = self.panel.source_name(MONTH)
        if month_col not in table.column_names:
            return table
        ordinal = month_ordinals(table.column(month_col))
        if ordinal is None:
            return table
        return table.filter(month_window(ordinal, self.month, self.months))


#: The batches a process works on, by the file they were handed over in ("" inline).
_CURRENT: dict[str, Batches] = {}

Task = tuple[str, int]


def _start() -> None:
    """Set up a worker: Ctrl-C is left to the job that started it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _batches(handover: str) -> Batches:
    """The job's batches: loaded from their hand-over file once per worker."""
    if handover not in _CURRENT:
        import pickle

        _CURRENT.clear()
        with open(handover, "rb") as fh:
            _CURRENT[handover] = pickle.load(fh)
    return _CURRENT[handover]


def validate_task(task: Task) -> tuple[list[Any], list[str], dict[str, Any] | None]:
    """Validate a batch: its violations, the months it holds and its content digest
    (:meth:`PanelDigest.as_dict`; None with errors or when :attr:`Batches.digest` is)."""
    batches = _batches(task[0])
    i = task[1]
    with own_features(batches.own):
        frame, errors = validate_batch(batches.read(i, every_month=True), batches.panel)
        digest = _digest(batches, frame)
    months = [] if frame is None else sorted({str(m) for m in frame[MONTH].unique()})
    return errors, months, None if digest is None else digest.as_dict()


def _digest(batches: Batches, frame: pd.DataFrame | None) -> PanelDigest | None:
    """A validated batch's content digest (own columns registered), if the job wants one."""
    if frame is None or batches.digest is None:
        return None
    return PanelDigest.of_frame(frame, batches.digest)


def score_task(task: Task) -> int:
    """Score a batch into its part (and its drift counts); the rows written."""
    batches = _batches(task[0])
    i = task[1]
    rows, counts = score_batch(
        batches.read(i),
        batches.month,
        batches.the_scorer,
        run_id=batches.run_id,
        scored_at=batches.scored_at,
        checked=True,
    )
    part = batches.part(i)
    part.with_suffix(".counts.json").write_text(json.dumps(counts))
    schema = batches.the_scorer.schema
    write_part(pa.Table.from_pandas(rows, schema=schema, preserve_index=False), part)
    return len(rows)


def rank_task(task: Task) -> int:
    """Rank a scored part within bands over the whole month into ``final`` (unless a killed
    run did); its rows. The ranks are set into the part as read: no pandas round trip."""
    batches = _batches(task[0])
    source = batches.part(task[1])
    target = batches.final / source.name
    part = pq.read_table(source)
    if not target.exists():
        assert batches.ranks is not None
        keyed = part.select(["near_band", "tier", "p_upgrade"]).to_pandas()
        ranks = rank_columns(keyed["near_band"], keyed["tier"], keyed["p_upgrade"], batches.ranks)
        schema = batches.the_scorer.schema
        for column, values in ranks:
            at = part.schema.get_field_index(column)
            part = part.set_column(at, schema.field(column), pa.array(values, pa.int64()))
        write_part(part, target)
    return part.num_rows


@dataclass(frozen=True)
class Extent:
    """What a validated batch held: its rows, customers, months and content digest (a job's
    panel summary adds these up)."""

    rows: int
    customers: int
    months: frozenset[str]
    digest: PanelDigest | None = None


def validated_task(task: Task) -> tuple[list[Any], list[Any], Any, Extent | None]:
    """Validate a batch (the months the work reads: every month unless
    :attr:`Batches.months` says) and hand its validated frame to the job's work
    (:attr:`Batches.work`): the errors, the warnings, the work's result and the batch's
    extent (None for both with errors)."""
    from segments.core.data.panel import ID

    batches = _batches(task[0])
    every = batches.months is None
    raw = batches.read(task[1], every_month=every)
    if not every and raw.empty:  # no customer of the batch in the months read
        return [], [], None, None
    with own_features(batches.own):
        report = check_panel(raw, batches.panel, summary=False)
        if not report.ok:
            return report.errors, report.warnings, None, None
        frame = report.frame
        assert frame is not None and batches.work is not None
        months = frame[MONTH]
        extent = Extent(
            len(frame),
            int(frame[ID].nunique()),
            frozenset(str(m) for m in pd.unique(months)),
            _digest(batches, frame),
        )
        return [], report.warnings, batches.work(frame), extent


def default_workers(rows: int, tasks: int) -> int:
    """Worker processes for a job: one per core the process may use, at most one per
    batch, and none (inline) below :data:`INLINE_ROWS` input rows."""
    if rows < INLINE_ROWS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, tasks))


@contextlib.contextmanager
def _worker_start() -> Iterator[None]:
    """While workers start: one thread each (their environment), and the caller's main
    script not run again in them (``spawn`` would import it as ``__mp_main__``, and a
    script without an ``if __name__ == "__main__"`` guard would start its job again)."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update(dict.fromkeys(THREAD_ENV, "1"))
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    path = main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__spec__ = spec
        if path is not None:
            main.__file__ = path
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


class Runner:
    """Runs tasks on batches, in worker processes or inline (see :func:`pool`)."""

    def __init__(self, procs: Any, folder: Path, workers: int) -> None:
        self.workers = workers
        self._procs = procs
        self._folder = folder
        self._handed: dict[int, str] = {}

    @property
    def name(self) -> str:
        """How the tasks run, as the manifest says it."""
        return "local" if self.workers <= 1 else f"local ({self.workers} workers)"

    def handover(self, batches: Batches) -> str:
        """The file the batches are handed to workers in (written once per batches)."""
        key = id(batches)
        if key not in self._handed:
            import pickle

            path = self._folder / f"_batches-{len(self._handed)}.pickle"
            with open(path, "wb") as fh:
                pickle.dump(batches, fh, protocol=pickle.HIGHEST_PROTOCOL)
            self._handed[key] = str(path)
        return self._handed[key]

    def map(
        self, task: Callable[[Task], Any], batches: Batches, items: Iterable[int]
    ) -> Iterator[Any]:
        """``task`` on each batch number in ``items``; results in order, lazily."""
        if self._procs is None:
            _CURRENT.clear()
            _CURRENT[""] = batches
            return map(task, (("", i) for i in items))
        handover = self.handover(batches)
        return self._procs.imap(task, ((handover, i) for i in items))


@contextlib.contextmanager
def pool(workers: int, folder: Path) -> Iterator[Runner]:
    """A :class:`Runner` over ``workers`` processes (inline for one).

    The processes start at once and load a job's batches when handed their first task (the
    batches go through a file in ``folder``, so starting is not held up by sending the
    models); start the pool before other work to overlap the start. On any error or
    interrupt the workers are stopped at once: a part is written atomically, so a batch
    being scored is scored again on resume.
    """
    if workers <= 1:
        try:
            yield Runner(None, folder, 1)
        finally:
            _CURRENT.clear()
        return
    import multiprocessing

    with _worker_start():
        procs = multiprocessing.get_context("spawn").Pool(workers, initializer=_start)
    try:
        yield Runner(procs, folder, workers)
        procs.close()
    finally:
        procs.terminate()
        procs.join()
