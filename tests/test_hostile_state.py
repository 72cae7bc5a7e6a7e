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
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_MONOREPO, REPO_ROOT, kedro_project, run_micropkg
from tests.helpers import snapshot_tree
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
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr.split(":")[0]
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
    }


CASES = ["committed-backup-outside", "created-dir-outside", "dot", "dotdot", "absolute", "git-config",
         "state-folder", "not-managed", "nul", "empty-part", "created-dir-dot"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["recover", "status"])
def test_a_journal_naming_anything_outside_what_micropkg_manages_is_refused_whole(
    installed, outside, case, command
):
    (installed / CODE / "ext").symlink_to(outside, target_is_directory=True)
    (installed / ".git").mkdir()
    (installed / ".git/config").write_text("[core]\n", encoding="utf-8")
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
