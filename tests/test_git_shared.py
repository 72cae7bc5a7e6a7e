"""``[[tool.micropkg.shared]]`` entries whose source is a project in another git repository.

A monorepo keeps two of its projects in step with the ``utils.io`` micro-package of a
real git repository (a copy of the example monorepo, tagged and committed), through the
real CLI at the monorepo root.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from micropkg_tasks.core.lock.lockfile import read_lock
from tests.conftest import run_micropkg
from tests.helpers import commit_all, git, snapshot_tree
from tests.test_copy_states import assert_everywhere
from tests.test_git_sources import READERS, edit_readers, repo  # noqa: F401  (repo: a fixture)

CHURN, FORECAST = "projects/churn", "projects/forecast"
MODULE = "utils.io"
INSTALLED = {CHURN: "src/churn/utils/io/readers.py", FORECAST: "src/forecast/utils/io/readers.py"}
ENTRY = "[[tool.micropkg.shared]] #1 (utils.io)"


def shared_config(source: str) -> str:
    """The monorepo's root pyproject.toml: a git entry, one of the monorepo's own, and a second
    git entry at the same ref (so the ref is asked for once, however many entries name it)."""
    return f"""[tool.micropkg.monorepo]
projects = ["projects/*"]

[[tool.micropkg.shared]]
micropkg = "utils.io"
source = "{source}"
targets = ["{CHURN}", "{FORECAST}"]

[[tool.micropkg.shared]]
micropkg = "pipelines.data_cleaning"
source = "projects/core"
targets = ["{CHURN}"]

[[tool.micropkg.shared]]
micropkg = "pipelines.data_cleaning"
source = "{source}"
targets = ["{FORECAST}"]
alias = "cleaning"
"""


def git_source(repo: Path, ref: str = "main", folder: str = "projects/core") -> str:
    return f"git+{repo.as_uri()}@{ref}#{folder}"


@pytest.fixture
def mono(monorepo: Path, repo: Path) -> Path:  # noqa: F811  (repo: the fixture imported above)
    (monorepo / "pyproject.toml").write_text(shared_config(git_source(repo)), encoding="utf-8")
    forecast = monorepo / FORECAST / "pyproject.toml"  # its pull manifest would claim utils.io from ../core
    forecast.write_text(forecast.read_text(encoding="utf-8").split("[tool.kedro.micropkg.pull]")[0], encoding="utf-8")
    return monorepo


class GitCalls:
    """A ``git`` first on PATH that logs each command's arguments, then runs the real git."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real = shutil.which("git")
        assert real is not None
        folder.mkdir()
        self.log = folder / "calls.log"
        self.log.write_text("")
        wrapper = folder / "git"
        wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{self.log}"\nexec "{real}" "$@"\n')
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    def take(self) -> list[str]:
        """The commands run since the last call."""
        calls = self.log.read_text().splitlines()
        self.log.write_text("")
        return calls

    def count(self, command: str) -> int:
        return sum(1 for call in self.take() if f" {command} " in f" {call} ")


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitCalls:
    return GitCalls(tmp_path / "git-wrapper", monkeypatch)


def run(argv: list[str], folder: Path):
    result = run_micropkg(argv, folder)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def sync(mono: Path, *args: str):
    result = run(["sync-shared", "--no-compile", *args], mono)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def lock_entry(mono: Path, project: str):
    return read_lock(mono / project / "micropkg.lock").entries[MODULE]


# -- sync-shared: every target, the ref resolved once, the commit recorded -------------------------


def test_sync_installs_into_every_target_from_one_resolution_and_records_the_commit(mono, repo, calls):
    main = git(repo, "rev-parse", "main").strip()
    sync(mono)
    assert calls.count("ls-remote") == 1  # one ref, two entries, two targets: asked once
    for project in (CHURN, FORECAST):
        entry = lock_entry(mono, project)
        assert entry.commit == main
        assert entry.source == f"git+{repo.as_uri()}@main#projects/core:utils.io"
        assert (mono / project / INSTALLED[project]).read_bytes() == (repo / "projects/core" / READERS).read_bytes()
    # A second run with the ref unmoved writes nothing and fetches nothing: the cache has the commit.
    before = snapshot_tree(mono)
    second = sync(mono)
    assert snapshot_tree(mono) == before
    log = calls.take()
    assert sum(" ls-remote " in f" {call} " for call in log) == 1
    assert not [call for call in log if " fetch " in f" {call} "], log
    assert "in sync" in second.stdout


def test_a_moved_ref_brings_every_target_to_the_new_commit(mono, repo, calls):
    sync(mono)
    moved = edit_readers(repo, "# moved on\n")
    calls.take()
    sync(mono)
    assert calls.count("ls-remote") == 1
    for project in (CHURN, FORECAST):
        assert lock_entry(mono, project).commit == moved
        assert "# moved on" in (mono / project / INSTALLED[project]).read_text(encoding="utf-8")


@pytest.mark.parametrize("cleared", [None, "bases"], ids=["as-is", "store-emptied"])
def test_merge_keeps_a_local_edit_and_takes_upstreams_change(mono, repo, cleared):
    """With the store of installed files emptied (and the monorepo no git repository), the base
    is the file as packaged from the commit the lock records."""
    sync(mono)
    if cleared:
        shutil.rmtree(Path(os.environ["MICROPKG_CACHE_DIR"]) / cleared)
    installed = mono / CHURN / INSTALLED[CHURN]
    installed.write_text("# mine\n" + installed.read_text(encoding="utf-8"), encoding="utf-8")
    edited = snapshot_tree(mono / CHURN)
    moved = edit_readers(repo, "# moved on\n")
    refused = run(["sync-shared", "--no-compile"], mono)
    assert refused.exit_code != 0
    assert snapshot_tree(mono / CHURN) == edited  # the edited target is refused whole without --merge
    sync(mono, "--merge")
    text = installed.read_text(encoding="utf-8")
    assert text.startswith("# mine\n") and text.endswith("# moved on\n")
    assert lock_entry(mono, CHURN).commit == moved


# -- one state per copy, whoever asks ------------------------------------------------------------


def test_not_installed_everywhere(mono):
    assert_everywhere(mono, CHURN, MODULE, "not installed", 1)


def test_in_sync_everywhere(mono):
    sync(mono)
    assert_everywhere(mono, CHURN, MODULE, "in sync", 0)
    assert_everywhere(mono, FORECAST, MODULE, "in sync", 0)


def test_upstream_moved_everywhere_once_the_ref_names_another_commit(mono, repo):
    sync(mono)
    edit_readers(repo, "# moved on\n")
    assert_everywhere(mono, CHURN, MODULE, "upstream moved", 1)
    assert_everywhere(mono, FORECAST, MODULE, "upstream moved", 1)
    # Every report names the copy's source as the git location a pull would take.
    shown = f"{CHURN}: {MODULE} (from git+{repo.as_uri()}@main#projects/core:{MODULE})"
    for argv in (["check"], ["sync-shared", "--check"]):
        assert shown in run(argv, mono).stdout, argv
    # The annotation points at the target's lock, the one file here that names that source.
    annotations = [line for line in run(["sync-shared", "--check", "--format", "github"], mono).stdout.splitlines()
                   if line.startswith("::error ") and shown in line]
    assert annotations and all(line.startswith(f"::error file={CHURN}/micropkg.lock,") for line in annotations)


def test_a_new_commit_outside_the_micro_package_is_upstream_moved_too(mono, repo):
    """The commit is what is compared, not the files: the lock then names the commit they came from."""
    sync(mono)
    (repo / "README.md").write_text("elsewhere\n", encoding="utf-8")
    moved = commit_all(repo, "outside the project")
    assert_everywhere(mono, CHURN, MODULE, "upstream moved", 1)
    sync(mono)
    assert lock_entry(mono, CHURN).commit == moved
    assert_everywhere(mono, CHURN, MODULE, "in sync", 0)


def test_locally_edited_everywhere(mono):
    sync(mono)
    installed = mono / CHURN / INSTALLED[CHURN]
    installed.write_text(installed.read_text(encoding="utf-8") + "# mine\n", encoding="utf-8")
    assert_everywhere(mono, CHURN, MODULE, "locally edited", 3)


def test_source_missing_everywhere_when_the_ref_is_gone(mono, repo):
    sync(mono)
    (mono / "pyproject.toml").write_text(shared_config(git_source(repo, "no-such-branch")), encoding="utf-8")
    assert_everywhere(mono, CHURN, MODULE, "source missing", 1)


def test_each_read_only_command_resolves_the_ref_once(mono, repo, calls):
    sync(mono)
    edit_readers(repo, "# moved on\n")
    calls.take()
    for argv in (["status"], ["check"], ["check", "--json"], ["sync-shared", "--check"]):
        done = run(argv, mono)
        assert "upstream moved" in done.stdout, done.stdout
        assert calls.count("ls-remote") == 1, argv


def test_check_offline_runs_no_git_and_says_not_checked(mono, repo, calls):
    sync(mono)
    edit_readers(repo, "# moved on\n")
    calls.take()
    before = snapshot_tree(mono)
    for folder in (mono, mono / CHURN):
        done = run(["check", "--offline", "--json"], folder)
        assert done.exit_code == 0, done.stdout + done.stderr
        states = {(c["project"], c["module"]): c["state"] for c in json.loads(done.stdout)["copies"]}
        assert states[(CHURN, MODULE)] == "not checked (offline)"
    assert calls.take() == []
    assert snapshot_tree(mono) == before


def test_a_pull_manifest_entry_naming_the_copy_from_a_sibling_is_a_configuration_error(mono):
    sync(mono)
    forecast = mono / FORECAST / "pyproject.toml"
    forecast.write_text(forecast.read_text(encoding="utf-8")
                        + '[tool.kedro.micropkg.pull]\n"../core#utils.io" = {destination = "utils"}\n', encoding="utf-8")
    result = run(["check"], mono)
    assert result.exit_code == 1
    assert f"utils.io is claimed by {ENTRY} from git+" in result.stdout + result.stderr


# -- prerelease and affected -----------------------------------------------------------------------


def test_prerelease_in_sync_fails_once_upstream_moved(mono, repo):
    sync(mono)
    edit_readers(repo, "# moved on\n")
    result = run(["prerelease", "--keep-going", "--project", CHURN], mono)
    assert result.exit_code == 1
    assert f"{MODULE} (from git+{repo.as_uri()}@main#projects/core:utils.io): upstream moved" in result.stderr


def test_affected_leaves_a_git_sourced_entry_out_and_does_not_fail(mono):
    """The monorepo's own projects/core holds a utils.io too: editing it affects core alone,
    since the copies in churn and forecast come from the other repository."""
    sync(mono)
    git(mono, "init", "-q", "-b", "main")
    commit_all(mono, "first")
    readers = mono / "projects/core" / READERS
    readers.write_text(readers.read_text(encoding="utf-8") + "# here\n", encoding="utf-8")
    commit_all(mono, "edit core's own utils.io")
    result = run(["affected", "--since", "HEAD~1", "--json"], mono)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert [item["project"] for item in json.loads(result.stdout)] == ["projects/core"]


# -- errors: one sentence naming the entry; the other entries still sync ----------------------------


@pytest.mark.parametrize("source, expected", [
    (lambda repo: git_source(repo, "no-such-branch"), "has no tag or branch 'no-such-branch'"),
    (lambda repo: git_source(repo, "main", "projects/nowhere"), "holds no project"),
    (lambda repo: git_source(repo, "main", "projects/churn"), "has no module utils.io"),
])
def test_a_source_that_cannot_be_read_fails_its_entry_alone(mono, repo, source, expected):
    (mono / "pyproject.toml").write_text(shared_config(source(repo)), encoding="utf-8")
    _fails_alone(mono, expected)


def test_git_not_installed_fails_its_entry_alone(mono, monkeypatch):
    monkeypatch.setenv("PATH", str(mono / "no-git-here"))
    _fails_alone(mono, "git is not installed")


def _fails_alone(mono: Path, expected: str) -> None:
    forecast = snapshot_tree(mono / FORECAST)
    result = run(["sync-shared", "--no-compile"], mono)
    assert result.exit_code == 1
    said = result.stdout + result.stderr
    assert f"{ENTRY}: git+" in said and expected in said, said
    assert snapshot_tree(mono / FORECAST) == forecast  # the failed entry's only target: untouched
    lock = read_lock(mono / CHURN / "micropkg.lock")
    assert "pipelines.data_cleaning" in lock.entries and MODULE not in lock.entries  # the other entry synced
    assert not (mono / CHURN / "src/churn/utils").exists()


@pytest.mark.parametrize("source, expected", [
    ("git+file:///srv/repo.git#projects/core", "give the tag, branch or commit after an @"),
    ("git+file:///srv/repo.git@main#projects/core:utils.io", "give the project's folder only"),
    ("git+ftp://host/repo.git@main#projects/core", "git sources use git+https://"),
    ("git+https://user:s3cret@host/repo.git@ma..in", "is not a tag, branch or commit name"),
])
def test_a_malformed_git_source_is_one_sentence_naming_the_file_and_entry(mono, source, expected):
    (mono / "pyproject.toml").write_text(shared_config(source), encoding="utf-8")
    before = snapshot_tree(mono)
    for argv in (["sync-shared", "--no-compile"], ["check"], ["status"]):
        result = run(argv, mono)
        assert result.exit_code == 2, result.stdout + result.stderr
        line = result.stderr.strip()
        assert "\n" not in line and f"pyproject.toml {ENTRY} source git+" in line and expected in line, line
        assert "s3cret" not in result.stdout + result.stderr
    assert snapshot_tree(mono) == before
