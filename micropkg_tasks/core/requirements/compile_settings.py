"""Pure helpers for requirements compilation (SPEC §9): settings, the skip marker, pin diffs.

Nothing here runs a subprocess; :mod:`micropkg_tasks.ops.compile.compile` does that.

* **Settings** come from three layers, per key: the project's ``[tool.micropkg]``
  (``compile = false`` or a ``[tool.micropkg.compile]`` table) wins over the
  monorepo's ``[tool.micropkg.compile]``, which wins over the invoke config
  ``micropkg.compile``.
* **The skip marker** is one comment line at the top of ``requirements.txt``,
  ``# micropkg: requirements.in sha256=<hex> options=<hex>``, written after a
  successful compile. The first digest covers ``requirements.in`` (and any file
  it includes with ``-r``/``-c``); the second covers the backend, the arguments
  from config and the ``emit_*`` settings, so changing any makes the file stale.
* **Pins** are the ``name==version`` (or ``name @ URL``) lines of a compiled
  file, compared before and after to report what was added, removed or re-pinned.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from micropkg_tasks.core.change.bounded import read_file_bytes
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.fs_args import redact_urls_in as redact
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.core.quantities import amount

BACKENDS = ("pip-tools", "uv")
DEFAULT_TIMEOUT = 600.0
_KEYS = ("enabled", "args", "backend", "timeout", "emit_index_url", "emit_find_links")
_FLAGS = ("enabled", "emit_index_url", "emit_find_links")
# Arguments micropkg sets itself; taking them from config would break the atomic write.
_RESERVED = ("-o", "--output-file", "-n", "--dry-run")
# Whether index and find-links lines reach the file is a setting, so it is decided in one place.
_EMIT_FLAGS = {
    f"--{prefix}emit-{what}": key
    for prefix in ("", "no-")
    for what, key in (("index-url", "emit_index_url"), ("trusted-host", "emit_index_url"),
                      ("find-links", "emit_find_links"))
}

MARKER_PREFIX = "# micropkg: requirements.in sha256="
INVOKE_LAYER = "invoke config micropkg.compile"


@dataclass(frozen=True)
class CompileSettings:
    """How (and whether) a project's ``requirements.in`` is compiled."""

    enabled: bool = True
    args: tuple[str, ...] = ()
    backend: str = "pip-tools"  # or "uv"
    timeout: float = DEFAULT_TIMEOUT  # seconds before the compiler is stopped
    # Index lines (--index-url, --extra-index-url, --trusted-host) and --find-links lines are left
    # out of requirements.txt unless asked for; credentials are stripped from them even then.
    emit_index_url: bool = False
    emit_find_links: bool = False


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    """Plain dicts, tomlkit tables and invoke's DataProxy (which is not a Mapping) alike."""
    if isinstance(value, Mapping):
        return value
    if hasattr(value, "keys") and hasattr(value, "__getitem__"):
        return {str(key): value[key] for key in value.keys()}
    return None


def _layer(value: Any, where: str) -> dict[str, Any]:
    """Validate one layer's ``compile`` value (a bool or a table) into the keys it sets."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"enabled": value}
    table = _as_mapping(value)
    if table is None:
        raise ProjectError(f"{where} must be true, false or a table, got {value!r}")
    found: dict[str, Any] = {}
    for key in table:
        if key not in _KEYS:
            raise ProjectError(f"{where} has unknown key {key!r}; expected one of {', '.join(_KEYS)}")
    for key in _FLAGS:
        if key in table:
            if not isinstance(table[key], bool):
                raise ProjectError(f"{where} key {key!r} must be true or false, got {table[key]!r}")
            found[key] = table[key]
    if "args" in table:
        found["args"] = _args(table["args"], where)
    if "backend" in table:
        backend = table["backend"]
        if backend not in BACKENDS:
            raise ProjectError(f"{where} key 'backend' must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
        found["backend"] = str(backend)
    if "timeout" in table:
        found["timeout"] = amount(table["timeout"], f"{where} key 'timeout'", unit="seconds", positive=True)
    return found


def check_invoke_layer(value: Any) -> None:
    """Refuse a bad invoke config ``micropkg.compile`` before any project is compiled: it is
    shared by every project of the run, so it is the run's usage error, not one project's."""
    _layer(value, INVOKE_LAYER)


def _args(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ProjectError(f"{where} key 'args' must be a list of strings, such as [\"--generate-hashes\"]")
    args: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ProjectError(f"{where} key 'args' must be a list of strings; {item!r} is not a string")
        if item.split("=", 1)[0] in _RESERVED or (item.startswith("-o") and not item.startswith("--")):
            raise ProjectError(f"{where} key 'args' must not set {item!r}: micropkg chooses the output file itself")
        if item.split("=", 1)[0] in _EMIT_FLAGS:
            raise ProjectError(
                f"{where} key 'args' must not set {item!r}: use {_EMIT_FLAGS[item.split('=', 1)[0]]} = true or false"
            )
        args.append(str(item))
    return tuple(args)


def compile_settings(
    project: Project,
    *,
    monorepo: Mapping[str, Any] | None = None,
    invoke_config: Mapping[str, Any] | Any = None,
    monorepo_path: str | Path | None = None,
) -> CompileSettings:
    """The compile settings for ``project``.

    ``monorepo`` is the monorepo's ``[tool.micropkg]`` table and ``invoke_config``
    the invoke config's ``micropkg.compile`` value; ``monorepo_path`` only names
    the monorepo's file in error messages. Each key is taken from the most
    specific layer that sets it.
    """
    monorepo_file = str(monorepo_path) if monorepo_path else "the monorepo's pyproject.toml"
    merged: dict[str, Any] = {}
    merged.update(_layer(invoke_config, INVOKE_LAYER))
    monorepo_table = _as_mapping(monorepo) if monorepo is not None else None
    if monorepo_table is not None:
        merged.update(_layer(monorepo_table.get("compile"), f"{monorepo_file} [tool.micropkg.compile]"))
    merged.update(_layer(project.settings.get("compile"), f"{project.pyproject_path} [tool.micropkg.compile]"))
    return CompileSettings(**merged)


# -- the skip marker ------------------------------------------------------------------------------


def _included_files(text: str) -> list[str]:
    """Files a requirements file pulls in with ``-r``/``-c`` (and the long forms)."""
    found: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        for flag in ("--requirement", "--constraint", "-r", "-c"):
            if not line.startswith(flag):
                continue
            rest = line[len(flag):]
            if flag.startswith("--") and rest[:1] not in ("=", " ", "\t"):
                break
            target = rest.lstrip("= \t").split(" #", 1)[0].strip()
            if target and "://" not in target:
                found.append(target)
            break
    return found


def inputs_digest(requirements_in: Path) -> str:
    """sha256 of ``requirements.in``; files it includes with ``-r``/``-c`` are folded in.

    With no includes this is exactly the file's own sha256.
    """
    requirements_in = Path(requirements_in)
    digest = hashlib.sha256(read_file_bytes(requirements_in))
    seen = {requirements_in.resolve()}
    pending = [requirements_in]
    while pending:
        current = pending.pop(0)
        try:
            text = read_file_bytes(current).decode("utf-8-sig", errors="replace")
        except OSError:
            continue
        for name in _included_files(text):
            path = (current.parent / name).resolve()
            if path in seen:
                continue
            seen.add(path)
            digest.update(b"\0" + name.encode("utf-8") + b"\0")
            try:
                digest.update(read_file_bytes(path))
                pending.append(path)
            except (OSError, ProjectError):
                digest.update(b"<missing>")
    return digest.hexdigest()


def options_fingerprint(settings: CompileSettings) -> str:
    """A short digest of what besides the inputs shapes the output: backend, config args and
    whether index and find-links lines are written."""
    payload = json.dumps({
        "backend": settings.backend, "args": [redact(arg) for arg in settings.args],
        "emit": [settings.emit_index_url, settings.emit_find_links],
    })
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def marker_line(digest: str, fingerprint: str) -> str:
    return f"{MARKER_PREFIX}{digest} options={fingerprint}"


def read_marker(text: str) -> tuple[str, str] | None:
    """``(inputs digest, options fingerprint)`` from the marker in a compiled file, if any."""
    for line in text.splitlines()[:10]:
        if line.startswith(MARKER_PREFIX):
            fields = line[len(MARKER_PREFIX):].split()
            if len(fields) == 2 and fields[1].startswith("options="):
                return fields[0], fields[1][len("options="):]
            return None
    return None


def with_marker(text: str, digest: str, fingerprint: str) -> str:
    """``text`` with any old marker dropped and a fresh one as its first line."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith(MARKER_PREFIX)]
    return marker_line(digest, fingerprint) + newline + "".join(lines)


# -- pins -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PinChange:
    """One package whose pin changed: ``old`` None means added, ``new`` None means removed."""

    name: str
    old: str | None
    new: str | None


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.lstrip().startswith("#"):
            if pending:
                lines.append(pending)
                pending = ""
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def parse_pins(text: str) -> dict[str, str]:
    """``{canonical name: version}`` for every pinned line of a compiled requirements file.

    Comments, options (``--hash``, ``--find-links``, ...) and continuations are
    ignored; a direct reference is recorded as ``@ URL`` with credentials hidden.
    """
    pins: dict[str, str] = {}
    for line in _logical_lines(text):
        stripped = line.strip()
        for index, char in enumerate(stripped):
            if char == "#" and (index == 0 or stripped[index - 1].isspace()):
                stripped = stripped[:index].strip()
                break
        if not stripped or stripped.startswith("-"):
            continue
        for index in range(1, len(stripped)):
            if stripped[index] == "-" and stripped[index - 1].isspace():
                stripped = stripped[:index].strip()
                break
        try:
            requirement = Requirement(stripped)
        except InvalidRequirement:
            continue
        if requirement.url:
            pins[canonicalize_name(requirement.name)] = "@ " + redact(requirement.url)
            continue
        exact = [spec.version for spec in requirement.specifier if spec.operator in ("==", "===")]
        if len(exact) == 1:
            pins[canonicalize_name(requirement.name)] = exact[0]
    return pins


def diff_pins(
    old: Mapping[str, str], new: Mapping[str, str]
) -> tuple[tuple[PinChange, ...], tuple[PinChange, ...], tuple[PinChange, ...]]:
    """``(added, removed, repinned)``, each sorted by name."""
    added = tuple(PinChange(name, None, new[name]) for name in sorted(new.keys() - old.keys()))
    removed = tuple(PinChange(name, old[name], None) for name in sorted(old.keys() - new.keys()))
    repinned = tuple(
        PinChange(name, old[name], new[name]) for name in sorted(old.keys() & new.keys()) if old[name] != new[name]
    )
    return added, removed, repinned
