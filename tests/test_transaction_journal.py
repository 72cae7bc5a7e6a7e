"""What ``apply_changes`` (``core/change/transaction.py``) records and refuses before it touches a file.

The journal written before the first rename is what a later ``recover`` acts on after a kill, so
its content is checked here as it stands at that moment: every path, whether a file was there,
whether it is a delete, and the folders the run will create, parents first. Each refusal made
before anything changes names the path and what is wrong in one sentence.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from micropkg_tasks.core.change import journal, transaction
from micropkg_tasks.core.change.interrupts import COMPLETED, NOT_STARTED, ROLLED_BACK
from micropkg_tasks.core.change.journal import APPLYING, Journal, JournalEntry, prune_empty_folders
from micropkg_tasks.core.change.transaction import (
    CREATE,
    DELETE,
    UNCHANGED,
    UPDATE,
    FileChange,
    apply_changes,
    project_lock,
)
from micropkg_tasks.core.errors import ProjectError
from tests.helpers import build_file_tree, snapshot_tree

# What a journal in the ``root`` fixture may name (a project's code, tests and conf folders).
MANAGED = (("a", "b", "gone"), ("z.py",))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return build_file_tree(tmp_path / "proj", {"a/keep.py": "KEEP = 1\n", "a/old.py": "OLD = 1\n", "z.py": "Z = 1\n"},
                           dedent=False)


def test_the_journal_lists_every_change_and_the_folders_to_create_before_the_first_rename(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Journal | None] = []
    real_replace = os.replace

    def observed_replace(source, target):  # type: ignore[no-untyped-def]
        if not seen:
            seen.append(journal.read_journal(root, MANAGED))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", observed_replace)
    apply_changes(root, [
        FileChange(root / "a/keep.py", UPDATE, b"KEEP = 2\n"),
        FileChange(root / "a/old.py", DELETE),
        FileChange(root / "b/c/d/new.py", CREATE, b"NEW = 1\n"),
        FileChange(root / "b/e/new.py", CREATE, b"NEW = 2\n"),
        FileChange(root / "a/f/new.py", CREATE, b"NEW = 3\n"),
        FileChange(root / "z.py", UNCHANGED),
    ])

    assert seen == [Journal(
        APPLYING,
        (
            JournalEntry("a/keep.py", existed=True, delete=False),
            JournalEntry("a/old.py", existed=True, delete=True),
            JournalEntry("b/c/d/new.py", existed=False, delete=False),
            JournalEntry("b/e/new.py", existed=False, delete=False),
            JournalEntry("a/f/new.py", existed=False, delete=False),
        ),
        ("b", "a/f", "b/c", "b/e", "b/c/d"),  # parents before children
    )]
    assert not journal.journal_path(root).exists()
    assert (root / "b/c/d/new.py").read_text() == "NEW = 1\n" and not (root / "a/old.py").exists()


def test_a_leftover_backup_is_refused_naming_it(root: Path) -> None:
    (root / "a/.keep.py.micropkg-backup").write_text("KEEP = 0\n")
    before = snapshot_tree(root)
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "a/keep.py", UPDATE, b"KEEP = 2\n")])
    assert str(caught.value) == (
        f"{root / 'a/.keep.py.micropkg-backup'} is left from an interrupted run and may hold the only copy of "
        "keep.py; restore it (rename it back) or delete it, then run again"
    )
    assert snapshot_tree(root) == before


def test_a_folder_in_the_way_is_refused_for_a_write_and_for_a_delete(root: Path) -> None:
    (root / "a/pkg").mkdir()
    before = snapshot_tree(root)
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "a/pkg", DELETE)])
    assert str(caught.value) == f"cannot delete {root / 'a/pkg'}: it is a folder"
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "a/pkg", UPDATE, b"x")])
    assert str(caught.value) == f"cannot write {root / 'a/pkg'}: a folder is in the way"
    assert snapshot_tree(root) == before


def test_the_guard_names_the_action_refused(root: Path, tmp_path: Path) -> None:
    build_file_tree(tmp_path / "outside", {"victim.py": "V = 1\n"}, dedent=False)
    (root / "out").symlink_to(tmp_path / "outside", target_is_directory=True)
    before = snapshot_tree(tmp_path)
    for action, content, verb in ((DELETE, None, "delete"), (UPDATE, b"x", "write"), (CREATE, b"x", "write")):
        with pytest.raises(ProjectError) as caught:
            apply_changes(root, [FileChange(root / "out/victim.py", action, content)])
        assert str(caught.value).startswith(f"refusing to {verb} {root / 'out/victim.py'}: it resolves to ")
    assert snapshot_tree(tmp_path) == before


def test_a_state_folder_linked_out_of_the_project_is_refused_before_the_journal_is_written(
    root: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (root / ".micropkg").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "a/keep.py", UPDATE, b"KEEP = 2\n")])
    assert str(caught.value).startswith(f"refusing to write {journal.journal_path(root)}: it resolves to ")
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert (root / "a/keep.py").read_text() == "KEEP = 1\n"


def test_a_journal_left_in_place_stops_the_run(root: Path) -> None:
    journal.begin(root, [JournalEntry("a/keep.py", existed=True)], [])
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "a/keep.py", UPDATE, b"KEEP = 2\n")])
    assert str(caught.value) == (
        f"{journal.journal_path(root)} records an interrupted run that was not recovered; run `micropkg recover` first"
    )
    assert (root / "a/keep.py").read_text() == "KEEP = 1\n"


def test_pruning_never_leaves_the_project(tmp_path: Path, root: Path) -> None:
    (tmp_path / "outside/empty").mkdir(parents=True)
    prune_empty_folders(tmp_path / "outside/empty", root)
    assert (tmp_path / "outside/empty").is_dir()


def test_rolling_forward_passes_over_an_entry_whose_folder_became_a_file(root: Path) -> None:
    (root / "a/.keep.py.micropkg-backup").write_text("KEEP = 0\n")
    (root / "gone").write_text("a file where a folder was\n")
    journal.commit(root, [JournalEntry("a/keep.py", existed=True), JournalEntry("gone/x.py", existed=False)], [])

    recovery = journal.recover(root, MANAGED)

    assert recovery is not None and recovery.action == "rolled forward"
    assert not (root / "a/.keep.py.micropkg-backup").exists() and (root / "gone").is_file()


def test_a_journal_that_cannot_be_written_stops_the_run_before_any_file_changes(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot_tree(root)

    def failing_fsync(descriptor: int) -> None:  # the journal is the first file flushed
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(journal.os, "fsync", failing_fsync)
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "a/keep.py", UPDATE, b"KEEP = 2\n")])
    monkeypatch.undo()
    assert str(caught.value) == "could not write a project file: Input/output error; the project was restored unchanged"
    assert snapshot_tree(root) == before  # no journal, no journal.tmp, no .micropkg


def test_a_write_failing_without_a_file_name_still_reads_as_one_sentence(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot_tree(root)

    def full_disk(path: Path, content: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transaction, "_write_new", full_disk)
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "a/keep.py", UPDATE, b"KEEP = 2\n")])
    assert str(caught.value) == "could not write a project file: No space left on device; the project was restored unchanged"
    assert snapshot_tree(root) == before


def test_a_file_written_over_a_symlink_gets_a_normal_mode_not_the_links(root: Path) -> None:
    (root / "a/link.py").symlink_to(root / "a/keep.py")
    apply_changes(root, [FileChange(root / "a/link.py", UPDATE, b"LINK = 1\n")])
    written = (root / "a/link.py").lstat()
    assert stat.S_ISREG(written.st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(written.st_mode) == 0o666 & ~umask
    assert (root / "a/keep.py").read_text() == "KEEP = 1\n"


def test_an_unknown_action_is_a_bug_named_in_the_error(root: Path) -> None:
    before = snapshot_tree(root)
    with pytest.raises(ValueError) as caught:
        apply_changes(root, [FileChange(root / "a/keep.py", "rename", b"x")])
    assert str(caught.value) == f"unknown action 'rename' for {root / 'a/keep.py'}"
    assert snapshot_tree(root) == before


def test_a_backup_that_cannot_be_removed_stays_listed_in_a_committed_journal(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_unlink = os.unlink

    def stubborn_unlink(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith(".micropkg-backup"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", stubborn_unlink)
    apply_changes(root, [FileChange(root / "a/keep.py", UPDATE, b"KEEP = 2\n")])
    monkeypatch.undo()

    left = journal.read_journal(root, MANAGED)
    assert left is not None and left.state == journal.COMMITTED
    assert (root / "a/.keep.py.micropkg-backup").exists()
    assert journal.recover(root, MANAGED) is not None
    assert not (root / "a/.keep.py.micropkg-backup").exists() and (root / "a/keep.py").read_text() == "KEEP = 2\n"


def test_the_project_lock_names_what_is_wrong_with_its_folder(root: Path, tmp_path: Path) -> None:
    (root / ".micropkg").write_text("not a folder\n")
    with pytest.raises(ProjectError) as caught:
        with project_lock(root, timeout=0):
            pass
    assert str(caught.value) == f"{root / '.micropkg'} is a file; micropkg keeps its lock and journal in that folder"
    (root / ".micropkg").unlink()
    (tmp_path / "elsewhere").mkdir()
    (root / ".micropkg").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ProjectError) as caught:
        with project_lock(root, timeout=0):
            pass
    assert str(caught.value).startswith(f"refusing to lock {root / '.micropkg/lock'}: it resolves to ")
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("failure, shown", [
    (OSError(errno.ENOSPC, "No space left on device"), "[Errno 28] No space left on device"),
    (OSError(), "OSError"),  # no message: its type is named instead
])
def test_a_rollback_that_fails_keeps_the_journal_and_says_so(
    root: Path, monkeypatch: pytest.MonkeyPatch, failure: OSError, shown: str
) -> None:
    real_replace = os.replace

    def failing_write(path: Path, content: bytes) -> None:
        raise failure

    def stuck_backup(source, target):  # type: ignore[no-untyped-def]
        if str(source).endswith(".micropkg-backup"):
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(source, target)

    monkeypatch.setattr(transaction, "_write_new", failing_write)
    monkeypatch.setattr(os, "replace", stuck_backup)
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "a/keep.py", UPDATE, b"KEEP = 2\n")])
    monkeypatch.undo()

    assert str(caught.value) == (
        f"a change to {root} failed ({shown}) and could not be rolled back ([Errno 5] Input/output error); "
        f"{journal.journal_path(root)} is kept: run `micropkg recover`"
    )
    assert journal.recover(root, MANAGED) is not None
    assert (root / "a/keep.py").read_text() == "KEEP = 1\n"


def test_each_project_is_reported_completed_rolled_back_or_not_started(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an interrupted run prints per project comes from this log of its own transactions."""
    other = build_file_tree(tmp_path / "other", {"a/keep.py": "KEEP = 1\n"}, dedent=False)
    untouched = tmp_path / "untouched"
    apply_changes(other, [FileChange(other / "a/new.py", CREATE, b"NEW = 1\n")])  # before the mark: not counted
    mark = transaction.log_mark()
    apply_changes(root, [FileChange(root / "a/keep.py", UPDATE, b"KEEP = 2\n")])

    def failing_write(path: Path, content: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transaction, "_write_new", failing_write)
    with pytest.raises(ProjectError):
        apply_changes(other, [FileChange(other / "a/keep.py", UPDATE, b"KEEP = 2\n")])
    monkeypatch.undo()

    assert transaction.outcome_since(mark, root) == COMPLETED
    assert transaction.outcome_since(mark, other) == ROLLED_BACK
    assert transaction.outcome_since(mark, untouched) == NOT_STARTED
    assert transaction.outcomes_since(mark) == [(str(root.resolve()), COMPLETED), (str(other.resolve()), ROLLED_BACK)]
    assert transaction.outcomes_since(transaction.log_mark()) == []
