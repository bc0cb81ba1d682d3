"""The MLflow tag names segments writes on runs and model versions, defined once.

A reviewer filters runs by these in the MLflow UI (``tags.`segments.model_kind` =
'upgrade'``), and the registry, promotion and scoring read them back, so each name is
spelled here only.
"""

from __future__ import annotations

__all__ = [
    "AS_OF",
    "AUDIT_EVENT",
    "AUDIT_MODEL",
    "CODE_VERSION",
    "DATA_DIGEST",
    "DECISION",
    "DRIFT",
    "GROUPS_RUN",
    "KIND",
    "LABEL",
    "LADDER",
    "MODEL_VERSION",
    "PROMOTED_BY",
    "REGISTERED_MODEL",
    "TEST_MONTHS",
    "TRAINING_RUN",
    "UPGRADE_RUN",
    "VERSION_OLD",
]

#: What a run or model version is: ``groups``, ``upgrade``, ``promotion``, ``scoring``.
KIND = "segments.model_kind"
#: The as-of month (or ``first..last`` as-of months) of the data a run used.
AS_OF = "segments.as_of"
#: The out-of-time test months of an upgrade training.
TEST_MONTHS = "segments.test_months"
#: The tier ladder's name.
LADDER = "segments.ladder"
#: The content digest of the panel a run read (:mod:`segments.core.data.digest`): the same
#: for the same rows whether trained on, scored or rebuilt by a promotion, whatever the
#: file's format or row order.
DATA_DIGEST = "segments.data_digest"
#: A scoring run's drift level: ``significant``, ``moderate`` or ``none`` (its largest PSI
#: flag), to filter runs by in the UI.
DRIFT = "segments.drift"
#: The package version, plus the git commit when run from a checkout.
CODE_VERSION = "segments.code_version"
#: The upgrade label, e.g. ``reach within 3m``.
LABEL = "segments.label"
#: The registered model a training's version went to (empty when not registered).
REGISTERED_MODEL = "segments.registered_model"
#: The registry version a training run produced, or a promotion judged.
MODEL_VERSION = "segments.model_version"
#: The older name of :data:`MODEL_VERSION` on promotion runs, still written: saved filters
#: (``tags.`segments.version` = '2'``) keep finding them.
VERSION_OLD = "segments.version"
#: A promotion's outcome: ``promoted`` or ``refused``.
DECISION = "segments.decision"
#: The training run of the version a promotion judged.
TRAINING_RUN = "segments.training_run"
#: The training runs of the groups and upgrade models a scoring run used (whose drift
#: references it compared with).
GROUPS_RUN = "segments.groups_run"
UPGRADE_RUN = "segments.upgrade_run"
#: Who promoted (on the promotion's evidence run).
PROMOTED_BY = "segments.promoted_by"
#: On a run that caused audit events: the registered model whose audit chain it mirrors.
AUDIT_MODEL = "segments.audit_model"
#: Prefix of the run tags ``segments.audit_event.<seq>``: that event's seq, hash and artifact.
AUDIT_EVENT = "segments.audit_event."
