"""Pulling, syncing and checking micro-packages straight from real git repositories at a ref."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from micropkg_tasks.core.lock.lockfile import read_lock
from tests.conftest import EXAMPLE_MONOREPO, kedro_project
from tests.git_http import TOKEN, USER, git_http  # noqa: F401  (a fixture)
from tests.helpers import commit_all, git, snapshot_tree

CORE = EXAMPLE_MONOREPO / "projects" / "core"
READERS = "src/core/utils/io/readers.py"
INSTALLED_READERS = "src/churn/utils/io/readers.py"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository holding the example monorepo (the core project in projects/core), tagged v1."""
    root = tmp_path / "shared-repo"
    shutil.copytree(EXAMPLE_MONOREPO, root, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "first")
    git(root, "tag", "v1")
    return root


@pytest.fixture
def root_repo(tmp_path: Path) -> Path:
    """A repository whose root is the core project."""
    root = tmp_path / "core-repo"
    shutil.copytree(CORE, root, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "first")
    return root


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return kedro_project(tmp_path / "churn", "churn")


def url(repo: Path, ref: str, target: str = "projects/core:utils.io") -> str:
    return f"git+{repo.as_uri()}@{ref}#{target}"


def edit_readers(repo: Path, text: str, prefix: str = "projects/core/") -> str:
    path = repo / prefix / READERS
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    return commit_all(repo, "change the readers")


# -- acceptance 1: a tag's content, the commit in the lock, a second pull writes nothing ---------


def test_pull_at_a_tag_installs_that_tags_content_and_records_the_commit(repo, target, cli):
    tagged = git(repo, "rev-parse", "v1").strip()
    edit_readers(repo, "# after the tag\n")  # main moves on; the tag does not
    done = cli(["pull", "--no-compile", "--destination", "utils", url(repo, "v1")], cwd=target)
    assert done.exit_code == 0, done.stderr
    installed = (target / INSTALLED_READERS).read_text(encoding="utf-8")
    assert "after the tag" not in installed
    assert "def read_records" in installed
    entry = read_lock(target / "micropkg.lock").entries["utils.io"]
    assert entry.commit == tagged
    assert entry.source == url(repo, "v1")
    before = snapshot_tree(target)
    again = cli(["pull", "--no-compile", "--destination", "utils", url(repo, "v1")], cwd=target)
    assert again.exit_code == 0, again.stderr
    assert snapshot_tree(target) == before


def test_subfolder_project_at_a_commit_hash(repo, target, cli):
    first = git(repo, "rev-parse", "HEAD").strip()
    edit_readers(repo, "# second commit\n")
    done = cli(["pull", "--no-compile", "--destination", "utils", url(repo, first)], cwd=target)
    assert done.exit_code == 0, done.stderr
    assert "second commit" not in (target / INSTALLED_READERS).read_text(encoding="utf-8")
    assert read_lock(target / "micropkg.lock").entries["utils.io"].commit == first


def test_project_at_the_repository_root(root_repo, target, cli):
    done = cli(["pull", "--no-compile", "--destination", "utils", f"git+{root_repo.as_uri()}@main#utils.io"], cwd=target)
    assert done.exit_code == 0, done.stderr
    assert (target / INSTALLED_READERS).read_bytes() != b""
    assert read_lock(target / "micropkg.lock").entries["utils.io"].commit == git(root_repo, "rev-parse", "HEAD").strip()


# -- acceptance 2: upstream moved, --update, sync-shared, --merge with the recorded base --------


def test_a_new_commit_on_the_branch_is_upstream_moved_until_pull_update(repo, target, cli):
    first = git(repo, "rev-parse", "main").strip()
    assert cli(["pull", "--no-compile", "--destination", "utils", url(repo, "main")], cwd=target).exit_code == 0
    clean = cli(["check", "--json"], cwd=target)
    assert clean.exit_code == 0, clean.stdout + clean.stderr
    moved = edit_readers(repo, "# moved on\n")
    before = snapshot_tree(target)
    checked = cli(["check"], cwd=target)
    assert checked.exit_code == 1
    assert "upstream moved" in checked.stdout
    assert "upstream moved: pull it again with --update" in checked.stdout  # the advice that works, below
    assert snapshot_tree(target) == before  # check writes nothing
    # The same ref without --update stays on the recorded commit: nothing is written.
    same = cli(["pull", "--no-compile", "--destination", "utils", url(repo, "main")], cwd=target)
    assert same.exit_code == 0, same.stderr
    assert snapshot_tree(target) == before
    assert read_lock(target / "micropkg.lock").entries["utils.io"].commit == first
    updated = cli(["pull", "--no-compile", "--destination", "utils", "--update", url(repo, "main")], cwd=target)
    assert updated.exit_code == 0, updated.stderr
    assert "# moved on" in (target / INSTALLED_READERS).read_text(encoding="utf-8")
    assert read_lock(target / "micropkg.lock").entries["utils.io"].commit == moved
    assert cli(["check"], cwd=target).exit_code == 0


def test_a_pull_manifest_entry_gone_stale_says_run_pull_all_update_and_that_brings_it_in_sync(repo, target, cli):
    pyproject = target / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8")
                         + f'\n[tool.micropkg.pull]\n"{url(repo, "main")}" = {{destination = "utils"}}\n',
                         encoding="utf-8")
    assert cli(["pull", "--all", "--no-compile"], cwd=target).exit_code == 0
    assert cli(["check"], cwd=target).exit_code == 0
    moved = edit_readers(repo, "# moved on\n")
    checked = cli(["check"], cwd=target)
    assert checked.exit_code == 1
    assert "upstream moved: run pull --all --update" in checked.stdout, checked.stdout
    assert cli(["pull", "--all", "--no-compile", "--update"], cwd=target).exit_code == 0
    assert read_lock(target / "micropkg.lock").entries["utils.io"].commit == moved
    assert cli(["check"], cwd=target).exit_code == 0


def test_check_offline_reports_not_checked_and_never_runs_git(repo, target, cli, monkeypatch):
    assert cli(["pull", "--no-compile", "--destination", "utils", url(repo, "main")], cwd=target).exit_code == 0
    edit_readers(repo, "# moved on\n")
    monkeypatch.setenv("PATH", str(target / "no-git-here"))  # git cannot be found: offline must not need it
    done = cli(["check", "--offline", "--json"], cwd=target)
    assert done.exit_code == 0, done.stdout + done.stderr
    copies = json.loads(done.stdout)["copies"]
    assert [c["state"] for c in copies] == ["not checked (offline)"]
    # Local edits are still found offline.
    path = target / INSTALLED_READERS
    path.write_text(path.read_text(encoding="utf-8") + "# mine\n", encoding="utf-8")
    edited = cli(["check", "--offline"], cwd=target)
    assert edited.exit_code == 3
    assert "locally edited" in edited.stdout


def test_a_changed_ref_moves_to_its_commit(repo, target, cli):
    assert cli(["pull", "--no-compile", "--destination", "utils", url(repo, "v1")], cwd=target).exit_code == 0
    moved = edit_readers(repo, "# on main\n")
    git(repo, "tag", "v2")
    done = cli(["pull", "--no-compile", "--destination", "utils", url(repo, "v2")], cwd=target)
    assert done.exit_code == 0, done.stderr
    entry = read_lock(target / "micropkg.lock").entries["utils.io"]
    assert (entry.commit, entry.source) == (moved, url(repo, "v2"))


# -- acceptance 4: a token in an https URL is never shown or stored ------------------------------


def _everything_written(*roots: Path) -> str:
    """The names and contents of every file below ``roots``, as one text (bytes decoded loosely)."""
    parts = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            parts.append(str(path))
            if path.is_file():
                parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def test_token_in_the_url_never_appears_in_output_lock_or_cache(repo, target, cli, git_http, monkeypatch):
    git_http.publish(repo, "shared.git")
    location = f"git+{git_http.url('shared.git')}@v1#projects/core:utils.io"
    done = cli(["pull", "--no-compile", "--destination", "utils", location, "--json"], cwd=target)
    assert done.exit_code == 0, done.stderr
    entry = read_lock(target / "micropkg.lock").entries["utils.io"]
    assert entry.commit == git(repo, "rev-parse", "v1^{commit}").strip()
    assert "***@127.0.0.1" in entry.source
    # The lock holds no token: check asks git without one, and the user's credential helper answers.
    helper = target.parent / "gitconfig"
    helper.write_text(f'[credential]\n\thelper = "!f() {{ echo username={USER}; echo password={TOKEN}; }}; f"\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(helper))
    checked = cli(["check", "--json"], cwd=target)
    assert checked.exit_code == 0, checked.stdout
    git(repo, "tag", "-f", "v1", edit_readers(repo, "# moved\n"))
    git_http.publish(repo, "shared.git")
    moved = cli(["check"], cwd=target)
    assert moved.exit_code == 1 and "upstream moved" in moved.stdout
    wrong = cli(["pull", "--no-compile", "--update", location.replace(TOKEN, "wrong-token-value"), "--json"], cwd=target)
    assert wrong.exit_code == 1
    cache = Path(os.environ["MICROPKG_CACHE_DIR"])
    for text in (done.stdout, done.stderr, checked.stdout, checked.stderr, moved.stdout, moved.stderr,
                 wrong.stdout, wrong.stderr, _everything_written(target, cache)):
        assert TOKEN not in text
        assert "wrong-token-value" not in text


def test_a_repository_that_needs_credentials_is_one_sentence(repo, target, cli, git_http):
    git_http.publish(repo, "shared.git")
    before = snapshot_tree(target)
    done = cli(["pull", "--no-compile", f"git+{git_http.url('shared.git', token=False)}@v1#projects/core:utils.io"],
               cwd=target)
    assert done.exit_code == 1
    assert done.stderr.count("\n") == 1 and "needs credentials" in done.stderr, done.stderr
    assert snapshot_tree(target) == before


# -- acceptance 5: each failure is one sentence, and the project is left as it was ---------------


def _fails_cleanly(cli, target: Path, location: str, expected: str, code: int = 1) -> None:
    before = snapshot_tree(target)
    done = cli(["pull", "--no-compile", "--destination", "utils", location, "--json"], cwd=target)
    assert done.exit_code == code, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert expected in done.stderr, done.stderr
    assert snapshot_tree(target) == before


def test_a_ref_that_does_not_exist(repo, target, cli):
    _fails_cleanly(cli, target, url(repo, "no-such-branch"), "has no tag or branch 'no-such-branch'")


def test_a_commit_that_does_not_exist(repo, target, cli):
    _fails_cleanly(cli, target, url(repo, "0" * 40), f"has no commit {'0' * 40}")


def test_a_path_missing_at_that_ref(repo, target, cli):
    _fails_cleanly(cli, target, url(repo, "v1", "projects/nowhere:utils.io"), "holds no project")


def test_a_module_missing_at_that_ref(repo, target, cli):
    _fails_cleanly(cli, target, url(repo, "v1", "projects/core:utils.nothing"), "has no module utils.nothing")


def test_an_unknown_host(target, cli):
    _fails_cleanly(cli, target, "git+https://no-such-host.invalid/org/repo.git@main#utils.io", "is not known")


def test_a_malformed_location_is_a_usage_error(target, cli):
    _fails_cleanly(cli, target, "git+https://example.com/org/repo.git#utils.io", "after an @", code=2)


def test_git_not_installed(repo, target, cli, monkeypatch):
    monkeypatch.setenv("PATH", str(target / "no-git-here"))
    _fails_cleanly(cli, target, url(repo, "v1"), "git is not installed")


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie nobody reaped has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_a_git_that_does_not_answer_times_out(tmp_path, target, cli, monkeypatch):
    stall = tmp_path / "stalling-ssh"
    started = tmp_path / "ssh.pid"
    stall.write_text(f"#!/bin/sh\necho $$ > {started}\nexec sleep 30\n")
    stall.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(stall))
    monkeypatch.setenv("MICROPKG_GIT_TIMEOUT", "0.5")
    _fails_cleanly(cli, target, "git+ssh://git@example.com/org/repo.git@main#utils.io", "did not finish within 0.5 seconds")
    # What git started (its ssh) was stopped with it, not left to sleep on. The kill is sent
    # before the command returns; the wait only covers the kernel finishing the exit.
    pid = int(started.read_text(encoding="utf-8"))
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(pid)


def test_a_bad_timeout_setting_is_a_usage_error(repo, target, cli, monkeypatch):
    monkeypatch.setenv("MICROPKG_GIT_TIMEOUT", "soon")
    _fails_cleanly(cli, target, url(repo, "v1"), "MICROPKG_GIT_TIMEOUT", code=2)


def _set_git_timeout(target: Path, value: str) -> None:
    pyproject = target / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + f"\n[tool.micropkg]\ngit_timeout = {value}\n",
                         encoding="utf-8")


def test_the_timeout_set_in_pyproject_stops_a_slow_server(repo, target, cli, git_http, monkeypatch):
    git_http.publish(repo, "shared.git")
    git_http.stall(20)  # far longer than the timeout; released when the server stops
    location = f"git+{git_http.url('shared.git')}@v1#projects/core:utils.io"
    _set_git_timeout(target, "0.5")
    _fails_cleanly(cli, target, location, "did not finish within 0.5 seconds (raise [tool.micropkg] git_timeout")
    monkeypatch.setenv("MICROPKG_GIT_TIMEOUT", "0.25")  # the variable wins over the setting
    _fails_cleanly(cli, target, location, "did not finish within 0.25 seconds")


@pytest.mark.parametrize("bad", ['"soon"', "0", "-1", "nan", "inf", "true"])
def test_a_bad_timeout_in_pyproject_is_one_sentence(repo, target, cli, bad):
    _set_git_timeout(target, bad)
    _fails_cleanly(cli, target, url(repo, "v1"), "pyproject.toml [tool.micropkg] key 'git_timeout' must be a "
                   "positive number of seconds", code=2)


def test_check_names_a_bad_timeout_in_pyproject(repo, target, cli):
    assert cli(["pull", "--no-compile", "--destination", "utils", url(repo, "v1")], cwd=target).exit_code == 0
    _set_git_timeout(target, '"soon"')
    before = snapshot_tree(target)
    done = cli(["check"], cwd=target)
    assert done.exit_code == 2
    assert done.stderr.count("\n") == 1 and "[tool.micropkg] key 'git_timeout'" in done.stderr, done.stderr
    assert snapshot_tree(target) == before
    assert cli(["check", "--offline"], cwd=target).exit_code == 0  # offline runs no git: no timeout is needed


# -- acceptance 6: nothing from the fetched repository runs --------------------------------------


_HOOKS = ("post-checkout", "post-merge", "reference-transaction", "post-rewrite", "post-index-change", "pre-auto-gc")


def _plant(repo: Path, tmp_path: Path, *, process: bool = True) -> tuple[Path, Path]:
    """A trap in ``repo`` and in a git configuration for every repository (where a user's own
    would live): a ``.gitattributes`` assigning every file a filter driver whose smudge, clean
    and long-running process commands, hooks and an fsmonitor hook all append their name to a
    marker file. The configuration file (for ``GIT_CONFIG_GLOBAL``) and the marker."""
    marker = tmp_path / "marker"
    if not (repo / ".gitattributes").is_file():
        (repo / ".gitattributes").write_text("* filter=evil\n")
        commit_all(repo, "attributes")  # committed without the driver, so no clean filter runs yet
    hooks = tmp_path / "planted-hooks"
    hooks.mkdir(exist_ok=True)
    for hook in (*_HOOKS, "fsmonitor"):
        (hooks / hook).write_text(f"#!/bin/sh\necho {hook} >> '{marker}'\ncat >/dev/null 2>&1\nexit 0\n")
        (hooks / hook).chmod(0o755)
        if hook != "fsmonitor":
            shutil.copy2(hooks / hook, repo / ".git" / "hooks" / hook)  # the repository's own hooks too
    driver = (f"[filter \"evil\"]\n\tsmudge = \"echo smudge >> '{marker}'; cat\"\n"
              f"\tclean = \"echo clean >> '{marker}'; cat\"\n")
    if process:
        driver += f"\tprocess = \"sh -c 'echo process >> {marker}'\"\n"
    config = tmp_path / ("gitconfig" if process else "gitconfig-without-process")
    config.write_text(driver + f"[core]\n\thooksPath = {hooks}\n\tfsmonitor = {hooks / 'fsmonitor'}\n")
    return config, marker


def test_hooks_and_filter_drivers_of_the_repository_never_run(repo, target, cli, tmp_path, monkeypatch):
    edit_readers(repo, "# moved on\n")  # main is ahead of v1: a second fetch into the same cached repository
    config, marker = _plant(repo, tmp_path)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    done = cli(["pull", "--no-compile", "--destination", "utils", url(repo, "v1")], cwd=target)
    assert done.exit_code == 0, done.stderr
    assert (target / INSTALLED_READERS).is_file()
    assert cli(["check"], cwd=target).exit_code == 0
    updated = cli(["pull", "--no-compile", "--destination", "utils", url(repo, "main")], cwd=target)
    assert updated.exit_code == 0, updated.stderr
    assert "# moved on" in (target / INSTALLED_READERS).read_text(encoding="utf-8")
    assert not marker.exists(), marker.read_text()


def test_the_planted_trap_fires_when_git_checks_the_repository_out(repo, tmp_path):
    """The control for the test above: the same trap is live, so a checkout would have sprung it."""
    config, marker = _plant(repo, tmp_path)
    plain, _ = _plant(repo, tmp_path, process=False)

    def run(config: Path, *args: str, cwd: Path = tmp_path) -> None:
        subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60,
                       env={**os.environ, "GIT_CONFIG_GLOBAL": str(config)})

    run(config, "clone", "-q", str(repo), "with-process")  # the process driver fails, and so does the checkout
    run(plain, "clone", "-q", str(repo), "with-smudge")
    run(plain, "status", cwd=tmp_path / "with-smudge")
    sprung = set(marker.read_text().split())
    assert {"process", "smudge", "post-checkout", "reference-transaction", "fsmonitor"} <= sprung, sprung


# -- the lock's commit is validated as strictly as every other field -----------------------------


@pytest.mark.parametrize("bad", ["abc123", "G" * 40, "0" * 41, "0" * 39 + " "])
def test_a_lock_with_a_malformed_commit_is_refused_naming_the_entry(repo, target, cli, bad):
    assert cli(["pull", "--no-compile", "--destination", "utils", url(repo, "v1")], cwd=target).exit_code == 0
    lock = target / "micropkg.lock"
    good = read_lock(lock).entries["utils.io"].commit
    lock.write_text(lock.read_text(encoding="utf-8").replace(good, bad), encoding="utf-8")
    before = snapshot_tree(target)
    done = cli(["check"], cwd=target)
    assert done.exit_code != 0
    assert '[micropkg."utils.io"]' in done.stderr and "'commit' must be a full git commit id" in done.stderr, done.stderr
    assert snapshot_tree(target) == before


def test_a_local_edit_survives_update_with_merge(repo, target, cli):
    assert cli(["pull", "--no-compile", "--destination", "utils", url(repo, "main")], cwd=target).exit_code == 0
    path = target / INSTALLED_READERS
    path.write_text("# a local note\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    moved = edit_readers(repo, "# upstream addition\n")
    done = cli(["pull", "--no-compile", "--destination", "utils", "--update", "--merge", url(repo, "main")], cwd=target)
    assert done.exit_code == 0, done.stderr
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# a local note\n") and text.endswith("# upstream addition\n")
    assert read_lock(target / "micropkg.lock").entries["utils.io"].commit == moved


@pytest.mark.parametrize("cleared", ["bases", "."], ids=["store-emptied", "whole-cache-emptied"])
def test_merge_takes_its_base_from_the_recorded_commit(repo, target, cli, cleared):
    """Neither the store of installed files nor the target's git history has the base (the
    target is no git repository): it is the file as packaged from the commit the lock records,
    from the cache or fetched again."""
    assert cli(["pull", "--no-compile", "--destination", "utils", url(repo, "main")], cwd=target).exit_code == 0
    assert not (target / ".git").exists()
    shutil.rmtree(Path(os.environ["MICROPKG_CACHE_DIR"]) / cleared)
    path = target / INSTALLED_READERS
    path.write_text("# a local note\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    edit_readers(repo, "# upstream addition\n")
    done = cli(["pull", "--no-compile", "--destination", "utils", "--update", "--merge", url(repo, "main")], cwd=target)
    assert done.exit_code == 0, done.stderr
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# a local note\n") and text.endswith("# upstream addition\n")
    assert "<<<<<<<" not in text


# -- a malformed git location in the pull manifest is named, not a surprise ----------------------


def test_a_malformed_git_location_in_the_manifest_is_one_sentence_naming_the_entry(repo, target, cli):
    assert cli(["pull", "--no-compile", "--alias", "io", url(repo, "v1")], cwd=target).exit_code == 0
    bad = f"git+https://{USER}:{TOKEN}@example.com/org/repo.git#projects/core:utils.io"  # no @ref
    pyproject = target / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + f'\n[tool.micropkg.pull]\n"{bad}" = {{alias = "io"}}\n',
                         encoding="utf-8")
    before = snapshot_tree(target)
    named = "pyproject.toml [tool.micropkg.pull] entry git+https://***@example.com/org/repo.git#projects/core:utils.io: "
    for argv, code in ((["pull", "--all", "--no-compile"], 2), (["check"], 1), (["status"], 0)):
        done = cli(argv, cwd=target)
        assert done.exit_code == code, (argv, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and named in done.stderr and "after an @" in done.stderr, (argv, done.stderr)
        assert TOKEN not in done.stdout + done.stderr
        assert snapshot_tree(target) == before
    checked = json.loads(cli(["check", "--json"], cwd=target).stdout)
    assert [named in error for error in checked["errors"]] == [True]
