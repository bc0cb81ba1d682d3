"""Load the models a scoring job runs from the MLflow registry, and check they fit it.

:func:`load_scorer` resolves both model URIs once (an alias is pinned to its version, so an
alias moved meanwhile cannot mix versions), checks each model is of the right kind, that its
input signature is in the feature contract and that the upgrade model was trained on the
job's ladder and feature windows, and returns a :class:`~segments.core.scoring.batch.Scorer`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from segments.core.scoring.batch import Scorer
from segments.exceptions import SegmentsError
from segments.mlops.registry import CHAMPION

__all__ = ["ModelContractError", "load_scorer", "resolve_model_uri", "settings_digest"]


class ModelContractError(SegmentsError, ValueError):
    """A model that does not fit the scoring job (signature, ladder or windows differ)."""


def resolve_model_uri(uri: str) -> tuple[str, str]:
    """The URI to load and the ``name/version`` to stamp, from one registry lookup.

    ``models:/NAME@alias`` is resolved to its version once, and that version is both
    loaded and written into the output, so an alias moved meanwhile cannot mix them.
    Any other URI is loaded and stamped as given.

    Returns
    -------
    source, stamp : str
    """
    from segments.mlops.registry import registry_client

    body = uri[len("models:/") :] if uri.startswith("models:/") else ""
    if "@" in body:
        name, alias = body.split("@", 1)
        mv = registry_client().get_model_version_by_alias(name, alias)
    elif body.count("/") == 1:
        name, version = body.split("/")
        mv = registry_client().get_model_version(name, version)
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
    payload = {"config": config.raw, "ladder": dataclasses.asdict(ladder)}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _load(role: str, uri: str, option: str) -> tuple[Any, str, str]:
    """Load one model, checking its kind: (python model, source URI, stamp)."""
    from segments.core.config.presets import check_model_uri
    from segments.exceptions import RegistryError
    from segments.mlops.pyfunc import GroupsModel, UpgradePyfunc
    from segments.mlops.tracking import load_model

    check_model_uri(uri, option)
    kinds = {"groups": GroupsModel, "upgrade": UpgradePyfunc}
    try:
        resolved, stamp = resolve_model_uri(uri)
        model = load_model(resolved).unwrap_python_model()
    except Exception as exc:  # MLflow raises its own types for a bad URI or alias
        raise RegistryError(
            f"cannot load the {role} model {uri!r}: {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(model, kinds[role]):
        other = next((k for k, c in kinds.items() if isinstance(model, c)), type(model).__name__)
        raise ModelContractError(
            f"--{role}-model {uri}: is a{'n' * (other[0] in 'aeiou')}"
            f" {other} model, not a {role} model"
        )
    return model, resolved, stamp


def _source(role: str, resolved: str, stamp: str) -> dict[str, str]:
    """Where a model's drift reference comes from: the model (``name/version``), its
    training run and the months the reference profiles (a groups training's as-of month,
    an upgrade training's test months); empty when the run cannot be found (a model
    logged outside a run, or in another store)."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info

    from segments.mlops import tags as tag_names
    from segments.mlops.registry import registry_client

    out = {"model": stamp, "run_id": "", "months": ""}
    try:
        run_id = get_model_info(resolved).run_id or ""
        run = registry_client().get_run(run_id) if run_id else None
    except (MlflowException, OSError):
        return out
    out["run_id"] = run_id
    if run is not None:
        tags = run.data.tags
        months = tags.get(tag_names.TEST_MONTHS) if role == "upgrade" else None
        out["months"] = months or tags.get(tag_names.AS_OF, "")
    return out


def _training_problems(
    training: dict[str, Any], uri: str, ladder: str, windows: tuple[int, ...], own: Any = ()
) -> list[str]:
    """How the upgrade model's training differs from the job (ladder, feature windows, the
    definition of an own column both declare: the same names would mean other values)."""
    problems = []
    declared = {c.column: c.as_dict() for c in own}
    for trained in training.get("own_columns") or ():
        now = declared.get(trained["column"])
        ignore = ("en", "zh", "family")
        if now is not None and {k: v for k, v in now.items() if k not in ignore} != {
            k: v for k, v in trained.items() if k not in ignore
        }:
            problems.append(
                f"upgrade model {uri}: trained with the own column {trained['column']!r} "
                f"declared as {trained}, features.columns declares {now}"
            )
    if training.get("ladder") and training["ladder"] != ladder:
        problems.append(
            f"upgrade model {uri}: trained on ladder "
            f"{training['ladder']!r}, the job uses {ladder!r}"
        )
    if training.get("windows") and tuple(training["windows"]) != tuple(windows):
        problems.append(
            f"upgrade model {uri}: trained with feature windows "
            f"{training['windows']}, the job uses {list(windows)}"
        )
    return problems


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

    Returns
    -------
    Scorer

    Raises
    ------
    ModelContractError
        A model's input signature is not in the feature contract of ``config`` (its
        windows and own columns), or the upgrade model was trained on another ladder,
        other feature windows or another definition of an own column.
    RegistryError
        A model or alias does not exist.
    """
    from segments.core.config.experiment import load_config
    from segments.core.tiers.ladders import load_ladder
    from segments.mlops.evidence import signature_problems

    cfg = config or load_config()
    reg = cfg.registry
    uris = {
        "groups": groups_uri or f"models:/{reg.model_name('groups', cfg.name)}@{CHAMPION}",
        "upgrade": upgrade_uri or f"models:/{reg.model_name('upgrade', cfg.name)}@{CHAMPION}",
    }
    given = {"groups": groups_uri, "upgrade": upgrade_uri}
    ladder = load_ladder(
        cfg.tiers.ladder, basis_window=cfg.tiers.basis_window, hysteresis=cfg.tiers.hysteresis
    )
    loaded, stamp, sources = {}, {}, {}
    problems: list[str] = []
    for role, uri in uris.items():
        option = (
            f"--{role}-model"
            if given[role]
            else f"registry.{role}_model (default: the experiment name {cfg.name!r} + '-{role}')"
        )
        loaded[role], resolved, stamp[role] = _load(role, uri, option)
        sources[role] = _source(role, resolved, stamp[role])
        sig = signature_problems(resolved, cfg.features.windows, cfg.features.columns, ladder)
        problems += [f"{role} model {uri}: {p}" for p in sig]
    training = getattr(loaded["upgrade"], "training", {}) or {}
    problems += _training_problems(
        training, uris["upgrade"], ladder.name, cfg.features.windows, cfg.features.columns
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
        sources=sources,
        psi_thresholds=(cfg.scoring.psi_warn, cfg.scoring.psi_alert),
        settings=settings_digest(cfg, ladder),
        own=cfg.features.columns,
        levers=cfg.levers,
    )
