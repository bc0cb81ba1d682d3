"""Point-in-time behavioural features and the feature catalogue.

:func:`build_features` turns a validated panel into one row per customer as of a month,
using months up to and including that month only, so a feature can never see the future.
Every feature is declared once, in :mod:`segments.core.features.catalogue`, with its
catalogue entry (name, family, unit, window, English and Chinese descriptions, the panel
columns it needs) and the function that computes it. :data:`FEATURE_CATALOGUE` is the single
source for documentation, group profiles and reason codes.

Modules: ``history`` (the customer x month grids a computation reads), ``registry``
(declarations, the catalogue), ``catalogue`` (the features), ``builder``
(:func:`build_features`), ``own`` and ``own_aggregations`` (a bank's own panel columns
declared as features in ``features.columns``: :class:`OwnColumn`, :func:`own_features`).
Adding a feature: ``docs/features.md``.
"""

from __future__ import annotations

from segments.core.features import catalogue  # declares the features
from segments.core.features.builder import build_features, check_windows
from segments.core.features.catalogue import AGE_BANDS, asset_share, latest_value, value_now
from segments.core.features.history import History, Values, nanmean, nansum, ratio
from segments.core.features.own import OwnColumn, active_columns, own_features
from segments.core.features.registry import (
    DEFAULT_WINDOWS,
    FEATURE_CATALOGUE,
    HISTORY,
    LOG_UNITS,
    LONGEST,
    PER_WINDOW,
    TIER_SPECS,
    UNITS,
    Compute,
    Declaration,
    FeatureSpec,
    catalogue_frame,
    declarations,
    declared,
    describe,
    feature,
    feature_spec,
    is_log_scale,
    register,
    unregister,
)

__all__ = [
    "AGE_BANDS",
    "DEFAULT_WINDOWS",
    "FEATURE_CATALOGUE",
    "HISTORY",
    "LOG_UNITS",
    "LONGEST",
    "PER_WINDOW",
    "TIER_SPECS",
    "UNITS",
    "Compute",
    "Declaration",
    "FeatureSpec",
    "History",
    "OwnColumn",
    "Values",
    "active_columns",
    "asset_share",
    "build_features",
    "catalogue",
    "catalogue_frame",
    "check_windows",
    "declarations",
    "declared",
    "describe",
    "feature",
    "feature_spec",
    "is_log_scale",
    "latest_value",
    "nanmean",
    "nansum",
    "own_features",
    "ratio",
    "register",
    "unregister",
    "value_now",
]
