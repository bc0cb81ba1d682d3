"""Reading configuration files: YAML (a key given twice is an error), packaged presets
(ladders, hysteresis rules) and registered model names."""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from segments.exceptions import ConfigError, Violation

__all__ = [
    "FROM_LADDER",
    "available_presets",
    "check_model_name",
    "check_model_uri",
    "load_preset",
    "load_yaml",
]

_PRESET_KINDS = ("ladders", "hysteresis", "service")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (the last would win
    silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


#: A registered model name: letters, digits, '.', '_' and '-', not starting with a dot
#: (no path separators, so a name can never reach outside the registry's folders).
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}")


def check_model_name(name: str, option: str = "model") -> str:
    """Return ``name`` when it is a valid registered-model name, else raise ConfigError."""
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            [
                Violation(
                    option,
                    f"is {name!r}; a registered model name holds "
                    "only letters, digits, '.', '_' and '-'",
                    hint="e.g. demo-upgrade",
                )
            ]
        )
    return name


def check_model_uri(uri: str, option: str = "model") -> str:
    """Check the registered-model name inside a ``models:/NAME/VERSION`` or
    ``models:/NAME@ALIAS`` URI (other URIs pass as given)."""
    if isinstance(uri, str) and uri.startswith("models:/"):
        body = uri[len("models:/") :]
        name = body.split("@", 1)[0] if "@" in body else body.split("/", 1)[0]
        if not name.startswith("m-"):  # a logged model id (models:/m-...)
            check_model_name(name, option)
    return uri


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping.

    Raises
    ------
    ConfigError
        When the file is missing, is not valid YAML, or does not hold a mapping.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError([Violation(str(path), "does not exist", kind="file")])
    if not path.is_file():
        raise ConfigError([Violation(str(path), "is not a file", kind="file")])
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(
            [
                Violation(
                    str(path),
                    f"cannot be read as UTF-8 text ({str(exc).splitlines()[0]})",
                    kind="file",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Violation(str(path), f"is not valid YAML: {exc}", kind="file")]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [Violation(str(path), f"must hold a mapping, got {type(data).__name__}", kind="file")]
        )
    return data


def available_presets(kind: str) -> list[str]:
    """Names of the packaged presets of one kind (``"ladders"`` or ``"hysteresis"``)."""
    folder = resources.files("segments") / "presets" / kind
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(kind: str, name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a packaged preset by name, or a user's YAML file by path.

    Parameters
    ----------
    kind : {"ladders", "hysteresis"}
        The preset family.
    name_or_path : str or path
        A packaged name such as ``"cmb"``, or a path to a ``.yaml`` file.

    Raises
    ------
    ConfigError
        Naming the known presets when neither a preset nor a file matches.
    """
    if kind not in _PRESET_KINDS:
        raise ConfigError([Violation("preset kind", f"is {kind!r}; expected {_PRESET_KINDS}")])
    text = str(name_or_path)
    if text in available_presets(kind):
        resource = resources.files("segments") / "presets" / kind / f"{text}.yaml"
        with resources.as_file(resource) as path:
            return load_yaml(path)
    if Path(text).suffix.lower() in (".yaml", ".yml") or Path(text).exists():
        return load_yaml(text)
    raise ConfigError(
        [
            Violation(
                kind.rstrip("s"),
                f"{text!r} is neither a packaged preset nor a YAML file",
                hint=f"packaged: {', '.join(available_presets(kind))}",
            )
        ]
    )


#: ``hysteresis`` left at this value means "what the ladder says".
FROM_LADDER = "ladder"
