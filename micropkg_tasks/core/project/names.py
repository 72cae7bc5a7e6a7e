"""Validation of the names users type: aliases, module paths, destinations, envs.

Every option is checked here before any file is read or written, so a typo
can never leave a project half-changed.
"""

from __future__ import annotations

import keyword
import sys

from micropkg_tasks.core.errors import UsageError


def is_identifier(name: str) -> bool:
    """True for a name that can be a Python package: an identifier, not a keyword."""
    return name.isidentifier() and not keyword.iskeyword(name)


def is_module_path(path: str) -> bool:
    """True for a dotted module path such as ``pipelines.data_cleaning``: identifiers, no keywords."""
    return bool(path) and all(is_identifier(part) for part in path.split("."))


MIN_ALIAS_LENGTH = 2  # as Kedro 0.19 required


def validate_alias(alias: str, *, option: str = "--alias") -> str:
    """An alias becomes a package name, so it must be a plain identifier of two characters or more."""
    if is_identifier(alias) and len(alias) < MIN_ALIAS_LENGTH:
        raise UsageError(f"{option} {alias!r} is too short: a package name needs at least {MIN_ALIAS_LENGTH} characters")
    if not is_identifier(alias):
        raise UsageError(
            f"{option} {alias!r} is not a valid Python package name "
            "(use letters, digits and underscores, not starting with a digit, and not a keyword)"
        )
    return alias


def validate_module_path(path: str, *, option: str = "module path") -> str:
    """A dotted module path such as ``pipelines.data_cleaning``."""
    if not is_module_path(path):
        raise UsageError(
            f"{option} {path!r} is not a dotted Python module path "
            "(expected something like 'pipelines.data_cleaning')"
        )
    return path


def validate_destination_module(destination: str, *, option: str = "--destination") -> str:
    """A pull destination is a dotted module path inside the project package; the folder form
    Kedro accepted (``pipelines/nested``, ``pipelines/nested/``) is returned in dotted form."""
    dotted = destination
    if "/" in destination and not destination.startswith("/") and "\\" not in destination:
        parts = [part for part in destination.split("/") if part not in ("", ".")]
        dotted = ".".join(parts)
    if "/" in dotted or "\\" in dotted or ".." in dotted or not dotted:
        raise UsageError(
            f"{option} {destination!r} must be a dotted module path such as 'pipelines' "
            "or 'utils.shared' (or its folder form 'utils/shared') inside the project package"
        )
    return validate_module_path(dotted, option=option)


def validate_env(env: str, *, option: str = "--env") -> str:
    """An env is one folder name below the config folder."""
    if (
        not env
        or env in {".", ".."}
        or "/" in env
        or "\\" in env
        or "\0" in env
        or env != env.strip()
    ):
        raise UsageError(f"{option} {env!r} must be the name of one folder under conf/, such as 'base'")
    return env


def shadows_stdlib(name: str) -> bool:
    """A top-level package with this name would hide a standard-library module."""
    return name in sys.stdlib_module_names
