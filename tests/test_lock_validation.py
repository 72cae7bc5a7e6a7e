"""Validation of ``micropkg.lock`` as read from disk (``core/lock/lockfile.py``).

A lock is project state that anyone can edit or plant, so every installed-file path it lists is
checked before anything is read, written or deleted through it, and every key has the type the
writer gives it. Each refusal is one sentence naming the file, the entry and the path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.lock.lockfile import (
    Lock,
    LockEntry,
    parse_lock,
    read_lock,
    read_project_lock,
    validate_lock_paths,
)
from micropkg_tasks.core.project.project import load_project
from tests.conftest import kedro_project

FOLDERS = ("src/pkg", "tests/", "conf")


def entry(**fields: object) -> LockEntry:
    base: dict[str, object] = {"module": "pipelines.x", "name": "x", "source": "dist/x.tar.gz", "version": "0.1",
                               "sdist_sha256": "aa"}
    return LockEntry(**{**base, **fields})  # type: ignore[arg-type]


def refusal(relative: str, folders: tuple[str, ...] = ()) -> str | None:
    lock = Lock({"pipelines.x": entry(files={relative: "aa"})})
    try:
        validate_lock_paths(lock, display="micropkg.lock", folders=folders)
    except ProjectError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    ("relative", "problem"),
    [
        ("", "which is not a plain relative path"),
        ("src/pkg/a\x00b.py", "which is not a plain relative path"),
        ("/etc/passwd", "which is an absolute path"),
        ("C:/Windows/x.py", "which is an absolute path"),
        ("c:", "which is an absolute path"),
        ("../outside.py", "which has a '..' component"),
        ("src/pkg/../../outside.py", "which has a '..' component"),
        ("src//pkg/x.py", "which is not a normalised relative path"),
        ("src/pkg/x.py/", "which is not a normalised relative path"),
        ("src/./pkg/x.py", "which is not a normalised relative path"),
        ("./src/pkg/x.py", "which is not a normalised relative path"),
        (".", "which is not a normalised relative path"),
    ],
)
def test_a_path_that_is_not_plain_relative_and_normalised_is_refused(relative: str, problem: str) -> None:
    import json

    assert refusal(relative) == (
        f'micropkg.lock is invalid and was not used: [micropkg."pipelines.x"] lists {json.dumps(relative)}, '
        f"{problem}; fix or remove that entry"
    )


@pytest.mark.parametrize(
    "relative", ["src/pkg/x.py", "c", "1:x/y.py", "..a/b..py", "src/pkg/.hidden/x.py", "a.b/c", "src/pkg/a . b.py"]
)
def test_plain_relative_paths_are_accepted(relative: str) -> None:
    assert refusal(relative) is None


@pytest.mark.parametrize("relative", ["src/pkg/x.py", "tests/test_x.py", "conf/base/x.yml", "src/pkg/a/b/c.py"])
def test_paths_inside_the_managed_folders_are_accepted(relative: str) -> None:
    assert refusal(relative, FOLDERS) is None


@pytest.mark.parametrize("relative", ["src/pkg-evil/x.py", "src/pkgx.py", "src/pkg", "tests", "README.md"])
def test_paths_outside_the_managed_folders_are_refused(relative: str) -> None:
    message = refusal(relative, FOLDERS)
    assert message is not None
    assert message.endswith(
        "which is outside the project's code, tests and conf folders (src/pkg, tests/, conf); fix or remove that entry"
    )


@pytest.mark.parametrize("relative", [".git/config", "src/pkg/.git/hooks/pre-commit", ".micropkg/journal"])
def test_paths_in_git_or_the_run_state_folder_are_refused_even_inside_a_managed_folder(relative: str) -> None:
    message = refusal(relative, (*FOLDERS, ".git", ".micropkg"))
    assert message is not None and "where micropkg never writes" in message


def test_a_managed_folder_is_matched_whole_whatever_its_last_character() -> None:
    assert refusal("src/MAX/x.py", ("src/MAX",)) is None
    assert refusal("src/pkg_/x.py", ("src/pkg_/",)) is None
    assert refusal("src/MAXX/x.py", ("src/MAX",)) is not None


def test_blobs_and_conflicts_are_checked_too_and_the_first_module_is_named() -> None:
    for bad in ({"blobs": {"../b.py": "bb"}}, {"conflicts": ["/abs.py"]}):
        lock = Lock({"pipelines.z": entry(module="pipelines.z"), "pipelines.a": entry(module="pipelines.a", **bad)})
        with pytest.raises(ProjectError, match=r'\[micropkg\."pipelines\.a"\] lists'):
            validate_lock_paths(lock, display="micropkg.lock")
    lock = Lock({"pipelines.b": entry(files={"../b.py": "aa"}), "pipelines.a": entry(files={"/a.py": "aa"})})
    with pytest.raises(ProjectError, match=r'\[micropkg\."pipelines\.a"\] lists "/a\.py"'):
        validate_lock_paths(lock, display="micropkg.lock")


def parsed(**raw: object) -> Lock:
    fields = {"name": "x", "source": "dist/x.tar.gz", "version": "0.1", "sdist-sha256": "aa", **raw}
    return parse_lock({"version": 1, "micropkg": {"pipelines.x": fields}}, display="micropkg.lock")


def test_a_full_entry_is_read_with_every_field() -> None:
    lock = parsed(**{
        "source-sha256": "cc", "options": {"alias": "y"}, "requirements": ["pandas>=2"],
        "files": {"src/pkg/x.py": "aa", "src/pkg/y.py": "bb"}, "blobs": {"src/pkg/x.py": "b1"},
        "conflicts": ["src/pkg/y.py"], "origin": "core#pipelines.x", "depends-on": ["pipelines.base"],
    })
    assert lock.entries["pipelines.x"] == LockEntry(
        module="pipelines.x", name="x", source="dist/x.tar.gz", version="0.1", sdist_sha256="aa",
        source_sha256="cc", options={"alias": "y"}, requirements=["pandas>=2"],
        files={"src/pkg/x.py": "aa", "src/pkg/y.py": "bb"}, blobs={"src/pkg/x.py": "b1"},
        conflicts=["src/pkg/y.py"], origin="core#pipelines.x", depends_on=["pipelines.base"],
    )


def test_optional_keys_may_be_absent_and_an_empty_lock_is_version_one() -> None:
    lock = parsed()
    assert lock.entries["pipelines.x"] == entry()
    assert parse_lock({}, display="micropkg.lock").entries == {}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"depends-on": "pipelines.y"}, "'depends-on' must be a list of strings"),
        ({"depends-on": [1]}, "'depends-on' must be a list of strings"),
        ({"conflicts": "src/pkg/x.py"}, "'conflicts' must be a list of paths listed under 'files'"),
        ({"files": {"src/pkg/x.py": "aa"}, "conflicts": ["src/pkg/y.py"]},
         "'conflicts' must be a list of paths listed under 'files'"),
        ({"files": {"src/pkg/x.py": "aa"}, "blobs": {"src/pkg/y.py": "bb"}},
         "'blobs' names a path that is not listed under 'files'"),
        ({"blobs": ["src/pkg/x.py"]}, "'blobs' must be a table of strings"),
        ({"origin": 3}, "key 'origin' must be a string"),
        ({"source": None}, "key 'source' must be a string"),
    ],
)
def test_a_key_of_the_wrong_shape_is_one_sentence(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(ProjectError) as caught:
        parsed(**raw)
    assert str(caught.value) == f'micropkg.lock [micropkg."pipelines.x"]: {problem}'


def test_read_lock_refuses_a_bad_path_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "micropkg.lock"
    path.write_text(
        'version = 1\n[micropkg."pipelines.x"]\nname = "x"\nsource = "s"\nversion = "0.1"\nsdist-sha256 = "aa"\n'
        '[micropkg."pipelines.x".files]\n"../victim.txt" = "aa"\n',
        encoding="utf-8",
    )
    with pytest.raises(ProjectError) as caught:
        read_lock(path)
    assert str(caught.value).startswith(f'{path} is invalid and was not used: [micropkg."pipelines.x"] lists "../victim.txt"')


def test_a_project_lock_may_list_only_the_code_tests_and_conf_folders(tmp_path: Path) -> None:
    root = kedro_project(tmp_path / "project", "churn")
    lock_text = (
        'version = 1\n[micropkg."pipelines.x"]\nname = "x"\nsource = "s"\nversion = "0.1"\nsdist-sha256 = "aa"\n'
        '[micropkg."pipelines.x".files]\n"{}" = "aa"\n'
    )
    (root / "micropkg.lock").write_text(lock_text.format("src/churn/pipelines/x/nodes.py"), encoding="utf-8")
    project = load_project(root)
    assert set(read_project_lock(project).entries) == {"pipelines.x"}
    (root / "micropkg.lock").write_text(lock_text.format("pyproject.toml"), encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        read_project_lock(project)
    assert str(caught.value) == (
        f'{root / "micropkg.lock"} is invalid and was not used: [micropkg."pipelines.x"] lists "pyproject.toml", '
        "which is outside the project's code, tests and conf folders (src/churn, tests, conf); fix or remove that entry"
    )


def test_a_project_lock_that_links_out_of_the_project_is_not_read(tmp_path: Path) -> None:
    root = kedro_project(tmp_path / "project", "churn")
    (tmp_path / "elsewhere.lock").write_text("version = 1\n", encoding="utf-8")
    (root / "micropkg.lock").symlink_to(tmp_path / "elsewhere.lock")
    project = load_project(root)
    with pytest.raises(ProjectError) as caught:
        read_project_lock(project)
    assert str(caught.value).startswith(
        f"refusing to read {root / 'micropkg.lock'}: it resolves to {tmp_path.resolve() / 'elsewhere.lock'}, outside"
    )
    (root / "micropkg.lock").unlink()
    (root / "kept.lock").write_text("version = 1\n", encoding="utf-8")
    (root / "micropkg.lock").symlink_to(root / "kept.lock")  # a link that stays inside is read
    assert read_project_lock(load_project(root)).entries == {}


def test_the_init_files_a_pull_created_are_checked_like_installed_files() -> None:
    lock = Lock({"pipelines.x": entry(files={"src/pkg/x.py": "aa"}, created=["../outside/__init__.py"])})
    with pytest.raises(ProjectError, match=r'lists "\.\./outside/__init__\.py", which has a \'\.\.\' component'):
        validate_lock_paths(lock, display="micropkg.lock", folders=FOLDERS)


def test_every_entry_is_checked_not_only_those_before_a_valid_one() -> None:
    lock = Lock({
        "pipelines.a": entry(module="pipelines.a", files={"src/pkg/a.py": "aa"}),
        "pipelines.b": entry(module="pipelines.b", files={"../b.py": "aa"}),
    })
    with pytest.raises(ProjectError, match=r'\[micropkg\."pipelines\.b"\] lists "\.\./b\.py"'):
        validate_lock_paths(lock, display="micropkg.lock", folders=FOLDERS)
