"""Score one batch of whole customers: the pure function every engine runs.

:func:`score_batch` takes panel rows holding *every* month of their customers and returns one
output row per customer active in the as-of month (tier, group, upgrade probability, expected
gain, reason codes; the ranks are filled later over the whole month, see
:mod:`segments.core.upgrade.ranks`) plus the batch's drift counts, which add up across batches
(:func:`add_counts`) into the job's drift report (:func:`drift_report`).

A :class:`Scorer` carries everything the function needs (the models, the ladder, settings);
it is plain data, picklable, so Spark ships it to executors.
:func:`segments.mlops.scorer.load_scorer` builds one from the model registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from segments.core import drift
from segments.core.data.months import parse_month_column
from segments.core.data.panel import ID, MONTH, PanelConfig
from segments.core.data.validation import check_panel
from segments.core.features.own import OwnColumn, own_features
from segments.core.growth.levers import LEVER_COLUMNS, LeverRule, assign_levers
from segments.core.scoring.output import RANKS, TIER_OUT, conform, output_schema, reason_fields
from segments.exceptions import PanelValidationError, Violation, example_list

__all__ = [
    "Scorer",
    "add_counts",
    "check_batches",
    "drift_report",
    "drift_summary",
    "merge_violations",
    "month_window",
    "score_batch",
    "select_months",
    "validate_batch",
]


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
    sources : dict
        Where each model's reference comes from, by role (``groups``, ``upgrade``):
        ``model`` (name/version), ``run_id`` (its training run) and ``months`` (the months
        profiled: the groups' as-of month, the upgrade model's test months); the drift
        report names them (:func:`drift_report`).
    psi_thresholds : (float, float)
        Moderate and significant PSI.
    settings : str
        A digest of every setting that changes the output (the resolved configuration and
        the ladder's full definition); part of a job's identity, so a resumed job with
        other settings starts again.
    own : tuple of OwnColumn
        The bank's own columns declared as features (``features.columns``), registered
        wherever a batch is validated or scored (:func:`score_batch`, the workers).
    levers : LeverRule
        The rule that gives each customer of the upgrade population a lever.
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
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    psi_thresholds: tuple[float, float] = drift.THRESHOLDS
    settings: str = ""
    own: tuple[OwnColumn, ...] = ()
    levers: LeverRule = field(default_factory=LeverRule)
    _explainer: Any = field(default=None, repr=False)

    @property
    def explainer(self) -> Any:
        """The upgrade model's exact TreeSHAP explainer (built once, lazily)."""
        if self._explainer is None:
            from segments.core.explain.reasons import UpgradeExplainer

            self._explainer = UpgradeExplainer(self.upgrade, self.ladder)
        return self._explainer

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_explainer"] = None  # rebuilt where it runs
        return state

    @property
    def schema(self) -> pa.Schema:
        """The output schema."""
        return output_schema(self.reasons_k)

    @property
    def months_needed(self) -> int | None:
        """Months up to the as-of month that a score depends on (the feature windows' and
        the ladder's); None when every month before may matter (a ladder with hysteresis)."""
        from segments.core.features.builder import check_windows

        tiers = self.ladder.months_needed
        return None if tiers is None else max(tiers, max(check_windows(self.windows)) + 1)

    def columns(self, available: Sequence[str]) -> list[str]:
        """The input columns scoring reads (the bank's names), in the input's order: a
        feature table's (:func:`~segments.core.features.builder.feature_columns`) and the
        ladder's. Columns outside the data contract are not read.

        Parameters
        ----------
        available : sequence of str
            The input's columns.
        """
        from segments.core.features.builder import feature_columns

        return feature_columns(available, self.panel, (*self.ladder.columns, "branch_id"))

    @property
    def features(self) -> list[str]:
        """The features both models read, each once."""
        names = [*getattr(self.groups, "features_", ()), *getattr(self.upgrade, "features_", ())]
        return list(dict.fromkeys(names))


def validate_batch(
    raw: pd.DataFrame, panel: PanelConfig
) -> tuple[pd.DataFrame | None, list[Violation]]:
    """Check a batch against the data contract.

    Returns
    -------
    frame : DataFrame or None
        The validated panel rows (None when the batch breaks the contract).
    errors : list of Violation
    """
    report = check_panel(raw, panel, summary=False)
    return (report.frame if report.ok else None), list(report.errors)


def select_months(
    raw: pd.DataFrame, as_of: str | pd.Period, months: int | None, panel: PanelConfig
) -> pd.DataFrame:
    """The rows a score as of ``as_of`` reads: the ``months`` months up to it (every month
    up to it when None). Rows whose month is not a calendar month are kept, for validation
    to report.

    Parameters
    ----------
    raw : DataFrame
        Panel rows as read (the bank's names).
    as_of : str or Period
    months : int or None
        :attr:`Scorer.months_needed`.
    panel : PanelConfig
    """
    column = panel.source_name(MONTH)
    if column not in raw.columns:
        return raw
    values = raw[column]
    if isinstance(values.dtype, pd.PeriodDtype):
        parsed = values
    else:
        parsed, _ = parse_month_column(values, panel.timezone, column=MONTH)
    keep = month_window(parsed.array.asi8, as_of, months)
    return raw if keep.all() else raw.loc[keep]


def month_window(ordinal: np.ndarray, as_of: str | pd.Period, months: int | None) -> np.ndarray:
    """Which rows a score as of ``as_of`` reads, from their months' ordinals: the
    ``months`` months up to it (all up to it when None), and rows without a month.

    Parameters
    ----------
    ordinal : ndarray of int64
        Monthly period ordinals; the minimum int64 (NaT) where the month is missing.
    as_of : str or Period
    months : int or None
        :attr:`Scorer.months_needed`.

    Returns
    -------
    ndarray of bool
    """
    last = pd.Period(as_of, "M").ordinal
    keep = ordinal <= last
    if months is not None:
        keep &= ordinal > last - months
    return keep | (ordinal == np.iinfo(np.int64).min)


def check_batches(
    found: list[Violation], months_seen: set[str], as_of: str, source: str = ""
) -> None:
    """Stop a job whose batches broke the contract, or hold no row of the as-of month.

    Parameters
    ----------
    found : list of Violation
        Every batch's violations (merged here: :func:`merge_violations`).
    months_seen : set of str
        The months the batches held (``YYYY-MM``).
    as_of : str
        The month scored.
    source : str
        The input, named in the error.

    Raises
    ------
    PanelValidationError
    """
    if found:
        raise PanelValidationError(merge_violations(found), source=source)
    if as_of not in months_seen:
        last = max(months_seen) if months_seen else "none"
        raise PanelValidationError(
            [Violation(MONTH, f"has no rows for the as-of month {as_of} (last month {last})")],
            source=source,
        )


def merge_violations(found: list[Violation]) -> list[Violation]:
    """One violation per (column, problem) across batches: row counts added, examples
    pooled (:func:`~segments.exceptions.example_list`)."""
    merged: dict[tuple[str, str], Violation] = {}
    for v in found:
        key = (v.column, v.problem)
        if key in merged:
            m = merged[key]
            merged[key] = Violation(
                v.column,
                v.problem,
                m.n_rows + v.n_rows,
                example_list(m.examples + v.examples),
                v.severity,
                v.hint,
            )
        else:
            merged[key] = v
    return list(merged.values())


def score_batch(
    raw: pd.DataFrame,
    as_of: str | pd.Period,
    scorer: Scorer,
    *,
    run_id: str = "",
    scored_at: str = "",
    checked: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score one batch of whole customers (the pure function every engine runs).

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
    checked : bool, default False
        The batch passed :func:`validate_batch` already: skip the checks across rows.

    Returns
    -------
    rows : DataFrame
        One row per customer present in ``as_of``, columns of
        :func:`~segments.core.scoring.output.output_schema` (ranks empty: see
        :func:`segments.core.upgrade.ranks.add_ranks`), sorted by ``customer_id``.
    counts : dict
        Drift counts (``features``, ``upgrade_features``, ``p_upgrade``, ``groups``) and
        ``tiers``/``segments`` customer counts, to add across batches (:func:`add_counts`).

    Raises
    ------
    PanelValidationError
        The batch breaks the data contract.
    """
    with own_features(scorer.own):
        return _score_batch(raw, pd.Period(as_of, "M"), scorer, run_id, scored_at, checked)


def _score_batch(
    raw: pd.DataFrame, month: pd.Period, scorer: Scorer, run_id: str, scored_at: str, checked: bool
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """:func:`score_batch`, with the own columns registered."""
    from segments.core.features import build_features
    from segments.core.tiers.assign import assign_tiers

    schema = scorer.schema
    if raw.empty:  # nobody of the batch in the months read (joined after a past as-of)
        return schema.empty_table().to_pandas(), {}
    report = check_panel(raw, scorer.panel, checked=checked)
    if report.errors:
        raise PanelValidationError(report.errors)
    frame = report.frame
    assert frame is not None
    frame = frame[frame[MONTH] <= month]
    if frame.empty or not (frame[MONTH] == month).any():
        return schema.empty_table().to_pandas(), {}
    tiers = assign_tiers(frame, scorer.ladder, check_history=False)  # checked before
    now = tiers[tiers[MONTH] == month].sort_values(ID, kind="stable")
    X = build_features(frame, month, windows=scorer.windows).reindex(now[ID])
    out = pd.DataFrame({"customer_id": now[ID].astype(str).to_numpy(), "as_of": str(month)})
    for c in TIER_OUT:
        if c in now:
            out[c] = _plain(now[c])
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
    branch = frame.loc[frame[MONTH] == month].set_index(ID)
    out["branch_id"] = (
        _plain(branch["branch_id"].reindex(now[ID])) if "branch_id" in branch.columns else None
    )
    levers = assign_levers(X.iloc[np.flatnonzero(pop)], scorer.levers)
    for c in LEVER_COLUMNS:
        values = np.full(len(out), None, dtype=object)
        values[pop] = levers[c].to_numpy()
        out[c] = values
    upgrade, Xu = _upgrade_columns(now, X, pop, scorer)
    out["p_upgrade"] = upgrade.pop("p_upgrade")
    for c in RANKS:
        out[c] = None
    for c, values in upgrade.items():
        out[c] = values
    out["groups_model"] = scorer.groups_model
    out["upgrade_model"] = scorer.upgrade_model
    out["run_id"] = run_id
    out["scored_at"] = scored_at
    counts = _drift_counts(scorer.reference, X, Xu, gids, out["p_upgrade"].to_numpy(), pop)
    counts["tiers"] = {str(t): int(v) for t, v in pd.Series(out["tier"]).value_counts().items()}
    return conform(out, schema), counts


def _plain(v: pd.Series) -> np.ndarray:
    """A tier-table column as plain values (text as objects with None for missing)."""
    if (
        isinstance(v.dtype, pd.CategoricalDtype)
        or v.dtype == object
        or pd.api.types.is_string_dtype(v.dtype)
    ):
        return v.astype(object).where(v.notna(), None).to_numpy()
    return v.to_numpy()


def _upgrade_columns(
    now: pd.DataFrame, X: pd.DataFrame, pop: np.ndarray, scorer: Scorer
) -> tuple[dict[str, np.ndarray], pd.DataFrame | None]:
    """Probability, expected gain and value, and reason codes for the upgrade population
    (empty elsewhere); also the upgrade model's input (None when nobody is scored)."""
    from segments.core.upgrade.calls import expected_gain
    from segments.core.upgrade.labels import tier_features

    n = len(now)
    p = np.full(n, np.nan)
    gain = np.full(n, np.nan)
    value = np.full(n, np.nan)
    k = scorer.reasons_k
    reasons = pd.DataFrame(index=range(n), columns=[f for f, _, _ in reason_fields(k)])
    Xu = None
    if pop.any():
        rows = np.flatnonzero(pop)
        Xu = X.iloc[rows].copy()
        tier_cols = now.iloc[rows].set_index(ID)[tier_features(now.columns)]
        for c in tier_cols.columns:
            Xu[c] = tier_cols[c].to_numpy()
        Xu["month_of_year"] = np.int8(pd.Period(now[MONTH].iloc[0], "M").month)
        for c, cats in scorer.upgrade.categories_.items():
            Xu[c] = pd.Categorical(Xu[c].astype(object).where(Xu[c].notna(), None), categories=cats)
        pu = scorer.upgrade.predict_proba(Xu)[:, 1]
        p[pop] = pu
        g = expected_gain(
            pd.Series(pu),
            now["gap_to_next"].to_numpy()[pop],
            next_tier=pd.Series(now["next_tier"].iloc[rows].astype(object).to_numpy()),
            tier_values=dict(scorer.tier_values),
        )
        gain[pop] = g["expected_gain"].to_numpy()
        if "expected_value" in g:
            value[pop] = g["expected_value"].to_numpy()
        codes = scorer.explainer.reason_codes(Xu, k=k, direction=scorer.reasons_direction)
        reasons.iloc[rows] = codes.to_numpy()
    columns = {"p_upgrade": p, "expected_gain": gain, "expected_value": value}
    columns.update({c: reasons[c].to_numpy() for c in reasons.columns})
    return columns, Xu


def _drift_counts(
    ref: Mapping[str, Any],
    X: pd.DataFrame,
    Xu: pd.DataFrame | None,
    gids: np.ndarray,
    p: np.ndarray,
    pop: np.ndarray,
) -> dict[str, Any]:
    """A batch's drift bin counts against the models' reference, and its totals."""
    counts: dict[str, Any] = {}
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
    counts["segments"] = {str(s): int(v) for s, v in pd.Series(gids).value_counts().items()}
    counts["scored"] = int(pop.sum())
    counts["p_sum"] = float(np.nansum(p))
    return counts


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


#: The drift report's profiles: reference key -> (its ``kind`` in the report, the model
#: whose training made the reference).
REFERENCES = {
    "features": ("feature", "groups"),
    "upgrade_features": ("upgrade feature", "upgrade"),
    "p_upgrade": ("score", "upgrade"),
    "groups": ("group shares", "groups"),
}
#: The report's columns naming each row's reference (:attr:`Scorer.sources`).
SOURCE_COLUMNS = ("reference_model", "reference_run", "reference_months")


def drift_report(
    reference: Mapping[str, Any],
    counts: Mapping[str, Any],
    thresholds: tuple[float, float] = drift.THRESHOLDS,
    sources: Mapping[str, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """PSI per feature (all customers; upgrade population), score and group share.

    Parameters
    ----------
    reference : mapping
        The models' drift profiles (:attr:`Scorer.reference`).
    counts : mapping
        The batches' bin counts added up (:func:`add_counts`).
    thresholds : (float, float)
        Moderate and significant PSI.
    sources : mapping, optional
        Where each model's reference comes from (:attr:`Scorer.sources`).

    Returns
    -------
    DataFrame
        ``kind``, ``column``, ``psi``, ``flag``, ``n``, and what each row is compared with:
        ``reference_model`` (name/version), ``reference_run`` (its training run) and
        ``reference_months`` (the months the reference profiles); largest PSI first.
    """
    parts = []
    for key, (what, role) in REFERENCES.items():
        if reference.get(key) and counts.get(key):
            table = drift.psi_table(reference[key], counts[key], what, thresholds)
            source = (sources or {}).get(role, {})
            for column, name in zip(SOURCE_COLUMNS, ("model", "run_id", "months"), strict=True):
                table[column] = str(source.get(name, ""))
            parts.append(table)
    if not parts:
        return pd.DataFrame(columns=["kind", "column", "psi", "flag", "n", *SOURCE_COLUMNS])
    return (
        pd.concat(parts, ignore_index=True)
        .sort_values("psi", ascending=False, kind="stable")
        .reset_index(drop=True)
    )


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
