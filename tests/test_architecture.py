"""The layer contract, checked on the source: who may import whom (docs/architecture.md).

Every ``import`` in ``src/segments`` is read with :mod:`ast`, including the ones inside
functions (a lazy import is still a dependency); imports under ``if TYPE_CHECKING:`` are
type hints only and are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "segments"

#: Third-party packages only the outer layers may use.
UI = {"typer", "rich", "click"}
MLOPS = {"mlflow"}
SPARK = {"pyspark", "py4j"}

#: For each layer, the segments layers it may import and the outside packages it may not.
RULES: dict[str, tuple[set[str], set[str]]] = {
    "base": ({"base"}, UI | MLOPS | SPARK),
    "core": ({"base", "core"}, UI | MLOPS | SPARK),
    "mlops": ({"base", "core", "mlops"}, UI | SPARK),
    "jobs": ({"base", "core", "mlops", "jobs", "engines"}, UI | SPARK),
    "engines": ({"base", "core", "mlops", "jobs", "engines"}, UI),
    "cli": ({"base", "core", "mlops", "jobs", "engines", "cli"}, SPARK),
    "api": ({"base", "core", "mlops", "jobs", "engines", "api"}, UI | MLOPS | SPARK),
}
#: Only the Spark engine talks to Spark.
SPARK_MODULES = {"segments.engines.spark"}


def module_name(path: Path) -> str:
    """``src/segments/core/tiers/assign.py`` -> ``segments.core.tiers.assign``."""
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """The layer a ``segments`` module belongs to."""
    parts = module.split(".")
    if module == "segments":
        return "api"
    if parts[1] in ("core", "mlops", "jobs", "engines"):
        return parts[1]
    if parts[1] in ("cli", "__main__"):
        return "cli"
    return "base"  # exceptions, compat


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        # Only `if TYPE_CHECKING:` itself (not `if not TYPE_CHECKING:`) holds hints only.
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, imported names) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "<relative>", []))
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            found.append((node.lineno, _dynamic_import(node), []))
    return found


def _dynamic_import(node: ast.Call) -> str:
    """The module an ``importlib.import_module("x")`` or ``__import__("x")`` call names,
    when it is a literal; "" otherwise."""
    name = ast.unparse(node.func)
    if name in ("importlib.import_module", "import_module", "__import__") and node.args:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return ""


def private_attributes(path: Path) -> list[str]:
    """``module._name`` where ``module`` is a segments module this file imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("segments"):
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segments"):
            for a in node.names:
                if f"{node.module}.{a.name}" in ALL_MODULES:  # a module imported by name
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and ast.unparse(node.value) in aliases
        ):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)} is private")
    return found


SOURCES = sorted(SRC.rglob("*.py"))
ALL_MODULES = {module_name(p) for p in SOURCES}


def violations(path: Path, me: str | None = None) -> list[str]:
    """Every import in ``path`` (module ``me``) that breaks the layer contract."""
    me = me or module_name(path)
    allowed, banned = RULES[layer(me)]
    where = path.name
    out = []
    for line, target, names in imports(path):
        top = target.split(".")[0]
        if target == "<relative>":
            out.append(f"{where}:{line}: relative import (use absolute segments.* names)")
            continue
        if top in banned or (top in SPARK and me not in SPARK_MODULES):
            out.append(f"{where}:{line}: the {layer(me)} layer imports {target}")
            continue
        if top != "segments":
            continue
        if target == "segments":
            # `from segments import X` reaches the public API (the top of every layer): only
            # the CLI and lazy version lookups may.
            if layer(me) not in ("cli", "api") and names != ["__version__"]:
                subpackages = {n for n in names if f"segments.{n}" in ALL_MODULES}
                if set(names) - subpackages:
                    out.append(f"{where}:{line}: imports the public API {names} from inside")
                names = sorted(subpackages)
                targets = [f"segments.{n}" for n in names]
            else:
                continue
        else:
            targets = [target]
        for t in targets:
            if layer(t) not in allowed:
                out.append(f"{where}:{line}: the {layer(me)} layer imports {t} ({layer(t)})")
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private and target != me:
            out.append(f"{where}:{line}: imports private {private} from {target}")
    return out + private_attributes(path)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_keeps_the_layer_contract(path: Path) -> None:
    """Core: no MLflow, typer, rich or Spark; MLOps: no jobs or CLI; nobody's privates."""
    assert violations(path) == []


def test_the_contract_catches_a_breach(tmp_path: Path) -> None:
    """The checker itself: a core module importing mlflow, the CLI or a private name fails."""
    bad = tmp_path / "probe.py"
    bad.write_text(
        "import mlflow\n"
        "def f():\n"
        "    from segments.cli import app\n"
        "    from segments.core.data.panel import _private_thing\n"
        "    from pyspark.sql import SparkSession\n"
    )
    found = violations(bad, "segments.core.probe")
    assert len(found) == 4, found
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "import segments.core.data.panel as P\n"
        "if not TYPE_CHECKING:\n"
        "    import mlflow\n"
        "def f():\n"
        "    importlib.import_module('typer')\n"
        "    __import__('rich')\n"
        "    return P._something\n"
    )
    sneaky_found = violations(sneaky, "segments.core.sneaky")
    assert len(sneaky_found) == 4, sneaky_found
    assert any("imports mlflow" in v for v in found)
    assert any("segments.cli (cli)" in v for v in found)
    assert any("private ['_private_thing']" in v for v in found)
    assert any("pyspark" in v for v in found)


def test_every_module_has_a_layer() -> None:
    """A new top-level module must be placed in a layer on purpose, not by accident."""
    top = {m for m in ALL_MODULES if m.count(".") == 1}
    assert top == {
        "segments.__main__",
        "segments.cli",
        "segments.compat",
        "segments.exceptions",
        "segments.core",
        "segments.mlops",
        "segments.jobs",
        "segments.engines",
    }


def _declared() -> dict[str, set[str]]:
    """Distributions named in pyproject's dependencies, per extra ("" for the core set)."""
    import re
    import tomllib

    project = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    name = re.compile(r"^[A-Za-z0-9_.\-]+")
    return {
        extra: {name.match(d).group(0).lower().replace("_", "-") for d in deps}
        for extra, deps in groups.items()
    }


def test_what_src_imports_is_declared_and_what_it_does_not_is_not() -> None:
    """Every outside package src imports is a declared dependency (pyspark in the spark
    extra); a runtime dependency src never imports (shap) is not one."""
    import sys
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    declared = _declared()
    runtime = declared[""] | declared["spark"]
    used: set[str] = set()
    undeclared: set[str] = set()
    for path in SOURCES:
        for _, target, _names in imports(path):
            top = target.split(".")[0]
            if top in ("segments", "<relative>") or top in sys.stdlib_module_names:
                continue
            # A module several distributions provide (mlflow, mlflow-skinny) needs one.
            provides = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
            used |= provides & runtime
            if not provides & runtime:
                undeclared.add(top)
    assert undeclared == set(), "imported by src but not declared"
    assert declared[""] - used == set(), "declared but never imported by src"


#: Size limits a newcomer can read in one sitting: lines per module, code lines (without
#: the docstring) per function. A longer function says why in its docstring, in a
#: paragraph starting "Long because".
MAX_MODULE_LINES = 550
MAX_FUNCTION_LINES = 80


def long_functions(path: Path) -> list[str]:
    """Functions over :data:`MAX_FUNCTION_LINES` code lines with no reason given."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        doc = ast.get_docstring(node) or ""
        body = node.body[1:] if doc else node.body
        if not body:
            continue
        code = (node.end_lineno or node.lineno) - body[0].lineno + 1
        if code > MAX_FUNCTION_LINES and "Long because" not in doc:
            found.append(f"{path.name}:{node.lineno} {node.name}: {code} lines")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_and_functions_stay_readable(path: Path) -> None:
    """No module over ~500 lines; no function over 80 lines without its reason."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name}: {lines} lines"
    assert long_functions(path) == []


def test_the_size_check_catches_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    long = tmp_path / "long.py"
    long.write_text(f'def f():\n    """Short."""\n{body}\n')
    assert long_functions(long) == [f"long.py:1 f: {MAX_FUNCTION_LINES + 1} lines"]
    reason = '"""Short.\n\n    Long because it is a table.\n    """'
    long.write_text(f"def f():\n    {reason}\n{body}\n")
    assert long_functions(long) == []


def test_every_segments_import_resolves() -> None:
    """Each name imported from a segments module exists there, lazy imports included (an
    import inside a function only fails when that function runs)."""
    import importlib

    missing = []
    for path in SOURCES:
        for line, target, names in imports(path):
            if not target.startswith("segments"):
                continue
            module = importlib.import_module(target)
            for name in names:
                if not hasattr(module, name) and f"{target}.{name}" not in ALL_MODULES:
                    missing.append(f"{path.relative_to(SRC)}:{line}: {target}.{name}")
    assert missing == []


def test_the_packaged_yaml_repeats_the_code_defaults_exactly() -> None:
    """presets/default.yaml documents the defaults for users; the code holds them. Every
    value the YAML spells out equals the section's own default, so the two cannot drift."""
    import dataclasses

    import yaml

    from segments.core.config import sections

    raw = yaml.safe_load((SRC / "presets" / "default.yaml").read_text())
    classes = {
        "tiers": sections.TiersConfig,
        "features": sections.FeaturesConfig,
        "upgrade": sections.UpgradeConfig,
        "scoring": sections.ScoringConfig,
    }
    differ = []
    for section, cls in classes.items():
        for f in dataclasses.fields(cls):
            if f.name not in raw[section]:
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            value = raw[section][f.name]
            if isinstance(default, tuple):
                value = tuple(value)
            if value != default and not (value == {} and not default):
                differ.append(f"{section}.{f.name}: YAML {value!r}, code {default!r}")
    assert raw["registry"]["promotion"] == sections.PROMOTION_THRESHOLDS
    assert differ == []


def test_every_promotion_threshold_is_a_gate_and_every_gate_has_a_threshold() -> None:
    from segments.core.config.sections import PROMOTION_THRESHOLDS
    from segments.mlops.promotion import GATES

    named = {name for kind in PROMOTION_THRESHOLDS.values() for name in kind}
    assert named == set(GATES)
