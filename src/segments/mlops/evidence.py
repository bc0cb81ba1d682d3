"""The evidence a promotion reads: signatures against the feature contract, and each
version's performance on the same held-out data, rebuilt from the panel."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from segments.exceptions import ConfigError

__all__ = [
    "compare_groups",
    "compare_upgrade",
    "run_config",
    "run_panel_digest",
    "signature_problems",
]

_TYPES = {"category": {"string"}}
_NUMERIC = {"double", "float", "long", "integer", "boolean"}


def signature_problems(
    model_uri: str,
    windows: tuple[int, ...],
    own: Sequence[Any] = (),
    ladder: Any | None = None,
) -> list[str]:
    """How a logged model's input signature departs from the current feature contract.

    Every input column must be a feature of the catalogue built with ``windows`` and the
    bank's own columns ``own`` (``features.columns``), plus the tier features (and the
    components' points of a points ``ladder``), with a matching type: text for categorical
    features, numbers for the rest. An empty list means it matches.
    """
    from mlflow.models import get_model_info

    from segments.core.features import catalogue_frame, own_features

    sig = get_model_info(model_uri).signature
    if sig is None or sig.inputs is None:
        return ["the model was logged without an input signature"]
    with own_features(own):
        units = catalogue_frame(windows).set_index("name")["unit"]
    points = list(getattr(ladder, "points_columns", ()))
    units = pd.concat([units, pd.Series("points", index=points, dtype=object)])
    problems = []
    unknown, wrong = [], []
    for col in sig.inputs.inputs:
        name = getattr(col, "name", None)
        dtype = str(getattr(getattr(col, "type", None), "name", getattr(col, "type", "")))
        if name not in units.index:
            unknown.append(name)
            continue
        allowed = _TYPES.get(units[name], _NUMERIC)
        if dtype not in allowed:
            wrong.append(f"{name} is {dtype}, the contract has {units[name]}")
    if unknown:
        problems.append(
            f"signature: {len(unknown)} input column(s) not in the current feature "
            f"contract (windows {list(windows)}): {', '.join(map(str, unknown[:8]))}; a "
            "feature of the bank's own columns must be declared in features.columns of the "
            "experiment YAML (with the same windows) wherever the model is scored or promoted"
        )
    if wrong:
        problems.append("signature: type mismatch: " + "; ".join(wrong[:8]))
    return problems


def run_config(client: Any, run_id: str) -> Any:
    """The experiment config a training run logged (its ``config.yaml`` artifact)."""
    from segments.core.config.experiment import load_config

    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "config.yaml", tmp)
        return load_config(path)


def compare_upgrade(
    client: Any,
    name: str,
    versions: dict[str, str],
    run: Any,
    panel: pd.DataFrame,
    notes: list[str],
) -> pd.DataFrame:
    """Each version's metrics on the training run's held-out months, rebuilt from ``panel``,
    beside both baselines'; what could not be scored goes to ``notes``.

    The training run's logged model is the upgrade model alone: the rule of thumb's
    probability scale and the logistic baseline are refitted here, as the training fitted
    them, on the run's own months rebuilt from the same panel (:func:`_baselines`).

    Returns
    -------
    DataFrame
        One column per version (``challenger vN``, ``champion vM``), ``rule of thumb`` and
        ``logistic baseline``; rows ``n``, ``positives``, ``roc_auc``, ``pr_auc``,
        ``brier``, ``ece``, ``lift_top10``, ``capture_top10``.
    """
    from segments.core.features import own_features

    cfg = run_config(client, run.info.run_id)
    with own_features(cfg.features.columns):  # the run's own columns, if it declared any
        return _compare_upgrade(cfg, name, versions, run, panel, notes)


def ladder_of(cfg: Any) -> Any:
    """The ladder of a run's configuration."""
    from segments.core.tiers.ladders import load_ladder

    t = cfg.tiers
    return load_ladder(t.ladder, basis_window=t.basis_window, hysteresis=t.hysteresis)


def _labelled(panel: pd.DataFrame, tiers: pd.DataFrame, months: list[str], cfg: Any) -> Any:
    """The labelled rows of ``months``, built as the run's training built them."""
    from segments.core.upgrade.labels import build_training_set

    up = cfg.upgrade
    data, _ = build_training_set(
        panel,
        tiers,
        months,
        horizon=up.horizon,
        population=up.population,
        kind=up.label,
        sustain_months=up.sustain_months,
        windows=cfg.features.windows,
    )
    return data


def _compare_upgrade(
    cfg: Any, name: str, versions: dict[str, str], run: Any, panel: pd.DataFrame, notes: list[str]
) -> pd.DataFrame:
    """:func:`compare_upgrade` with the run's configuration (its own columns registered)."""
    from segments.core.tiers.assign import assign_tiers
    from segments.core.upgrade.metrics import evaluate
    from segments.mlops.tracking import load_model, model_input

    months = run.data.params["split.test"].split(",")
    tiers = assign_tiers(panel, ladder_of(cfg))
    data = _labelled(panel, tiers, months, cfg)
    y = data["label"].to_numpy()
    notes.append(
        f"same held-out months {', '.join(months)} rebuilt from the panel: "
        f"{len(data):,} labelled customer-months, {int(y.sum()):,} upgrades"
    )
    in_sample = run.data.params.get("upgrade.deploy") == "all_months"
    if in_sample:
        notes.append(
            "the run deployed its model refitted on every labelled month, these months "
            "included: scored here, the challenger is in sample (flattering, labelled so); "
            "the column 'out of time' is the run's evaluated fit on these months, as the "
            "training run logged it, and what the promotion gates read (a champion "
            "deployed the same way may be in sample too: its own run's test metrics are in "
            "the logged comparison)"
        )
    cols, features = {}, None
    for role, version in versions.items():
        model = load_model(f"models:/{name}/{version}")
        try:
            frame = model_input(data, model)
        except ConfigError as exc:
            notes.append(f"{role} v{version} cannot score these rows: {exc}")
            continue
        p = model.predict(frame)["p_upgrade"].to_numpy()
        own = in_sample and role == "challenger"  # the version of this training run
        if own:
            logged = {
                k.removeprefix("model."): v
                for k, v in run.data.metrics.items()
                if k.startswith("model.")
            }
            cols[f"{role} v{version} out of time"] = logged
        cols[f"{role} v{version}" + (" in sample" if own else "")] = evaluate(y, p)
        features = list(frame.columns) if features is None else features
    cols.update(_baselines(cfg, run.data.params, panel, tiers, data, features, notes))
    keep = ["n", "positives", "roc_auc", "pr_auc", "brier", "ece", "lift_top10", "capture_top10"]
    out = pd.DataFrame(cols).reindex(keep)
    out.index.name = "metric"
    return out


def _baselines(
    cfg: Any,
    params: dict[str, str],
    panel: pd.DataFrame,
    tiers: pd.DataFrame,
    test: pd.DataFrame,
    features: list[str] | None,
    notes: list[str],
) -> dict[str, dict[str, float]]:
    """The rule of thumb and the logistic baseline on the held-out rows ``test``.

    Neither is in the training run's logged model, so both are refitted as
    :func:`segments.train_upgrade` fits them, on the run's own months (its logged
    ``split.*`` parameters) rebuilt from the panel: the rule's probability scale on the
    validation months (where the model is calibrated), the logistic regression on the
    ``refit`` months (training, embargo, validation; the same stratified sample above
    ``upgrade.fit_size``) with the features of the first version that scored.
    """
    from segments.core.sampling import stratified_sample
    from segments.core.upgrade.baselines import LogisticBaseline, RuleOfThumb
    from segments.core.upgrade.metrics import evaluate

    valid = params["split.valid"].split(",")
    refit = params.get("split.refit") or f"{params['split.train']},{params['split.valid']}"
    refit_months = refit.split(",")
    rows = _labelled(panel, tiers, sorted(set(refit_months) | set(valid)), cfg)
    v = rows[rows["as_of"].isin(valid)]
    systems: dict[str, Any] = {"rule of thumb": RuleOfThumb().fit(v, v["label"])}
    r = rows[rows["as_of"].isin(refit_months)]
    if features is not None:
        up = cfg.upgrade
        strata = r[["as_of", "near_band", "label"]]
        seed = dict(up.model).get("random_state", 0)
        keep = stratified_sample(strata, up.fit_size or len(r), seed)
        r = r if len(keep) == len(r) else r.iloc[keep]
        systems["logistic baseline"] = LogisticBaseline(features).fit(r, r["label"])
    y = test["label"].to_numpy()
    logistic = (
        f"; the logistic regression on {len(r):,} rows of the months "
        f"{refit_months[0]}..{refit_months[-1]}"
        if features is not None
        else "; no logistic baseline (no version could score these rows)"
    )
    notes.append(
        "baselines refitted as the training run fitted them (its logged model holds the "
        f"upgrade model only): the rule of thumb's probability scale on {len(v):,} rows of "
        f"the validation months {', '.join(valid)}{logistic}"
    )
    return {
        col: evaluate(y, est.predict_proba(test)[:, 1], est.decision_function(test))
        for col, est in systems.items()
    }


def run_panel_digest(client: Any, run: Any, panel: pd.DataFrame) -> str:
    """The content digest of ``panel`` as the training run's configuration reads it (its
    ladder's columns and own columns): the ``segments.data_digest`` a training or a
    scoring of the same panel logs (:mod:`segments.core.data.digest`)."""
    from segments.core.data.digest import panel_digest
    from segments.core.features import own_features

    cfg = run_config(client, run.info.run_id)
    with own_features(cfg.features.columns):
        return panel_digest(panel, ladder_of(cfg).columns)


def compare_groups(
    client: Any,
    name: str,
    versions: dict[str, str],
    run: Any,
    panel: pd.DataFrame,
    notes: list[str],
) -> pd.DataFrame:
    """Each version's assignment of the run's as-of customers: sizes, smallest share and,
    for two versions, their agreement (ARI); what could not be assigned goes to ``notes``."""
    from sklearn.metrics import adjusted_rand_score

    from segments.core.features import build_features, own_features
    from segments.mlops.tracking import load_groups_estimator

    cfg = run_config(client, run.info.run_id)
    as_of = run.data.params["as_of"]
    labels = {}
    with own_features(cfg.features.columns):  # the run's own columns, if it declared any
        X = build_features(panel, pd.Period(as_of, "M"), windows=cfg.features.windows)
        for role, version in versions.items():
            est = load_groups_estimator(f"models:/{name}/{version}")
            missing = [c for c in est.features_ if c not in X]
            if missing:
                notes.append(
                    f"{role} v{version} cannot assign these customers: "
                    f"missing {', '.join(missing[:5])}"
                )
                continue
            labels[f"{role} v{version}"] = est.predict(X)
    rows: dict[str, dict[str, float]] = {}
    for col, lab in labels.items():
        shares = np.bincount(lab) / len(lab)
        rows[col] = {
            "customers": float(len(lab)),
            "groups": float(len(np.unique(lab))),
            "smallest_share": float(shares[shares > 0].min()),
        }
    if len(labels) == 2:
        a, b = labels.values()
        ari = float(adjusted_rand_score(a, b))
        notes.append(
            f"assignments of the {len(X):,} customers of {as_of}: agreement between "
            f"challenger and champion (ARI) {ari:.3f}"
        )
        for col in rows:
            rows[col]["agreement_ari"] = ari
    return pd.DataFrame(rows)
