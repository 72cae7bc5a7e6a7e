"""Tests for reading untrusted micro-package sdists in memory (SPEC §3, §6)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import tomlkit

from micropkg_tasks.core.errors import SdistError
from micropkg_tasks.core.sdist.read import (
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_TOTAL_BYTES,
    SdistContents,
    SdistLimits,
    read_sdist,
)
from tests.hostile_archives import (
    EXPECTED_FRAGMENTS,
    HOSTILE_CASES,
    archive,
    dir_member,
    file_member,
    gzip_bomb,
    gzip_bytes,
    sdist_files,
    tar_gz,
    too_many_members,
    valid_sdist,
)

SOURCE = "dist/data_cleaning-0.1.tar.gz"
MARKED = 'pandas>=2; python_version >= "3.10"'


def read(data: bytes, **limits: int) -> SdistContents:
    return read_sdist(data, source=SOURCE, limits=SdistLimits(**limits))


def rejection(data: bytes, **limits: int) -> str:
    with pytest.raises(SdistError) as caught:
        read(data, **limits)
    message = str(caught.value)
    # One clear line naming the archive, with no traceback text leaking in.
    assert SOURCE in message
    assert "\n" not in message and "Traceback" not in message and 'File "' not in message
    return message


def with_pyproject(files: dict[str, bytes], project: dict[str, object], **tool: object) -> dict[str, bytes]:
    doc: dict[str, object] = {"project": project}
    if tool:
        doc["tool"] = {"micropkg": tool}
    return {**files, "pyproject.toml": tomlkit.dumps(doc).encode()}


def test_corpus_registries_agree() -> None:
    assert HOSTILE_CASES.keys() == EXPECTED_FRAGMENTS.keys()
    assert len(HOSTILE_CASES) >= 40


@pytest.mark.parametrize("case", sorted(HOSTILE_CASES))
def test_hostile_archive_is_rejected_with_a_clear_message(case: str) -> None:
    message = rejection(HOSTILE_CASES[case]())
    assert message.startswith(f"Cannot read sdist '{SOURCE}': ")
    assert EXPECTED_FRAGMENTS[case] in message


@pytest.mark.parametrize(
    "case, member",
    [
        ("dotdot_member", "data_cleaning/../../evil.py"),
        ("symlink_out_of_tree", "data_cleaning/passwd"),
        ("hardlink_member", "data_cleaning/copy.py"),
        ("duplicate_member", "data_cleaning/nodes.py"),
        ("case_collision", "data_cleaning/Nodes.py"),
        ("member_name_with_nul", "evil.py\\x00.txt"),
        ("two_top_level_folders", "other-0.1/other/__init__.py"),
        ("bad_package_name", "1abc"),
    ],
)
def test_rejection_names_the_member_at_fault(case: str, member: str) -> None:
    assert member in rejection(HOSTILE_CASES[case]())


def test_valid_sdist_round_trips_files_and_metadata() -> None:
    data = valid_sdist(requires=(MARKED, "numpy<3"), micropkg={"module": "pipelines.data_cleaning", "n": 1})
    contents = read(data)
    assert contents.source == SOURCE
    assert contents.sha256 == hashlib.sha256(data).hexdigest()
    assert (contents.root, contents.name) == ("data_cleaning-0.1", "data_cleaning")
    assert (contents.dist_name, contents.version) == ("data_cleaning", "0.1")
    assert contents.requires == (MARKED, "numpy<3")
    assert dict(contents.micropkg) == {"module": "pipelines.data_cleaning", "n": 1}
    expected = sdist_files(requires=(MARKED, "numpy<3"), micropkg={"module": "pipelines.data_cleaning", "n": 1})
    assert dict(contents.files) == expected


def test_helper_views_split_code_config_and_tests() -> None:
    files = {
        **sdist_files(),
        "data_cleaning/sub/x.py": b"x = 1\n",
        "data_cleaning/config/parameters/data_cleaning/nested.yml": b"a: 1\n",
        "tests/sub/test_x.py": b"",
    }
    contents = read(archive(files))
    assert contents.package_files() == {
        "__init__.py": files["data_cleaning/__init__.py"],
        "nodes.py": files["data_cleaning/nodes.py"],
        "sub/x.py": b"x = 1\n",
    }
    assert contents.config_files() == {
        "parameters_data_cleaning.yml": b"data_cleaning:\n  threshold: 3\n",
        "parameters/data_cleaning/nested.yml": b"a: 1\n",
    }
    assert contents.test_files() == {"__init__.py": b"", "test_nodes.py": files["tests/test_nodes.py"], "sub/test_x.py": b""}


def test_contents_are_read_only() -> None:
    contents = read(valid_sdist())
    with pytest.raises(TypeError):
        contents.files["evil.py"] = b""  # type: ignore[index]


def test_archive_without_folder_members_is_accepted() -> None:
    assert read(archive(sdist_files(), dirs=False)).name == "data_cleaning"


def test_pax_global_header_is_accepted() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "x"}) as tar:
        for path, data in sorted(sdist_files().items()):
            info, content = file_member(f"data_cleaning-0.1/{path}", data)
            tar.addfile(info, io.BytesIO(content or b""))
    assert read(gzip_bytes([buffer.getvalue()])).version == "0.1"


def test_pyproject_project_table_wins_over_pkg_info() -> None:
    files = with_pyproject(sdist_files(), {"name": "from-pyproject", "version": "2.0", "dependencies": ["attrs"]})
    contents = read(archive(files))
    assert (contents.dist_name, contents.version, contents.requires) == ("from-pyproject", "2.0", ("attrs",))
    assert dict(contents.micropkg) == {}


def test_dynamic_fields_fall_back_to_pkg_info() -> None:
    project = {"name": "from-pyproject", "version": "9.9", "dynamic": ["version", "dependencies"]}
    contents = read(archive(with_pyproject(sdist_files(requires=(MARKED,)), project, module="m")))
    assert (contents.dist_name, contents.version) == ("from-pyproject", "0.1")
    assert contents.requires == (MARKED,)
    assert dict(contents.micropkg) == {"module": "m"}


def test_pkg_info_alone_is_enough() -> None:
    files = {path: data for path, data in sdist_files(requires=(MARKED, "numpy")).items() if path != "pyproject.toml"}
    contents = read(archive(files))
    assert (contents.dist_name, contents.version, contents.requires) == ("data_cleaning", "0.1", (MARKED, "numpy"))
    assert dict(contents.micropkg) == {}


def test_pyproject_alone_is_enough() -> None:
    files = {path: data for path, data in sdist_files(requires=(MARKED,)).items() if path != "PKG-INFO"}
    contents = read(archive(files))
    assert (contents.dist_name, contents.version, contents.requires) == ("data_cleaning", "0.1", (MARKED,))


def test_requires_fall_back_to_egg_info_unconditional_section() -> None:
    files = with_pyproject(sdist_files(requires=()), {"name": "data_cleaning", "dynamic": ["version", "dependencies"]})
    files["data_cleaning.egg-info/requires.txt"] = (
        f"{MARKED}\n\n# a comment\nnumpy\n\n[dev]\npytest\n\n[:sys_platform == 'win32']\npywin32\n"
    ).encode()
    files["data_cleaning.egg-info/PKG-INFO"] = b"Name: data_cleaning\n"
    contents = read(archive(files))
    assert contents.requires == (MARKED, "numpy")
    assert contents.name == "data_cleaning"  # egg-info holds no __init__.py and is never the package


def test_declared_dependencies_are_not_overridden_by_egg_info() -> None:
    files = {**sdist_files(requires=("attrs",)), "data_cleaning.egg-info/requires.txt": b"numpy\n"}
    assert read(archive(files)).requires == ("attrs",)


def test_missing_version_everywhere_is_an_error() -> None:
    files = with_pyproject(sdist_files(), {"name": "data_cleaning", "dynamic": ["version"]})
    files["PKG-INFO"] = b"Metadata-Version: 2.1\nName: data_cleaning\n"
    message = rejection(archive(files))
    assert "version" in message and "missing metadata" in message


def test_invalid_version_and_name_are_errors() -> None:
    files = with_pyproject(sdist_files(), {"name": "data_cleaning", "version": "not a version"})
    assert "invalid version 'not a version'" in rejection(archive(files))
    files = with_pyproject(sdist_files(), {"name": "bad name!", "version": "0.1"})
    assert "invalid package name" in rejection(archive(files))


def test_requirement_with_line_break_is_rejected() -> None:
    files = dict(sdist_files())
    files.pop("pyproject.toml")
    files["PKG-INFO"] = b"Metadata-Version: 2.1\nName: x\nVersion: 1\nRequires-Dist: numpy\n  --index-url http://evil\n"
    assert "invalid requirement" in rejection(archive(files))


def test_default_limits() -> None:
    assert SdistLimits() == SdistLimits(DEFAULT_MAX_TOTAL_BYTES, DEFAULT_MAX_MEMBERS)
    assert DEFAULT_MAX_TOTAL_BYTES == 100 * 1024 * 1024 and DEFAULT_MAX_MEMBERS == 10_000
    with pytest.raises(ValueError):
        SdistLimits(max_members=0)


def test_size_cap_is_configurable() -> None:
    files = {**sdist_files(), "data_cleaning/data.csv": b"1,2,3\n" * 5000}  # about 30 kB
    data = archive(files)
    message = rejection(data, max_total_bytes=20_000)
    assert "size cap of 20000 bytes (max_total_bytes)" in message and "data.csv" in message
    assert read(data, max_total_bytes=40_000).files["data_cleaning/data.csv"] == files["data_cleaning/data.csv"]


def test_member_cap_is_configurable() -> None:
    data = valid_sdist()  # 1 root folder + 4 sub-folders + 7 files
    assert "member cap of 5 (max_members)" in rejection(data, max_members=5)
    assert read(data, max_members=12).name == "data_cleaning"


def test_member_cap_stops_before_reading_the_rest() -> None:
    # The tail of this archive is cut off: a reader that went on past the cap
    # would report the truncation, so naming member 11 proves it stopped early.
    data = too_many_members(300, truncate_tail=True)
    message = rejection(data, max_members=10)
    assert "is member number 11, over the member cap of 10" in message
    assert "truncated" in rejection(data)  # the tail really is broken


def test_declared_size_is_checked_before_the_content_is_inflated() -> None:
    cap = 1024 * 1024
    bomb = gzip_bomb(cap)
    assert len(bomb) < cap // 100  # small when compressed
    message = rejection(bomb, max_total_bytes=cap)
    assert "zeros.bin' declares 2097152 bytes" in message and f"size cap of {cap} bytes" in message
    # Cutting the bomb's body off changes nothing: its bytes were never read.
    assert rejection(bomb[: len(bomb) // 2], max_total_bytes=cap) == message


def test_size_cap_counts_the_running_total() -> None:
    files = {**sdist_files(), **{f"data_cleaning/part{i}.bin": b"x" * 4000 for i in range(5)}}
    message = rejection(archive(files), max_total_bytes=15_000)
    assert "part3.bin" in message or "part2.bin" in message


def test_reading_writes_nothing_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    read(valid_sdist())
    for case in ("dotdot_member", "absolute_member", "symlink_out_of_tree"):
        with pytest.raises(SdistError):
            read(HOSTILE_CASES[case]())
    assert os.listdir(tmp_path) == []


def test_empty_folders_are_skipped() -> None:
    data = tar_gz([dir_member("data_cleaning-0.1"), dir_member("data_cleaning-0.1/empty")])
    assert "no package folder" in rejection(data)
    files = archive(sdist_files())
    assert all(not path.endswith("/") for path in read(files).files)
