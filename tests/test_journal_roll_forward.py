"""Rolling a committed journal forward: the backups go, and so do the folders the run emptied.

A run that deletes the last file of a folder removes the folder too, but only after its commit
point (the backup must stay until then). A kill between the commit and that clean-up leaves a
committed journal, and ``recover`` must finish the clean-up: no empty folder is left behind,
and folders that still hold something, and the project root, stay.
"""

from __future__ import annotations

from pathlib import Path

from micropkg_tasks.core import journal
from micropkg_tasks.core.journal import JournalEntry
from tests.conftest import kedro_project, run_micropkg
from tests.helpers import snapshot_tree

OLD = "src/churn/pipelines/old"


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

    assert journal.recover(project) is not None

    assert sorted(p.name for p in (project / OLD).iterdir()) == ["notes.txt"]  # sub/ went, old/ stays


def test_a_second_recover_finds_nothing_to_do(tmp_path: Path) -> None:
    project = killed_after_commit(tmp_path)
    journal.recover(project)
    after = snapshot_tree(project)

    assert journal.recover(project) is None
    result = run_micropkg(["recover"], project)
    assert result.exit_code == 0 and snapshot_tree(project) == after
