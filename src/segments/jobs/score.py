"""Batch scoring: one row per customer, streamed over batches of whole customers.

The scoring logic is one pure function, :func:`score_batch`: a batch of panel rows holding
*every* month of its customers in, one output row per customer active in the as-of month out
(tier, group, upgrade probability, expected gain, reason codes) plus the batch's drift counts.
Two engines run it:

* **local** (:func:`score_local`): the input (Parquet or CSV) is read in Arrow record batches
  and spooled into hash buckets of customers, so a customer's months always land in the same
  bucket whatever the file's order; each bucket is validated, then scored, in memory bounded
  by the bucket size (``batch_customers``), never by the input size.
* **spark** (:mod:`segments.engines.spark`): the same function per group of whole customers
  (``groupBy(bucket).applyInPandas``).

Ranks within a near band (decile, percentile, permille) need the whole month's population;
they are computed after scoring from the probabilities alone (8 bytes per scored customer),
as competition ranks: ``position = 1 + customers in the band with a higher probability``,
``permille = ceil(1000 * position / n)`` in integer arithmetic, so both engines agree exactly.

Output folder (written atomically: everything is built in ``OUT.partial/`` and renamed to
``OUT`` in one step; a killed run resumes from the buckets it finished)::

    OUT/part-00000.parquet ...   the rows (schema: :data:`OUTPUT_COLUMNS`)
    OUT/_manifest.json           rows, input digest, models, timings, drift summary
    OUT/_drift.csv               PSI per feature, score and group share
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segments.core import drift
from segments.core.files import InputFiles
from segments.core.months import parse_month_option
from segments.core.outputs import output_lock
from segments.core.panel import (
    AUM_COMPONENTS,
    ID,
    MONTH,
    PanelConfig,
    PanelInput,
    inspect_panel,
)
from segments.core.validation import check_panel
from segments.exceptions import ConfigError, PanelValidationError, SegmentsError, Violation

__all__ = [
    "OUTPUT_COLUMNS",
    "ModelContractError",
    "Scorer",
    "add_ranks",
    "load_scorer",
    "output_schema",
    "prepare_scoring",
    "score_batch",
    "score_local",
]

#: Tier columns of the output (the tier table's, at the as-of month).
TIER_OUT = (
    "aum_basis",
    "tier",
    "tier_rank",
    "next_tier",
    "gap_to_next",
    "gap_ratio",
    "near_tier",
    "near_band",
    "tier_status",
)


class ModelContractError(SegmentsError, ValueError):
    """A model that does not fit the scoring job (signature, ladder or windows differ)."""


def _reason_fields(k: int) -> list[tuple[str, pa.DataType, str]]:
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


#: The output columns before the reason codes: (name, Arrow type, meaning).
OUTPUT_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("customer_id", pa.string(), "customer id"),
    ("as_of", pa.string(), "the scored month, YYYY-MM"),
    ("aum_basis", pa.float64(), "AUM the tier is assigned on"),
    ("tier", pa.string(), "tier held in the as-of month"),
    ("tier_rank", pa.int64(), "0 = lowest tier"),
    ("next_tier", pa.string(), "the tier above (empty at the top)"),
    ("gap_to_next", pa.float64(), "money to the next tier's threshold"),
    ("gap_ratio", pa.float64(), "AUM basis / next threshold"),
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
    ("expected_gain", pa.float64(), "p_upgrade x gap_to_next (money)"),
    (
        "expected_value",
        pa.float64(),
        "p_upgrade x the bank's value of the next tier (when upgrade.tier_values is set)",
    ),
)
#: Columns after the reason codes.
TRAILER_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("groups_model", pa.string(), "registered name/version of the groups model"),
    ("upgrade_model", pa.string(), "registered name/version of the upgrade model"),
    ("run_id", pa.string(), "MLflow run of this scoring (empty when not tracked)"),
    ("scored_at", pa.string(), "when the job started, ISO 8601 UTC"),
)
_RANKS = ("upgrade_decile", "upgrade_percentile", "upgrade_permille")
#: Rows per Arrow record batch read from the input (a customer's months may span several).
READ_ROWS = 1 << 18


def output_schema(k: int) -> pa.Schema:
    """The Arrow schema of the scoring output with ``k`` reason codes."""
    fields = [*OUTPUT_COLUMNS, *_reason_fields(k), *TRAILER_COLUMNS]
    return pa.schema(
        [pa.field(n, t, nullable=True, metadata={"description": d}) for n, t, d in fields]
    )


@dataclass
class Scorer:
    """Everything :func:`score_batch` needs, picklable (Spark ships it to executors).

    Attributes
    ----------
    groups, names : StrategicGroups, DataFrame
        The groups model and its names (``name_en``, ``name_zh``).
    upgrade : UpgradeModel
    ladder : Ladder
    windows : tuple of int
        Feature windows (must be the models').
    population : {"near_tier", "below_top"}
        Who gets an upgrade probability (the upgrade model's training population).
    reasons_k, reasons_direction, tier_values
        From the scoring config.
    panel : PanelConfig
    groups_model, upgrade_model : str
        ``name/version`` (or the URI) for the output.
    reference : dict
        Drift profiles from the models (``features``, ``groups``, ``p_upgrade``).
    psi_thresholds : (float, float)
        Moderate and significant PSI.
    settings : str
        A digest of every setting that changes the output (the resolved configuration and
        the ladder's full definition); part of a job's identity, so a resumed job with
        other settings starts again.
    """

    groups: Any
    names: pd.DataFrame
    upgrade: Any
    ladder: Any
    windows: tuple[int, ...]
    population: str = "near_tier"
    reasons_k: int = 3
    reasons_direction: str = "up"
    tier_values: Mapping[str, float] = field(default_factory=dict)
    panel: PanelConfig = field(default_factory=PanelConfig)
    groups_model: str = ""
    upgrade_model: str = ""
    reference: dict[str, Any] = field(default_factory=dict)
    psi_thresholds: tuple[float, float] = drift.THRESHOLDS
    settings: str = ""
    _explainer: Any = field(default=None, repr=False)

    @property
    def explainer(self) -> Any:
        """The upgrade model's exact TreeSHAP explainer (built once, lazily)."""
        if self._explainer is None:
            from segments.core.explain import UpgradeExplainer

            self._explainer = UpgradeExplainer(self.upgrade)
        return self._explainer

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_explainer"] = None  # rebuilt where it runs
        return state

    @property
    def schema(self) -> pa.Schema:
        """The output schema."""
        return output_schema(self.reasons_k)


def _resolve(uri: str) -> tuple[str, str]:
    """The URI to load and the ``name/version`` to stamp, from one registry lookup.

    ``models:/NAME@alias`` is resolved to its version once, and that version is both
    loaded and written into the output, so an alias moved meanwhile cannot mix them.
    Any other URI is loaded and stamped as given.
    """
    from segments.mlops.registry import _client

    body = uri[len("models:/") :] if uri.startswith("models:/") else ""
    if "@" in body:
        name, alias = body.split("@", 1)
        mv = _client().get_model_version_by_alias(name, alias)
    elif body.count("/") == 1:
        name, version = body.split("/")
        mv = _client().get_model_version(name, version)
    else:
        return uri, uri
    # Load the version's own logged model: loading by registry name makes MLflow write a
    # registered_model_meta file into a local artifact store, i.e. into the model.
    source = (
        mv.source if str(mv.source).startswith("models:/m-") else f"models:/{name}/{mv.version}"
    )
    return source, f"{name}/{mv.version}"


def settings_digest(config: Any, ladder: Any) -> str:
    """A digest of the resolved configuration and the ladder's full definition."""
    import dataclasses

    payload = {"config": config.raw, "ladder": dataclasses.asdict(ladder)}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def load_scorer(
    config: Any = None, *, groups_uri: str | None = None, upgrade_uri: str | None = None
) -> Scorer:
    """Load both models (default: the ``champion`` aliases) and check they fit the job.

    Parameters
    ----------
    config : ExperimentConfig, optional
        Panel column map, ladder, feature windows, reason codes; registered model names.
    groups_uri, upgrade_uri : str, optional
        Model URIs; default ``models:/<experiment>-groups@champion`` and
        ``models:/<experiment>-upgrade@champion``.

    Raises
    ------
    ModelContractError
        A model's input signature is not in the feature contract of ``config``, or the
        upgrade model was trained on another ladder or other feature windows.
    RegistryError
        A model or alias does not exist.
    """
    from segments.core.config import check_model_uri, load_config
    from segments.core.ladders import load_ladder
    from segments.exceptions import RegistryError
    from segments.mlops.registry import signature_problems
    from segments.mlops.tracking import load_model

    cfg = config or load_config()
    reg = cfg.registry
    given = {"groups": groups_uri, "upgrade": upgrade_uri}
    groups_uri = groups_uri or f"models:/{reg.model_name('groups', cfg.name)}@champion"
    upgrade_uri = upgrade_uri or f"models:/{reg.model_name('upgrade', cfg.name)}@champion"
    ladder = load_ladder(
        cfg.tiers.ladder, basis_window=cfg.tiers.basis_window, hysteresis=cfg.tiers.hysteresis
    )
    from segments.mlops.pyfunc import GroupsModel, UpgradePyfunc

    loaded, stamp = {}, {}
    problems: list[str] = []
    kinds = {"groups": GroupsModel, "upgrade": UpgradePyfunc}
    for role, uri in (("groups", groups_uri), ("upgrade", upgrade_uri)):
        check_model_uri(
            uri,
            f"--{role}-model"
            if given[role]
            else f"registry.{role}_model (default: the experiment name {cfg.name!r} + '-{role}')",
        )
        try:
            resolved, stamp[role] = _resolve(uri)
            loaded[role] = load_model(resolved).unwrap_python_model()
        except Exception as exc:  # MLflow raises its own types for a bad URI or alias
            raise RegistryError(
                f"cannot load the {role} model {uri!r}: {str(exc).splitlines()[0]}"
            ) from None
        if not isinstance(loaded[role], kinds[role]):
            other = next(
                (k for k, c in kinds.items() if isinstance(loaded[role], c)),
                type(loaded[role]).__name__,
            )
            raise ModelContractError(
                f"--{role}-model {uri}: is a{'n' * (other[0] in 'aeiou')}"
                f" {other} model, not a {role} model"
            )
        problems += [
            f"{role} model {uri}: {p}" for p in signature_problems(resolved, cfg.features.windows)
        ]
    training = getattr(loaded["upgrade"], "training", {}) or {}
    if training.get("ladder") and training["ladder"] != ladder.name:
        problems.append(
            f"upgrade model {upgrade_uri}: trained on ladder "
            f"{training['ladder']!r}, the job uses {ladder.name!r}"
        )
    if training.get("windows") and tuple(training["windows"]) != tuple(cfg.features.windows):
        problems.append(
            f"upgrade model {upgrade_uri}: trained with feature windows "
            f"{training['windows']}, the job uses {list(cfg.features.windows)}"
        )
    if problems:
        raise ModelContractError(
            "the models do not fit this scoring job:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    g, u = loaded["groups"], loaded["upgrade"]
    reference = {
        **(getattr(g, "reference", None) or {}),
        **{
            ("upgrade_features" if k == "features" else k): v
            for k, v in (getattr(u, "reference", None) or {}).items()
        },
    }
    return Scorer(
        groups=g.model,
        names=g.names,
        upgrade=u.model,
        ladder=ladder,
        windows=tuple(cfg.features.windows),
        population=training.get("population", cfg.upgrade.population),
        reasons_k=cfg.upgrade.reasons_k,
        reasons_direction=cfg.upgrade.reasons_direction,
        tier_values=dict(cfg.upgrade.tier_values),
        panel=cfg.panel,
        groups_model=stamp["groups"],
        upgrade_model=stamp["upgrade"],
        reference=reference,
        psi_thresholds=(cfg.scoring.psi_warn, cfg.scoring.psi_alert),
        settings=settings_digest(cfg, ladder),
    )


def _validated(
    raw: pd.DataFrame, panel: PanelConfig
) -> tuple[pd.DataFrame | None, list[Violation]]:
    report = check_panel(raw, panel)
    return (report.frame if report.ok else None), list(report.errors)


def score_batch(
    raw: pd.DataFrame,
    as_of: str | pd.Period,
    scorer: Scorer,
    *,
    run_id: str = "",
    scored_at: str = "",
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score one batch of whole customers (the pure function both engines run).

    Parameters
    ----------
    raw : DataFrame
        Panel rows (as read, before validation) holding every month of each customer in
        it; months after ``as_of`` are ignored.
    as_of : str or Period
        The month to score.
    scorer : Scorer
    run_id, scored_at : str
        Stamped on every row.

    Returns
    -------
    rows : DataFrame
        One row per customer present in ``as_of``, columns of :func:`output_schema`
        (ranks empty: see :func:`add_ranks`), sorted by ``customer_id``.
    counts : dict
        Drift counts (``features``, ``upgrade_features``, ``p_upgrade``, ``groups``) and
        ``tiers``/``segments`` customer counts, to add across batches.

    Raises
    ------
    PanelValidationError
        The batch breaks the data contract.
    """
    from segments.core.features import build_features
    from segments.core.tiers import assign_tiers
    from segments.core.upgrade import TIER_FEATURES, expected_gain

    month = pd.Period(as_of, "M")
    schema = scorer.schema
    frame, errors = _validated(raw, scorer.panel)
    if errors:
        raise PanelValidationError(errors)
    assert frame is not None
    frame = frame[frame[MONTH] <= month]
    counts: dict[str, Any] = {}
    if frame.empty or not (frame[MONTH] == month).any():
        empty = schema.empty_table().to_pandas()
        return empty, counts
    tiers = assign_tiers(frame, scorer.ladder)
    now = tiers[tiers[MONTH] == month].sort_values(ID, kind="stable")
    ids = now[ID].astype(str).to_numpy()
    X = build_features(frame, month, windows=scorer.windows).reindex(now[ID])
    out = pd.DataFrame({"customer_id": ids, "as_of": str(month)})
    for c in TIER_OUT:
        if c in now:
            v = now[c]
            out[c] = (
                v.astype(object).where(v.notna(), None).to_numpy()
                if isinstance(v.dtype, pd.CategoricalDtype)
                or v.dtype == object
                or pd.api.types.is_string_dtype(v.dtype)
                else v.to_numpy()
            )
    gids = scorer.groups.predict(X[list(scorer.groups.features_)]).astype(np.int64)
    out["segment_id"] = gids
    names = scorer.names.reindex(gids)
    out["segment_name"] = names["name_en"].to_numpy()
    out["segment_name_zh"] = names["name_zh"].to_numpy()
    top = len(scorer.ladder.tier_names) - 1
    pop = (
        now["near_tier"].to_numpy(dtype=bool)
        if scorer.population == "near_tier"
        else now["tier_rank"].to_numpy() < top
    )
    n = len(out)
    p = np.full(n, np.nan)
    gain = np.full(n, np.nan)
    value = np.full(n, np.nan)
    k = scorer.reasons_k
    reasons = pd.DataFrame(index=range(n), columns=[f for f, _, _ in _reason_fields(k)])
    Xu = None
    if pop.any():
        Xu = X.iloc[np.flatnonzero(pop)].copy()
        tier_cols = now.iloc[np.flatnonzero(pop)].set_index(ID)[list(TIER_FEATURES)]
        for c in TIER_FEATURES:
            Xu[c] = tier_cols[c].to_numpy()
        for c, cats in scorer.upgrade.categories_.items():
            Xu[c] = pd.Categorical(Xu[c].astype(object).where(Xu[c].notna(), None), categories=cats)
        pu = scorer.upgrade.predict_proba(Xu)[:, 1]
        p[pop] = pu
        nxt = now["next_tier"].iloc[np.flatnonzero(pop)].astype(object).to_numpy()
        g = expected_gain(
            pd.Series(pu),
            now["gap_to_next"].to_numpy()[pop],
            next_tier=pd.Series(nxt),
            tier_values=dict(scorer.tier_values),
        )
        gain[pop] = g["expected_gain"].to_numpy()
        if "expected_value" in g:
            value[pop] = g["expected_value"].to_numpy()
        codes = scorer.explainer.reason_codes(Xu, k=k, direction=scorer.reasons_direction)
        reasons.iloc[np.flatnonzero(pop)] = codes.to_numpy()
    out["p_upgrade"] = p
    for c in _RANKS:
        out[c] = None
    out["expected_gain"] = gain
    out["expected_value"] = value
    for c in reasons.columns:
        out[c] = reasons[c].to_numpy()
    out["groups_model"] = scorer.groups_model
    out["upgrade_model"] = scorer.upgrade_model
    out["run_id"] = run_id
    out["scored_at"] = scored_at
    # Drift counts and totals, added up across batches by the engines.
    ref = scorer.reference
    if ref.get("features"):
        counts["features"] = drift.bin_counts(X, ref["features"])
    if ref.get("groups"):
        counts["groups"] = drift.bin_counts(
            pd.DataFrame({"group_id": gids.astype(str)}), ref["groups"]
        )
    if Xu is not None and ref.get("upgrade_features"):
        counts["upgrade_features"] = drift.bin_counts(Xu, ref["upgrade_features"])
    if ref.get("p_upgrade"):
        counts["p_upgrade"] = drift.bin_counts(
            pd.DataFrame({"p_upgrade": p[pop]}), ref["p_upgrade"]
        )
    counts["tiers"] = {str(t): int(v) for t, v in pd.Series(out["tier"]).value_counts().items()}
    counts["segments"] = {str(s): int(v) for s, v in pd.Series(gids).value_counts().items()}
    counts["scored"] = int(pop.sum())
    counts["p_sum"] = float(np.nansum(p))
    return conform(out, schema), counts


def conform(frame: pd.DataFrame, schema: pa.Schema) -> pd.DataFrame:
    """Order and type ``frame`` as ``schema`` (raises when a column is missing)."""
    missing = [n for n in schema.names if n not in frame]
    if missing:
        raise SegmentsError(f"scoring output lacks columns {missing}")
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    return table.to_pandas()


def add_counts(total: dict[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """Add one batch's counts (from :func:`score_batch`) into a running total."""
    for key, value in more.items():
        if key in ("features", "groups", "upgrade_features", "p_upgrade"):
            drift.add_counts(total.setdefault(key, {}), value)
        elif key in ("tiers", "segments"):
            t = total.setdefault(key, {})
            for name, n in value.items():
                t[name] = t.get(name, 0) + n
        else:
            total[key] = total.get(key, 0) + value
    return total


def drift_report(
    reference: Mapping[str, Any],
    counts: Mapping[str, Any],
    thresholds: tuple[float, float] = drift.THRESHOLDS,
) -> pd.DataFrame:
    """PSI per feature (all customers; upgrade population), score and group share."""
    parts = []
    for key, what in (
        ("features", "feature"),
        ("upgrade_features", "upgrade feature"),
        ("p_upgrade", "score"),
        ("groups", "group shares"),
    ):
        if reference.get(key) and counts.get(key):
            parts.append(drift.psi_table(reference[key], counts[key], what, thresholds))
    if not parts:
        return pd.DataFrame(columns=["kind", "column", "psi", "flag", "n"])
    return (
        pd.concat(parts, ignore_index=True)
        .sort_values("psi", ascending=False, kind="stable")
        .reset_index(drop=True)
    )


# ---- ranks -------------------------------------------------------------------------------


def band_key(frame: pd.DataFrame) -> np.ndarray:
    """The ranking group of each row: its near band, else its tier (``tier <name>``)."""
    band = frame["near_band"].astype(object)
    tier = "tier " + frame["tier"].astype(str)
    return np.where(band.notna(), band, tier).astype(str)


def rank_tables(parts: Iterator[pd.DataFrame]) -> dict[str, np.ndarray]:
    """Per ranking group, the probabilities of every scored customer, sorted descending."""
    acc: dict[str, list[np.ndarray]] = {}
    for frame in parts:
        has = frame["p_upgrade"].notna().to_numpy()
        if not has.any():
            continue
        keys = band_key(frame)[has]
        p = frame["p_upgrade"].to_numpy(dtype=float)[has]
        for key in np.unique(keys):
            acc.setdefault(str(key), []).append(p[keys == key])
    return {k: -np.sort(-np.concatenate(v)) for k, v in acc.items()}


def add_ranks(frame: pd.DataFrame, tables: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Fill decile, percentile and permille (1 = best) from :func:`rank_tables`."""
    out = frame.copy()
    has = out["p_upgrade"].notna().to_numpy()
    pos = np.zeros(len(out), dtype=np.int64)
    size = np.ones(len(out), dtype=np.int64)
    keys = band_key(out)
    p = out["p_upgrade"].to_numpy(dtype=float)
    for key in np.unique(keys[has]):
        m = has & (keys == key)
        table = tables[str(key)]
        # customers with a strictly higher probability: table is descending.
        higher = len(table) - np.searchsorted(table[::-1], p[m], side="right")
        pos[m] = higher + 1
        size[m] = len(table)
    for name, scale in (
        ("upgrade_decile", 10),
        ("upgrade_percentile", 100),
        ("upgrade_permille", 1000),
    ):
        values = (pos * scale + size - 1) // size
        out[name] = pd.array(np.where(has, values, 0), dtype="Int64")
        out.loc[~has, name] = pd.NA
    return out


# ---- the local engine ----------------------------------------------------------------------


def _digest_input(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def _bucket_of(ids: pa.Array, n_buckets: int) -> np.ndarray:
    """A stable bucket per row from its customer id (hash of the id text)."""
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(pc.cast(ids, pa.string()))
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    uniq = enc.dictionary.to_numpy(zero_copy_only=False).astype(object)
    h = pd.util.hash_array(uniq, categorize=False, hash_key="segments-scoring")
    of_unique = (h % np.uint64(n_buckets)).astype(np.int64)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    return of_unique[idx]


def _record_batches(files: InputFiles, panel: PanelConfig, rows: int) -> Iterator[pa.RecordBatch]:
    """The input as Arrow record batches (Parquet parts read with their one schema)."""
    id_col, month_col = panel.source_name(ID), panel.source_name(MONTH)
    if files.format == "parquet":
        if len(files.files) == 1:
            yield from pq.ParquetFile(files.files[0]).iter_batches(batch_size=rows)
            return
        import pyarrow.dataset as ds

        data = ds.dataset([str(f) for f in files.files], schema=files.schema, format="parquet")
        yield from data.to_batches(batch_size=rows)
        return
    from pyarrow import csv

    opts = csv.ConvertOptions(column_types={id_col: pa.string(), month_col: pa.string()})
    reader = csv.open_csv(
        files.path, convert_options=opts, read_options=csv.ReadOptions(block_size=1 << 24)
    )
    yield from reader


def last_month(path: str | os.PathLike[str], panel: PanelConfig | None = None) -> str:
    """The latest month in a panel input (reads the month column only, batch by batch)."""
    panel = panel or PanelConfig()
    months = inspect_panel(path, panel, months=True).months or ()
    if not months:
        raise PanelValidationError(
            [Violation(MONTH, "has no months: the input has no rows")], source=str(path)
        )
    return str(months[-1])


def _write_parquet_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    # No pandas metadata: the files describe themselves by the documented schema only.
    table = table.replace_schema_metadata({"segments.output": "scoring v1"})
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _merge_violations(found: list[Violation]) -> list[Violation]:
    """One violation per (column, problem): row counts added, examples pooled (<= 5)."""
    merged: dict[tuple[str, str], Violation] = {}
    for v in found:
        key = (v.column, v.problem)
        if key in merged:
            m = merged[key]
            merged[key] = Violation(
                v.column,
                v.problem,
                m.n_rows + v.n_rows,
                tuple(dict.fromkeys(m.examples + v.examples))[:5],
                v.severity,
                v.hint,
            )
        else:
            merged[key] = v
    return list(merged.values())


@dataclass
class ScoreResult:
    """What a scoring run wrote.

    Attributes
    ----------
    out : Path
    manifest : dict
    drift : DataFrame
        PSI per feature, score and group share, largest first.
    run_id : str
    """

    out: Path
    manifest: dict[str, Any]
    drift: pd.DataFrame
    run_id: str = ""


@dataclass(frozen=True)
class ScoringJob:
    """A scoring job checked before any work (:func:`prepare_scoring`).

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
    short_features : tuple of str
        Model features whose window is longer than that history (only with
        ``allow_short_history``; they are named in the manifest).
    overwrite : bool
    """

    src: Path
    dest: Path
    month: str
    input: PanelInput
    history_months: int
    short_features: tuple[str, ...] = ()
    overwrite: bool = False

    @property
    def lock_info(self) -> dict[str, str]:
        """What the output lock says about this job (shown to a second job)."""
        return {"command": "segments score", "as_of": self.month, "input": str(self.src)}


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


def _model_features(scorer: Scorer) -> list[str]:
    names = [*getattr(scorer.groups, "features_", ()), *getattr(scorer.upgrade, "features_", ())]
    return list(dict.fromkeys(names))


def prepare_scoring(
    panel_path: str | os.PathLike[str],
    as_of: str | None,
    out: str | os.PathLike[str],
    scorer: Scorer,
    *,
    overwrite: bool = False,
    allow_short_history: bool = False,
    engine: str = "local",
) -> ScoringJob:
    """Check everything about a scoring job that can be known before reading the data.

    In this order, each a named error and nothing written: the as-of month's form; the
    input (readable, one schema across parts, the contract's columns, its months, the
    as-of month present); the columns the models' features need; enough history for the
    feature windows; the output (not an input, not inside or around one, not the working
    folder, replaced only when it is segments' own output and ``overwrite`` is set,
    writable).

    Parameters
    ----------
    panel_path : path
        Parquet file or folder of parts, or CSV (local engine only).
    as_of : str or None
        ``YYYY-MM``; None takes the input's last month.
    out : path
        The output folder.
    scorer : Scorer
    overwrite : bool, default False
    allow_short_history : bool, default False
        Score although the panel has fewer months up to ``as_of`` than a model feature's
        window; the short features are named in the manifest.
    engine : {"local", "spark"}

    Returns
    -------
    ScoringJob

    Raises
    ------
    ConfigError, InputFileError, PanelValidationError, ModelContractError
    """
    from segments.core.features import feature_spec
    from segments.core.outputs import check_output

    month = parse_month_option(as_of) if as_of is not None else None
    found = inspect_panel(panel_path, scorer.panel, months=True)
    src = Path(panel_path)
    if engine == "spark":
        if found.files.format != "parquet":
            raise ConfigError(
                [
                    Violation(
                        "--engine",
                        f"spark reads Parquet; {src} is a CSV",
                        hint="convert it to Parquet or use --engine local",
                    )
                ]
            )
        if not found.files.uniform:
            raise ConfigError(
                [
                    Violation(
                        "--engine",
                        f"spark needs the parts of {src} to store each column with one type",
                        hint="rewrite the parts or use --engine local",
                    )
                ]
            )
    months = found.months or ()
    if not months:
        raise PanelValidationError([Violation("(all)", "the input has no rows")], source=str(src))
    month = month or str(months[-1])
    if pd.Period(month, "M") not in months:
        raise PanelValidationError(
            [
                Violation(
                    MONTH,
                    f"has no rows for the as-of month {month} (months {months[0]} .. {months[-1]})",
                )
            ],
            source=str(src),
        )
    contract = {scorer.panel.column_map.get(c, c) for c in found.columns}
    features = _model_features(scorer)
    missing: dict[str, list[str]] = {}
    specs = {}
    for name in features:
        with contextlib.suppress(KeyError):
            specs[name] = feature_spec(name, scorer.windows)
    from segments.core.upgrade import TIER_FEATURES

    for name, spec in specs.items():
        if name in TIER_FEATURES:
            continue
        for col in spec.sources:
            if col not in contract and not (col == "aum" and contract & set(AUM_COMPONENTS)):
                missing.setdefault(col, []).append(name)
    if missing:
        raise ModelContractError(
            f"the panel {src} lacks columns the models need: "
            + "; ".join(
                f"`{scorer.panel.source_name(c)}` (for {', '.join(f[:4])}"
                f"{', ...' if len(f) > 4 else ''})"
                for c, f in sorted(missing.items())
            )
        )
    first = months[0]
    history = pd.Period(month, "M").ordinal - first.ordinal + 1
    short = tuple(n for n, spec in specs.items() if spec.window > history)
    if short and not allow_short_history:
        raise ConfigError(
            [
                Violation(
                    "--as-of",
                    f"{month}: the panel has {history} month(s) up to it (from {first}), "
                    f"fewer than the windows of {len(short)} model feature(s) ("
                    f"{', '.join(short[:5])}{', ...' if len(short) > 5 else ''})",
                    hint="score a later month, or pass --allow-short-history to score anyway with "
                    "those features named as short in the manifest",
                )
            ]
        )
    dest = check_output(
        out,
        [src],
        overwrite=overwrite,
        ours=is_scoring_output,
        siblings=(".partial",),
        what="scoring output",
    )
    return ScoringJob(src, dest, month, found, history, short if short else (), overwrite)


def _job_identity(
    input_digest: str, as_of: str, scorer: Scorer, n_buckets: int, short: tuple[str, ...]
) -> dict:
    """Everything that changes the output: a stored job resumes only when all match."""
    from segments.mlops.tracking import code_version

    return {
        "input_digest": input_digest,
        "as_of": as_of,
        "groups_model": scorer.groups_model,
        "upgrade_model": scorer.upgrade_model,
        "n_buckets": n_buckets,
        "reasons_k": scorer.reasons_k,
        "reasons_direction": scorer.reasons_direction,
        "population": scorer.population,
        "windows": list(scorer.windows),
        "ladder": scorer.ladder.name,
        "tier_values": dict(scorer.tier_values),
        "psi": list(scorer.psi_thresholds),
        "settings": scorer.settings,
        "short_features": list(short),
        "code_version": code_version(),
    }


def score_local(
    panel_path: str | os.PathLike[str],
    as_of: str,
    out: str | os.PathLike[str],
    scorer: Scorer,
    *,
    batch_customers: int = 100_000,
    scored_at: str | None = None,
    run_id: str = "",
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    on_start: Callable[[dict[str, Any]], str] | None = None,
    allow_short_history: bool = False,
    prepared: ScoringJob | None = None,
    on_discard: Callable[[dict[str, Any]], None] | None = None,
) -> ScoreResult:
    """Score every customer of a panel file in bounded memory (the local engine).

    Everything that can be known before reading the data is checked first
    (:func:`prepare_scoring`); the job then holds an exclusive lock on its output, so a
    second job for the same ``out`` fails naming the first.

    Parameters
    ----------
    panel_path : path
        Parquet file or folder, or CSV.
    as_of : str
        The month to score (YYYY-MM).
    out : path
        The output folder (must not exist unless ``overwrite``).
    scorer : Scorer
    batch_customers : int, default 100_000
        About how many customers a batch holds; memory scales with it.
    scored_at : str, optional
        The time stamped on rows (default: now; a resumed job keeps its first start time).
    run_id : str, optional
        Stamped on rows (a resumed job keeps its first run id).
    overwrite : bool, default False
    progress : callable, optional
        ``progress(stage, done, total)``.
    on_start : callable, optional
        Called with the job (before any scoring) and returning the run id to stamp; a
        resumed job does not call it and keeps its stored run id.
    allow_short_history : bool, default False
        See :func:`prepare_scoring`.
    on_discard : callable, optional
        Called with a killed job's stored state when this job cannot resume it (another
        month, input or setting) and starts again, e.g. to end that job's MLflow run.
    prepared : ScoringJob, optional
        A job already checked by :func:`prepare_scoring` (the other arguments' panel,
        month, output and overwrite are then taken from it).

    Returns
    -------
    ScoreResult

    Raises
    ------
    PanelValidationError
        The input breaks the data contract (every problem listed; nothing written).
    ConfigError, InputFileError, ModelContractError
        See :func:`prepare_scoring`.
    OutputBusyError
        Another job is writing ``out``.
    """
    t0 = time.perf_counter()
    plan = prepared or prepare_scoring(
        panel_path, as_of, out, scorer, overwrite=overwrite, allow_short_history=allow_short_history
    )
    with output_lock(plan.dest, plan.lock_info):
        return _score_local_locked(
            plan, scorer, batch_customers, scored_at, run_id, progress, on_start, on_discard, t0
        )


def _score_local_locked(
    plan: ScoringJob,
    scorer: Scorer,
    batch_customers: int,
    scored_at: str | None,
    run_id: str,
    progress: Callable[[str, int, int], None] | None,
    on_start: Callable[[dict[str, Any]], str] | None,
    on_discard: Callable[[dict[str, Any]], None] | None,
    t0: float,
) -> ScoreResult:
    src, dest, month = plan.src, plan.dest, plan.month
    work = dest.with_name(dest.name + ".partial")
    timings: dict[str, float] = {}
    digest = _digest_input(src)
    n_buckets = plan_buckets(plan.input, batch_customers)
    ident = _job_identity(digest, month, scorer, n_buckets, plan.short_features)
    job_file = work / "_job.json"
    job = None
    if job_file.exists():
        stored = json.loads(job_file.read_text())
        if stored.get("identity") == ident:
            job = stored  # resume
        elif on_discard is not None:  # another job's leftovers: its run will never finish
            on_discard(stored)
    if job is None:
        shutil.rmtree(work, ignore_errors=True)
        (work / "spool").mkdir(parents=True)
        (work / "parts").mkdir()
        (work / "final").mkdir()
        job = {
            "identity": ident,
            "scored_at": scored_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "run_id": run_id,
            "resumed": 0,
        }
        if on_start is not None:
            job["run_id"] = on_start(job)
        job_file.write_text(json.dumps(job, indent=2))
    else:
        job["resumed"] = job.get("resumed", 0) + 1
        job_file.write_text(json.dumps(job, indent=2))
    timings["digest_and_plan_s"] = time.perf_counter() - t0
    try:
        result = _run_local(plan, work, scorer, job, timings, progress)
    except PanelValidationError:
        shutil.rmtree(work, ignore_errors=True)  # nothing partial stays behind
        raise
    return result


def plan_buckets(found: PanelInput, batch_customers: int) -> int:
    """Buckets of about ``batch_customers`` customers, from the input's row count: rows per
    bucket stay below ``batch_customers`` x months, whatever the input's kind."""
    months = max(1, len(found.months or ()))
    return max(1, math.ceil(found.rows / months / batch_customers))


def _run_local(
    plan: ScoringJob,
    work: Path,
    scorer: Scorer,
    job: dict,
    timings: dict[str, float],
    progress: Callable[[str, int, int], None] | None,
) -> ScoreResult:
    src, month, dest = plan.src, plan.month, plan.dest
    n_buckets = job["identity"]["n_buckets"]
    tick = progress or (lambda *_: None)
    spool, parts, final = work / "spool", work / "parts", work / "final"
    id_col = scorer.panel.source_name(ID)
    # 1. spool the input into buckets of whole customers.
    t = time.perf_counter()
    if not (spool / "_done").exists():
        for f in spool.glob("*"):
            f.unlink()
        writers: dict[int, pq.ParquetWriter] = {}
        schema = None
        rows = 0
        try:
            for batch in _record_batches(plan.input.files, scorer.panel, READ_ROWS):
                table = pa.Table.from_batches([batch])
                if schema is None:
                    schema = table.schema
                if id_col not in table.column_names:
                    raise PanelValidationError(
                        [
                            Violation(
                                ID,
                                "is a required column but is missing from the input",
                                hint=f"columns: {', '.join(table.column_names[:20])}",
                            )
                        ],
                        source=str(src),
                    )
                b = _bucket_of(table.column(id_col), n_buckets)
                order = np.argsort(b, kind="stable")
                sorted_b = b[order]
                cuts = np.flatnonzero(np.diff(sorted_b)) + 1
                for chunk in np.split(order, cuts):
                    if not len(chunk):
                        continue
                    k = int(b[chunk[0]])
                    if k not in writers:
                        writers[k] = pq.ParquetWriter(
                            spool / f"bucket-{k:05d}.parquet", table.schema, compression="zstd"
                        )
                    writers[k].write_table(table.take(pa.array(chunk)))
                rows += table.num_rows
                tick("spool", rows, 0)
        finally:
            for w in writers.values():
                w.close()
        if rows == 0:
            raise PanelValidationError([Violation("-", "the input has no rows")], source=str(src))
        (spool / "_done").write_text(str(rows))
    timings["spool_s"] = time.perf_counter() - t
    buckets = sorted(spool.glob("bucket-*.parquet"))
    # 2. validate every bucket before any scoring.
    t = time.perf_counter()
    if not (work / "_validated").exists():
        found: list[Violation] = []
        months_seen: set[str] = set()
        for i, path in enumerate(buckets):
            raw = _read_bucket(path, scorer.panel)
            frame, errors = _validated(raw, scorer.panel)
            found += errors
            if frame is not None:
                months_seen.update(str(m) for m in frame[MONTH].unique())
            tick("validate", i + 1, len(buckets))
        if found:
            raise PanelValidationError(_merge_violations(found), source=str(src))
        if month not in months_seen:
            last = max(months_seen) if months_seen else "none"
            raise PanelValidationError(
                [Violation(MONTH, f"has no rows for the as-of month {month} (last month {last})")],
                source=str(src),
            )
        (work / "_validated").write_text("ok")
    timings["validate_s"] = time.perf_counter() - t
    # 3. score each bucket (a bucket already scored by a killed run is kept).
    t = time.perf_counter()
    schema = scorer.schema
    for i, path in enumerate(buckets):
        part = parts / path.name.replace("bucket-", "part-")
        if not part.exists():
            raw = _read_bucket(path, scorer.panel)
            rows, counts = score_batch(
                raw, month, scorer, run_id=job["run_id"], scored_at=job["scored_at"]
            )
            counts_path = part.with_suffix(".counts.json")
            counts_path.write_text(json.dumps(counts))
            _write_parquet_atomic(
                pa.Table.from_pandas(rows, schema=schema, preserve_index=False), part
            )
        tick("score", i + 1, len(buckets))
    timings["score_s"] = time.perf_counter() - t
    # 4. ranks within each near band over the whole month, then the final parts.
    t = time.perf_counter()
    part_files = sorted(parts.glob("part-*.parquet"))
    tables = rank_tables(
        pq.read_table(f, columns=["near_band", "tier", "p_upgrade"]).to_pandas() for f in part_files
    )
    total_counts: dict[str, Any] = {}
    n_rows: dict[str, int] = {}
    for i, f in enumerate(part_files):
        counts = json.loads(f.with_suffix(".counts.json").read_text())
        add_counts(total_counts, counts)
        target = final / f.name
        frame = pq.read_table(f).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        n_rows[f.name] = len(frame)
        if not target.exists():
            ranked = add_ranks(frame, tables)
            _write_parquet_atomic(
                pa.Table.from_pandas(ranked, schema=schema, preserve_index=False), target
            )
        tick("rank", i + 1, len(part_files))
    timings["rank_s"] = time.perf_counter() - t
    report = drift_report(scorer.reference, total_counts, scorer.psi_thresholds)
    _write_text_atomic(final / "_drift.csv", report.to_csv(index=False))
    manifest = make_manifest(
        month=month,
        n_rows=n_rows,
        counts=total_counts,
        src=src,
        job=job,
        scorer=scorer,
        engine="local",
        batches=len(buckets),
        report=report,
        timings=timings,
        plan=plan,
    )
    _write_text_atomic(final / "_manifest.json", json.dumps(manifest, indent=2))
    _publish(final, dest, plan.overwrite)
    shutil.rmtree(work, ignore_errors=True)
    return ScoreResult(dest, manifest, report, job["run_id"])


def make_manifest(
    *,
    month: str,
    n_rows: Mapping[str, int],
    counts: Mapping[str, Any],
    src: Path,
    job: Mapping[str, Any],
    scorer: Scorer,
    engine: str,
    batches: int,
    report: pd.DataFrame,
    timings: Mapping[str, float],
    plan: ScoringJob | None = None,
) -> dict[str, Any]:
    """The ``_manifest.json`` of an output folder (both engines)."""
    schema = scorer.schema
    total_counts = counts
    return {
        "as_of": month,
        "rows": int(sum(n_rows.values())),
        "parts": n_rows,
        "scored_upgrade": int(total_counts.get("scored", 0)),
        "input": str(src),
        "input_digest": job["identity"]["input_digest"],
        "groups_model": scorer.groups_model,
        "upgrade_model": scorer.upgrade_model,
        "run_id": job["run_id"],
        "scored_at": job["scored_at"],
        "engine": engine,
        "batches": batches,
        "resumed": job.get("resumed", 0),
        "tiers": dict(sorted(total_counts.get("tiers", {}).items())),
        "segments": dict(
            sorted(total_counts.get("segments", {}).items(), key=lambda kv: int(kv[0]))
        ),
        "drift": drift_summary(report),
        "history_months": plan.history_months if plan else None,
        "short_history": {
            "features": list(plan.short_features),
            "note": "these features' windows are longer than the panel's "
            "history up to the as-of month (--allow-short-history)",
        }
        if plan and plan.short_features
        else None,
        "schema": [{"name": f.name, "type": str(f.type)} for f in schema],
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def drift_summary(report: pd.DataFrame) -> dict[str, Any]:
    """Counts of moderate and significant shifts and the largest PSI."""
    if report.empty:
        return {"checked": 0}
    top = report.iloc[0]
    return {
        "checked": len(report),
        "moderate": int((report["flag"] == "moderate").sum()),
        "significant": int((report["flag"] == "significant").sum()),
        "max_psi": float(top["psi"]),
        "max_psi_column": f"{top['kind']}: {top['column']}",
    }


def _read_bucket(path: Path, panel: PanelConfig) -> pd.DataFrame:
    """A spooled bucket as the panel reader would return it (months as periods)."""
    from segments.core.panel import read_parquet_panel

    return read_parquet_panel(path, panel, panel.source_name(MONTH))


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _publish(folder: Path, dest: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``dest`` (replacing an old one when allowed)."""
    old = None
    if dest.exists():
        if not overwrite:
            raise ConfigError([Violation("--out", f"{dest} appeared while scoring")])
        old = dest.with_name(dest.name + f".old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(folder, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_output(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a scoring output folder into one frame, sorted by ``customer_id``."""
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

    Returns the manifest. Raises :class:`SegmentsError` naming what does not match.
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
    """The documented output schema as a table (column, type, meaning)."""
    return pd.DataFrame(
        [(f.name, str(f.type), f.metadata[b"description"].decode()) for f in output_schema(k)],
        columns=["column", "type", "meaning"],
    )


def start_scoring_run(cfg: Any, as_of: str, scorer: Scorer, input_path: str) -> str:
    """Create the MLflow run of a scoring job (tagged ``segments.model_kind=scoring``)."""
    from segments.mlops.registry import _client, current_user
    from segments.mlops.tracking import code_version

    client = _client()
    exp = client.get_experiment_by_name(cfg.name)
    eid = exp.experiment_id if exp else client.create_experiment(cfg.name)
    tags = {
        "segments.model_kind": "scoring",
        "segments.as_of": as_of,
        "segments.ladder": scorer.ladder.name,
        "segments.groups_model": scorer.groups_model,
        "segments.upgrade_model": scorer.upgrade_model,
        "segments.code_version": code_version(),
        "segments.input": input_path,
        "mlflow.user": current_user(),
    }
    run = client.create_run(eid, run_name=f"score {as_of}", tags=tags)
    return run.info.run_id


def log_scoring_run(result: ScoreResult, cfg: Any, status: str = "FINISHED") -> None:
    """Log a finished scoring job to its MLflow run: counts, scores, PSI, the drift report."""
    import matplotlib.pyplot as plt
    from mlflow.entities import Metric, Param

    from segments.mlops.cards import markdown_table, render_html
    from segments.mlops.registry import _client

    client = _client()
    rid = result.run_id
    m = result.manifest
    now = int(time.time() * 1000)
    metrics = {
        "rows": m["rows"],
        "scored_upgrade": m["scored_upgrade"],
        **{f"tier.{k}": v for k, v in m["tiers"].items()},
        **{f"segment.{k}": v for k, v in m["segments"].items()},
        **{f"time.{k}": v for k, v in m["timings_s"].items()},
    }
    rep = result.drift
    for r in rep.itertuples():
        if np.isfinite(r.psi):
            kind = {
                "feature": "feature",
                "upgrade feature": "upgrade_feature",
                "score": "score",
                "group shares": "groups",
            }[r.kind]
            metrics[f"psi.{kind}.{r.column}"] = r.psi
    d = m["drift"]
    if d.get("checked"):
        metrics.update(
            {
                "psi.max": d["max_psi"],
                "psi.n_moderate": d["moderate"],
                "psi.n_significant": d["significant"],
            }
        )
    p = read_output(result.out)["p_upgrade"].dropna().to_numpy(dtype=float)
    if len(p):
        metrics.update(
            {
                "p_upgrade.mean": float(p.mean()),
                **{f"p_upgrade.q{q}": float(np.quantile(p, q / 100)) for q in (10, 50, 90)},
            }
        )
    items = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
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
    client.log_batch(rid, params=[Param(k, str(v)[:500]) for k, v in params.items()])
    client.log_dict(rid, m, "manifest.json")
    client.log_text(rid, rep.to_csv(index=False), "drift/psi.csv")
    text = (
        f"# Drift report: scoring {m['as_of']}\n\nPSI of each feature, the upgrade score "
        f"and the group shares against the training reference; flags at "
        f"{cfg.scoring.psi_warn} (moderate) and {cfg.scoring.psi_alert} (significant)."
        f"\n\n{markdown_table(rep, index=False)}\n"
    )
    client.log_text(rid, text, "drift/report.md")
    client.log_text(rid, render_html(text, f"Drift {m['as_of']}"), "drift/report.html")
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
        for x in (cfg.scoring.psi_warn, cfg.scoring.psi_alert):
            ax.axvline(x, ls="--", lw=0.8, color="black")
        ax.set_xlabel("PSI against the training reference")
        ax.set_title(f"Largest shifts, scoring {m['as_of']}")
        fig.tight_layout()
        client.log_figure(rid, fig, "drift/psi_top20.png")
        plt.close(fig)
    if len(p):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(p, bins=40, color="#2c7fb8")
        ax.set_xlabel("p_upgrade")
        ax.set_ylabel("customers")
        ax.set_title(f"Upgrade probabilities, {m['as_of']} ({len(p):,} customers)")
        fig.tight_layout()
        client.log_figure(rid, fig, "plots/p_upgrade.png")
        plt.close(fig)
    client.set_terminated(rid, status)
