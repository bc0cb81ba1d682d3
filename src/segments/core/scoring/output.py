"""The scoring output contract: its columns and types, and reading and checking a folder.

One row per customer active in the as-of month (see DESIGN.md, "The scoring output")::

    OUT/part-00000.parquet ...   the rows (schema: :func:`output_schema`)
    OUT/_manifest.json           rows, input digest, models, timings, drift summary
    OUT/_drift.csv               PSI per feature, score and group share

Every engine writes this folder; :func:`validate_output` checks one against the documented
schema and its manifest, :func:`read_output` reads one back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.core.tiers.assign import TIER_COLUMNS
from segments.core.upgrade.ranks import RANK_COLUMNS
from segments.exceptions import ConfigError, SegmentsError, Violation

__all__ = [
    "OUTPUT_COLUMNS",
    "RANKS",
    "TIER_OUT",
    "TRAILER_COLUMNS",
    "ScoreResult",
    "conform",
    "is_scoring_output",
    "output_schema",
    "read_output",
    "reason_fields",
    "schema_table",
    "validate_output",
    "write_part",
    "write_text_atomic",
]

#: Tier columns of the output (the tier table's, at the as-of month).
TIER_OUT: tuple[str, ...] = TIER_COLUMNS[
    TIER_COLUMNS.index("aum_basis") : TIER_COLUMNS.index("tier_status") + 1
]

#: The output columns before the reason codes: (name, Arrow type, meaning).
OUTPUT_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("customer_id", pa.string(), "customer id"),
    ("as_of", pa.string(), "the scored month, YYYY-MM"),
    ("aum_basis", pa.float64(), "the ladder's basis: AUM, or points (manifest's basis_unit)"),
    ("tier", pa.string(), "tier held in the as-of month"),
    ("tier_rank", pa.int64(), "0 = lowest tier"),
    ("next_tier", pa.string(), "the tier above (empty at the top)"),
    ("gap_to_next", pa.float64(), "basis still needed for the next tier (basis_unit)"),
    ("gap_ratio", pa.float64(), "basis / next threshold"),
    ("near_tier", pa.bool_(), "in a near-tier band"),
    ("near_band", pa.string(), "the near band (empty when not near a tier)"),
    ("tier_status", pa.string(), "active, grace or watch (hysteresis ladders)"),
    ("segment_id", pa.int64(), "strategic group id"),
    ("segment_name", pa.string(), "strategic group name (English)"),
    ("segment_name_zh", pa.string(), "strategic group name (Chinese)"),
    (
        "p_upgrade",
        pa.float64(),
        "P(reach the next tier within the horizon); upgrade population only, empty otherwise",
    ),
    ("upgrade_decile", pa.int64(), "1..10 within the near band this month (1 = best)"),
    ("upgrade_percentile", pa.int64(), "1..100 within the near band"),
    ("upgrade_permille", pa.int64(), "1..1000 within the near band"),
    ("expected_gain", pa.float64(), "p_upgrade x gap_to_next (basis_unit)"),
    (
        "expected_value",
        pa.float64(),
        "p_upgrade x the bank's value of the next tier (when upgrade.tier_values is set)",
    ),
    ("branch_id", pa.string(), "the customer's branch in the as-of month (empty when unknown)"),
    (
        "lever",
        pa.string(),
        "the bank action the evidence points to (grow_with_customer, win_assets, "
        "wealth_advice); upgrade population only",
    ),
    ("lever_reason", pa.string(), "the evidence behind the lever (English)"),
    ("lever_reason_zh", pa.string(), "the evidence behind the lever (Chinese)"),
)
#: Columns after the reason codes.
TRAILER_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("groups_model", pa.string(), "registered name/version of the groups model"),
    ("upgrade_model", pa.string(), "registered name/version of the upgrade model"),
    ("run_id", pa.string(), "MLflow run of this scoring (empty when not tracked)"),
    ("scored_at", pa.string(), "when the job started, ISO 8601 UTC"),
)
#: The rank columns, filled once the whole month is scored (:mod:`segments.core.upgrade.ranks`).
RANKS: tuple[str, ...] = tuple(RANK_COLUMNS)


def reason_fields(k: int) -> list[tuple[str, pa.DataType, str]]:
    """The reason-code columns for ``k`` reasons: (name, Arrow type, meaning)."""
    out = []
    for i in range(1, k + 1):
        out += [
            (f"reason_{i}_feature", pa.string(), f"feature behind reason {i}"),
            (f"reason_{i}_value", pa.string(), "its value, formatted"),
            (f"reason_{i}_contribution", pa.float64(), "its SHAP value (log-odds)"),
            (f"reason_{i}_text", pa.string(), "the reason as a sentence (English)"),
            (f"reason_{i}_text_zh", pa.string(), "the reason as a sentence (Chinese)"),
        ]
    return out


def output_schema(k: int) -> pa.Schema:
    """The Arrow schema of the scoring output with ``k`` reason codes.

    Parameters
    ----------
    k : int
        Reason codes per customer.

    Returns
    -------
    pyarrow.Schema
        Every field nullable, its meaning in the field metadata (``description``).
    """
    fields = [*OUTPUT_COLUMNS, *reason_fields(k), *TRAILER_COLUMNS]
    return pa.schema(
        [pa.field(n, t, nullable=True, metadata={"description": d}) for n, t, d in fields]
    )


def conform(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """Order and type ``frame`` as ``schema``.

    Raises
    ------
    SegmentsError
        A column of ``schema`` is missing from ``frame``.
    """
    missing = [n for n in schema.names if n not in frame]
    if missing:
        raise SegmentsError(f"scoring output lacks columns {missing}")
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return table.to_pandas()


@dataclass
class ScoreResult:
    """What a scoring run wrote, and what the job decided about it.

    Attributes
    ----------
    out : Path
        The published output folder.
    manifest : dict
        Its ``_manifest.json``.
    drift : DataFrame
        PSI per feature, score and group share, largest first.
    run_id : str
        The MLflow run of the job (empty when not tracked).
    drift_alert : str
        The PSIs above the alert threshold, as one line (empty when none).
    fail : bool
        The job's exit decision: the output was written but the job fails, because the
        population drifted and the job was set to fail on drift.
    """

    out: Path
    manifest: dict[str, Any]
    drift: pd.DataFrame
    run_id: str = ""
    drift_alert: str = ""
    fail: bool = False

    @property
    def exit_code(self) -> int:
        """1 when the job fails (:attr:`fail`), else 0."""
        return 1 if self.fail else 0


def write_part(table: pa.Table, path: Path) -> None:
    """Write one output part atomically (a temporary name renamed into place).

    The part carries no pandas metadata: the files describe themselves by the documented
    schema only (and a ``segments.output`` marker).
    """
    tmp = path.with_name(path.name + ".tmp")
    table = table.replace_schema_metadata({"segments.output": "scoring v1"})
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file atomically (a temporary name renamed into place)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_output(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a scoring output folder into one frame, sorted by ``customer_id``.

    Integer columns arrive as nullable ``Int64`` (the ranks are empty outside the upgrade
    population).

    Raises
    ------
    ConfigError
        The folder holds no ``.parquet`` part.
    """
    files = sorted(Path(path).glob("*.parquet"))
    if not files:
        raise ConfigError([Violation(str(path), "holds no scoring output (no .parquet)")])
    ints = {pa.int64(): pd.Int64Dtype()}.get
    frame = pd.concat(
        [pq.read_table(f).to_pandas(types_mapper=ints, ignore_metadata=True) for f in files],
        ignore_index=True,
    )
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


def validate_output(path: str | os.PathLike[str], k: int | None = None) -> dict[str, Any]:
    """Check an output folder against the documented schema and its manifest.

    Parameters
    ----------
    path : path
        The output folder.
    k : int, optional
        Reason codes expected (default: as many as the manifest's schema holds).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    SegmentsError
        Naming what does not match.
    """
    folder = Path(path)
    manifest = json.loads((folder / "_manifest.json").read_text())
    files = sorted(folder.glob("*.parquet"))
    if k is None:
        k = sum(1 for c in manifest["schema"] if c["name"].endswith("_feature"))
    expected = output_schema(k)
    problems = []
    total = 0
    for f in files:
        schema = pq.read_schema(f)
        if not schema.remove_metadata().equals(expected.remove_metadata()):
            problems.append(f"{f.name}: schema differs from the documented one")
        total += pq.ParquetFile(f).metadata.num_rows
    if total != manifest["rows"]:
        problems.append(f"rows: manifest says {manifest['rows']}, files hold {total}")
    if problems:
        raise SegmentsError("scoring output does not match: " + "; ".join(problems))
    return manifest


def schema_table(k: int = 3) -> pd.DataFrame:
    """The documented output schema as a table (``column``, ``type``, ``meaning``)."""
    return pd.DataFrame(
        [(f.name, str(f.type), f.metadata[b"description"].decode()) for f in output_schema(k)],
        columns=["column", "type", "meaning"],
    )


def is_scoring_output(path: Path) -> bool:
    """Whether ``path`` is a scoring output folder segments wrote: a manifest of ours and
    nothing but its parts and drift report beside it."""
    if not path.is_dir():
        return False
    try:
        manifest = json.loads((path / "_manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or not {"as_of", "rows", "schema"} <= set(manifest):
        return False
    return all(
        f.is_file() and (f.name in ("_manifest.json", "_drift.csv") or f.name.endswith(".parquet"))
        for f in path.iterdir()
    )
