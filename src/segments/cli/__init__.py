"""The ``segments`` command line: thin commands over the Python API.

Exit codes: 0 success; 1 a :class:`~segments.exceptions.SegmentsError` (bad input, bad
config, refused action) reported on stderr; 2 a usage error.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from segments.cli import data, growth, panel, registry, score, train  # noqa: F401  (register the commands)
from segments.cli.common import app, err
from segments.exceptions import Interrupted

__all__ = ["app", "main"]


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def main() -> None:
    """Entry point of the ``segments`` console script."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _raise_interrupted)
    try:
        app(prog_name="segments", standalone_mode=True)
    except Interrupted as exc:  # outside a command (while parsing, or while printing)
        err.print(f"stopped by {signal.Signals(exc.signum).name}", markup=False)
        sys.exit(128 + exc.signum)
    except SystemExit as exc:
        sys.exit(exc.code)
