"""The metadata of an untrusted micro-package sdist, read statically (never built or run).

Name, version, requirements and the ``[tool.micropkg]`` table come from ``pyproject.toml``,
``PKG-INFO`` or ``*.egg-info/requires.txt`` (SPEC §3, §6), each checked and bounded: they
reach the lock, ``requirements.in`` and the screen. core/sdist/read.py reads the archive.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from email.parser import HeaderParser
from typing import Any, Mapping

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from micropkg_tasks.core.errors import SdistError

_DIST_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_EGG_REQUIRES = re.compile(r"^[^/]+\.egg-info/requires\.txt$")
# Metadata reaches the lock and the screen, so it is bounded: far above any real package.
MAX_NAME_LENGTH = 200
MAX_VERSION_LENGTH = 100
MAX_REQUIREMENT_LENGTH = 2000
MAX_REQUIREMENTS = 1000
MAX_TOOL_VALUE_LENGTH = 1000


def quoted(text: str) -> str:
    """Quote a name for a message; repr() escapes NULs and newlines so the message stays one line."""
    return f"'{text}'" if text.isprintable() and "'" not in text else repr(text)


def sdist_failure(source: str, problem: str) -> SdistError:
    """The one sentence saying why ``source`` cannot be read as a micro-package sdist."""
    return SdistError(f"Cannot read sdist {quoted(source)}: {problem}.")


def _parse_toml(text: str) -> dict[str, Any]:
    """Parse TOML to plain dicts; a ValueError subclass on bad input."""
    return tomllib.loads(text)


def read_metadata(
    source: str, root: str, files: Mapping[str, bytes]
) -> tuple[str, str, tuple[str, ...], dict[str, Any]]:
    """Name, version, requirements and the [tool.micropkg] table, read statically.

    Per field, ``[project]`` wins when it declares the key statically (present
    and not in ``dynamic``); then PKG-INFO; requirements finally fall back to
    the unconditional part of ``*.egg-info/requires.txt``.
    """
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    micropkg = _from_pyproject(source, root, files, values, origin)
    _from_pkg_info(source, root, files, values, origin)
    _from_egg_info(source, root, files, values, origin)
    dist_name, version = _checked_name_and_version(source, root, values, origin)
    requires = tuple(req.strip() for req in values.get("dependencies", []) if req.strip())
    if len(requires) > MAX_REQUIREMENTS:
        raise sdist_failure(source, f"member {quoted(origin['dependencies'])} lists {len(requires)} requirements, "
                            f"more than the {MAX_REQUIREMENTS} a micro-package may have")
    _check_tool_table(source, f"{root}/pyproject.toml", micropkg)
    _check_requirements(source, requires, origin.get("dependencies", ""))
    return dist_name, version, requires, micropkg


def _from_pyproject(
    source: str, root: str, files: Mapping[str, bytes], values: dict[str, Any], origin: dict[str, str]
) -> dict[str, Any]:
    """The static ``[project]`` fields into ``values``; returns the [tool.micropkg] table."""
    member = f"{root}/pyproject.toml"
    if "pyproject.toml" not in files:
        return {}
    try:
        doc = _parse_toml(_text(source, member, files["pyproject.toml"]))
    except ValueError as exc:
        raise sdist_failure(source, f"member {quoted(member)} is not valid TOML ({exc})") from None
    except (RecursionError, MemoryError):
        raise sdist_failure(source, f"member {quoted(member)} is nested too deeply to parse safely") from None
    project = doc.get("project", {})
    tool = doc.get("tool", {})
    table = tool.get("micropkg", {}) if isinstance(tool, dict) else {}
    if not isinstance(project, dict) or not isinstance(table, dict):
        raise sdist_failure(source, f"member {quoted(member)} has a [project] or [tool.micropkg] that is not a table")
    dynamic = project.get("dynamic", [])
    dynamic = dynamic if isinstance(dynamic, list) else []
    for key, kind in (("name", str), ("version", str), ("dependencies", list)):
        if key in project and key not in dynamic:
            value = project[key]
            if not isinstance(value, kind) or (kind is list and not all(isinstance(v, str) for v in value)):
                raise sdist_failure(source, f"member {quoted(member)} has a [project] {key} of the wrong type")
            values[key], origin[key] = value, member
    return table


def _from_pkg_info(
    source: str, root: str, files: Mapping[str, bytes], values: dict[str, Any], origin: dict[str, str]
) -> None:
    """What ``[project]`` left out, from PKG-INFO's headers."""
    member = f"{root}/PKG-INFO"
    if "PKG-INFO" not in files:
        return
    headers = HeaderParser().parsestr(_text(source, member, files["PKG-INFO"]))
    for key, header in (("name", "Name"), ("version", "Version")):
        if key not in values and headers.get(header, "").strip():
            values[key], origin[key] = headers[header].strip(), member
    if "dependencies" not in values and headers.get_all("Requires-Dist"):
        values["dependencies"], origin["dependencies"] = headers.get_all("Requires-Dist"), member


def _from_egg_info(
    source: str, root: str, files: Mapping[str, bytes], values: dict[str, Any], origin: dict[str, str]
) -> None:
    """Requirements, when nothing else gave them, from ``*.egg-info/requires.txt``."""
    egg = next((path for path in sorted(files) if _EGG_REQUIRES.match(path)), None)
    if "dependencies" not in values and egg is not None:
        lines = [line.strip() for line in _text(source, f"{root}/{egg}", files[egg]).splitlines()]
        # Only the unconditional section: extras and markers follow their [headers].
        section = itertools.takewhile(lambda line: not line.startswith("["), lines)
        values["dependencies"] = [line for line in section if line and not line.startswith("#")]
        origin["dependencies"] = f"{root}/{egg}"


def _checked_name_and_version(
    source: str, root: str, values: dict[str, Any], origin: dict[str, str]
) -> tuple[str, str]:
    """The package name and version, both present, valid and of bounded length."""
    for key in ("name", "version"):
        if key not in values:
            raise sdist_failure(source, f"no member ({quoted(root + '/pyproject.toml')} [project] or "
                                f"{quoted(root + '/PKG-INFO')}) gives the package {key} (missing metadata)")
    dist_name, version = values["name"].strip(), values["version"].strip()
    if not _DIST_NAME.match(dist_name):
        raise sdist_failure(source, f"member {quoted(origin['name'])} gives an invalid package name "
                            f"{quoted(dist_name)}")
    try:
        Version(version)
    except InvalidVersion:
        raise sdist_failure(source, f"member {quoted(origin['version'])} gives an invalid version "
                            f"{quoted(version)}") from None
    _check_text(source, origin["name"], "package name", dist_name, MAX_NAME_LENGTH)
    _check_text(source, origin["version"], "version", version, MAX_VERSION_LENGTH)
    return dist_name, version


def _check_requirements(source: str, requires: tuple[str, ...], member: str) -> None:
    """Each requirement a valid PEP 508 line of bounded length."""
    for req in requires:
        # Requirements end up in requirements.in; a line like "--index-url ..."
        # or one with a line break would inject pip options there.
        try:
            if not req.isprintable():
                raise InvalidRequirement(req)
            Requirement(req)
        except InvalidRequirement:
            raise sdist_failure(source, f"member {quoted(member)} lists an invalid requirement "
                                f"{quoted(req)}") from None
    for req in requires:
        _check_text(source, member, "requirement", req, MAX_REQUIREMENT_LENGTH)


def _check_text(source: str, member: str, what: str, value: str, limit: int) -> None:
    """Metadata text must be printable (no control characters) and of bounded length."""
    if len(value) > limit:
        raise sdist_failure(source, f"member {quoted(member)} gives a {what} of {len(value)} characters, more than the "
                    f"{limit} allowed")
    if not value.isprintable():
        bad = next(char for char in value if not char.isprintable())
        raise sdist_failure(source, f"member {quoted(member)} gives a {what} containing the control or invisible "
                    f"character {ascii(bad)}")


def _check_tool_table(source: str, member: str, table: Any, depth: int = 0) -> None:
    """Every key and string in the sdist's [tool.micropkg] table passes :func:`_check_text`."""
    if depth > 8:
        raise sdist_failure(source, f"member {quoted(member)} has a [tool.micropkg] table nested too deeply")
    items = table.items() if isinstance(table, dict) else enumerate(table) if isinstance(table, list) else ()
    for key, value in items:
        if isinstance(key, str):
            _check_text(source, member, "[tool.micropkg] key", key, MAX_TOOL_VALUE_LENGTH)
        if isinstance(value, str):
            _check_text(source, member, "[tool.micropkg] value", value, MAX_TOOL_VALUE_LENGTH)
        elif isinstance(value, (dict, list)):
            _check_tool_table(source, member, value, depth + 1)


def _text(source: str, member: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise sdist_failure(source, f"member {quoted(member)} is not valid UTF-8 text") from None
