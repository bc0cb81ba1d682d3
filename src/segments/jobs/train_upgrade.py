"""Training the upgrade model: labels, features, the model and its baselines, evaluated
out of time, with gains, ranks, call lists and reason codes. Computes only; logging is
:func:`segments.jobs.log_training.log_upgrade`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from segments.core.config.experiment import ExperimentConfig, load_config
from segments.core.data.panel import ID, MONTH
from segments.core.tiers.assign import assign_tiers
from segments.core.tiers.ladders import load_ladder
from segments.core.upgrade.calls import call_list, expected_gain
from segments.core.upgrade.labels import (
    NotEnoughDataError,
    build_training_set,
    label_span,
    oot_split,
)
from segments.core.upgrade.metrics import calibration_table, decile_table, evaluate
from segments.core.upgrade.model import LogisticBaseline, RuleOfThumb, UpgradeModel
from segments.core.upgrade.ranks import band_key, rank_within

__all__ = ["UpgradeResult", "default_as_of_months", "train_upgrade"]


@dataclass
class UpgradeResult:
    """Everything an upgrade-model training produced.

    Attributes
    ----------
    model : UpgradeModel
    baselines : dict
        ``rule_of_thumb`` and ``logistic``, fitted on the same training months.
    split : dict
        The as-of months of ``train``, ``valid`` and ``test``.
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
    run_id: str | None = None
    model_uri: str | None = None
    registered_model: str | None = None
    model_version: str | None = None

    def comparison(self, segment: str = "all") -> pd.DataFrame:
        """Model vs baselines side by side for one segment (``all`` or a near band)."""
        m = self.metrics[self.metrics["segment"] == segment].set_index("model")
        return m.drop(columns="segment").T


def default_as_of_months(panel: pd.DataFrame, horizon: int, min_history: int) -> list[str]:
    """Months with ``min_history`` months before them and a full label window after."""
    first, last = panel[MONTH].min(), panel[MONTH].max()
    months = pd.period_range(first + min_history, last - horizon, freq="M")
    return [str(m) for m in months]


def train_upgrade(
    panel: pd.DataFrame,
    config: ExperimentConfig | None = None,
    *,
    track: bool = False,
) -> UpgradeResult:
    """Labels, features, the upgrade model and both baselines, evaluated out of time.

    Nothing is written: logging the run to MLflow is an explicit step,
    :func:`segments.log_upgrade` (or ``track=True``).

    Parameters
    ----------
    panel : DataFrame
        A validated panel.
    config : ExperimentConfig, optional
        ``tiers`` (ladder), ``features`` (windows) and ``upgrade`` sections are used.
    track : bool, default False
        Also log the run to MLflow, as :func:`segments.log_upgrade` does.

    Returns
    -------
    UpgradeResult
    """
    cfg = config or load_config()
    ladder = load_ladder(
        cfg.tiers.ladder, basis_window=cfg.tiers.basis_window, hysteresis=cfg.tiers.hysteresis
    )
    split, data, counts = _training_rows(panel, cfg, ladder)
    part = {k: data[data["as_of"].isin(v)] for k, v in split.items()}
    systems = _fit_systems(part, cfg)
    test, metrics, deciles, calib, curves = _evaluate(systems, part["test"].copy())
    test = _gains_and_ranks(test, panel, ladder, cfg)
    last = test[test["as_of"] == split["test"][-1]]
    up = cfg.upgrade
    calls = call_list(last, capacity_per_rm=up.capacity_per_rm, rms_per_branch=up.rms_per_branch)
    from segments.core.explain.reasons import UpgradeExplainer

    model = systems["model"]
    explainer = UpgradeExplainer(model)
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
        counts,
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
    )
    if track:
        from segments.jobs.log_training import log_upgrade

        log_upgrade(result, panel)
    return result


def _training_rows(
    panel: pd.DataFrame, cfg: ExperimentConfig, ladder: Any
) -> tuple[dict[str, list[str]], pd.DataFrame, pd.DataFrame]:
    """The out-of-time split of as-of months and the labelled rows of every month used.

    Raises :class:`NotEnoughDataError` when a part (train, valid, test) lacks a class.
    """
    up = cfg.upgrade
    tiers = assign_tiers(panel, ladder)
    # Months a label reads ahead: H for "reach", H + M - 1 for "sustain"; the embargo and
    # the last usable as-of month follow it.
    span = label_span(up.horizon, up.label, up.sustain_months)
    months = (
        list(up.as_of_months)
        if up.as_of_months
        else default_as_of_months(panel, span, up.min_history)
    )
    split = oot_split(
        months, horizon=span, test_months=up.test_months, valid_months=up.valid_months
    )
    data, counts = build_training_set(
        panel,
        tiers,
        split["train"] + split["valid"] + split["test"],
        horizon=up.horizon,
        population=up.population,
        kind=up.label,
        sustain_months=up.sustain_months,
        windows=cfg.features.windows,
    )
    for k, months_k in split.items():
        v = data[data["as_of"].isin(months_k)]
        if v.empty or v["label"].nunique() < 2:
            raise NotEnoughDataError(
                f"upgrade: the {k} months ({', '.join(months_k)}) have "
                f"{len(v)} labelled customers and "
                f"{int(v['label'].sum()) if len(v) else 0} upgrades; "
                "both classes are needed"
            )
    return split, data, counts


def _fit_systems(part: dict[str, pd.DataFrame], cfg: ExperimentConfig) -> dict[str, Any]:
    """The upgrade model and the two baselines a data scientist would try first."""
    up = cfg.upgrade
    train, valid = part["train"], part["valid"]
    feats = list(up.features) if up.features else None
    model = UpgradeModel(feats, **dict(up.model)).fit(
        train, train["label"], eval_set=(valid, valid["label"])
    )
    # The rule has nothing to learn but its probability scale: map it on the validation
    # months, as the model's calibration is, so Brier and ECE compare like with like.
    rule = RuleOfThumb().fit(valid, valid["label"])
    logistic = LogisticBaseline(model.features_).fit(train, train["label"])
    return {"model": model, "rule_of_thumb": rule, "logistic": logistic}


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
    test: pd.DataFrame, panel: pd.DataFrame, ladder: Any, cfg: ExperimentConfig
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
    if "branch_id" in panel.columns:
        # Each row's branch in its own as-of month.
        at = panel[[ID, MONTH, "branch_id"]].assign(as_of=panel[MONTH].astype(str))
        test = test.merge(at[[ID, "as_of", "branch_id"]], on=[ID, "as_of"], how="left")
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
