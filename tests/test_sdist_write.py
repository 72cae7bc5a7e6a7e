"""Tests for writing reproducible, Kedro-compatible micro-package sdists (SPEC §3)."""

from __future__ import annotations

import email.parser
import gzip
import io
import os
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from micropkg_tasks.core.sdist.read import read_sdist
from micropkg_tasks.core.sdist.write import (
    DEFAULT_EPOCH,
    SdistSpec,
    build_sdist_bytes,
    render_pkg_info,
    render_pyproject,
    sdist_filename,
    source_date_epoch,
)

MARKED = 'numpy<2; python_version < "3.12"'
SHA = "0" * 63 + "1"
FILES = {
    "data_processing/__init__.py": b'__version__ = "0.2"\n',
    "data_processing/nodes.py": b"def clean(df):\n    return df.dropna()\n",
    "data_processing/pipeline.py": b"from data_processing.nodes import clean\n",
    "data_processing/config/parameters_data_processing.yml": b"threshold: 3\n",
    "data_processing/config/nested/data_processing.yml": b"extra: true\n",
    "tests/__init__.py": b"",
    "tests/test_nodes.py": b"from data_processing.nodes import clean\n",
}


def make_spec(**changes: object) -> SdistSpec:
    values: dict[str, object] = {
        "name": "data_processing",
        "version": "0.2",
        "requires": ["pandas>=1.5", MARKED],
        "files": dict(FILES),
        "micropkg": {"module": "pipelines.data_processing", "source-sha256": SHA},
    }
    values.update(changes)
    return SdistSpec(**values)  # type: ignore[arg-type]


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getmembers()


EXPECTED_PKG_INFO = """\
Metadata-Version: 2.1
Name: data_processing
Version: 0.2
Summary: Micro-package `data_processing`
Requires-Dist: pandas>=1.5
Requires-Dist: numpy<2; python_version < "3.12"
"""

EXPECTED_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "data_processing"
version = "0.2"
description = "Micro-package `data_processing`"
dependencies = [
    "pandas>=1.5",
    "numpy<2; python_version < \\"3.12\\"",
]

[tool.setuptools.packages.find]
include = ["data_processing", "data_processing.*"]

[tool.setuptools.package-data]
data_processing = ["**/*"]

[tool.micropkg]
module = "pipelines.data_processing"
source-sha256 = "0000000000000000000000000000000000000000000000000000000000000001"
"""


# -- metadata ----------------------------------------------------------------------------


def test_pkg_info_text() -> None:
    assert render_pkg_info(make_spec()) == EXPECTED_PKG_INFO


def test_pyproject_text() -> None:
    assert render_pyproject(make_spec()) == EXPECTED_PYPROJECT


def test_pyproject_without_requirements_or_tool_table() -> None:
    spec = make_spec(name="cleaning", version="1.0", requires=[], micropkg={})

    assert render_pyproject(spec) == (
        "[build-system]\n"
        'requires = ["setuptools>=64"]\n'
        'build-backend = "setuptools.build_meta"\n'
        "\n"
        "[project]\n"
        'name = "cleaning"\n'
        'version = "1.0"\n'
        'description = "Micro-package `cleaning`"\n'
        "dependencies = []\n"
        "\n"
        "[tool.setuptools.packages.find]\n"
        'include = ["cleaning", "cleaning.*"]\n'
        "\n"
        "[tool.setuptools.package-data]\n"
        'cleaning = ["**/*"]\n'
    )
    assert render_pkg_info(spec) == (
        "Metadata-Version: 2.1\nName: cleaning\nVersion: 1.0\nSummary: Micro-package `cleaning`\n"
    )


def test_archive_holds_the_rendered_metadata() -> None:
    with tarfile.open(fileobj=io.BytesIO(build_sdist_bytes(make_spec())), mode="r:gz") as tar:
        pkg_info = tar.extractfile("data_processing-0.2/PKG-INFO").read().decode()  # type: ignore[union-attr]
        pyproject = tar.extractfile("data_processing-0.2/pyproject.toml").read().decode()  # type: ignore[union-attr]

    assert pkg_info == EXPECTED_PKG_INFO
    assert pyproject == EXPECTED_PYPROJECT
    assert email.parser.HeaderParser().parsestr(pkg_info).get_all("Requires-Dist") == ["pandas>=1.5", MARKED]


def test_sdist_filename() -> None:
    assert sdist_filename("cleaning_utils", "0.3") == "cleaning_utils-0.3.tar.gz"


# -- reproducibility -----------------------------------------------------------------------


def test_same_spec_gives_identical_bytes() -> None:
    first = build_sdist_bytes(make_spec())
    # Same content, files given in another order.
    second = build_sdist_bytes(make_spec(files=dict(reversed(list(FILES.items())))))

    assert first == second


def test_source_date_epoch_is_respected_and_changes_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    default = build_sdist_bytes(make_spec())
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")

    stamped = build_sdist_bytes(make_spec())

    assert stamped != default
    assert stamped == build_sdist_bytes(make_spec())
    assert {info.mtime for info in members(stamped)} == {1700000000}
    assert struct.unpack("<I", stamped[4:8])[0] == 1700000000
    assert build_sdist_bytes(make_spec(), mtime=1700000000) == stamped


@pytest.mark.parametrize("raw", ["", "  ", "yesterday", "-5", "1.5"])
def test_unusable_source_date_epoch_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", raw)

    assert source_date_epoch() == DEFAULT_EPOCH == 315532800


def test_members_are_sorted_with_normalised_owners_modes_and_times() -> None:
    infos = members(build_sdist_bytes(make_spec()))

    assert [(info.name, info.type, oct(info.mode)) for info in infos] == [
        ("data_processing-0.2", tarfile.DIRTYPE, "0o755"),
        ("data_processing-0.2/PKG-INFO", tarfile.REGTYPE, "0o644"),
        ("data_processing-0.2/data_processing", tarfile.DIRTYPE, "0o755"),
        ("data_processing-0.2/data_processing/__init__.py", tarfile.REGTYPE, "0o644"),
        ("data_processing-0.2/data_processing/config", tarfile.DIRTYPE, "0o755"),
        ("data_processing-0.2/data_processing/config/nested", tarfile.DIRTYPE, "0o755"),
        ("data_processing-0.2/data_processing/config/nested/data_processing.yml", tarfile.REGTYPE, "0o644"),
        ("data_processing-0.2/data_processing/config/parameters_data_processing.yml", tarfile.REGTYPE, "0o644"),
        ("data_processing-0.2/data_processing/nodes.py", tarfile.REGTYPE, "0o644"),
        ("data_processing-0.2/data_processing/pipeline.py", tarfile.REGTYPE, "0o644"),
        ("data_processing-0.2/pyproject.toml", tarfile.REGTYPE, "0o644"),
        ("data_processing-0.2/tests", tarfile.DIRTYPE, "0o755"),
        ("data_processing-0.2/tests/__init__.py", tarfile.REGTYPE, "0o644"),
        ("data_processing-0.2/tests/test_nodes.py", tarfile.REGTYPE, "0o644"),
    ]
    assert {(info.uid, info.gid, info.uname, info.gname, info.mtime) for info in infos} == {
        (0, 0, "", "", DEFAULT_EPOCH)
    }


def test_gzip_header_has_a_fixed_time_and_no_file_name() -> None:
    data = build_sdist_bytes(make_spec())

    magic, method, flags, mtime = struct.unpack("<2sBBI", data[:8])
    assert (magic, method) == (b"\x1f\x8b", 8)
    assert flags & 0x08 == 0  # FNAME: no original file name stored
    assert flags == 0
    assert mtime == DEFAULT_EPOCH
    # And the tar inside is what we expect, nothing more.
    assert gzip.decompress(data)[:len("data_processing-0.2")] == b"data_processing-0.2"


def test_member_content_is_exact() -> None:
    with tarfile.open(fileobj=io.BytesIO(build_sdist_bytes(make_spec())), mode="r:gz") as tar:
        got = {
            info.name.split("/", 1)[1]: tar.extractfile(info).read()  # type: ignore[union-attr]
            for info in tar.getmembers()
            if info.isfile()
        }

    assert got == {
        **FILES,
        "PKG-INFO": EXPECTED_PKG_INFO.encode(),
        "pyproject.toml": EXPECTED_PYPROJECT.encode(),
    }


# -- round trips ------------------------------------------------------------------------------


def test_round_trip_through_read_sdist() -> None:
    data = build_sdist_bytes(make_spec())

    contents = read_sdist(data, source="dist/data_processing-0.2.tar.gz")

    assert (contents.root, contents.name, contents.dist_name, contents.version) == (
        "data_processing-0.2", "data_processing", "data_processing", "0.2"
    )
    assert contents.requires == ("pandas>=1.5", MARKED)
    assert dict(contents.micropkg) == {"module": "pipelines.data_processing", "source-sha256": SHA}
    assert contents.package_files() == {
        "__init__.py": FILES["data_processing/__init__.py"],
        "nodes.py": FILES["data_processing/nodes.py"],
        "pipeline.py": FILES["data_processing/pipeline.py"],
    }
    assert contents.config_files() == {
        "nested/data_processing.yml": b"extra: true\n",
        "parameters_data_processing.yml": b"threshold: 3\n",
    }
    assert contents.test_files() == {"__init__.py": b"", "test_nodes.py": FILES["tests/test_nodes.py"]}


def test_non_ascii_content_and_names_round_trip() -> None:
    files = {**FILES, "data_processing/config/café.yml": "name: 'café ☕'\n".encode()}
    data = build_sdist_bytes(make_spec(files=files, requires=[]))

    contents = read_sdist(data, source="x")

    assert contents.config_files()["café.yml"] == "name: 'café ☕'\n".encode()
    assert contents.requires == ()
    assert data == build_sdist_bytes(make_spec(files=dict(files), requires=[]))


@pytest.mark.slow
def test_pip_wheel_builds_the_sdist(tmp_path: Path) -> None:
    sdist = tmp_path / sdist_filename("data_processing", "0.2")
    sdist.write_bytes(build_sdist_bytes(make_spec()))
    out = tmp_path / "wheels"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(sdist)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    [wheel] = list(out.glob("*.whl"))
    assert wheel.name == "data_processing-0.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read("data_processing-0.2.dist-info/METADATA").decode()
        params = archive.read("data_processing/config/parameters_data_processing.yml")
    assert {
        "data_processing/__init__.py",
        "data_processing/nodes.py",
        "data_processing/pipeline.py",
        "data_processing/config/parameters_data_processing.yml",
        "data_processing/config/nested/data_processing.yml",
    } <= names
    assert not any(name.startswith("tests/") for name in names)
    assert params == b"threshold: 3\n"
    parsed = email.parser.HeaderParser().parsestr(metadata)
    assert parsed["Name"] == "data_processing"
    assert parsed.get_all("Requires-Dist") == ["pandas>=1.5", 'numpy<2; python_version < "3.12"']
