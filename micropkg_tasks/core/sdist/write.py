"""Write a micro-package sdist directly with ``tarfile``: no build subprocess.

The output is reproducible: members are sorted, owners and modes normalised,
every timestamp comes from ``SOURCE_DATE_EPOCH`` (or a fixed default) and the
gzip header carries no name and a fixed time. The same input gives the same
bytes on any machine with the same zlib.

The layout matches Kedro 0.19's ``kedro micropkg package``::

    <name>-<version>/PKG-INFO
    <name>-<version>/pyproject.toml
    <name>-<version>/<name>/...            code
    <name>-<version>/<name>/config/...     parameters
    <name>-<version>/tests/...             tests
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from micropkg_tasks.core.quantities import is_ascii_digits

# 1980-01-01: the earliest time a zip can hold, the usual default for reproducible builds.
DEFAULT_EPOCH = 315532800
FILE_MODE = 0o644
DIR_MODE = 0o755


def source_date_epoch() -> int:
    """Timestamp for every member: ``SOURCE_DATE_EPOCH`` if set and valid, else the default."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if is_ascii_digits(raw):
        return int(raw)
    return DEFAULT_EPOCH


def sdist_filename(name: str, version: str) -> str:
    return f"{name}-{version}.tar.gz"


@dataclass(frozen=True)
class SdistSpec:
    """Everything that goes into one sdist; ``files`` are keyed relative to the sdist root folder."""

    name: str
    version: str
    requires: Sequence[str]
    files: Mapping[str, bytes]
    micropkg: Mapping[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def summary(self) -> str:
        return f"Micro-package `{self.name}`"


def render_pkg_info(spec: SdistSpec) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {spec.name}",
        f"Version: {spec.version}",
        f"Summary: {spec.summary}",
        *(f"Requires-Dist: {requirement}" for requirement in spec.requires),
    ]
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes; TOML also wants DEL escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    bare = key and all(char.isascii() and (char.isalnum() or char in "-_") for char in key)
    return key if bare else _toml_string(key)


def _toml_value(value: Any) -> str:
    """A string, integer, list or table as one-line TOML (inline tables keep sorted keys)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(value.items())) + "}"
    return "[" + ", ".join(_toml_value(item) for item in value) + "]"


def _render_micropkg(table: Mapping[str, Any]) -> list[str]:
    """``[tool.micropkg]``: plain keys first, then each sub-table, then arrays of tables."""
    lines = ["", "[tool.micropkg]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in sorted(table.items()) if isinstance(value, (str, int))]
    for key, value in sorted(table.items()):
        if isinstance(value, Mapping):
            lines += ["", f"[tool.micropkg.{key}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sorted(value.items())]
    for key, value in sorted(table.items()):
        if isinstance(value, list):
            for item in value:
                lines += ["", f"[[tool.micropkg.{key}]]"]
                lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(item.items())]
    return lines


def render_pyproject(spec: SdistSpec) -> str:
    """A setuptools ``pyproject.toml`` so ``pip install``/``pip wheel`` can build the sdist.

    ``package-data`` takes every non-Python file inside the package (config
    included), which is what a consumer installing it as a library expects.
    """
    dependencies = "".join(f"    {_toml_string(req)},\n" for req in spec.requires)
    lines = [
        "[build-system]",
        'requires = ["setuptools>=64"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {_toml_string(spec.name)}",
        f"version = {_toml_string(spec.version)}",
        f"description = {_toml_string(spec.summary)}",
        "dependencies = [\n" + dependencies + "]" if dependencies else "dependencies = []",
        "",
        "[tool.setuptools.packages.find]",
        f"include = [{_toml_string(spec.name)}, {_toml_string(spec.name + '.*')}]",
        "",
        "[tool.setuptools.package-data]",
        f'{spec.name} = ["**/*"]',
    ]
    if spec.micropkg:
        lines += _render_micropkg(spec.micropkg)
    return "\n".join(lines) + "\n"


def _member(path: str, size: int, mtime: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.size = 0 if directory else size
    info.mtime = mtime
    info.mode = DIR_MODE if directory else FILE_MODE
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_sdist_bytes(spec: SdistSpec, *, mtime: int | None = None) -> bytes:
    """The complete ``.tar.gz`` for ``spec``, byte-for-byte reproducible."""
    stamp = source_date_epoch() if mtime is None else mtime
    files = dict(spec.files)
    files["PKG-INFO"] = render_pkg_info(spec).encode("utf-8")
    files["pyproject.toml"] = render_pyproject(spec).encode("utf-8")

    # Directory entries make the archive look like any other sdist to tools
    # that list it, and give extracted folders a normal mode.
    directories = {spec.root}
    for relative in files:
        parts = relative.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directories.add(f"{spec.root}/" + "/".join(parts[:depth]))
    entries: list[tuple[str, bytes | None]] = [(d, None) for d in directories]
    entries += [(f"{spec.root}/{relative}", content) for relative, content in files.items()]
    entries.sort(key=lambda item: item[0])

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, content in entries:
            if content is None:
                archive.addfile(_member(path, 0, stamp, directory=True))
            else:
                archive.addfile(_member(path, len(content), stamp), io.BytesIO(content))

    compressed = io.BytesIO()
    # filename="" and a fixed mtime keep the gzip header identical between runs.
    with gzip.GzipFile(filename="", fileobj=compressed, mode="wb", mtime=stamp, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue()
