"""The MLflow tag names segments writes on runs and model versions, defined once.

A reviewer filters runs by these in the MLflow UI (``tags.`segments.model_kind` =
'upgrade'``), and the registry, promotion and scoring read them back, so each name is
spelled here only.
"""

from __future__ import annotations

__all__ = [
    "AS_OF",
    "CODE_VERSION",
    "DATA_DIGEST",
    "KIND",
    "LABEL",
    "LADDER",
    "MODEL_VERSION",
    "PROMOTED_BY",
    "REGISTERED_MODEL",
    "TEST_MONTHS",
]

#: What a run or model version is: ``groups``, ``upgrade``, ``promotion``, ``scoring``.
KIND = "segments.model_kind"
#: The as-of month (or ``first..last`` as-of months) of the data a run used.
AS_OF = "segments.as_of"
#: The out-of-time test months of an upgrade training.
TEST_MONTHS = "segments.test_months"
#: The tier ladder's name.
LADDER = "segments.ladder"
#: The content digest of the panel a training read.
DATA_DIGEST = "segments.data_digest"
#: The package version, plus the git commit when run from a checkout.
CODE_VERSION = "segments.code_version"
#: The upgrade label, e.g. ``reach within 3m``.
LABEL = "segments.label"
#: The registered model a training's version went to (empty when not registered).
REGISTERED_MODEL = "segments.registered_model"
#: The registry version a training run produced.
MODEL_VERSION = "segments.model_version"
#: Who promoted (on the promotion's evidence run).
PROMOTED_BY = "segments.promoted_by"
