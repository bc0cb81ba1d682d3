"""Upgrade labels, the stacked training set and the out-of-time split.

For customers in a near-tier band at as-of month ``t``, the label says whether they reach
the next tier within ``(t, t + H]``. Features come from months ``<= t`` only; labels from
``t + 1 .. t + H`` (plus ``M - 1`` months for "sustain" labels); validation is out of time,
with an embargo so that no label window of the training months reaches into the test
months.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from segments.core.data.panel import ID, MONTH
from segments.core.features import DEFAULT_WINDOWS, build_features
from segments.core.tiers.points import POINTS_PREFIX
from segments.exceptions import ConfigError, SegmentsError, Violation

__all__ = [
    "LABEL_KINDS",
    "POPULATIONS",
    "TIER_FEATURES",
    "NotEnoughDataError",
    "add_counts",
    "build_training_set",
    "label_span",
    "make_labels",
    "oot_split",
    "tier_features",
]

LABEL_KINDS = ("reach", "sustain")
POPULATIONS = ("near_tier", "below_top")
#: Tier-table columns used as features (known at the as-of month).
TIER_FEATURES = ("gap_ratio", "gap_to_next", "tier_rank", "near_band")


def tier_features(columns: Sequence[str]) -> list[str]:
    """The tier-table columns the upgrade model reads.

    Parameters
    ----------
    columns : sequence of str
        A tier table's columns.

    Returns
    -------
    list of str
        :data:`TIER_FEATURES` and, on a points or growth ladder, each component's points
        (``points_<name>``: which component is closest to adding points).
    """
    return [*TIER_FEATURES, *(c for c in columns if str(c).startswith(POINTS_PREFIX))]


#: The as-of month's calendar month (1-12): upgrades are seasonal (year-end bonuses, Spring
#: Festival). A model feature when the labelled months cover the year (``upgrade.seasonality``).
CALENDAR_FEATURES = ("month_of_year",)
#: What ``upgrade.seasonality`` may be: on when the labelled as-of months cover all twelve
#: calendar months (``auto``), always, or never.
SEASONALITY = ("auto", True, False)


def deploy_problems(deploy: str, seasonality: str | bool) -> list[Violation]:
    """What is wrong with ``upgrade.deploy`` and ``upgrade.seasonality`` (empty: nothing)."""
    problems = []
    if seasonality not in SEASONALITY or seasonality == 1:
        problems.append(
            Violation("upgrade.seasonality", f"is {seasonality!r}; expected auto, true or false")
        )
    if deploy not in DEPLOY:
        problems.append(
            Violation("upgrade.deploy", f"is {deploy!r}; expected {' or '.join(DEPLOY)}")
        )
    return problems


#: What an upgrade training deploys: the evaluated model refitted on every labelled month,
#: or the evaluated model itself.
DEPLOY = ("all_months", "evaluated")


def label_span(horizon: int, kind: str, sustain_months: int) -> int:
    """Months a label reads after its as-of month: ``horizon`` for ``reach``, ``horizon +
    sustain_months - 1`` for ``sustain``. The out-of-time embargo and the last usable as-of
    month follow from it."""
    return horizon + (sustain_months - 1 if kind == "sustain" else 0)


class NotEnoughDataError(SegmentsError, ValueError):
    """Too few months, customers or positive labels to train or evaluate."""


def make_labels(
    tiers: pd.DataFrame,
    as_of: str | pd.Period,
    *,
    horizon: int = 3,
    population: str = "near_tier",
    kind: str = "reach",
    sustain_months: int = 3,
) -> pd.DataFrame:
    """Upgrade labels for the population at ``as_of``.

    Parameters
    ----------
    tiers : DataFrame
        The tier table (:func:`segments.assign_tiers`).
    as_of : str or Period
        The month ``t`` the population and features are taken at.
    horizon : int, default 3
        ``H``: the label looks at months ``t + 1 .. t + H``.
    population : {"near_tier", "below_top"}, default "near_tier"
        Customers in a near-tier band at ``t``, or every customer below the top tier.
    kind : {"reach", "sustain"}, default "reach"
        ``reach``: at or above the next tier in any month of the window. ``sustain``: a
        run of ``sustain_months`` consecutive months whose basis qualifies for the next
        tier, starting in the window (what hysteresis ladders demand; the held tier of a
        hysteresis ladder is not used, so a one-month touch is not a sustained upgrade).
    sustain_months : int, default 3
        ``M`` for ``sustain``.

    Returns
    -------
    DataFrame
        One row per customer of the population: ``customer_id``, ``as_of``, the tier columns
        at ``t`` (``tier``, ``tier_rank``, ``next_tier``, ``near_band``, ``gap_to_next``,
        ``gap_ratio``, and a points ladder's ``points_<component>``), ``label`` (1, 0, or
        missing when censored) and ``censored``.
        A customer is censored when a month needed to decide is missing (left the bank, or
        the panel ends) and the upgrade has not already been seen; never labelled 0.
    """
    problems = []
    if kind not in LABEL_KINDS:
        problems.append(Violation("upgrade.label", f"is {kind!r}; expected {LABEL_KINDS}"))
    if population not in POPULATIONS:
        problems.append(
            Violation("upgrade.population", f"is {population!r}; expected {POPULATIONS}")
        )
    if not isinstance(horizon, int) or horizon < 1:
        problems.append(Violation("upgrade.horizon", f"is {horizon!r}; expected >= 1"))
    if kind == "sustain" and (not isinstance(sustain_months, int) or sustain_months < 1):
        problems.append(
            Violation("upgrade.sustain_months", f"is {sustain_months!r}; expected >= 1")
        )
    if problems:
        raise ConfigError(problems)
    t = pd.Period(as_of, "M")
    ordinals = tiers[MONTH].array.asi8
    now = tiers[ordinals == t.ordinal]
    top = len(tiers["tier"].cat.categories) - 1
    if population == "near_tier":
        pop = now[now["near_tier"].to_numpy()]
    else:
        pop = now[now["tier_rank"].to_numpy() < top]
    span = label_span(horizon, kind, sustain_months)
    ahead = tiers[(ordinals > t.ordinal) & (ordinals <= t.ordinal + span)]
    # "reach": the tier held (upgrades are immediate on every ladder). "sustain": the tier the
    # basis qualifies for, so a hysteresis ladder's held tier cannot make a touch look kept.
    future_rank = (
        ahead["tier_rank"].to_numpy()
        if kind == "reach"
        else ahead["qualifying_tier"].cat.codes.to_numpy()
    )
    ids = pop[ID].to_numpy()
    target = pop["tier_rank"].to_numpy().astype(np.int16) + 1
    # Grid of future ranks: customers x months ahead (-1 = no row).
    pos = pd.Index(ids)
    rows = pos.get_indexer(ahead[ID])
    keep = rows >= 0
    lag = ahead[MONTH].array.asi8[keep] - t.ordinal - 1
    grid = np.full((len(ids), span), -1, dtype=np.int16)
    grid[rows[keep], lag] = future_rank[keep]
    above = grid >= target[:, None]
    present = grid >= 0
    if kind == "reach":
        positive = above[:, :horizon].any(axis=1)
        complete = present[:, :horizon].all(axis=1)
    else:
        M = sustain_months
        positive = np.zeros(len(ids), dtype=bool)
        possible = np.zeros(len(ids), dtype=bool)  # a run could still start, data missing
        for start in range(horizon):
            run = above[:, start : start + M]
            positive |= run.all(axis=1) & (run.shape[1] == M)
            window = present[:, start : start + M]
            # Unknown when no month of the run is known to be below and some are missing.
            known_below = (present[:, start : start + M] & ~above[:, start : start + M]).any(axis=1)
            possible |= ~known_below & ~window.all(axis=1)
        complete = ~possible
    label = np.where(positive, 1.0, np.where(complete, 0.0, np.nan))
    points = tier_features(pop.columns)[len(TIER_FEATURES) :]
    out = pop[
        [ID, "tier", "tier_rank", "next_tier", "near_band", "gap_to_next", "gap_ratio", *points]
    ].copy()
    out.insert(1, "as_of", str(t))
    out["label"] = pd.array(label, dtype="Float64").astype("Int8")
    out["censored"] = np.isnan(label)
    return out.reset_index(drop=True)


def build_training_set(
    panel: pd.DataFrame,
    tiers: pd.DataFrame,
    as_of_months: Sequence[str | pd.Period],
    *,
    horizon: int = 3,
    population: str = "near_tier",
    kind: str = "reach",
    sustain_months: int = 3,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    allow_empty: bool = False,
) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """Stack features and labels over several as-of months.

    Parameters
    ----------
    panel, tiers : DataFrame
        A validated panel and its tier table.
    as_of_months : sequence
        The as-of months to stack.
    horizon, population, kind, sustain_months
        See :func:`make_labels`.
    windows : sequence of int
        Feature windows (:func:`segments.build_features`).
    allow_empty : bool, default False
        Return ``data`` None, rather than raise, when nobody is labelled (a batch of a
        larger panel may have nobody).

    Returns
    -------
    data : DataFrame or None
        One row per (customer, as-of) with a label (censored rows dropped): ``customer_id``,
        ``as_of``, the features at ``as_of`` (months <= as-of only), the tier features
        (``gap_ratio``, ``gap_to_next``, ``tier_rank``, ``near_band``, a points ladder's
        ``points_<component>``), the calendar month
        (``month_of_year``) and ``label``.
    counts : DataFrame
        Per as-of month: population, positives, negatives, censored, positive rate.
    """
    frames, counts = [], []
    customers = pd.Index(panel[ID].to_numpy())
    for t in as_of_months:
        labels = make_labels(
            tiers,
            t,
            horizon=horizon,
            population=population,
            kind=kind,
            sustain_months=sustain_months,
        )
        n_cens = int(labels["censored"].sum())
        labelled = labels[~labels["censored"]]
        pos = int((labelled["label"] == 1).sum())
        counts.append(
            {
                "as_of": str(pd.Period(t, "M")),
                "population": len(labels),
                "positives": pos,
                "negatives": len(labelled) - pos,
                "censored": n_cens,
                "positive_rate": pos / len(labelled) if len(labelled) else np.nan,
            }
        )
        if labelled.empty:
            continue
        # Features are per customer: built from the labelled customers' rows alone (an
        # eighth of a book is near-tier), they are the same as from the whole panel.
        ids = labelled[ID].to_numpy()
        X = build_features(panel[customers.isin(ids)], t, windows=windows).reindex(ids)
        X.index.name = ID
        tier_cols = labelled.set_index(ID)[tier_features(labelled.columns)]
        block = X.join(tier_cols).reset_index()
        block.insert(1, "as_of", str(pd.Period(t, "M")))
        block["month_of_year"] = np.int8(pd.Period(t, "M").month)
        block["label"] = labelled["label"].to_numpy().astype(np.int8)
        frames.append(block)
    counts_table = pd.DataFrame(counts).set_index("as_of")
    if not frames:
        if allow_empty:
            return None, counts_table
        raise NotEnoughDataError(
            f"no labelled customers in any as-of month ({', '.join(map(str, as_of_months))})"
        )
    data = pd.concat(frames, ignore_index=True)
    for c in ("near_band", "age_band", "gender", "region", "occupation"):
        if c in data.columns:
            data[c] = data[c].astype("category")
    return data, counts_table


def add_counts(counts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The label counts of batches of customers (:func:`build_training_set`'s ``counts``)
    added up per as-of month, with the positive rate of the total."""
    columns = ["population", "positives", "negatives", "censored"]
    out = counts[0][columns].copy()
    for more in counts[1:]:
        out = out + more[columns]
    labelled = out["positives"] + out["negatives"]
    out["positive_rate"] = (out["positives"] / labelled).where(labelled > 0)
    return out


def oot_split(
    as_of_months: Sequence[str | pd.Period],
    *,
    horizon: int,
    test_months: int = 2,
    valid_months: int = 2,
) -> dict[str, list[str]]:
    """Out-of-time split of as-of months with an embargo of ``horizon`` months.

    Pass as ``horizon`` every month a label reads ahead (``H + M - 1`` for sustain labels).

    The last ``test_months`` as-of months are the test; the ``valid_months`` before them
    (that also end their label window by the first test month) validate; earlier months
    whose label windows end by the first validation month train. So no label of a
    training (or validation) row uses a month after the test's first as-of month.

    Returns
    -------
    dict
        ``{"train": [...], "valid": [...], "test": [...]}`` as ``YYYY-MM`` strings.

    Raises
    ------
    NotEnoughDataError
        When there are not enough as-of months for all three parts.
    """
    months = sorted({pd.Period(m, "M") for m in as_of_months})
    if len(months) < test_months + valid_months + 1:
        raise NotEnoughDataError(
            f"upgrade: {len(months)} as-of months are too few for {test_months} test, "
            f"{valid_months} validation and at least 1 training month"
        )
    test = months[-test_months:]
    valid = [m for m in months if m.ordinal + horizon <= test[0].ordinal][-valid_months:]
    if not valid:
        raise NotEnoughDataError(
            "upgrade: no validation month ends its label window "
            f"before the first test month {test[0]}"
        )
    train = [m for m in months if m.ordinal + horizon <= valid[0].ordinal]
    if not train:
        raise NotEnoughDataError(
            "upgrade: no training month ends its label window before "
            f"the first validation month {valid[0]}"
        )
    return {
        "train": [str(m) for m in train],
        "valid": [str(m) for m in valid],
        "test": [str(m) for m in test],
    }
