"""Old module names, kept importable so models logged by segments 0.1 still load.

segments 0.1 kept every module side by side (``segments.upgrade``, ``segments._pyfunc``…).
Models logged then pickle their estimators under those names and their "model from code"
file imports ``segments._pyfunc``. :data:`MOVED` maps each old name to the module that now
holds what those models pickled (the estimators, the pyfunc wrappers); :func:`install`
puts a finder on ``sys.meta_path`` that answers an import of an old name with that module
itself (the same object, so classes compare equal), with a :class:`DeprecationWarning`.

This keeps logged models loading; it is not a second API. Functions that moved elsewhere
in the split (``segments.upgrade.evaluate`` is now ``segments.core.upgrade.metrics``) are
not reachable under the old names: import them from their new homes (see
``docs/architecture.md``) or from ``segments``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

#: Old module name -> its home since segments 0.2.
MOVED: dict[str, str] = {
    "segments.schema": "segments.core.data.panel",
    "segments._io": "segments.core.data.files",
    "segments.config": "segments.core.config.experiment",
    "segments.synthetic": "segments.core.data.synthetic",
    "segments.tiers": "segments.core.tiers.assign",
    "segments.features": "segments.core.features",
    "segments.segmentation": "segments.core.groups.model",
    "segments.profiling": "segments.core.groups.profiles",
    "segments.upgrade": "segments.core.upgrade.model",
    "segments.explain": "segments.core.explain.reasons",
    "segments._treeshap": "segments.core.explain.treeshap",
    "segments.drift": "segments.core.drift",
    "segments.tracking": "segments.mlops.tracking",
    "segments.registry": "segments.mlops.registry",
    "segments.cards": "segments.mlops.cards",
    "segments.plots": "segments.mlops.plots",
    "segments._pyfunc": "segments.mlops.pyfunc",
    "segments.training": "segments.jobs.train",
    "segments.scoring": "segments.jobs.score",
    "segments.spark": "segments.engines.spark",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answer an import of an old module name with the module at its new name."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} is now {new}; the old name is kept for models logged by segments 0.1",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module is the new one, already imported."""


def install() -> None:
    """Put the alias finder on ``sys.meta_path`` once."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
