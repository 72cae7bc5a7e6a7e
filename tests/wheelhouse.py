"""Tiny wheels built on the fly, and a pip pointed only at them (no network, no index).

``wheelhouse`` writes each wheel as a zip with correct ``METADATA``, ``WHEEL``
and ``RECORD`` files, so nothing is built or downloaded. ``offline_pip`` clears
every ``PIP_*`` variable of the caller (they beat a config file; pip-tools' own
tests do the same) and points ``PIP_CONFIG_FILE`` at a ``pip.conf`` that says
``no-index`` and ``find-links = <wheelhouse>``. Real ``pip-compile`` then
resolves against these wheels and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

import pytest

# name -> version -> Requires-Dist lines
WHEELS: dict[str, dict[str, tuple[str, ...]]] = {
    "small-a": {"1.0": ("small-b",), "2.0": ("small-b>=1.1",)},
    "small-b": {"1.0": (), "1.1": ()},
    "small-c": {"0.5": ()},
}

_FIXED_DATE = (2020, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def write_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` into ``folder`` and return its path."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = "".join(
        [
            "Metadata-Version: 2.1\n",
            f"Name: {name}\n",
            f"Version: {version}\n",
            "Summary: A tiny test wheel\n",
            *(f"Requires-Dist: {item}\n" for item in requires),
        ]
    )
    files: dict[str, bytes] = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: micropkg-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ).encode(),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    target = Path(folder) / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=_FIXED_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return target


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of tiny wheels: small-a 1.0 (needs small-b) and 2.0 (needs small-b>=1.1),
    small-b 1.0 and 1.1, small-c 0.5."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    for name, versions in WHEELS.items():
        for version, requires in versions.items():
            write_wheel(folder, name, version, requires)
    return folder


def write_pip_conf(path: Path, wheelhouse: Path) -> Path:
    path.write_text(f"[global]\nno-index = true\nfind-links = {wheelhouse}\n", encoding="utf-8")
    return path


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, wheelhouse: Path) -> Path:
    """Make every pip run in this test resolve from ``wheelhouse`` only; returns the wheelhouse."""
    for key in list(os.environ):
        if key.startswith("PIP_") or key.startswith("UV_"):
            monkeypatch.delenv(key, raising=False)
    conf = write_pip_conf(tmp_path / "pip.conf", wheelhouse)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    # A fresh pip-tools cache per test, so no test sees another's resolved metadata.
    monkeypatch.setenv("PIP_TOOLS_CACHE_DIR", str(tmp_path / "pip-tools-cache"))
    return wheelhouse
