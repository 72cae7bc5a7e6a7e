"""Recovering from the journal an interrupted run left (``core/change/journal.py``).

Rolling forward a committed journal: the backups go, and so do the folders the run emptied. A
run that deletes the last file of a folder removes the folder too, but only after its commit
point (the backup must stay until then). A kill between the commit and that clean-up leaves a
committed journal, and ``recover`` must finish the clean-up: no empty folder is left behind,
and folders that still hold something, and the project root, stay.

Rolling back a journal that was never committed: every file comes back as it was (content,
mode and mtime), new files and temporaries go, and so do the folders the run created.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from micropkg_tasks.core.change import journal
from micropkg_tasks.core.change.journal import JournalEntry
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.project.project import load_project
from tests.conftest import kedro_project, run_micropkg
from tests.helpers import snapshot_tree

OLD = "src/churn/pipelines/old"


def managed(project: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a journal in ``project`` may name."""
    return load_project(project).managed_paths()


def killed_after_commit(tmp_path: Path) -> Path:
    """A project as a run that deleted ``old/nodes.py`` and ``old/sub/util.py`` and rewrote
    ``keep/nodes.py`` leaves it when killed just after writing its committed journal."""
    project = kedro_project(tmp_path / "project", "churn", extra={
        "src/churn/pipelines/keep/nodes.py": "VALUE = 2\n",
        "src/churn/pipelines/keep/.nodes.py.micropkg-backup": "VALUE = 1\n",
        f"{OLD}/.nodes.py.micropkg-backup": "def run():\n    return 1\n",
        f"{OLD}/sub/.util.py.micropkg-backup": "X = 1\n",
        "src/churn/pipelines/other/readme.txt": "not ours\n",
    })
    entries = [
        JournalEntry("src/churn/pipelines/keep/nodes.py", existed=True),
        JournalEntry(f"{OLD}/nodes.py", existed=True, delete=True),
        JournalEntry(f"{OLD}/sub/util.py", existed=True, delete=True),
    ]
    journal.commit(project, entries, [])
    return project


def test_recover_rolls_forward_and_prunes_the_folders_the_run_emptied(tmp_path: Path, cli) -> None:
    project = killed_after_commit(tmp_path)

    result = cli(["recover"], project)

    assert result.exit_code == 0, result.stderr
    assert "rolled forward" in result.stdout
    assert not (project / OLD).exists()
    pipelines = project / "src/churn/pipelines"
    assert sorted(p.name for p in pipelines.iterdir()) == ["__init__.py", "keep", "other"]
    assert (pipelines / "keep/nodes.py").read_text() == "VALUE = 2\n"
    assert sorted(p.name for p in (pipelines / "keep").iterdir()) == ["nodes.py"]
    assert (pipelines / "other/readme.txt").read_text() == "not ours\n"
    assert not journal.journal_path(project).exists()


def test_pruning_stops_at_a_folder_that_still_holds_a_file(tmp_path: Path) -> None:
    project = killed_after_commit(tmp_path)
    (project / OLD / "notes.txt").write_text("a user's file\n")

    assert journal.recover(project, managed(project)) is not None

    assert sorted(p.name for p in (project / OLD).iterdir()) == ["notes.txt"]  # sub/ went, old/ stays


def test_a_second_recover_finds_nothing_to_do(tmp_path: Path) -> None:
    project = killed_after_commit(tmp_path)
    journal.recover(project, managed(project))
    after = snapshot_tree(project)

    assert journal.recover(project, managed(project)) is None
    result = run_micropkg(["recover"], project)
    assert result.exit_code == 0 and snapshot_tree(project) == after


def killed_before_commit(tmp_path: Path) -> tuple[Path, dict[str, tuple[str, int, int]]]:
    """A project as a run that was rewriting ``a/nodes.py``, deleting ``a/old.py`` and creating
    ``b/new/nodes.py`` (with its folders) leaves it when killed before its commit."""
    project = kedro_project(tmp_path / "project", "churn", extra={
        "src/churn/pipelines/a/nodes.py": "VALUE = 1\n",
        "src/churn/pipelines/a/old.py": "OLD = 1\n",
        "src/churn/pipelines/a/untouched.py": "SAME = 1\n",
    })
    a = project / "src/churn/pipelines/a"
    os.chmod(a / "nodes.py", 0o640)
    os.utime(a / "nodes.py", (1_000_000_000, 1_000_000_000))
    before = snapshot_tree(project)
    entries = [
        JournalEntry("src/churn/pipelines/a/nodes.py", existed=True),
        JournalEntry("src/churn/pipelines/a/old.py", existed=True, delete=True),
        JournalEntry("src/churn/pipelines/b/new/nodes.py", existed=False),
        JournalEntry("src/churn/pipelines/a/gone.py", existed=True),  # its backup never got made
    ]
    journal.begin(project, entries, ["src/churn/pipelines/b", "src/churn/pipelines/b/new"])
    os.replace(a / "nodes.py", a / ".nodes.py.micropkg-backup")
    (a / "nodes.py").write_text("VALUE = 2\n")
    os.replace(a / "old.py", a / ".old.py.micropkg-backup")
    (project / "src/churn/pipelines/b/new").mkdir(parents=True)
    (project / "src/churn/pipelines/b/new/nodes.py").write_text("NEW = 1\n")
    (project / "src/churn/pipelines/b/new/.nodes.py.micropkg-new").write_text("NEW = 1\n")
    return project, before


def test_recover_rolls_back_an_uncommitted_run_exactly(tmp_path: Path, cli) -> None:
    project, before = killed_before_commit(tmp_path)

    result = cli(["recover"], project)

    assert result.exit_code == 0, result.stderr
    assert "rolled back" in result.stdout
    after = snapshot_tree(project)
    assert {k: v for k, v in after.items() if not k.startswith(".micropkg")} == before
    assert not journal.journal_path(project).exists()


def test_roll_back_keeps_a_created_folder_that_holds_someone_elses_file(tmp_path: Path) -> None:
    project, _ = killed_before_commit(tmp_path)
    (project / "src/churn/pipelines/b/new/notes.txt").write_text("a user's file\n")

    recovery = journal.recover(project, managed(project))

    assert recovery is not None and recovery.action == "rolled back" and recovery.files == 4
    assert sorted(p.name for p in (project / "src/churn/pipelines/b/new").iterdir()) == ["notes.txt"]
    assert (project / "src/churn/pipelines/a/nodes.py").read_text() == "VALUE = 1\n"
    assert (project / "src/churn/pipelines/a/old.py").read_text() == "OLD = 1\n"


def test_roll_back_passes_over_new_files_that_were_never_written_or_are_in_the_way(tmp_path: Path) -> None:
    """Killed before it wrote them: a new file that is not there, one whose folder is now a file.
    Roll-back removes what is the run's and leaves the rest."""
    project = kedro_project(tmp_path / "project", "churn", extra={
        "src/churn/pipelines/a/nodes.py": "VALUE = 1\n",
        "src/churn/pipelines/blocked": "a file where a folder was planned\n",
    })
    before = snapshot_tree(project)
    journal.begin(project, [
        JournalEntry("src/churn/pipelines/a/never.py", existed=False),
        JournalEntry("src/churn/pipelines/blocked/new.py", existed=False),
    ], [])

    recovery = journal.recover(project, managed(project), "churn-project")

    assert recovery is not None and recovery.action == "rolled back"
    assert recovery.project == "churn-project"
    assert snapshot_tree(project) == before


def test_a_folder_where_a_planned_file_stands_refuses_the_journal_and_touches_nothing(tmp_path: Path) -> None:
    """A run never writes over a folder, so a journal naming one is not a run's own: refused whole."""
    project = kedro_project(tmp_path / "project", "churn", extra={
        "src/churn/pipelines/a/nodes.py": "VALUE = 1\n",
        "src/churn/pipelines/dir.py/keep.txt": "a folder where a file was planned\n",
    })
    journal.begin(project, [
        JournalEntry("src/churn/pipelines/a/nodes.py", existed=False),
        JournalEntry("src/churn/pipelines/dir.py", existed=False),
    ], [])
    before = snapshot_tree(project)

    with pytest.raises(ProjectError, match="dir.py.*is a folder"):
        journal.recover(project, managed(project))

    assert snapshot_tree(project) == before


def test_a_recovery_names_the_project_by_its_folder_unless_told_otherwise(tmp_path: Path) -> None:
    project = killed_after_commit(tmp_path)
    recovery = journal.recover(project, managed(project))
    assert recovery is not None and recovery.project == str(project)
    assert recovery.message.startswith(f"{project}: an interrupted micropkg run was rolled forward (3 planned")


def test_recover_removes_the_start_of_a_journal_a_kill_left_half_written(tmp_path: Path) -> None:
    """Killed while writing its first journal: ``journal.tmp`` never became the journal, and nothing
    was changed yet. Recovery removes it and finds nothing else to do."""
    project = kedro_project(tmp_path / "project", "churn")
    journal.make_state_folder(project)
    partial = journal.journal_path(project).with_name(journal.JOURNAL_TEMP)
    partial.write_text('{"format": 1, "state": "appl', encoding="utf-8")
    assert journal.needs_recovery(project)

    assert journal.recover(project, managed(project)) is None

    assert not os.path.lexists(partial)
    assert not journal.needs_recovery(project)


def test_a_created_folder_above_a_managed_folder_is_accepted(tmp_path: Path) -> None:
    """A first pull can create the folders above a managed one; the journal may list them, and
    roll-back removes them only when empty (``src`` here holds the package, so it stays)."""
    project, before = killed_before_commit(tmp_path)
    recorded = journal.read_journal(project, managed(project))
    assert recorded is not None
    journal.begin(project, recorded.entries, ["src", *recorded.created_dirs])

    recovery = journal.recover(project, managed(project))

    assert recovery is not None and recovery.action == "rolled back"
    assert {k: v for k, v in snapshot_tree(project).items() if not k.startswith(".micropkg")} == before


def test_a_created_folder_outside_the_managed_ones_names_the_folders_and_files_allowed(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    journal.begin(project, [], ["docs"])
    before = snapshot_tree(project)

    allowed = r"\(src/churn, tests, conf, requirements.in, requirements.txt, micropkg.lock\)"
    outside = r'"docs", which is outside the folders and files micropkg manages '
    with pytest.raises(ProjectError, match=outside + allowed):
        journal.recover(project, managed(project))

    assert snapshot_tree(project) == before


def test_undoing_a_run_refuses_a_path_whose_folder_became_a_link_out_of_the_project(tmp_path: Path) -> None:
    """A run's own roll-back (from the intent it journaled) goes through the path guard too: if a
    folder it wrote into is now a link out of the project, nothing outside is deleted."""
    project = kedro_project(tmp_path / "project", "churn")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "nodes.py").write_text("not micropkg's\n", encoding="utf-8")
    (project / "src/churn/pipelines/ext").symlink_to(outside)
    intent = journal.Journal(journal.APPLYING, (JournalEntry("src/churn/pipelines/ext/nodes.py", existed=False),), ())
    journal.begin(project, intent.entries, intent.created_dirs)

    with pytest.raises(ProjectError, match="refusing to recover .*nodes.py: it resolves to"):
        journal.undo(project, intent)

    assert (outside / "nodes.py").read_text(encoding="utf-8") == "not micropkg's\n"
    assert journal.journal_path(project).is_file()  # kept for `micropkg recover`


def test_undoing_a_run_leaves_a_folder_that_appeared_where_it_planned_a_new_file(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    intent = journal.Journal(journal.APPLYING, (JournalEntry("src/churn/pipelines/new.py", existed=False),), ())
    journal.begin(project, intent.entries, intent.created_dirs)
    (project / "src/churn/pipelines/new.py").mkdir()
    (project / "src/churn/pipelines/new.py/keep.txt").write_text("someone else's\n", encoding="utf-8")

    journal.undo(project, intent)

    assert (project / "src/churn/pipelines/new.py/keep.txt").read_text(encoding="utf-8") == "someone else's\n"
    assert not journal.journal_path(project).exists()


def test_the_start_of_a_journal_in_a_state_folder_linked_out_of_the_project_is_not_deleted(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / journal.JOURNAL_TEMP).write_text("not micropkg's\n", encoding="utf-8")
    (project / journal.STATE_FOLDER).symlink_to(outside)

    with pytest.raises(ProjectError, match="refusing to delete .*journal.tmp: it resolves to"):
        journal.recover(project, managed(project))

    assert (outside / journal.JOURNAL_TEMP).read_text(encoding="utf-8") == "not micropkg's\n"


def test_a_journal_may_name_the_requirements_files_and_the_lock(tmp_path: Path) -> None:
    """Compiles and lock writes are transactions too: their files are managed, not only the folders."""
    project = kedro_project(tmp_path / "project", "churn", extra={
        "requirements.txt": "kedro\n",
        ".requirements.txt.micropkg-backup": "old\n",
    })
    journal.commit(project, [JournalEntry("requirements.txt", existed=True)], [])

    recovery = journal.recover(project, managed(project))

    assert recovery is not None and recovery.action == "rolled forward"
    assert (project / "requirements.txt").read_text(encoding="utf-8") == "kedro\n"
    assert not (project / ".requirements.txt.micropkg-backup").exists()


def test_an_entry_through_a_linked_folder_is_refused_as_something_recovery_would_touch(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "src/churn/pipelines/ext").symlink_to(outside)
    journal.begin(project, [JournalEntry("src/churn/pipelines/ext/nodes.py", existed=False)], [])

    with pytest.raises(ProjectError, match='lists "src/churn/pipelines/ext/nodes.py", and refusing to recover '):
        journal.read_journal(project, managed(project))


@pytest.mark.parametrize("length, shown", [(198, None), (199, 196)])
def test_an_entry_is_quoted_in_the_message_and_a_long_one_cut_short(tmp_path: Path, length, shown) -> None:
    """The sentence quotes the entry as JSON, and cuts it to 200 characters (with "...") if longer."""
    project = kedro_project(tmp_path / "project", "churn")
    entry = "docs/" + "x" * (length - 5)
    journal.begin(project, [JournalEntry(entry, existed=False)], [])

    with pytest.raises(ProjectError) as refused:
        journal.read_journal(project, managed(project))

    quoted = f'"{entry}"' if shown is None else f'"{entry[:shown]}...'  # 200 characters in all
    assert f"it lists {quoted}, which is outside" in str(refused.value)


def test_an_entry_of_the_wrong_shape_is_quoted_as_its_repr(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    journal.make_state_folder(project)
    journal.journal_path(project).write_text(
        '{"format": 1, "state": "applying", "entries": [12345], "created-dirs": []}', encoding="utf-8")

    with pytest.raises(ProjectError, match=r'it lists "12345", which is not a \[path, existed, delete\] entry'):
        journal.read_journal(project, managed(project))


def test_read_only_commands_are_told_of_an_interrupted_run_only_when_there_is_one(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    assert journal.interrupted(project, managed(project)) == ""

    journal.begin(project, [JournalEntry("src/churn/pipelines/new.py", existed=False)], [])

    assert journal.interrupted(project, managed(project)) == (
        f"interrupted: a killed micropkg run left {journal.journal_path(project)} (1 planned file change(s), "
        "applying); run `micropkg recover` to finish it (read-only commands never roll back or forward)"
    )


@pytest.mark.parametrize("text, reason", [
    ("[1, 2, 3]", "it is not a JSON object"),
    ('{"format": 2, "state": "applying", "entries": [], "created-dirs": []}', "its 'format' is not 1"),
    ('{"format": 1, "state": "done", "entries": [], "created-dirs": []}',
     "its 'state' is neither 'applying' nor 'committed'"),
    ('{"format": 1, "state": "applying", "entries": {}, "created-dirs": []}', "its 'entries' is not a list"),
    ('{"format": 1, "state": "applying", "entries": [], "created-dirs": 5}',
     "its 'created-dirs' is not a list of strings"),
    ('{"format": 1, "state": "applying", "entries": [], "created-dirs": [["src/churn/x"]]}',
     "its 'created-dirs' is not a list of strings"),
])
def test_a_journal_of_the_wrong_shape_is_refused_saying_what_is_wrong(tmp_path: Path, text, reason) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    journal.make_state_folder(project)
    journal.journal_path(project).write_text(text, encoding="utf-8")
    before = snapshot_tree(project)

    with pytest.raises(ProjectError) as refused:
        journal.recover(project, managed(project))

    assert str(refused.value) == (
        f"{journal.journal_path(project)} is not a journal micropkg can act on: {reason}; nothing was rolled "
        "back or forward (check the project, then move that file away)"
    )
    assert snapshot_tree(project) == before


def test_a_journal_nested_too_deeply_is_one_sentence(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    journal.make_state_folder(project)
    journal.journal_path(project).write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")

    with pytest.raises(ProjectError) as refused:
        journal.read_journal(project, managed(project))

    assert str(refused.value) == f"{journal.journal_path(project)} is nested too deeply to read safely"


def test_a_journal_linked_out_of_the_project_is_not_read(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    outside = tmp_path / "outside.json"
    outside.write_text('{"format": 1, "state": "applying", "entries": [], "created-dirs": []}', encoding="utf-8")
    journal.make_state_folder(project)
    journal.journal_path(project).symlink_to(outside)

    with pytest.raises(ProjectError, match="refusing to read .*journal: it resolves to"):
        journal.read_journal(project, managed(project))


def test_the_state_folder_goes_after_recovery_even_without_its_gitignore(tmp_path: Path) -> None:
    project, _ = killed_before_commit(tmp_path)
    (project / journal.STATE_FOLDER / journal.STATE_IGNORE).unlink()  # removed by hand, or never written

    assert journal.recover(project, managed(project)) is not None

    assert not (project / journal.STATE_FOLDER).exists()


def test_a_state_folder_that_cannot_be_made_is_one_sentence_with_the_reason(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "project"
    not_a_folder.write_text("a file, not a project folder\n", encoding="utf-8")

    with pytest.raises(ProjectError) as refused:
        journal.make_state_folder(not_a_folder)

    assert str(refused.value) == f"cannot create {not_a_folder / '.micropkg'}: {os.strerror(errno.ENOTDIR)}"


def test_a_created_folder_that_is_a_link_out_of_the_project_is_refused(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    (tmp_path / "outside").mkdir()
    (project / "src/churn/pipelines/ext").symlink_to(tmp_path / "outside")
    journal.begin(project, [], ["src/churn/pipelines/ext"])

    with pytest.raises(ProjectError, match='lists the folder "src/churn/pipelines/ext", and refusing to recover '):
        journal.read_journal(project, managed(project))

    intent = journal.Journal(journal.APPLYING, (), ("src/churn/pipelines/ext",))
    with pytest.raises(ProjectError, match="refusing to remove .*ext: it resolves to"):
        journal.undo(project, intent)
    assert (tmp_path / "outside").is_dir()


def test_a_journal_that_cannot_be_read_is_one_sentence_with_the_reason(tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "project", "churn")
    journal.make_state_folder(project)
    path = journal.journal_path(project)
    path.symlink_to(path)  # a loop: it cannot be opened

    with pytest.raises(ProjectError) as refused:
        journal.read_journal(project, managed(project))

    assert str(refused.value) == (
        f"{path} cannot be read ({os.strerror(errno.ELOOP)}); the interrupted run it records cannot be recovered"
    )
