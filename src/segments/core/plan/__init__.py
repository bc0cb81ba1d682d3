"""Service planning: service models per tier x group, managers per branch, and the near-tier
call list within their capacity."""

from segments.core.plan.plan import (
    CALL_MODELS,
    NO_BRANCH,
    PLAN_COLUMNS,
    Plan,
    build_plan,
    check_managers,
)
from segments.core.plan.service import (
    ServiceMap,
    ServiceModel,
    load_service_map,
    service_map_from,
    service_mix,
)

__all__ = [
    "CALL_MODELS",
    "NO_BRANCH",
    "PLAN_COLUMNS",
    "Plan",
    "ServiceMap",
    "ServiceModel",
    "build_plan",
    "check_managers",
    "load_service_map",
    "service_map_from",
    "service_mix",
]
