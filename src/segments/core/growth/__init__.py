"""Growth sources: where each customer's assets come from (accumulation, migration from other
banks, appreciation of products bought), summed over windows and by tier, group or branch."""

from segments.core.growth.report import (
    BY_CHOICES,
    WINDOWS,
    GrowthReport,
    growth_report,
    growth_table,
)
from segments.core.growth.sources import (
    DOMINANT_NONE,
    GROWTH_COLUMNS,
    SOURCES,
    dominant_source,
    growth_mix,
    growth_sources,
    growth_windows,
    known_sources,
    source_columns,
)

__all__ = [
    "BY_CHOICES",
    "DOMINANT_NONE",
    "GROWTH_COLUMNS",
    "SOURCES",
    "WINDOWS",
    "GrowthReport",
    "dominant_source",
    "growth_mix",
    "growth_report",
    "growth_sources",
    "growth_table",
    "growth_windows",
    "known_sources",
    "source_columns",
]
