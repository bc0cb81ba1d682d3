"""What the Spark engine runs on Arrow batches (picklable, no PySpark import): a bucket of
whole customers validated then scored (:class:`BucketTask`), and ranks set on scored rows
(:class:`Ranker`), with the same core functions as the local engine's workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from segments.core.data.digest import PanelDigest
from segments.core.data.panel import MONTH, panel_frame
from segments.core.features.own import own_features
from segments.core.scoring.batch import Scorer, score_batch, select_months, validate_batch
from segments.core.scoring.output import RANKS
from segments.core.upgrade.ranks import RankTable, rank_columns
from segments.exceptions import Violation

__all__ = ["BucketTask", "Ranker", "violation_json"]


class BucketTask:
    """What Spark runs on each bucket (picklable): validate, then score when clean.

    Returns the bucket's output rows (ranks empty) and one summary row (``_summary``, JSON:
    the violations, the months seen, the drift counts and the content digest of the
    bucket's rows, :class:`~segments.core.data.digest.PanelDigest`).
    """

    def __init__(
        self, month: str, scorer: Scorer, run_id: str, stamp: str, stored: pa.Schema
    ) -> None:
        self.month, self.scorer, self.run_id, self.stamp = month, scorer, run_id, stamp
        self.stored = stored  # the input's own types, as the local reader sees them
        unranked = [f for f in scorer.schema if f.name not in RANKS]
        self.rows = pa.schema(unranked)
        self.schema = pa.schema([*unranked, pa.field("_summary", pa.string())])

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The bucket's Arrow batches in (one partition: whole customers), its output out."""
        got = list(batches)
        if sum(b.num_rows for b in got):
            table = pa.Table.from_batches(got)
            got.clear()  # the table holds the rows now
            yield from self.score(table).to_batches()

    def score(self, table: pa.Table) -> pa.Table:
        """A bucket's rows (every month) validated, then scored when clean."""
        panel = self.scorer.panel
        month_col = panel.source_name(MONTH)
        names = self.stored.names
        stored = self.stored.field(month_col).type if month_col in names else None
        if (
            stored is not None
            and pa.types.is_timestamp(stored)
            and table.schema.field(month_col).type != stored
        ):
            # Spark hands timestamps over in its session's zone: back to the file's own
            # type (the same instants), so months are read as the local engine reads them
            at = table.schema.get_field_index(month_col)
            table = table.set_column(at, month_col, table.column(at).cast(stored))
        raw = panel_frame(table, panel, month_col)
        del table
        with own_features(self.scorer.own):  # an executor registers them itself
            frame, errors = validate_batch(raw, panel)
            digest = (
                None if frame is None else PanelDigest.of_frame(frame, self.scorer.ladder.columns)
            )
        summary: dict[str, Any] = {
            "violations": [violation_json(v) for v in errors],
            "months": [] if frame is None else sorted({str(m) for m in frame[MONTH].unique()}),
            "digest": None if digest is None else digest.as_dict(),
        }
        del frame
        if errors:
            return self._with_summary(self.rows.empty_table(), summary)
        raw = select_months(raw, self.month, self.scorer.months_needed, panel)
        rows, counts = score_batch(
            raw,
            self.month,
            self.scorer,
            run_id=self.run_id,
            scored_at=self.stamp,
            checked=True,
        )
        summary["counts"] = counts
        out = pa.Table.from_pandas(rows[self.rows.names], schema=self.rows, preserve_index=False)
        return self._with_summary(out, summary)

    def _with_summary(self, rows: pa.Table, summary: dict[str, Any]) -> pa.Table:
        rows = rows.append_column("_summary", pa.nulls(rows.num_rows, pa.string()))
        line = {f.name: None for f in self.rows}
        line["_summary"] = json.dumps(summary)
        return pa.concat_tables([rows, pa.Table.from_pylist([line], schema=self.schema)])


def violation_json(v: Violation) -> dict[str, Any]:
    return {
        "column": v.column,
        "problem": v.problem,
        "n_rows": int(v.n_rows),
        "examples": list(v.examples),
        "hint": v.hint,
    }


class Ranker:
    """Sets the rank columns of each Arrow batch of scored rows (picklable)."""

    def __init__(self, table: RankTable, schema: pa.Schema) -> None:
        self.table, self.schema = table, schema

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            ranks = dict(
                rank_columns(
                    batch.column("near_band").to_pandas(),
                    batch.column("tier").to_pandas(),
                    batch.column("p_upgrade").to_numpy(zero_copy_only=False),
                    self.table,
                )
            )
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(ranks[f.name], f.type)
                    if f.name in ranks
                    else batch.column(f.name).cast(f.type)
                    for f in self.schema
                ],
                schema=self.schema,
            )
