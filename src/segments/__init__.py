"""segments: tier and strategic-group customers of a retail bank.

The public API, in the order of the flow (see DESIGN.md):

* the panel contract: :func:`read_panel`, :func:`validate_panel`, :func:`check_panel`,
  :class:`PanelConfig`;
* the synthetic bank: :func:`make_bank`, :func:`write_bank`;
* tiers: :func:`load_ladder`, :func:`assign_tiers`, :func:`migration_matrix`,
  :func:`migration_summary`;
* features: :func:`build_features`, :func:`features_from_file` (a panel file in batches,
  on every core), :data:`FEATURE_CATALOGUE`;
* strategic groups: :class:`StrategicGroups`, :func:`profile_groups`,
  :func:`suggest_names`, :func:`tier_group_matrix`, :func:`group_migration`,
  :func:`train_groups`;
* upgrade potential: :func:`train_upgrade` (labels, out-of-time evaluation against the
  rule of thumb; building blocks in :mod:`segments.core.upgrade.model`);
* growth sources and levers: :func:`growth_sources`, :func:`growth_report`,
  :func:`assign_levers` (:mod:`segments.core.growth`);
* the service plan: :func:`load_service_map`, :func:`build_plan` (:mod:`segments.core.plan`);
* configuration: :func:`load_config`;
* errors: :class:`SegmentsError` and its subclasses.
"""

from segments import compat
from segments.core.config.experiment import ExperimentConfig, load_config
from segments.core.config.sections import TiersConfig
from segments.core.data.panel import PanelConfig, read_panel
from segments.core.data.synthetic import make_bank, write_bank
from segments.core.data.transactions import panel_from_transactions
from segments.core.data.validation import PanelReport, check_panel, validate_panel
from segments.core.features import FEATURE_CATALOGUE, build_features, catalogue_frame
from segments.core.groups.model import StrategicGroups
from segments.core.groups.profiles import (
    group_migration,
    persona_cards,
    profile_groups,
    suggest_names,
    tier_group_matrix,
)
from segments.core.growth import growth_report, growth_sources
from segments.core.growth.levers import assign_levers
from segments.core.plan import build_plan, load_service_map
from segments.core.tiers.assign import assign_tiers, migration_matrix, migration_summary
from segments.core.tiers.ladders import Ladder, load_ladder
from segments.exceptions import (
    ConfigError,
    PanelValidationError,
    SegmentsError,
    SegmentsWarning,
    Violation,
)
from segments.jobs.features import features_from_file
from segments.jobs.log_training import log_groups, log_upgrade
from segments.jobs.train import GroupsResult, train_groups
from segments.jobs.train_upgrade import UpgradeResult, train_upgrade

__version__ = "0.1.0"
compat.install()

__all__ = [
    "FEATURE_CATALOGUE",
    "ConfigError",
    "ExperimentConfig",
    "GroupsResult",
    "Ladder",
    "PanelConfig",
    "PanelReport",
    "PanelValidationError",
    "SegmentsError",
    "SegmentsWarning",
    "StrategicGroups",
    "TiersConfig",
    "UpgradeResult",
    "Violation",
    "__version__",
    "assign_levers",
    "assign_tiers",
    "build_features",
    "build_plan",
    "catalogue_frame",
    "check_panel",
    "features_from_file",
    "group_migration",
    "growth_report",
    "growth_sources",
    "load_config",
    "load_ladder",
    "load_service_map",
    "log_groups",
    "log_upgrade",
    "make_bank",
    "migration_matrix",
    "migration_summary",
    "panel_from_transactions",
    "persona_cards",
    "profile_groups",
    "read_panel",
    "suggest_names",
    "tier_group_matrix",
    "train_groups",
    "train_upgrade",
    "validate_panel",
    "write_bank",
]
