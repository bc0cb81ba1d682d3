"""The value checks configuration parsers share (one definition each)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["is_number", "is_pos_int"]


def is_pos_int(value: Any) -> bool:
    """A whole number >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
