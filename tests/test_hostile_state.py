"""Our own run state (``.micropkg/``, the merge-base store) is hostile input too, through the real CLI.

* A journal planted or damaged by anyone never reads or deletes anything outside
  what micropkg manages: every path in it passes the lock's path rule and the
  path guard before anything is touched, in roll-back and roll-forward alike.
  One bad entry makes the whole journal invalid: every command refuses it in one
  sentence naming the journal and the entry, and nothing is rolled back or forward.
* Odd shapes (NUL, deep nesting, wrong types, folders, a FIFO, ``/dev/zero``) are
  one sentence each, never an exception, a hang or a memory blow-up.
* Read-only commands never recover: with a valid journal they change nothing (not
  even an mtime), report ``interrupted`` and name ``micropkg recover``.
* At a monorepo root one project's bad journal is reported for it; the others are
  recovered or synced.
* ``.micropkg/`` ignores itself, so refused, killed-then-recovered and read-only runs
  leave ``git status`` clean.
* The merge-base store is read with the same bounds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_MONOREPO, REPO_ROOT, kedro_project, run_micropkg
from tests.helpers import git, snapshot_tree
from tests.hostile_archives import valid_sdist

PACKAGE = "spaceflights"
CODE = f"src/{PACKAGE}/pipelines"
INSTALLED = f"{CODE}/data_cleaning"


def _journal(state: str, entries: list, created: list | None = None) -> str:
    return json.dumps({"format": 1, "state": state, "entries": entries, "created-dirs": created or []})


def _plant(project: Path, text: str | bytes) -> Path:
    path = project / ".micropkg" / "journal"
    path.parent.mkdir(exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A project with one micro-package pulled into it (so it has a lock and a state folder)."""
    project = kedro_project(tmp_path / "project")
    sdist = tmp_path / "data_cleaning-0.1.tar.gz"
    sdist.write_bytes(valid_sdist())
    pulled = run_micropkg(["pull", str(sdist), "--destination", "pipelines", "--no-compile"], project)
    assert pulled.exit_code == 0, pulled.stderr
    assert (project / INSTALLED / "nodes.py").is_file()
    return project


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the project that no command may touch."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim.txt").write_text("keep me\n", encoding="utf-8")
    for suffix in (".victim.txt.micropkg-backup", ".victim.txt.micropkg-new"):
        (folder / suffix).write_text("not micropkg's\n", encoding="utf-8")
    (folder / "empty").mkdir()
    return folder


def _refused(result, journal: Path, entry: str) -> None:
    """One sentence, no traceback, naming the journal file and the entry at fault."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr  # not reported as a bug
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(journal) in result.stderr, result.stderr
    assert entry in result.stderr, result.stderr


# -- the planted symlink: a journal naming a file outside through a linked folder ---------------


@pytest.mark.parametrize("argv", [["status"], ["recover"], ["pull", "SDIST", "--destination", "pipelines",
                                                             "--no-compile", "--force"]])
@pytest.mark.parametrize("state", ["applying", "committed"])
def test_a_planted_journal_never_touches_a_file_outside_through_a_linked_folder(
    installed, outside, tmp_path, argv, state
):
    (installed / CODE / "ext").symlink_to(outside, target_is_directory=True)
    entry = f"{CODE}/ext/victim.txt"
    journal = _plant(installed, _journal(state, [[entry, False, True]]))
    before = snapshot_tree(installed)
    outside_before = snapshot_tree(outside)
    sdist = tmp_path / "data_cleaning-0.1.tar.gz"

    result = run_micropkg([str(sdist) if arg == "SDIST" else arg for arg in argv], installed)

    _refused(result, journal, json.dumps(entry))
    assert (outside / "victim.txt").read_text(encoding="utf-8") == "keep me\n"
    assert snapshot_tree(outside) == outside_before
    assert snapshot_tree(installed) == before


@pytest.fixture
def shared_monorepo(tmp_path: Path) -> Path:
    """The example monorepo with its shared micro-package synced into every target."""
    root = shutil.copytree(EXAMPLE_MONOREPO, tmp_path / "monorepo",
                           ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    synced = run_micropkg(["sync-shared", "--no-compile"], root)
    assert synced.exit_code == 0, synced.stderr
    return root


def _installed_folder(project: Path) -> Path:
    lock = (project / "micropkg.lock").read_text(encoding="utf-8")
    first = next(line for line in lock.splitlines() if line.startswith('"src/') or line.startswith("'src/"))
    return (project / first.split("=")[0].strip().strip("'\"")).parent


def test_sync_shared_check_refuses_a_planted_journal_in_one_target_and_touches_nothing(shared_monorepo, outside):
    target = shared_monorepo / "projects/churn"
    code = _installed_folder(target)
    (code / "ext").symlink_to(outside, target_is_directory=True)
    entry = (code / "ext/victim.txt").relative_to(target).as_posix()
    journal = _plant(target, _journal("applying", [[entry, False, True]]))
    before = snapshot_tree(shared_monorepo)

    result = run_micropkg(["sync-shared", "--check"], shared_monorepo)

    assert result.exit_code == 1, result.stderr
    assert str(journal) in result.stderr and json.dumps(entry) in result.stderr
    assert "Traceback" not in result.stderr
    assert "projects/forecast" in result.stdout  # the other target is still checked
    assert (outside / "victim.txt").is_file()
    assert snapshot_tree(shared_monorepo) == before


# -- every other hostile shape ---------------------------------------------------------------------


def _outside_entries(outside: Path, installed: Path) -> dict[str, tuple[str, str]]:
    """Journals that name paths outside what micropkg manages: (journal text, entry shown)."""
    link = f"{CODE}/ext"
    return {
        # a committed journal rolls forward by deleting the backup and temporary names
        "committed-backup-outside": (_journal("committed", [[f"{link}/victim.txt", True, False]]),
                                     f"{link}/victim.txt"),
        "created-dir-outside": (_journal("applying", [], [f"{link}/empty"]), f"{link}/empty"),
        "dot": (_journal("applying", [[".", False, False]]), '"."'),
        "dotdot": (_journal("applying", [["../outside/victim.txt", False, False]]), "../outside/victim.txt"),
        "absolute": (_journal("applying", [[str(outside / "victim.txt"), False, False]]), str(outside)),
        "git-config": (_journal("applying", [[".git/config", False, False]]), ".git/config"),
        "state-folder": (_journal("applying", [[".micropkg/lock", False, False]]), ".micropkg/lock"),
        "not-managed": (_journal("applying", [["pyproject.toml", True, False]]), "pyproject.toml"),
        "nul": (_journal("applying", [[f"{INSTALLED}/nodes.py\u0000x", False, False]]), "\\u0000"),
        "empty-part": (_journal("applying", [[f"{CODE}//nodes.py", False, False]]), f"{CODE}//nodes.py"),
        "created-dir-dot": (_journal("applying", [], ["."]), '"."'),
        "created-dir-unmanaged": (_journal("applying", [], ["notes"]), '"notes"'),
    }


CASES = ["committed-backup-outside", "created-dir-outside", "dot", "dotdot", "absolute", "git-config",
         "state-folder", "not-managed", "nul", "empty-part", "created-dir-dot", "created-dir-unmanaged"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["recover", "status"])
def test_a_journal_naming_anything_outside_what_micropkg_manages_is_refused_whole(
    installed, outside, case, command
):
    (installed / CODE / "ext").symlink_to(outside, target_is_directory=True)
    (installed / ".git").mkdir()
    (installed / ".git/config").write_text("[core]\n", encoding="utf-8")
    (installed / "notes").mkdir()  # empty, and not micropkg's to remove
    text, shown = _outside_entries(outside, installed)[case]
    # A valid entry first: one bad entry must stop the whole journal, not only itself.
    data = json.loads(text)
    data["entries"].insert(0, [f"{INSTALLED}/nodes.py", True, False])
    journal = _plant(installed, json.dumps(data))
    before, outside_before = snapshot_tree(installed), snapshot_tree(outside)

    result = run_micropkg([command], installed)

    _refused(result, journal, shown)
    assert snapshot_tree(outside) == outside_before
    assert snapshot_tree(installed) == before


SHAPES = {
    "nul-byte": b'{"format": 1, "state": "applying"\x00, "entries": [], "created-dirs": []}',
    "deep-nesting": b"[" * 200_000 + b"]" * 200_000,
    "not-utf8": b'{"format": 1, "state": "\xff"}',
    "not-an-object": b"[1, 2, 3]",
    "wrong-format": _journal("applying", []).replace('"format": 1', '"format": true').encode(),
    "wrong-state": _journal("rolled", []).encode(),
    "entry-not-a-list": _journal("applying", ["src/x.py"]).encode(),
    "entry-wrong-types": _journal("applying", [[f"{INSTALLED}/nodes.py", "yes", 0]]).encode(),
    "entry-too-long": _journal("applying", [[f"{INSTALLED}/nodes.py", True, False, 1]]).encode(),
    "entries-not-a-list": b'{"format": 1, "state": "applying", "entries": {}, "created-dirs": []}',
    "created-not-strings": _journal("applying", [], [[1]]).encode(),
    "too-large": b" " * (16 * 1024 * 1024 + 1) + b"{}",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("command", ["recover", "status"])
def test_every_odd_journal_shape_is_one_sentence(installed, shape, command):
    journal = _plant(installed, SHAPES[shape])
    before = snapshot_tree(installed)

    result = run_micropkg([command], installed)

    _refused(result, journal, "")
    assert snapshot_tree(installed) == before


def test_a_folder_where_a_backup_should_be_is_one_sentence_and_nothing_moves(installed):
    entry = f"{INSTALLED}/nodes.py"
    (installed / INSTALLED / ".nodes.py.micropkg-backup").mkdir()
    (installed / INSTALLED / ".nodes.py.micropkg-backup" / "inner.txt").write_text("x\n", encoding="utf-8")
    for state in ("applying", "committed"):
        journal = _plant(installed, _journal(state, [[entry, True, False]]))
        before = snapshot_tree(installed)
        result = run_micropkg(["recover"], installed)
        _refused(result, journal, entry)
        assert snapshot_tree(installed) == before


def test_a_folder_at_the_journal_or_its_temporary_name_is_one_sentence(installed, tmp_path):
    temporary = installed / ".micropkg" / "journal.tmp"
    temporary.mkdir()
    before = snapshot_tree(installed)
    result = run_micropkg(["recover"], installed)
    assert result.exit_code == 1 and str(temporary) in result.stderr and "Traceback" not in result.stderr
    assert snapshot_tree(installed) == before
    temporary.rmdir()

    journal = installed / ".micropkg" / "journal"
    journal.mkdir()
    for command in (["recover"], ["status"]):
        result = run_micropkg(command, installed)
        assert result.exit_code == 1 and str(journal) in result.stderr and "Traceback" not in result.stderr


def _run_with_timeout(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The real program in its own process, killed if it hangs: a regression fails, not hangs."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    code = "import sys; from micropkg_tasks.cli.program import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("shape", ["fifo", "dev-zero", "link-outside"])
@pytest.mark.parametrize("command", ["recover", "status"])
def test_a_fifo_or_a_device_at_the_journal_neither_hangs_nor_exhausts_memory(installed, outside, shape, command):
    journal = installed / ".micropkg" / "journal"
    if shape == "fifo":
        os.mkfifo(journal)
    elif shape == "dev-zero":
        journal.symlink_to("/dev/zero")
    else:
        journal.symlink_to(outside / "victim.txt")
    before = snapshot_tree(installed)

    done = _run_with_timeout([command], installed)

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert str(journal) in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert snapshot_tree(installed) == before
    assert (outside / "victim.txt").read_text(encoding="utf-8") == "keep me\n"


# -- read-only means read-only -------------------------------------------------------------------


def _half_applied(project: Path, relative: str) -> Path:
    """What a run killed mid-apply leaves: the old file moved to its backup, half the new one in
    place, and a valid journal. Returns the journal."""
    path = project / relative
    path.rename(path.with_name(f".{path.name}.micropkg-backup"))
    path.write_text("# half of the new version\n", encoding="utf-8")
    return _plant(project, _journal("applying", [[relative, True, False]]))


def _says_interrupted(result, journal: Path) -> None:
    text = result.stdout + result.stderr
    assert "interrupted" in text and "micropkg recover" in text and str(journal) in text, text
    assert "Traceback" not in result.stderr


def test_read_only_commands_in_a_project_report_an_interrupted_run_and_change_nothing(installed, tmp_path):
    original = (installed / INSTALLED / "nodes.py").read_bytes()
    journal = _half_applied(installed, f"{INSTALLED}/nodes.py")
    before = snapshot_tree(installed)
    sdist = tmp_path / "data_cleaning-0.1.tar.gz"

    status = run_micropkg(["status"], installed)
    check = run_micropkg(["check"], installed)
    dry_run = run_micropkg(["pull", str(sdist), "--destination", "pipelines", "--no-compile", "--dry-run"], installed)

    assert status.exit_code == 0
    assert "pipelines.data_cleaning" in status.stdout and "interrupted" in status.stdout
    _says_interrupted(status, journal)
    assert check.exit_code == 1 and "interrupted" in check.stdout
    _says_interrupted(check, journal)
    assert dry_run.exit_code == 1
    _says_interrupted(dry_run, journal)
    assert snapshot_tree(installed) == before  # content, modes and mtimes: nothing rolled back or forward
    recovered = run_micropkg(["recover"], installed)
    assert recovered.exit_code == 0 and "rolled back" in recovered.stdout
    assert (installed / INSTALLED / "nodes.py").read_bytes() == original


CHURN, FORECAST = "projects/churn", "projects/forecast"


@pytest.mark.parametrize("argv", [["status"], ["check"], ["sync-shared", "--check"],
                                  ["sync-shared", "--dry-run", "--no-compile"]])
def test_read_only_commands_at_the_root_report_an_interrupted_project_and_change_nothing(shared_monorepo, argv):
    churn = shared_monorepo / CHURN
    relative = (_installed_folder(churn) / "nodes.py").relative_to(churn).as_posix()
    journal = _half_applied(churn, relative)
    before = snapshot_tree(shared_monorepo)

    result = run_micropkg(argv, shared_monorepo)

    _says_interrupted(result, journal)
    assert result.exit_code == (0 if argv == ["status"] else 1), result.stderr
    assert snapshot_tree(shared_monorepo) == before


# -- at the root, one project's journal is that project's problem ----------------------------------


def test_recover_at_the_root_reports_a_bad_journal_and_still_recovers_the_others(shared_monorepo):
    churn, forecast = shared_monorepo / CHURN, shared_monorepo / FORECAST
    bad = _plant(churn, _journal("applying", [[".git/config", False, False]]))
    churn_before = snapshot_tree(churn)
    relative = (_installed_folder(forecast) / "nodes.py").relative_to(forecast).as_posix()
    original = (forecast / relative).read_bytes()
    _half_applied(forecast, relative)

    result = run_micropkg(["recover"], shared_monorepo)

    assert result.exit_code == 1
    assert str(bad) in result.stderr and ".git/config" in result.stderr and "Traceback" not in result.stderr
    assert "projects/forecast: an interrupted micropkg run was rolled back" in result.stdout
    assert (forecast / relative).read_bytes() == original
    assert not (forecast / ".micropkg/journal").exists()
    assert snapshot_tree(churn) == churn_before


def test_sync_shared_reports_a_garbled_journal_for_its_target_and_syncs_the_others(shared_monorepo):
    churn, forecast = shared_monorepo / CHURN, shared_monorepo / FORECAST
    garbled = _plant(churn, b'{"format": 1, "state": "applying", "entries": [[')
    churn_before = snapshot_tree(churn)
    source = shared_monorepo / "projects/core/src/core/pipelines/data_cleaning/nodes.py"
    source.write_text(source.read_text(encoding="utf-8") + "\n\nUPSTREAM = 2\n", encoding="utf-8")

    result = run_micropkg(["sync-shared", "--no-compile"], shared_monorepo)

    assert result.exit_code == 1
    assert str(garbled) in result.stderr and "Traceback" not in result.stderr
    assert "UPSTREAM = 2" in (_installed_folder(forecast) / "nodes.py").read_text(encoding="utf-8")
    assert snapshot_tree(churn) == churn_before


# -- recovery itself: roll-forward prunes what the deletes emptied, inside the project only --------


def test_a_committed_journal_rolls_forward_and_prunes_the_folders_its_deletes_emptied(installed):
    gone = installed / CODE / "old_pipeline" / "nodes"
    gone.mkdir(parents=True)
    kept = installed / INSTALLED / "nodes.py"
    (kept.with_name(".nodes.py.micropkg-backup")).write_text("the old nodes\n", encoding="utf-8")
    _plant(installed, _journal("committed", [
        [f"{INSTALLED}/nodes.py", True, False],
        [f"{CODE}/old_pipeline/nodes/gone.py", True, True],
    ]))

    result = run_micropkg(["recover"], installed)

    assert result.exit_code == 0 and "rolled forward" in result.stdout, result.stderr
    assert not (installed / CODE / "old_pipeline").exists()
    assert not kept.with_name(".nodes.py.micropkg-backup").exists() and kept.is_file()
    assert (installed / CODE).is_dir()


# -- .micropkg/ ignores itself ---------------------------------------------------------------------

# What `kedro new` ignores that matters here (its template lists more, none of it .micropkg).
KEDRO_GITIGNORE = """\
__pycache__/
*.py[cod]
*.egg-info/
dist/
build/
.venv
.pytest_cache/
.coverage
conf/local/**
!conf/local/.gitkeep
conf/**/*credentials*
data/**
"""




# The micropkg program, killed with SIGKILL by itself right after the first project file is written.
_KILLED_AFTER_FIRST_WRITE = """
import os, signal
import micropkg_tasks.core.change.transaction as transaction
real_write = transaction._write_new
def write_then_die(path, content):
    real_write(path, content)
    os.kill(os.getpid(), signal.SIGKILL)
transaction._write_new = write_then_die
from micropkg_tasks.cli.program import main
main()
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_refused_killed_and_read_only_runs_leave_git_status_clean(installed, tmp_path):
    shutil.rmtree(installed / ".micropkg")  # as on a fresh clone
    (installed / ".gitignore").write_text(KEDRO_GITIGNORE, encoding="utf-8")
    git(installed, "init", "-q")
    git(installed, "add", "-A")
    git(installed, "commit", "-q", "-m", "project with one pulled micro-package")

    def clean() -> None:
        assert git(installed, "status", "--porcelain", "--untracked-files=all") == ""

    (installed / INSTALLED / "nodes.py").write_text("# edited here\n", encoding="utf-8")
    git(installed, "commit", "-q", "-am", "a local edit")
    refused = run_micropkg(["pull", str(tmp_path / "data_cleaning-0.1.tar.gz"), "--destination", "pipelines",
                            "--no-compile"], installed)
    assert refused.exit_code == 1 and "refused" in refused.stderr
    assert (installed / ".micropkg/lock").is_file()  # the lock file stays, and git does not see it
    clean()

    # A real kill -9 of a forced pull, right after its first file is written: the journal and
    # the moved-aside file are left, git sees the leftovers, and `recover` takes them away.
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_FIRST_WRITE, "pull", str(tmp_path / "data_cleaning-0.1.tar.gz"),
         "--destination", "pipelines", "--no-compile", "--force"],
        cwd=installed, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (installed / ".micropkg/journal").is_file()
    assert git(installed, "status", "--porcelain", "--untracked-files=all") != ""
    assert run_micropkg(["status"], installed).exit_code == 0
    recovered = run_micropkg(["recover"], installed)
    assert recovered.exit_code == 0 and "rolled back" in recovered.stdout
    clean()

    _half_applied(installed, f"{INSTALLED}/nodes.py")  # the same leftovers, planted
    assert git(installed, "status", "--porcelain", "--untracked-files=all") != ""
    assert run_micropkg(["status"], installed).exit_code == 0
    recovered = run_micropkg(["recover"], installed)
    assert recovered.exit_code == 0 and "rolled back" in recovered.stdout
    clean()

    assert run_micropkg(["status"], installed).exit_code == 0
    clean()
    assert (installed / ".micropkg/.gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"


# -- the merge-base store is read with the same bounds ---------------------------------------------


@pytest.mark.parametrize("shape", ["fifo", "dev-zero"])
def test_a_fifo_or_dev_zero_in_the_merge_base_store_is_one_sentence(shared_monorepo, shape):
    churn = shared_monorepo / CHURN
    nodes = _installed_folder(churn) / "nodes.py"
    relative = nodes.relative_to(churn).as_posix()
    lock = (churn / "micropkg.lock").read_text(encoding="utf-8")
    blob = next(line.split("=")[1].strip().strip('"') for line in lock.splitlines()
                if line.startswith(f'"{relative}"') and len(line.split("=")[1].strip().strip('"')) == 40)
    stored = Path(os.environ["MICROPKG_CACHE_DIR"]) / "bases" / blob[:2] / blob[2:]
    assert stored.is_file()
    stored.unlink()
    if shape == "fifo":
        os.mkfifo(stored)
    else:
        stored.symlink_to("/dev/zero")
    nodes.write_text(nodes.read_text(encoding="utf-8") + "\n# local edit\n", encoding="utf-8")
    source = shared_monorepo / "projects/core/src/core/pipelines/data_cleaning/nodes.py"
    source.write_text("# upstream edit\n" + source.read_text(encoding="utf-8"), encoding="utf-8")
    before = snapshot_tree(churn)

    done = _run_with_timeout(["sync-shared", "--merge", "--no-compile"], shared_monorepo)

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert str(stored) in done.stderr and "Traceback" not in done.stderr
    assert snapshot_tree(churn) == before


def test_a_run_never_journals_a_path_that_recovery_would_refuse(installed):
    """What a run writes is held to the rule recovery applies, so a run killed part-way can
    always be recovered: a change outside the managed folders and files is refused first."""
    from micropkg_tasks.core.change.transaction import UPDATE, FileChange, apply_changes
    from micropkg_tasks.core.errors import ProjectError
    from micropkg_tasks.core.project.project import load_project

    project = load_project(installed)
    before = snapshot_tree(installed)
    changes = [FileChange(installed / INSTALLED / "nodes.py", UPDATE, b"x = 1\n"),
               FileChange(installed / "pyproject.toml", UPDATE, b"[tool.kedro]\n")]
    with pytest.raises(ProjectError, match="pyproject.toml"):
        apply_changes(installed, changes, managed=project.managed_paths())
    assert snapshot_tree(installed) == before


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_is_asked_for_a_merge_base_only_when_the_store_misses(shared_monorepo, tmp_path, monkeypatch):
    git(shared_monorepo, "init", "-q")
    git(shared_monorepo, "add", "-A")
    git(shared_monorepo, "commit", "-q", "-m", "installs committed")
    churn = shared_monorepo / CHURN
    nodes = _installed_folder(churn) / "nodes.py"
    source = shared_monorepo / "projects/core/src/core/pipelines/data_cleaning/nodes.py"
    trace = tmp_path / "git-trace.txt"
    monkeypatch.setenv("GIT_TRACE", str(trace))  # git itself logs every command it runs

    def merge_after_edits(mark: str) -> int:
        nodes.write_text(nodes.read_text(encoding="utf-8") + f"\n# local edit {mark}\n", encoding="utf-8")
        source.write_text(f"# upstream edit {mark}\n" + source.read_text(encoding="utf-8"), encoding="utf-8")
        trace.write_text("", encoding="utf-8")
        result = run_micropkg(["sync-shared", "--merge", "--no-compile"], shared_monorepo)
        assert result.exit_code == 0, result.stdout + result.stderr
        assert f"# local edit {mark}" in nodes.read_text(encoding="utf-8")
        return trace.read_text(encoding="utf-8").count("cat-file")

    assert merge_after_edits("one") == 0  # the store has every base: git is not run
    git(shared_monorepo, "add", "-A")
    git(shared_monorepo, "commit", "-q", "-m", "merged")
    shutil.rmtree(Path(os.environ["MICROPKG_CACHE_DIR"]) / "bases")
    assert merge_after_edits("two") > 0  # the store misses: git has the base
