"""Kedro-compatible manifests: ``[tool.kedro.micropkg.package]`` and ``[tool.kedro.micropkg.pull]``.

Keys are module paths (package) or locations (pull); values are the options
the single command accepts. The legacy ``[tool.kedro.pipeline.*]`` tables are
read when the new ones are absent, and ``[tool.micropkg.package]`` /
``[tool.micropkg.pull]`` when neither is there (for Kedro 1.x projects).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from micropkg_tasks.core.errors import UsageError
from micropkg_tasks.core.git_url import is_git_location, parse_git_location
from micropkg_tasks.core.project.names import (
    validate_alias,
    validate_destination_module,
    validate_env,
    validate_module_path,
)
from micropkg_tasks.core.project.project import Project, read_toml, table

# Kedro 1.x refuses to start when [tool.kedro] holds keys it does not know, so its
# projects keep the same manifests in [tool.micropkg.package] and [tool.micropkg.pull].
PACKAGE_TABLES = ("tool.kedro.micropkg.package", "tool.kedro.pipeline.package", "tool.micropkg.package")
PULL_TABLES = ("tool.kedro.micropkg.pull", "tool.kedro.pipeline.pull", "tool.micropkg.pull")

# Kedro spells the pull option ``fs_args`` in manifests; the SPEC and the CLI say
# ``fs-args``. Both are accepted and mean the same thing.
_OPTION_SPELLINGS = {"fs-args": "fs_args", "fs_args": "fs_args"}
# Both manifests take the same option names (``destination`` means a folder or URL
# for package, a dotted module path for pull).
MANIFEST_OPTIONS = frozenset({"alias", "destination", "env", "fs_args"})
PULL_OPTIONS = MANIFEST_OPTIONS | {"merge"}  # merge = true (a boolean, the one option that is not a string)


def is_url(location: str) -> bool:
    """fsspec-style URLs (``s3://``, ``https://``, ``memory://`` ...) are not local paths."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").isalnum()


@dataclass(frozen=True)
class PackageEntry:
    module_path: str
    alias: str | None = None
    destination: str | None = None  # a folder, or an fsspec URL
    env: str = "base"
    fs_args: str | None = None


@dataclass(frozen=True)
class PullEntry:
    location: str
    alias: str | None = None
    destination: str | None = None  # a dotted module path inside the project package
    env: str = "base"
    fs_args: str | None = None
    merge: bool = False  # merge = true: local edits are always merged with upstream's changes


def _looks_like_nested_options(value: Mapping[str, Any]) -> bool:
    """An unquoted dotted key turns ``pipelines.x = {}`` into nested tables, so an
    option value that is itself a table is the tell-tale sign."""
    return any(isinstance(item, Mapping) for item in value.values())


def _flatten_dotted(key: str, value: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Rebuild the dotted keys the user most likely meant, for the error message."""
    if not _looks_like_nested_options(value):
        return [(key, value)]
    found: list[tuple[str, Mapping[str, Any]]] = []
    for child, item in value.items():
        if isinstance(item, Mapping):
            found.extend(_flatten_dotted(f"{key}.{child}", item))
    return found


def _inline(value: Mapping[str, Any]) -> str:
    parts = ", ".join(f"{name} = {_toml_scalar(item)}" for name, item in value.items())
    return "{" + (f" {parts} " if parts else "") + "}"


def _toml_scalar(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def _read_table(project: Project, names: tuple[str, ...]) -> tuple[str, Mapping[str, Any]] | None:
    document = read_toml(project.pyproject_path)
    for name in names:
        parent, _, last = name.rpartition(".")
        holder = table(document, parent)
        if holder is None or last not in holder:
            continue
        found = holder[last]
        if not isinstance(found, Mapping):
            kind = "an array of tables ([[...]])" if isinstance(found, list) else type(found).__name__
            raise UsageError(
                f"{project.pyproject_path}: [{name}] must be a table of entries, not {kind}; "
                f"write it as [{name}] with one line per entry"
            )
        return name, found
    return None


def present_table(project: Project, tables: tuple[str, ...]) -> str | None:
    """The name of the first of ``tables`` that the project's ``pyproject.toml`` has, even empty."""
    found = _read_table(project, tables)
    return found[0] if found is not None else None


def manifest_to_name(project: Project, kind: str) -> str:
    """The manifest table that help and errors should point a user of this project to, for
    ``kind`` "package" or "pull": ``tool.micropkg.<kind>`` when the project's Kedro is 1.x
    (whose every ``kedro`` command fails on unknown ``[tool.kedro]`` keys) or when no
    ``[tool.kedro.micropkg.*]`` or ``[tool.kedro.pipeline.*]`` table is there yet; else
    ``tool.kedro.micropkg.<kind>``, the table the project already uses."""
    document = read_toml(project.pyproject_path)
    kedro = table(document, "tool.kedro") or {}
    init_version = kedro.get("kedro_init_version")
    major = str(init_version).split(".", 1)[0] if init_version is not None else ""
    kedro_tables = any(isinstance(kedro.get(name), Mapping) for name in ("micropkg", "pipeline"))
    if (major.isdigit() and int(major) >= 1) or not kedro_tables:
        return f"tool.micropkg.{kind}"
    return f"tool.kedro.micropkg.{kind}"


def _options(
    where: str, key: str, value: Any, allowed: frozenset[str]
) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise UsageError(
            f"{where} entry {key!r} must be a table of options such as {{alias = \"x\"}}, "
            f"got {type(value).__name__} {value!r}"
        )
    options: dict[str, str] = {}
    for raw_name, item in value.items():
        name = _OPTION_SPELLINGS.get(raw_name, raw_name)
        if name not in allowed:
            known = ", ".join(sorted(n.replace("_", "-") for n in allowed))
            raise UsageError(f"{where} entry {key!r} has unknown option {raw_name!r} (known options: {known})")
        if name == "merge":
            if not isinstance(item, bool):
                raise UsageError(f"{where} entry {key!r} option 'merge' must be true or false, got {item!r}")
            options[name] = "true" if item else ""
            continue
        if not isinstance(item, str):
            raise UsageError(
                f"{where} entry {key!r} option {raw_name!r} must be a string, got {type(item).__name__} {item!r}"
            )
        options[name] = str(item)
    return options


def _check_dotted_keys(where: str, entries: Mapping[str, Any]) -> None:
    for key, value in entries.items():
        if isinstance(value, Mapping) and _looks_like_nested_options(value):
            fixes = "; ".join(f'"{dotted}" = {_inline(options)}' for dotted, options in _flatten_dotted(key, value))
            raise UsageError(
                f"{where} key {key!r} is an unquoted dotted key, which TOML reads as nested tables; "
                f"quote it: {fixes}"
            )


def _resolve_local(project: Project, value: str | None) -> str | None:
    """Relative paths in the manifest are relative to the project root, not the current folder."""
    if value is None or is_url(value) or Path(value).is_absolute():
        return value
    return str(project.root / value)


def _manifest_entries(
    project: Project, tables: tuple[str, ...], allowed: frozenset[str] = MANIFEST_OPTIONS
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """``(where, key, options)`` for each entry of the first manifest table present, with the
    options every manifest shares already checked."""
    found = _read_table(project, tables)
    if found is None:
        return
    name, entries = found
    where = f"{project.pyproject_path} [{name}]"
    _check_dotted_keys(where, entries)
    for key, value in entries.items():
        options = _options(where, key, value, allowed)
        if "alias" in options:
            validate_alias(options["alias"], option=f"{where} {key!r} alias")
        if "env" in options:
            validate_env(options["env"], option=f"{where} {key!r} env")
        yield where, key, options


def read_package_manifest(project: Project) -> list[PackageEntry]:
    """The micro-packages listed for ``package --all``, validated, in manifest order."""
    result = []
    for where, key, options in _manifest_entries(project, PACKAGE_TABLES):
        validate_module_path(key, option=f"{where} key")
        result.append(
            PackageEntry(
                module_path=key,
                alias=options.get("alias"),
                destination=_resolve_local(project, options.get("destination")),
                env=options.get("env", "base"),
                fs_args=_resolve_local(project, options.get("fs_args")),
            )
        )
    return result


def read_pull_manifest(project: Project) -> list[PullEntry]:
    """The sdists listed for ``pull --all``, validated, in manifest order."""
    result = []
    for where, key, options in _manifest_entries(project, PULL_TABLES, PULL_OPTIONS):
        if "destination" in options:
            options["destination"] = validate_destination_module(
                options["destination"], option=f"{where} {key!r} destination"
            )
        if is_git_location(key):
            try:
                parse_git_location(key)
            except UsageError as exc:  # "<location>: what is wrong", the location's credentials hidden
                raise UsageError(f"{where} entry {exc}") from None
        location = key if is_url(key) or is_requirement_spec(key) else _resolve_local(project, key)
        result.append(
            PullEntry(
                location=str(location),
                alias=options.get("alias"),
                destination=options.get("destination"),
                env=options.get("env", "base"),
                fs_args=_resolve_local(project, options.get("fs_args")),
                merge=bool(options.get("merge")),
            )
        )
    return result


def is_requirement_spec(location: str) -> bool:
    """``some-micropkg==1.2`` names a package on an index rather than a file."""
    return not location.endswith((".tar.gz", ".tgz")) and "/" not in location and "\\" not in location

