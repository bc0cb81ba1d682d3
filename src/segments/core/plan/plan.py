"""The service plan: from a scoring output, the service each customer gets, the managers
each branch needs, and the near-tier call list within the managers' capacity.

Arithmetic, per branch and service model:

* book: the customers whose tier (x group) the service map gives the model;
* managers needed: ``ceil(book / capacity)`` (none for a model without managers);
* managers: the ones available (``managers`` table) where given, else those needed;
* contacts a month: ``book / cadence_months``;
* call list: the near-tier customers scored with a probability, served by the model of the
  tier they are near (``call_model="next_tier"``) or of their own, ranked by expected gain;
  the first ``managers x prospects_per_manager`` are in capacity, each with a manager slot
  (1..managers, round robin), the rest outside capacity. A model without managers reaches
  its prospects digitally: all in capacity, no slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from segments.core.growth.levers import lever_mix
from segments.core.plan.service import ServiceMap
from segments.exceptions import ConfigError, Violation, example_list

__all__ = ["CALL_MODELS", "NO_BRANCH", "PLAN_COLUMNS", "Plan", "build_plan", "check_managers"]

#: Which tier's service model works a near-tier customer.
CALL_MODELS = ("next_tier", "current_tier")
#: The branch of a customer the scoring output gives none.
NO_BRANCH = "(none)"
#: The per-customer plan's columns.
PLAN_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "as_of",
    "branch_id",
    "tier",
    "segment_name",
    "service_model",
    "near_tier",
    "next_tier",
    "p_upgrade",
    "expected_gain",
    "lever",
    "call_model",
    "call_rank",
    "manager_slot",
    "in_capacity",
)
_KIND = "managers column"
_NEEDED = ("customer_id", "as_of", "tier", "tier_rank", "segment_name", "p_upgrade")


@dataclass(frozen=True)
class Plan:
    """A service plan (:func:`build_plan`).

    Attributes
    ----------
    customers : DataFrame
        One row per scored customer, :data:`PLAN_COLUMNS` (``call_rank``, ``manager_slot``
        and ``in_capacity`` only on the call list).
    staffing : DataFrame
        Per branch and service model: ``customers``, ``managers_needed``,
        ``managers_available`` (NaN when not given), ``managers``, ``shortfall``,
        ``contacts_per_month``, ``prospects``, ``prospects_in_capacity``,
        ``prospects_outside``, ``expected_gain_outside``.
    levers_by_group, levers_by_branch : DataFrame
        The share of each lever on the call list (:func:`~segments.core.growth.lever_mix`).
    as_of : str
    notes : list of str
    scoring_runs : tuple of str
        The MLflow runs of the scoring output (its ``run_id`` column), when tracked.
    """

    customers: pd.DataFrame
    staffing: pd.DataFrame
    levers_by_group: pd.DataFrame
    levers_by_branch: pd.DataFrame
    as_of: str
    notes: list[str] = field(default_factory=list)
    scoring_runs: tuple[str, ...] = ()

    def totals(self, service: ServiceMap | None = None) -> pd.DataFrame:
        """The staffing summed over branches, per service model (in the map's order when
        ``service`` is given, with its Chinese label): customers, managers needed,
        available (NaN when not given), planned and short, contacts a month, and the call
        list in and outside capacity."""
        cols = [
            "customers",
            "managers_needed",
            "managers_available",
            "managers",
            "shortfall",
            "contacts_per_month",
            "prospects",
            "prospects_in_capacity",
            "prospects_outside",
            "expected_gain_outside",
        ]
        grouped = self.staffing.groupby("service_model", sort=False)[cols]
        totals = grouped.sum(min_count=1)
        for c in cols:
            if c != "managers_available":
                totals[c] = totals[c].fillna(0)
        if service is not None:
            totals = totals.reindex([m for m in service.models if m in totals.index])
            totals.insert(0, "label_zh", [service.models[m].label_zh for m in totals.index])
        return totals


def check_managers(managers: pd.DataFrame, service: ServiceMap) -> pd.DataFrame:
    """Check a managers-available table: ``branch_id``, ``service_model``, ``managers``.

    Raises
    ------
    ConfigError
        A missing column, an unknown model, a count that is not a whole number >= 0, or a
        (branch, model) given twice; naming the rows.
    """
    need = ["branch_id", "service_model", "managers"]
    missing = [c for c in need if c not in managers.columns]
    if missing:
        raise ConfigError(
            [Violation(c, "is missing; expected " + ", ".join(need), kind=_KIND) for c in missing]
        )
    df = managers[need].copy()
    df["branch_id"] = df["branch_id"].astype(str)
    problems = []
    unknown = ~df["service_model"].isin(list(service.models))
    if unknown.any():
        problems.append(
            Violation(
                "service_model",
                f"names {', '.join(example_list(df.loc[unknown, 'service_model']))}, outside "
                f"the service map ({', '.join(service.models)})",
                int(unknown.sum()),
                kind=_KIND,
            )
        )
    count = pd.to_numeric(df["managers"], errors="coerce")
    bad = count.isna() | (count < 0) | (count != np.floor(count))
    if bad.any():
        problems.append(
            Violation(
                "managers",
                "must be whole numbers >= 0 (branches "
                f"{', '.join(example_list(df.loc[bad, 'branch_id']))})",
                int(bad.sum()),
                kind=_KIND,
            )
        )
    dup = df.duplicated(["branch_id", "service_model"], keep=False)
    if dup.any():
        problems.append(
            Violation(
                "branch_id, service_model",
                "gives a (branch, model) more than once (branches "
                f"{', '.join(example_list(df.loc[dup, 'branch_id']))})",
                int(dup.sum()),
                kind=_KIND,
            )
        )
    if problems:
        raise ConfigError(problems)
    df["managers"] = count.astype(np.int64)
    return df


def _service_models(scores: pd.DataFrame, service: ServiceMap, call_model: str) -> pd.DataFrame:
    """Each customer's own service model and the model that works them as a prospect."""
    tier = scores["tier"].astype(str).to_numpy()
    rank = pd.to_numeric(scores["tier_rank"]).to_numpy()
    group = scores["segment_name"].astype(object).to_numpy()
    nxt = scores["next_tier"].astype(object).to_numpy() if "next_tier" in scores else None
    own, calls = [], []
    for i in range(len(scores)):
        own.append(service.model_for(tier[i], rank[i], group[i]))
        if call_model == "next_tier" and nxt is not None and isinstance(nxt[i], str) and nxt[i]:
            calls.append(service.model_for(nxt[i], rank[i] + 1, group[i]))
        else:
            calls.append(own[-1])
    return pd.DataFrame({"service_model": own, "call_model": calls}, index=scores.index)


def build_plan(
    scores: pd.DataFrame,
    service: ServiceMap,
    *,
    managers: pd.DataFrame | None = None,
    call_model: str = "next_tier",
) -> Plan:
    """Turn a scoring output into a service plan.

    Parameters
    ----------
    scores : DataFrame
        A scoring output (:func:`segments.core.scoring.output.read_output`).
    service : ServiceMap
        The service models and which tier (x group) gets which.
    managers : DataFrame, optional
        Managers available: ``branch_id``, ``service_model``, ``managers``
        (:func:`check_managers`). Without it, each branch is planned with the managers it
        needs.
    call_model : {"next_tier", "current_tier"}, default "next_tier"
        Which tier's service model works a near-tier customer.

    Returns
    -------
    Plan
    """
    if call_model not in CALL_MODELS:
        raise ConfigError(
            [Violation("call_model", f"is {call_model!r}; expected one of {CALL_MODELS}")]
        )
    missing = [c for c in _NEEDED if c not in scores.columns]
    if missing:
        raise ConfigError([Violation(c, "is missing from the scoring output") for c in missing])
    if scores.empty:
        raise ConfigError([Violation("scores", "hold no customer")])
    as_of = sorted(set(scores["as_of"].astype(str)))
    if len(as_of) != 1:
        raise ConfigError([Violation("as_of", f"holds several months ({', '.join(as_of)})")])
    groups = sorted(set(scores["segment_name"].dropna().astype(str)))
    service.check_against(_tier_names(scores), groups)
    notes: list[str] = []
    df = scores.reset_index(drop=True).copy()
    if "branch_id" not in df.columns:
        notes.append("the scoring output has no branch_id: one plan for the whole bank")
        df["branch_id"] = NO_BRANCH
    df["branch_id"] = df["branch_id"].astype(object).where(df["branch_id"].notna(), NO_BRANCH)
    if "lever" not in df.columns:
        notes.append("the scoring output has no lever (scored before levers existed)")
        df["lever"] = None
    df = df.join(_service_models(df, service, call_model))
    staffing = _book(df, service, managers)
    calls = _call_list(df, service, staffing)
    staffing = _add_calls(staffing, calls)
    out = df.assign(call_rank=pd.NA, manager_slot=pd.NA, in_capacity=pd.NA)
    out.loc[calls.index, ["call_rank", "manager_slot", "in_capacity"]] = calls[
        ["call_rank", "manager_slot", "in_capacity"]
    ]
    out.loc[~out.index.isin(calls.index), "call_model"] = None
    out = out.reindex(columns=list(PLAN_COLUMNS))
    for c in ("call_rank", "manager_slot"):
        out[c] = out[c].astype("Int64")
    out["in_capacity"] = out["in_capacity"].astype("boolean")
    on_list = calls.assign(segment_name=df.loc[calls.index, "segment_name"])
    return Plan(
        customers=out,
        staffing=staffing,
        levers_by_group=lever_mix(on_list["lever"], on_list["segment_name"].rename("group")),
        levers_by_branch=lever_mix(on_list["lever"], on_list["branch_id"].rename("branch")),
        as_of=as_of[0],
        notes=notes,
        scoring_runs=tuple(
            sorted({str(r) for r in scores.get("run_id", pd.Series(dtype=str)).dropna() if r})
        ),
    )


def _tier_names(scores: pd.DataFrame) -> list[str]:
    order = scores.drop_duplicates("tier").sort_values("tier_rank")
    return [str(t) for t in order["tier"]]


def _book(df: pd.DataFrame, service: ServiceMap, managers: pd.DataFrame | None) -> pd.DataFrame:
    """Customers, managers needed and available, and contacts per branch x service model."""
    book = df.groupby(["branch_id", "service_model"], sort=True).size().rename("customers")
    staffing = book.reset_index()
    if managers is not None:
        given = check_managers(managers, service)
        staffing = staffing.merge(given, how="outer", on=["branch_id", "service_model"])
        staffing["customers"] = staffing["customers"].fillna(0).astype(np.int64)
        staffing = staffing.rename(columns={"managers": "managers_available"})
    else:
        staffing["managers_available"] = np.nan
    model = staffing["service_model"].map(service.models)
    capacity = model.map(lambda m: m.capacity if m.has_managers else np.nan).astype(float)
    cadence = model.map(lambda m: m.cadence_months).astype(float)
    needed = np.ceil(staffing["customers"] / capacity)
    staffing["managers_needed"] = needed.fillna(0).astype(np.int64)
    available = staffing["managers_available"]
    staffing["managers"] = available.fillna(staffing["managers_needed"]).astype(np.int64)
    staffing["shortfall"] = np.where(
        available.notna(), np.maximum(staffing["managers_needed"] - available.fillna(0), 0), 0
    ).astype(np.int64)
    staffing["contacts_per_month"] = (staffing["customers"] / cadence).round(1)
    return staffing.sort_values(["branch_id", "service_model"]).reset_index(drop=True)


def _call_list(df: pd.DataFrame, service: ServiceMap, staffing: pd.DataFrame) -> pd.DataFrame:
    """The near-tier customers with a probability, ranked and assigned to manager slots."""
    near = df["near_tier"].fillna(False).astype(bool) if "near_tier" in df else True
    on = df[near & df["p_upgrade"].notna()].copy()
    gain = on["expected_gain"] if "expected_gain" in on else on["p_upgrade"]
    on = on.assign(_gain=pd.to_numeric(gain).fillna(0.0)).sort_values(
        ["branch_id", "call_model", "_gain", "p_upgrade", "customer_id"],
        ascending=[True, True, False, False, True],
        kind="stable",
    )
    on["call_rank"] = on.groupby(["branch_id", "call_model"]).cumcount() + 1
    managers = staffing.set_index(["branch_id", "service_model"])["managers"]
    keys = pd.MultiIndex.from_arrays([on["branch_id"], on["call_model"]])
    m = managers.reindex(keys).fillna(0).to_numpy(dtype=np.int64)
    per = on["call_model"].map(lambda x: service.models[x].prospects_per_manager).to_numpy()
    digital = on["call_model"].map(lambda x: not service.models[x].has_managers).to_numpy()
    rank = on["call_rank"].to_numpy()
    inside = digital | (rank <= m * per)
    slot = np.where(inside & ~digital & (m > 0), (rank - 1) % np.maximum(m, 1) + 1, 0)
    on["in_capacity"] = inside
    on["manager_slot"] = pd.array(np.where(slot > 0, slot, pd.NA), dtype="Int64")
    return on.drop(columns="_gain")


def _add_calls(staffing: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    keys = ["branch_id", "call_model"]
    gain = calls["expected_gain"] if "expected_gain" in calls else calls["p_upgrade"] * 0
    c = calls.assign(
        _out=~calls["in_capacity"], _gain_out=pd.to_numeric(gain).fillna(0) * ~calls["in_capacity"]
    )
    agg = c.groupby(keys).agg(
        prospects=("customer_id", "size"),
        prospects_outside=("_out", "sum"),
        expected_gain_outside=("_gain_out", "sum"),
    )
    agg.index = agg.index.set_names(["branch_id", "service_model"])
    out = staffing.merge(agg.reset_index(), how="outer", on=["branch_id", "service_model"])
    for col in ("customers", "managers_needed", "managers", "shortfall", "prospects",
                "prospects_outside"):  # fmt: skip
        out[col] = out[col].fillna(0).astype(np.int64)
    out["contacts_per_month"] = out["contacts_per_month"].fillna(0.0)
    out["expected_gain_outside"] = out["expected_gain_outside"].fillna(0.0).round(2)
    out["prospects_in_capacity"] = out["prospects"] - out["prospects_outside"]
    return out.sort_values(["branch_id", "service_model"]).reset_index(drop=True)
