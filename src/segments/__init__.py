"""segments: tier and strategic-group customers of a retail bank.

The public API, in the order of the flow (see DESIGN.md):

* the panel contract: :func:`read_panel`, :func:`validate_panel`, :func:`check_panel`,
  :class:`PanelConfig`;
* the synthetic bank: :func:`make_bank`, :func:`write_bank`;
* tiers: :func:`load_ladder`, :func:`assign_tiers`, :func:`migration_matrix`,
  :func:`migration_summary`;
* configuration: :func:`load_config`;
* errors: :class:`SegmentsError` and its subclasses.
"""

from segments.config import ExperimentConfig, TiersConfig, load_config
from segments.exceptions import (
    ConfigError,
    PanelValidationError,
    SegmentsError,
    SegmentsWarning,
    Violation,
)
from segments.schema import PanelConfig, PanelReport, check_panel, read_panel, validate_panel
from segments.synthetic import make_bank, write_bank
from segments.tiers import (
    Ladder,
    assign_tiers,
    load_ladder,
    migration_matrix,
    migration_summary,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "Ladder",
    "PanelConfig",
    "PanelReport",
    "PanelValidationError",
    "SegmentsError",
    "SegmentsWarning",
    "TiersConfig",
    "Violation",
    "__version__",
    "assign_tiers",
    "check_panel",
    "load_config",
    "load_ladder",
    "make_bank",
    "migration_matrix",
    "migration_summary",
    "read_panel",
    "validate_panel",
    "write_bank",
]
