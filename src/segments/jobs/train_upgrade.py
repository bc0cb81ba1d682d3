"""Training the upgrade model: labels, features, the model and its baselines, evaluated
out of time, with gains, ranks, call lists and reason codes. Computes only; logging is
:func:`segments.jobs.log_training.log_upgrade`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from segments.core.config.experiment import ExperimentConfig, load_config
from segments.core.data.digest import panel_digest
from segments.core.data.panel import ID, MONTH, PanelSummary, inspect_panel
from segments.core.features.builder import check_history, check_windows
from segments.core.features.own import config_columns, declaring
from segments.core.growth.levers import assign_levers
from segments.core.sampling import FitSample, stratified_sample
from segments.core.tiers.assign import assign_tiers, check_ladder_history
from segments.core.tiers.ladders import load_ladder
from segments.core.upgrade.calls import call_list, expected_gain
from segments.core.upgrade.labels import (
    CALENDAR_FEATURES,
    NotEnoughDataError,
    add_counts,
    build_training_set,
    label_span,
    oot_split,
)
from segments.core.upgrade.metrics import (
    calibration_table,
    decile_table,
    evaluate,
    monthly_metrics,
)
from segments.core.upgrade.model import LogisticBaseline, RuleOfThumb, UpgradeModel
from segments.core.upgrade.ranks import band_key, rank_within
from segments.jobs.batched import concat_frames, run_validated, training_columns

__all__ = [
    "UpgradeResult",
    "default_as_of_months",
    "refit_months",
    "train_upgrade",
]


@dataclass
class UpgradeResult:
    """Everything an upgrade-model training produced.

    Attributes
    ----------
    model : UpgradeModel
        The model evaluated on the test months (chosen on the validation months, refitted
        on the ``refit`` months).
    baselines : dict
        ``rule_of_thumb`` and ``logistic``, fitted on the same training months.
    split : dict
        The as-of months of ``train``, ``valid`` and ``test``, and of the refits:
        ``refit`` (the evaluated model) and ``deploy`` (the deployed model).
    label_counts : DataFrame
        Per as-of month: population, positives, negatives, censored, positive rate.
    metrics : DataFrame
        Out-of-time metrics: one row per (model, segment), segment ``all`` or a near band.
    deciles, calibration : dict of DataFrame
        Per model (``"model"``) and per model and near band (``"model.near_gold"``), on
        the test months.
    test : DataFrame
        Test rows with each model's probability, expected gain and ranks.
    call_list : DataFrame
        The last test month's call list by branch and RM capacity.
    importance : Series
        Gain importance of the model's features.
    explainer : UpgradeExplainer
        Exact SHAP values and reason codes of the model.
    shap_importance : DataFrame
        Mean |SHAP| per feature on the test months (largest first).
    contributions : DataFrame
        SHAP values (calibrated log-odds) of every test row.
    config : ExperimentConfig
        The configuration the model was trained with.
    ladder : str
        The tier ladder's name.
    panel : PanelSummary
        The panel trained on: rows, customers, months, digest.
    fit_sample : FitSample
        The training rows the candidates were fitted on (all, or a stratified sample).
    deployed : UpgradeModel
        The model to log and score with: ``model`` refitted on every labelled month and
        calibrated on the test months (``model`` itself with ``upgrade.deploy:
        evaluated``).
    by_month : DataFrame
        Per model and test month: rows, upgrades, observed and mean predicted rate, ROC
        AUC and expected calibration error.
    run_id, model_uri : str or None
        The MLflow run and logged model, once logged.
    registered_model, model_version : str or None
        The registered model and the version (aliased ``challenger``), when registered.
    """

    model: Any
    baselines: dict[str, Any]
    split: dict[str, list[str]]
    label_counts: pd.DataFrame
    metrics: pd.DataFrame
    deciles: dict[str, pd.DataFrame]
    calibration: dict[str, pd.DataFrame]
    test: pd.DataFrame
    call_list: pd.DataFrame
    importance: pd.Series
    data: pd.DataFrame
    explainer: Any = None
    shap_importance: pd.DataFrame | None = None
    contributions: pd.DataFrame | None = None
    config: ExperimentConfig | None = None
    ladder: str = ""
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    panel: PanelSummary | None = None
    fit_sample: FitSample | None = None
    deployed: Any = None
    by_month: pd.DataFrame | None = None
    run_id: str | None = None
    model_uri: str | None = None
    registered_model: str | None = None
    model_version: str | None = None

    def comparison(self, segment: str = "all") -> pd.DataFrame:
        """Model vs baselines side by side for one segment (``all`` or a near band)."""
        m = self.metrics[self.metrics["segment"] == segment].set_index("model")
        return m.drop(columns="segment").T


def default_as_of_months(
    panel: pd.DataFrame | Sequence[pd.Period], horizon: int, min_history: int
) -> list[str]:
    """Months with ``min_history`` months before them and a full label window after (of a
    panel, or of its distinct months)."""
    months = panel[MONTH] if isinstance(panel, pd.DataFrame) else pd.Series(list(panel))
    first, last = months.min(), months.max()
    months = pd.period_range(first + min_history, last - horizon, freq="M")
    return [str(m) for m in months]


def refit_months(
    as_of: Sequence[str | pd.Period], split: dict[str, list[str]], span: int
) -> dict[str, list[str]]:
    """The as-of months of the two refits: ``refit``, every month whose label window ends
    by the first test month (the training months, the embargo after them, the validation
    months), for the model evaluated on the test months; ``deploy``, every labelled month,
    for the deployed model."""
    months = sorted({pd.Period(m, "M") for m in as_of})
    first_test = pd.Period(split["test"][0], "M").ordinal
    return {
        "refit": [str(m) for m in months if m.ordinal + span <= first_test],
        "deploy": [str(m) for m in months],
    }


@declaring(config_columns)  # the bank's own columns registered while it runs
def train_upgrade(
    panel: pd.DataFrame | str | os.PathLike[str],
    config: ExperimentConfig | None = None,
    *,
    track: bool = False,
) -> UpgradeResult:
    """Labels, features, the upgrade model and both baselines, evaluated out of time.

    Nothing is written: logging the run to MLflow is an explicit step,
    :func:`segments.log_upgrade` (or ``track=True``).

    Parameters
    ----------
    panel : DataFrame or path
        A validated panel, or a panel file (Parquet file, folder of parts, CSV): a file is
        validated and its labelled rows built in batches of whole customers on every core
        (``scoring.batch_customers``, ``scoring.workers``), never held whole.
    config : ExperimentConfig, optional
        ``tiers`` (ladder), ``features`` (windows) and ``upgrade`` sections are used.
    track : bool, default False
        Also log the run to MLflow, as :func:`segments.log_upgrade` does.

    Returns
    -------
    UpgradeResult
        With ``fit_sample``: the training rows the model and the logistic baseline were
        fitted on. Up to ``upgrade.fit_size`` rows, all of them; above it, a sample of that
        size stratified by as-of month, near band and label. Validation and test rows are
        never sampled.

    Raises
    ------
    PanelValidationError
        A panel file breaks the data contract (every problem of every batch).
    NotEnoughDataError
        A part of the split (train, validation, test) lacks a class.
    """
    cfg = config or load_config()
    if track:
        cfg.tracking.id_key()  # what logging will need, checked before any work
    ladder = load_ladder(
        cfg.tiers.ladder, basis_window=cfg.tiers.basis_window, hysteresis=cfg.tiers.hysteresis
    )
    rows = _training_rows(panel, cfg, ladder)
    split, data = rows.split, rows.data
    part = {k: data[data["as_of"].isin(v)] for k, v in split.items()}
    systems, fit_sample, deployed = _fit_systems(part, cfg)
    test, metrics, deciles, calib, curves = _evaluate(systems, part["test"].copy())
    by_month = monthly_metrics(test, list(systems))
    test = _gains_and_ranks(test, rows.branches, ladder, cfg)
    last = test[test["as_of"] == split["test"][-1]]
    up = cfg.upgrade
    calls = call_list(last, capacity_per_rm=up.capacity_per_rm, rms_per_branch=up.rms_per_branch)
    calls = calls.join(assign_levers(calls, cfg.levers))  # the bank action, with its evidence
    from segments.core.explain.reasons import UpgradeExplainer

    model = systems["model"]
    explainer = UpgradeExplainer(model, ladder)
    contributions = explainer.contributions(test)
    reasons = explainer.reason_codes(
        test, k=up.reasons_k, direction=up.reasons_direction, contributions=contributions
    )
    test = test.join(reasons)
    calls = calls.merge(test[[ID, "as_of", *reasons.columns]], on=[ID, "as_of"], how="left")
    result = UpgradeResult(
        model,
        {k: v for k, v in systems.items() if k != "model"},
        split,
        rows.counts,
        metrics,
        deciles,
        calib,
        test,
        calls,
        model.feature_importance(),
        data,
        explainer,
        explainer.global_importance(contributions=contributions),
        contributions,
        config=cfg,
        ladder=ladder.name,
        curves=curves,
        panel=rows.summary,
        fit_sample=fit_sample,
        deployed=deployed,
        by_month=by_month,
    )
    if track:
        from segments.jobs.log_training import log_upgrade

        log_upgrade(result)
    return result


@dataclass(frozen=True)
class LabelledRows:
    """A batch's (or the whole panel's) labelled rows: the stacked features and labels
    (None when nobody is labelled), the counts per as-of month, and the branch of each
    customer in each test month (None without ``branch_id``)."""

    data: pd.DataFrame | None
    counts: pd.DataFrame
    branches: pd.DataFrame | None


@dataclass(frozen=True)
class LabelsWork:
    """Builds :class:`LabelledRows` from a validated panel (a batch of whole customers or
    the whole panel): tiers, labels and features at every as-of month."""

    ladder: Any
    months: tuple[str, ...]
    test_months: tuple[str, ...]
    horizon: int
    population: str
    kind: str
    sustain_months: int
    windows: tuple[int, ...]

    def __call__(self, frame: pd.DataFrame) -> LabelledRows:
        tiers = assign_tiers(frame, self.ladder, check_history=False)  # checked before
        data, counts = build_training_set(
            frame,
            tiers,
            list(self.months),
            horizon=self.horizon,
            population=self.population,
            kind=self.kind,
            sustain_months=self.sustain_months,
            windows=self.windows,
            allow_empty=True,
        )
        branches = None
        if "branch_id" in frame.columns:
            at = frame[MONTH].astype(str)
            keep = at.isin(self.test_months).to_numpy()
            branches = pd.DataFrame(
                {
                    ID: frame[ID].to_numpy()[keep],
                    "as_of": at.to_numpy()[keep],
                    "branch_id": frame["branch_id"].to_numpy()[keep],
                }
            )
        return LabelledRows(data, counts, branches)


@dataclass(frozen=True)
class TrainingRows:
    """The out-of-time split, the labelled rows of every month used, the counts per month,
    the test months' branches and the panel's summary."""

    split: dict[str, list[str]]
    data: pd.DataFrame
    counts: pd.DataFrame
    branches: pd.DataFrame | None
    summary: PanelSummary


def _training_rows(
    panel: pd.DataFrame | str | os.PathLike[str], cfg: ExperimentConfig, ladder: Any
) -> TrainingRows:
    """The out-of-time split of as-of months and the labelled rows of every month used,
    from a frame or from a file in batches (the split is set from the months before any
    row of a file is read).

    Raises :class:`NotEnoughDataError` when a part (train, valid, test) lacks a class.
    """
    up = cfg.upgrade
    if isinstance(panel, pd.DataFrame):
        months = sorted(pd.unique(panel[MONTH]))
    else:
        found = inspect_panel(panel, cfg.panel, months=True)
        months = list(found.months or ())
    # Months a label reads ahead: H for "reach", H + M - 1 for "sustain"; the embargo and
    # the last usable as-of month follow it.
    span = label_span(up.horizon, up.label, up.sustain_months)
    # The history an as-of month needs: min_history, or less when the longest window
    # reads fewer months before it (windows [2, 3, 4] on a 6-month panel).
    needs = min(up.min_history, max(check_windows(cfg.features.windows)) - 1)
    # ... and at least what a points ladder's basis reads back (12 months' points balance).
    held = (pd.Period(months[-1], "M") - pd.Period(months[0], "M")).n + 1 if months else 0
    check_ladder_history(ladder, held)
    needs = max(needs, ladder.warmup_months)
    as_of = list(up.as_of_months) if up.as_of_months else default_as_of_months(months, span, needs)
    split = oot_split(as_of, horizon=span, test_months=up.test_months, valid_months=up.valid_months)
    split.update(refit_months(as_of, split, span))
    last = pd.Period(split["deploy"][-1], "M")
    left_out = check_history(months, last, tuple(cfg.features.windows))
    work = LabelsWork(
        ladder,
        tuple(split["deploy"]),
        tuple(split["test"]),
        up.horizon,
        up.population,
        up.label,
        up.sustain_months,
        tuple(cfg.features.windows),
    )
    if isinstance(panel, pd.DataFrame):
        whole = work(panel)
        summary = PanelSummary.of_frame(panel, panel_digest(panel, ladder.columns))
        parts = [whole]
    else:
        sc = cfg.scoring
        parts, summary = run_validated(
            panel,
            found,
            cfg.panel,
            training_columns(found, cfg.panel, ladder.columns),
            work,
            batch_customers=sc.batch_customers,
            workers=sc.workers,
            ladder_columns=ladder.columns,
        )
    frames = [p.data for p in parts if p.data is not None]
    if not frames:
        raise NotEnoughDataError(
            f"no labelled customers in any as-of month ({', '.join(work.months)})"
        )
    data = frames[0] if len(frames) == 1 else concat_frames(frames, by=["as_of", ID])
    seasonal = up.seasonality is True or (
        up.seasonality == "auto" and len({pd.Period(m, "M").month for m in split["deploy"]}) == 12
    )
    dropped = [*left_out, *([] if seasonal else CALENDAR_FEATURES)]
    data = data.drop(columns=[c for c in dropped if c in data.columns])
    data.attrs["not_built"] = list(left_out)  # longer than the history (check_history)
    counts = add_counts([p.counts for p in parts])
    branch_parts = [p.branches for p in parts if p.branches is not None]
    branches = pd.concat(branch_parts, ignore_index=True) if branch_parts else None
    for k, months_k in split.items():
        v = data[data["as_of"].isin(months_k)]
        if v.empty or v["label"].nunique() < 2:
            raise NotEnoughDataError(
                f"upgrade: the {k} months ({', '.join(months_k)}) have "
                f"{len(v)} labelled customers and "
                f"{int(v['label'].sum()) if len(v) else 0} upgrades; "
                "both classes are needed"
            )
    return TrainingRows(split, data, counts, branches, summary)


def _fit_systems(
    part: dict[str, pd.DataFrame], cfg: ExperimentConfig
) -> tuple[dict[str, Any], FitSample, Any]:
    """The upgrade model and the two baselines a data scientist would try first, the
    training rows the model was chosen on (all, or a stratified sample above
    ``upgrade.fit_size``), and the deployed model.

    The model is chosen on the validation months among candidates fitted on the training
    months, then refitted on the ``refit`` months (training, embargo, validation): that
    model is evaluated on the test months. The logistic baseline is fitted on the same
    ``refit`` rows; the rule of thumb's probability scale on the validation months, where
    the model's calibration comes from. The deployed model is the evaluated one refitted
    on every labelled month, calibrated on the test months (the most recent labelled
    months, out of time for the evaluated model); ``upgrade.deploy: evaluated`` deploys
    the evaluated model itself.
    """
    up = cfg.upgrade
    train, valid, test = part["train"], part["valid"], part["test"]
    params = {"prior_shift_lead": up.horizon, **dict(up.model)}  # the month scored: t + H
    model = UpgradeModel(list(up.features) if up.features else None, **params)
    strata = ("as_of", "near_band", "label")

    def sample(rows: pd.DataFrame) -> pd.DataFrame:
        keep = stratified_sample(rows[list(strata)], up.fit_size or len(rows), model.random_state)
        return rows if len(keep) == len(rows) else rows.iloc[keep]

    fitted = sample(train)
    fit_sample = FitSample(len(fitted), len(train), strata)
    refit = sample(part["refit"])
    model.fit(
        fitted, fitted["label"], eval_set=(valid, valid["label"]), refit_on=(refit, refit["label"])
    )
    # The rule has nothing to learn but its probability scale: map it on the validation
    # months, as the model's calibration is, so Brier and ECE compare like with like.
    rule = RuleOfThumb().fit(valid, valid["label"])
    logistic = LogisticBaseline(model.features_).fit(refit, refit["label"])
    deployed = model
    if up.deploy == "all_months":
        every = sample(part["deploy"])
        deployed = model.refitted(every, every["label"], calibrate_on=(test, test["label"]))
    return {"model": model, "rule_of_thumb": rule, "logistic": logistic}, fit_sample, deployed


def _evaluate(systems: dict[str, Any], test: pd.DataFrame) -> tuple[Any, ...]:
    """Each system's probabilities on the test rows, with metrics, deciles and calibration
    overall and per near band, and the ROC curves' inputs."""
    y = test["label"].to_numpy()
    rows, deciles, calib, curves = [], {}, {}, {}
    for name, est in systems.items():
        p = est.predict_proba(test)[:, 1]
        s = est.decision_function(test)
        test[f"p_{name}"] = p
        curves[name] = (y, s)
        rows.append({"model": name, "segment": "all", **evaluate(y, p, s)})
        deciles[name] = decile_table(y, s, p)
        calib[name] = calibration_table(y, p)
        for band in test["near_band"].dropna().unique():
            m = (test["near_band"] == band).to_numpy()
            rows.append({"model": name, "segment": str(band), **evaluate(y[m], p[m], s[m])})
            if m.sum() >= 20 and len(np.unique(y[m])) == 2:
                deciles[f"{name}.{band}"] = decile_table(y[m], s[m], p[m])
                calib[f"{name}.{band}"] = calibration_table(
                    y[m], p[m], bins=min(10, int(m.sum()) // 2)
                )
    test["p_upgrade"] = test["p_model"]
    return test, pd.DataFrame(rows), deciles, calib, curves


def _gains_and_ranks(
    test: pd.DataFrame, branches: pd.DataFrame | None, ladder: Any, cfg: ExperimentConfig
) -> pd.DataFrame:
    """Expected gain, ranks within each as-of month's band and, with branches, within
    each branch."""
    gains = expected_gain(
        test["p_upgrade"],
        test["gap_to_next"],
        next_tier=_next_tier(test, ladder),
        tier_values=dict(cfg.upgrade.tier_values),
    )
    for c in gains:
        test[c] = gains[c].to_numpy()
    band = band_key(test["near_band"], test["tier_rank"])  # the rank rule's group
    band_rank = rank_within(test["p_upgrade"], test["as_of"].astype(str) + "|" + band)
    test["upgrade_decile"] = band_rank["decile"].to_numpy()
    test["upgrade_percentile"] = band_rank["percentile"].to_numpy()
    test["upgrade_permille"] = band_rank["permille"].to_numpy()
    if branches is not None:
        # Each row's branch in its own as-of month.
        test = test.merge(branches, on=[ID, "as_of"], how="left")
        test["branch_id"] = test["branch_id"].astype(str)
        br = rank_within(
            test["p_upgrade"], test["as_of"].astype(str) + "|" + test["branch_id"].astype(str)
        )
        test["branch_permille"] = br["permille"].to_numpy()
    return test


def _next_tier(test: pd.DataFrame, ladder: Any) -> pd.Series:
    names = ladder.tier_names
    ranks = test["tier_rank"].to_numpy().astype(int) + 1
    return pd.Series([names[r] if r < len(names) else None for r in ranks], index=test.index)
