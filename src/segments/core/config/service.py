"""The ``service`` section: which service map plans the service, and the managers available."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segments.core.plan.plan import CALL_MODELS
from segments.core.plan.service import ServiceMap, load_service_map
from segments.exceptions import ConfigError, Violation

__all__ = ["ServiceConfig"]


@dataclass(frozen=True)
class ServiceConfig:
    """Service planning (``segments plan``).

    Parameters
    ----------
    map : str, default "tiered"
        A packaged service map (``tiered``: digital / remote RM / dedicated 1:1 RM / 1+N team
        by tier rank) or the path of a bank's own YAML. Loaded, and checked, with the
        configuration.
    call_model : {"next_tier", "current_tier"}, default "next_tier"
        Which tier's service model works a near-tier customer.
    managers : str or None, default None
        A CSV of managers available (``branch_id``, ``service_model``, ``managers``);
        None plans each branch with the managers it needs.
    """

    map: str = "tiered"
    call_model: str = "next_tier"
    managers: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.call_model not in CALL_MODELS:
            problems.append(
                Violation(
                    "service.call_model", f"is {self.call_model!r}; expected one of {CALL_MODELS}"
                )
            )
        try:
            self.load()
        except ConfigError as exc:  # the map's own problems name their setting
            problems.extend(
                v
                if v.column.startswith("service.")
                else Violation("service.map", v.problem, hint=v.hint)
                for v in exc.violations
            )
        if self.managers is not None and not Path(self.managers).is_file():
            problems.append(Violation("service.managers", f"{self.managers} is not a file"))
        if problems:
            raise ConfigError(problems)

    def load(self) -> ServiceMap:
        """The service map."""
        return load_service_map(self.map)

    def load_managers(self) -> pd.DataFrame | None:
        """The managers-available table, or None."""
        if self.managers is None:
            return None
        return pd.read_csv(self.managers, dtype={"branch_id": str, "service_model": str})
