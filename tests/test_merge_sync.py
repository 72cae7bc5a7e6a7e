"""``--merge`` on ``sync-shared`` and ``pull``: local edits survive upstream updates (three-way merge).

Every test starts from a scratch copy of ``examples/monorepo``: churn receives core's
``pipelines.data_cleaning`` through ``[[tool.micropkg.shared]]``. The merge base is the
content as installed, found in the user cache's store or in git through the blob id
that ``micropkg.lock`` records.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from micropkg_tasks import package
from micropkg_tasks.core.lock.lockfile import read_lock, render_lock
from micropkg_tasks.core.merge import git_blob_id
from tests.conftest import run_micropkg
from tests.helpers import git, snapshot_tree
from tests.test_sync import CHURN, SOURCE_CLEANING, no_compile, run_pytest

CHURN_NODES = "src/churn/pipelines/data_cleaning/nodes.py"
SOURCE_NODES = f"{SOURCE_CLEANING}/nodes.py"
LINE_3 = "from __future__ import annotations\n"
LINE_30 = '    return rename_columns(kept, params.get("rename", {}))\n'


def sync(monorepo: Path, *args: str):
    extra = no_compile() if "--check" not in args else []
    return run_micropkg(["sync-shared", *args, *extra], monorepo)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def line(path: Path, number: int) -> str:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)[number - 1]


@pytest.fixture
def synced(monorepo: Path) -> Path:
    """The example monorepo after a first sync: churn holds core's data_cleaning."""
    result = sync(monorepo)
    assert result.exit_code == 0, result.stderr
    assert line(monorepo / CHURN / CHURN_NODES, 3) == LINE_3
    assert line(monorepo / CHURN / CHURN_NODES, 30) == LINE_30
    return monorepo


def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fresh = tmp_path / "empty-cache"
    fresh.mkdir()
    monkeypatch.setenv("MICROPKG_CACHE_DIR", str(fresh))


# -- acceptance 1: edits on different lines both survive -----------------------------------------------


def test_local_and_upstream_edits_on_different_lines_are_both_kept(synced):
    target = synced / CHURN / CHURN_NODES
    edit(target, LINE_3, "from __future__ import annotations  # churn: local tweak\n")
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')

    result = sync(synced, "--merge")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert line(target, 3) == "from __future__ import annotations  # churn: local tweak\n"
    assert line(target, 30) == '    return rename_columns(kept, params.get("rename") or {})\n'
    assert f"merged    {CHURN_NODES} (local edits kept on top of upstream's)" in result.stdout
    run = run_pytest(synced / CHURN, "tests/pipelines/data_cleaning")
    assert run.returncode == 0, run.stdout + run.stderr
    # The lock's base is now upstream's content, and the merged result is recorded as kept on
    # purpose: the copy is customised, which passes the gate.
    entry = read_lock(synced / CHURN / "micropkg.lock").entries["pipelines.data_cleaning"]
    assert entry.conflicts == []
    assert list(entry.customised) == [CHURN_NODES]
    status = run_micropkg(["status"], synced / CHURN)
    assert "pipelines.data_cleaning  0.3.0    customised" in status.stdout
    check = sync(synced, "--check")
    assert check.exit_code == 0
    assert "pipelines.data_cleaning (from projects/core#pipelines.data_cleaning): customised" in check.stdout


def test_without_merge_the_same_update_is_still_refused(synced):
    edit(synced / CHURN / CHURN_NODES, LINE_3, "from __future__ import annotations  # tweak\n")
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    before = snapshot_tree(synced / CHURN)
    result = sync(synced)
    assert result.exit_code == 1
    assert f"{CHURN_NODES} (edited since pipelines.data_cleaning installed it)" in result.stderr
    assert snapshot_tree(synced / CHURN) == before


# -- acceptance 2: both sides change the same line ------------------------------------------------------


def test_a_conflict_is_written_with_the_base_section_and_shown_until_resolved(synced):
    target = synced / CHURN / CHURN_NODES
    edit(target, LINE_30, '    return rename_columns(kept, params.get("rename", {"id": "key"}))\n')
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')

    result = sync(synced, "--merge")

    assert result.exit_code == 1
    assert f"{CHURN_NODES} (1 conflict marked in the file)" in result.stderr
    text = target.read_text(encoding="utf-8")
    assert (
        "<<<<<<< local\n"
        '    return rename_columns(kept, params.get("rename", {"id": "key"}))\n'
        "||||||| base (as installed)\n"
        f"{LINE_30}"
        "=======\n"
        '    return rename_columns(kept, params.get("rename") or {})\n'
        ">>>>>>> upstream\n"
    ) in text
    status = run_micropkg(["status"], synced / CHURN)
    assert "pipelines.data_cleaning  0.3.0    conflicted" in status.stdout
    assert f"conflict markers: {CHURN_NODES}" in status.stdout
    assert sync(synced, "--check").exit_code == 3
    # A second sync does not touch the file while its markers are there.
    assert sync(synced, "--merge").exit_code == 0
    assert target.read_text(encoding="utf-8") == text

    # Resolve by hand: keep the local rename, in upstream's style.
    resolved = text[: text.index("<<<<<<<")] + '    return rename_columns(kept, params.get("rename") or {"id": "key"})\n'
    target.write_text(resolved, encoding="utf-8")
    status = run_micropkg(["status"], synced / CHURN)
    assert "pipelines.data_cleaning  0.3.0    locally edited" in status.stdout
    check = sync(synced, "--check")
    assert "locally edited; in sync with upstream" in check.stdout
    run = run_pytest(synced / CHURN, "tests/pipelines/data_cleaning")
    assert run.returncode == 0, run.stdout + run.stderr


def test_dry_run_diff_with_merge_shows_the_merged_result_and_writes_nothing(synced):
    edit(synced / CHURN / CHURN_NODES, LINE_3, "from __future__ import annotations  # local\n")
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    before = snapshot_tree(synced)
    result = sync(synced, "--merge", "--dry-run", "--diff")
    assert result.exit_code == 0, result.stderr
    assert snapshot_tree(synced) == before
    assert f"+++ b/{CHURN_NODES}" in result.stdout
    assert '+    return rename_columns(kept, params.get("rename") or {})' in result.stdout
    # The local edit is in the merged result, so the diff does not take it away.
    assert "-from __future__ import annotations  # local" not in result.stdout


# -- acceptance 3 and 4: where the base comes from ---------------------------------------------------------




def test_on_a_fresh_clone_with_an_empty_cache_the_base_comes_from_git(synced, tmp_path, monkeypatch):
    git(synced, "init", "-q")
    git(synced, "add", "-A")
    git(synced, "commit", "-q", "-m", "installs committed")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(synced), str(clone))
    empty_cache(monkeypatch, tmp_path)

    edit(clone / CHURN / CHURN_NODES, LINE_3, "from __future__ import annotations  # churn\n")
    edit(clone / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    result = sync(clone, "--merge")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert line(clone / CHURN / CHURN_NODES, 3) == "from __future__ import annotations  # churn\n"
    assert line(clone / CHURN / CHURN_NODES, 30) == '    return rename_columns(kept, params.get("rename") or {})\n'


def test_with_neither_git_nor_the_store_merge_refuses_in_one_sentence(synced, tmp_path, monkeypatch):
    empty_cache(monkeypatch, tmp_path)  # and the scratch monorepo is no git repository
    edit(synced / CHURN / CHURN_NODES, LINE_3, "from __future__ import annotations  # churn\n")
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    before = snapshot_tree(synced / CHURN)  # forecast, unedited, is updated as usual

    result = sync(synced, "--merge")

    assert result.exit_code == 1
    assert (
        f"projects/churn: failed: cannot merge {CHURN_NODES}: the content it was installed with is neither in "
        "git nor in the local store of installed files; use --force to take upstream's version, or merge it by hand"
    ) in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot_tree(synced / CHURN) == before


def test_a_base_that_does_not_match_the_lock_is_not_trusted(synced, tmp_path, monkeypatch):
    # Plant wrong bytes under the blob id in the store: the merge must refuse, not merge against them.
    store = Path(os.environ["MICROPKG_CACHE_DIR"]) / "bases"
    blob = read_lock(synced / CHURN / "micropkg.lock").entries["pipelines.data_cleaning"].blobs[CHURN_NODES]
    (store / blob[:2] / blob[2:]).write_bytes(b"not what was installed\n")
    edit(synced / CHURN / CHURN_NODES, LINE_3, "from __future__ import annotations  # churn\n")
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    before = snapshot_tree(synced / CHURN)
    result = sync(synced, "--merge")
    assert result.exit_code == 1 and f"cannot merge {CHURN_NODES}" in result.stderr
    assert snapshot_tree(synced / CHURN) == before


# -- deletions on either side, binary files -----------------------------------------------------------------


def test_a_file_dropped_upstream_but_edited_locally_is_kept_reported_and_untracked(synced):
    edit(synced / CHURN / "src/churn/pipelines/data_cleaning/pipeline.py", '"""The Kedro', '"""Churn: the Kedro')
    (synced / SOURCE_CLEANING / "pipeline.py").unlink()
    edit(synced / SOURCE_CLEANING / "__init__.py",
         "from core.pipelines.data_cleaning.pipeline import create_pipeline\n", "")
    edit(synced / SOURCE_CLEANING / "__init__.py", '__all__ = ["create_pipeline"]\n', "")
    result = sync(synced, "--merge")
    assert "src/churn/pipelines/data_cleaning/pipeline.py (dropped upstream, edited locally: kept, no longer " \
           "tracked)" in result.stdout
    assert (synced / CHURN / "src/churn/pipelines/data_cleaning/pipeline.py").is_file()
    entry = read_lock(synced / CHURN / "micropkg.lock").entries["pipelines.data_cleaning"]
    assert "src/churn/pipelines/data_cleaning/pipeline.py" not in entry.files


def test_a_file_deleted_locally_but_changed_upstream_is_reported_and_left_deleted(synced):
    (synced / CHURN / CHURN_NODES).unlink()
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    result = sync(synced, "--merge")
    assert result.exit_code == 0, result.stderr
    assert f"kept      {CHURN_NODES} (deleted locally, changed upstream: left deleted)" in result.stdout
    assert not (synced / CHURN / CHURN_NODES).exists()
    status = run_micropkg(["status"], synced / CHURN)
    assert f"missing: {CHURN_NODES}" in status.stdout


def test_binary_files_never_merge_and_refuse_the_update(tmp_path, monkeypatch):
    from tests.conftest import kedro_project

    producer = kedro_project(tmp_path / "producer", "producer", extra={
        "src/producer/pipelines/blob/__init__.py": "X = 1\n",
        "src/producer/pipelines/blob/data.bin": b"\x00\x01\x02 upstream v1\n",
    })
    consumer = kedro_project(tmp_path / "consumer", "consumer")
    first = package(producer, "pipelines.blob", destination=str(tmp_path / "v1"))
    assert run_micropkg(["pull", str(first.path), "--no-compile"], consumer).exit_code == 0
    installed = consumer / "src/consumer/blob/data.bin"
    installed.write_bytes(b"\x00\x01\x02 local\n")
    (producer / "src/producer/pipelines/blob/data.bin").write_bytes(b"\x00\x01\x02 upstream v2\n")
    (producer / "src/producer/__init__.py").write_text('__version__ = "0.2"\n')  # a new release
    second = package(producer, "pipelines.blob", destination=str(tmp_path / "v2"))
    before = snapshot_tree(consumer)
    result = run_micropkg(["pull", str(second.path), "--merge", "--no-compile"], consumer)
    assert result.exit_code == 1
    assert "src/consumer/blob/data.bin (binary file edited locally and changed upstream: cannot merge)" in result.stderr
    assert snapshot_tree(consumer) == before


# -- pull --merge, and locks from before blob ids ---------------------------------------------------------------


def test_pull_merge_keeps_local_edits_in_a_single_project(tmp_path):
    from tests.conftest import kedro_project

    body = "".join(f"VALUE_{n} = {n}\n" for n in range(1, 31))
    producer = kedro_project(tmp_path / "producer", "producer", extra={
        "src/producer/pipelines/tallies/__init__.py": "",
        "src/producer/pipelines/tallies/values.py": body,
    })
    consumer = kedro_project(tmp_path / "consumer", "consumer")
    first = package(producer, "pipelines.tallies", destination=str(tmp_path / "v1"))
    assert run_micropkg(["pull", str(first.path), "--no-compile"], consumer).exit_code == 0
    values = consumer / "src/consumer/tallies/values.py"
    edit(values, "VALUE_2 = 2\n", "VALUE_2 = 200  # ours\n")
    edit(producer / "src/producer/pipelines/tallies/values.py", "VALUE_29 = 29\n", "VALUE_29 = 2900\n")
    (producer / "src/producer/__init__.py").write_text('__version__ = "0.2"\n')  # a new release
    second = package(producer, "pipelines.tallies", destination=str(tmp_path / "v2"))

    result = run_micropkg(["pull", str(second.path), "--merge", "--no-compile"], consumer)

    assert result.exit_code == 0, result.stderr
    assert "merged    src/consumer/tallies/values.py" in result.stdout
    text = values.read_text()
    assert "VALUE_2 = 200  # ours\n" in text and "VALUE_29 = 2900\n" in text


def test_a_lock_from_before_blob_ids_gets_them_on_its_next_write(synced):
    lock_path = synced / CHURN / "micropkg.lock"
    lock = read_lock(lock_path)
    for entry in lock.entries.values():
        entry.blobs.clear()
    lock_path.write_text(render_lock(lock))
    assert "blobs]" not in lock_path.read_text()
    # A no-op sync writes nothing, so the old lock stays as it is.
    assert sync(synced).exit_code == 0
    assert "blobs]" not in lock_path.read_text()

    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    assert sync(synced).exit_code == 0
    entries = read_lock(lock_path).entries
    for entry in entries.values():
        assert set(entry.blobs) == set(entry.files)
        for relative, blob in entry.blobs.items():
            assert git_blob_id((synced / CHURN / relative).read_bytes()) == blob


def test_a_hand_edited_lock_whose_blobs_name_unknown_files_is_refused(synced):
    lock_path = synced / CHURN / "micropkg.lock"
    text = lock_path.read_text()
    lock_path.write_text(text + '"src/churn/elsewhere.py" = "0000000000000000000000000000000000000000"\n')
    result = run_micropkg(["status"], synced / CHURN)
    assert result.exit_code == 1
    assert "'blobs' names a path that is not listed under 'files'" in result.stderr
