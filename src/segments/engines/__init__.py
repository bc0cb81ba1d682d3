"""Engines run a scoring job; each is one module with a ``run(job) -> ScoreResult`` function.

An engine module (``segments.engines.<name>``) exposes:

* ``run(job: ScoringJob) -> ScoreResult``: score every customer of ``job`` with
  :func:`segments.core.scoring.batch.score_batch`, rank within bands with
  :mod:`segments.core.upgrade.ranks`, and publish the output folder atomically
  (:func:`segments.jobs.score.publish`) under the output lock;
* optionally ``check_input(found: PanelInput, src: Path) -> None``: refuse an input the
  engine cannot read, before any work (raises :class:`~segments.exceptions.ConfigError`).

A third engine is one new module plus its name in :data:`ENGINES`. Modules are imported only
when asked for, so an engine's optional dependencies (PySpark) stay optional.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from segments.exceptions import ConfigError, Violation

__all__ = ["ENGINES", "get", "names"]

#: Engine name (``--engine``, ``scoring.engine``) -> its module.
ENGINES: dict[str, str] = {
    "local": "segments.engines.local",
    "spark": "segments.engines.spark",
}


def names() -> tuple[str, ...]:
    """The engine names, in registry order."""
    return tuple(ENGINES)


def get(name: str, option: str = "--engine") -> ModuleType:
    """The engine module called ``name`` (given as ``option``, named in the error).

    Raises
    ------
    ConfigError
        ``name`` is not an engine (the error names ``--engine`` and the known engines).
    """
    if name not in ENGINES:
        raise ConfigError([Violation(option, f"is {name!r}; expected {' or '.join(ENGINES)}")])
    return importlib.import_module(ENGINES[name])
