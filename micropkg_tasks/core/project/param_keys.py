"""Top-level keys that two parameter files of one env would both define.

Kedro's config loader reads every ``parameters*`` file of an env (``parameters*``,
``parameters*/**`` and ``**/parameters*``; YAML or JSON) into one namespace and
refuses to start when two files define the same top-level key. A pull that
would cause that is caught here, before anything is written. Keys starting
with ``_`` are Kedro's private variables, which it does not merge, so they are
left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import yaml

_SUFFIXES = (".yml", ".yaml", ".json")
# The same safe loading, in C when PyYAML was built with libyaml (several times faster).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class DuplicateKey:
    key: str
    incoming: str  # relative to the env folder: the file the pull writes
    existing: str  # the other file that defines the key


def is_parameters_file(relative: str) -> bool:
    """Whether Kedro's default ``parameters`` patterns load this file (a path relative to the env)."""
    parts = relative.split("/")
    if not parts[-1].endswith(_SUFFIXES) or any(part.startswith(".") for part in parts):
        return False
    return parts[0].startswith("parameters") or parts[-1].startswith("parameters")


def top_level_keys(content: bytes) -> frozenset[str]:
    """The public top-level keys of a YAML (or JSON) mapping; nothing for anything unreadable,
    which Kedro reports itself with a better message than ours."""
    try:
        data = yaml.load(content, Loader=_SAFE_LOADER)
    except (yaml.YAMLError, RecursionError):  # libyaml stops deep nesting itself; the Python loader recurses
        return frozenset()
    if not isinstance(data, dict):
        return frozenset()
    return frozenset(str(key) for key in data if not str(key).startswith("_"))


def duplicate_keys(files: Mapping[str, bytes], incoming: Mapping[str, str]) -> list[DuplicateKey]:
    """Keys that an incoming parameters file defines and another parameters file of ``files``
    (the env as the pull would leave it) defines too, sorted.

    ``incoming`` maps each file the pull writes to the micro-package it comes from; files of
    the same micro-package are not compared with each other, since that is how its source
    project already had them.
    """
    keys = {relative: top_level_keys(content) for relative, content in files.items() if is_parameters_file(relative)}
    found = []
    for relative in sorted(set(incoming) & set(keys)):
        for other in sorted(keys):
            if other == relative or incoming.get(other) == incoming[relative]:
                continue
            if other in incoming and other < relative:
                continue  # a pair of files from two incoming micro-packages is reported once
            for key in sorted(keys[relative] & keys[other]):
                found.append(DuplicateKey(key, relative, other))
    return found
