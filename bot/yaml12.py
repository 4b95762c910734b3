"""YAML as Rasa reads it (YAML 1.2): `Yes`, `No`, `on` and `off` are text, only true/false are
booleans. PyYAML follows YAML 1.1, which would turn a button titled "Yes" into `True`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml


class Yaml12Loader(yaml.SafeLoader):
    pass


_BOOL = "tag:yaml.org,2002:bool"
Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load(text: str) -> Any:
    return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=Yaml12Loader))  # noqa: S506 - a SafeLoader subclass


def read(path: Path, error: type[Exception] = ValueError) -> Any:
    """One file's document; unreadable text or YAML raises `error` naming the file."""
    try:
        return load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
