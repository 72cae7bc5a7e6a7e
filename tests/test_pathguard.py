"""The path guard (``core/change/pathguard.py``): a path is inside the project only if its real location is.

The sibling case matters most: a project at ``.../proj`` and a folder ``.../proj-evil`` beside it
share a prefix as strings. A check that compares prefixes without the separator lets a symlink
from inside ``proj`` to ``proj-evil`` through; these tests catch that.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from micropkg_tasks import package
from micropkg_tasks.core.change.pathguard import PathGuard, guard, relative_path_problem
from micropkg_tasks.core.errors import ProjectError
from tests.conftest import kedro_project, run_micropkg
from tests.helpers import build_file_tree, snapshot_tree


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    """``proj`` with a folder, and ``proj-evil`` beside it, holding a file."""
    build_file_tree(tmp_path / "proj-evil", {"victim.txt": "outside\n", "pipelines/__init__.py": ""}, dedent=False)
    return build_file_tree(tmp_path / "proj", {"src/keep.txt": "inside\n"}, dedent=False)


def test_a_plain_path_inside_the_project_is_accepted(proj: Path) -> None:
    guard(proj, proj / "src" / "keep.txt")
    guard(proj, proj / "src" / "new.txt")  # need not exist yet
    guard(proj, proj / "new-folder" / "deeper" / "new.txt")


def test_a_folder_symlink_to_a_sibling_sharing_the_prefix_is_refused(proj: Path) -> None:
    (proj / "src" / "link").symlink_to(proj.parent / "proj-evil", target_is_directory=True)
    with pytest.raises(ProjectError) as caught:
        guard(proj, proj / "src" / "link" / "victim.txt", "delete")
    message = str(caught.value)
    assert message.startswith(f"refusing to delete {proj / 'src/link/victim.txt'}: it resolves to ")
    assert str(proj.parent / "proj-evil" / "victim.txt") in message and "outside the project" in message


def test_a_file_symlink_to_a_sibling_sharing_the_prefix_is_refused(proj: Path) -> None:
    (proj / "src" / "victim.txt").symlink_to(proj.parent / "proj-evil" / "victim.txt")
    with pytest.raises(ProjectError, match="outside the project"):
        PathGuard(proj).check(proj / "src" / "victim.txt", "read")


def test_the_sibling_itself_is_refused_when_named_directly(proj: Path) -> None:
    victim = proj.parent / "proj-evil" / "victim.txt"
    for check in (lambda: guard(proj, victim), lambda: PathGuard(proj).check(victim)):
        with pytest.raises(ProjectError) as caught:
            check()
        assert str(caught.value) == (
            f"refusing to write {victim}: it resolves to {os.path.realpath(victim)}, outside the project {proj} "
            "(a symlinked folder or file points out of it)"
        )


def test_a_symlink_that_stays_inside_the_project_is_accepted(proj: Path) -> None:
    (proj / "alias").symlink_to(proj / "src", target_is_directory=True)
    (proj / "src" / "keep-link.txt").symlink_to(proj / "src" / "keep.txt")
    guard(proj, proj / "alias" / "keep.txt")
    guard(proj, proj / "src" / "keep-link.txt")


def test_a_project_whose_folder_name_ends_in_a_space_is_its_own_inside(tmp_path: Path) -> None:
    """Only the separator is stripped from the root before the prefix test, never other characters."""
    root = build_file_tree(tmp_path / "proj ", {"src/keep.txt": "inside\n"}, dedent=False)
    guard(root, root / "src" / "keep.txt")


def test_a_project_reached_through_a_symlink_is_still_inside(tmp_path: Path, proj: Path) -> None:
    """The root is compared by its real location too: a project opened through a link works."""
    (tmp_path / "via").symlink_to(proj, target_is_directory=True)
    guard(tmp_path / "via", tmp_path / "via" / "src" / "keep.txt")


def test_the_project_root_itself_is_not_a_path_to_change(proj: Path) -> None:
    (proj / "src" / "up").symlink_to(proj, target_is_directory=True)
    with pytest.raises(ProjectError, match="outside the project"):
        guard(proj, proj / "src" / "up")


@pytest.mark.parametrize("spelling", ["src/../src/keep.txt", "src/..", "src/sub/../../keep.txt"])
def test_a_path_spelled_with_dot_dot_is_refused_before_it_is_resolved(proj: Path, spelling: str) -> None:
    with pytest.raises(ProjectError) as caught:
        guard(proj, Path(f"{proj}/{spelling}"), "read")
    assert str(caught.value) == f"refusing to read {proj}/{spelling}: it is not a plain path inside the project {proj}"


def test_a_relative_path_is_refused(proj: Path) -> None:
    cwd = os.getcwd()
    os.chdir(proj)
    try:
        with pytest.raises(ProjectError, match="is not a plain path inside the project"):
            guard(proj, Path("src/keep.txt"))
    finally:
        os.chdir(cwd)


def test_one_guard_checks_many_paths_of_a_folder_alike(proj: Path) -> None:
    """``PathGuard`` resolves a folder once; each path in it is still judged on its own."""
    (proj / "src" / "out.txt").symlink_to(proj.parent / "proj-evil" / "victim.txt")
    checker = PathGuard(proj)
    checker.check(proj / "src" / "keep.txt")
    with pytest.raises(ProjectError, match="outside the project"):
        checker.check(proj / "src" / "out.txt")
    checker.check(proj / "src" / "other.txt")


def test_a_pull_into_a_pipelines_folder_linked_to_a_sibling_is_refused(tmp_path: Path) -> None:
    """Through the CLI: ``src/<pkg>/pipelines`` links to ``<project>-evil/pipelines``. The pull
    refuses in one sentence, and nothing changes, in the project or beside it."""
    source = build_file_tree(tmp_path / "source", {
        "pyproject.toml": '[tool.kedro]\npackage_name = "core"\n',
        "src/core/__init__.py": "",
        "src/core/pipelines/__init__.py": "",
        "src/core/pipelines/alpha/__init__.py": '__version__ = "0.1"\n',
        "src/core/pipelines/alpha/nodes.py": "def run():\n    return 1\n",
        "tests/__init__.py": "",
    }, dedent=False)
    package(source, "pipelines.alpha", destination=str(tmp_path / "sdists"))
    workspace = tmp_path / "ws"
    project = kedro_project(workspace / "proj", "churn")
    build_file_tree(workspace / "proj-evil", {"pipelines/__init__.py": "", "victim.txt": "outside\n"}, dedent=False)
    pipelines = project / "src" / "churn" / "pipelines"
    shutil.rmtree(pipelines)
    pipelines.symlink_to(workspace / "proj-evil" / "pipelines", target_is_directory=True)
    before = snapshot_tree(workspace)

    result = run_micropkg(
        ["pull", str(tmp_path / "sdists" / "alpha-0.1.tar.gz"), "--destination", "pipelines", "--no-compile"],
        project,
    )

    assert result.exit_code == 1, result.stdout + result.stderr
    assert "outside the project" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot_tree(workspace) == before


@pytest.mark.parametrize("relative, shown", [
    (".git/config", ".git"),
    ("src/.git/hooks/post-checkout", ".git"),
    ("conf/.micropkg/journal", ".micropkg"),
])
def test_a_recorded_path_below_git_or_our_state_is_refused_naming_that_folder(relative, shown):
    assert relative_path_problem(relative) == f"which is inside {shown}/, where micropkg never writes"


def test_a_managed_folder_given_with_a_trailing_slash_is_the_same_folder():
    assert relative_path_problem("src/pkg/nodes.py", ("src/pkg/",)) is None
    assert relative_path_problem("src/pkg-other/nodes.py", ("src/pkg/",)) is not None


def test_a_managed_folder_is_matched_whole_whatever_its_last_letter():
    """Only trailing slashes are stripped from a folder: ``conf/X`` must not widen to ``conf``."""
    assert relative_path_problem("conf/X/a.yml", ("conf/X",)) is None
    assert relative_path_problem("conf/other.yml", ("conf/X",)) is not None
