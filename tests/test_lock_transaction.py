"""Tests for micropkg.lock, all-or-nothing file changes, the project lock and staging (SPEC §7)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from micropkg_tasks.core.change import transaction
from micropkg_tasks.core.change.staging import Staging
from micropkg_tasks.core.change.transaction import (
    CREATE,
    DELETE,
    UNCHANGED,
    UPDATE,
    FileChange,
    apply_changes,
    project_lock,
)
from micropkg_tasks.core.errors import BusyError, MicropkgError, ProjectError
from micropkg_tasks.core.lock.lockfile import (
    Lock,
    LockEntry,
    parse_lock,
    read_lock,
    render_lock,
    sha256_bytes,
    sha256_file,
)
from tests.conftest import REPO_ROOT
from tests.helpers import build_file_tree, read_tree, snapshot_tree

# -- lockfile ------------------------------------------------------------------------------


def cleaning_entry() -> LockEntry:
    return LockEntry(
        module="utils.cleaning",
        name="cleaning_utils",
        source="s3://bucket/micropkgs/cleaning_utils-0.3.tar.gz",
        version="0.3",
        sdist_sha256="b" * 64,
        source_sha256="c" * 64,
        options={"destination": "utils", "alias": "cleaning"},
        requirements=["scikit-learn>=1.3", "pandas>=2"],
        files={
            "src/spaceflights/utils/cleaning/__init__.py": "1" * 64,
            "conf/base/parameters_cleaning.yml": "2" * 64,
        },
    )


def processing_entry() -> LockEntry:
    return LockEntry(
        module="pipelines.data_processing",
        name="data_processing",
        source="dist/data_processing-0.1.tar.gz",
        version="0.1",
        sdist_sha256="a" * 64,
        requirements=["pandas>=2"],
        files={"src/spaceflights/pipelines/data_processing/nodes.py": "3" * 64},
    )


def two_entry_lock() -> Lock:
    # Inserted out of order on purpose: rendering sorts.
    return Lock({"utils.cleaning": cleaning_entry(), "pipelines.data_processing": processing_entry()})


EXPECTED_LOCK = f"""\
# Written by micropkg-tasks: what each pulled micro-package installed. Do not edit by hand.
version = 1

[micropkg."pipelines.data_processing"]
name = "data_processing"
source = "dist/data_processing-0.1.tar.gz"
version = "0.1"
sdist-sha256 = "{'a' * 64}"
requirements = ["pandas>=2"]

[micropkg."pipelines.data_processing".options]

[micropkg."pipelines.data_processing".files]
"src/spaceflights/pipelines/data_processing/nodes.py" = "{'3' * 64}"

[micropkg."utils.cleaning"]
name = "cleaning_utils"
source = "s3://bucket/micropkgs/cleaning_utils-0.3.tar.gz"
version = "0.3"
sdist-sha256 = "{'b' * 64}"
source-sha256 = "{'c' * 64}"
requirements = ["pandas>=2", "scikit-learn>=1.3"]

[micropkg."utils.cleaning".options]
alias = "cleaning"
destination = "utils"

[micropkg."utils.cleaning".files]
"conf/base/parameters_cleaning.yml" = "{'2' * 64}"
"src/spaceflights/utils/cleaning/__init__.py" = "{'1' * 64}"
"""


def parse_text(text: str, display: str = "micropkg.lock") -> Lock:
    return parse_lock(tomllib.loads(text), display=display)


def test_render_is_sorted_and_ends_with_one_newline() -> None:
    text = render_lock(two_entry_lock())

    assert text == EXPECTED_LOCK
    assert text.endswith('"\n') and not text.endswith("\n\n")


def test_render_is_stable_whatever_the_insertion_order() -> None:
    reordered = Lock({"pipelines.data_processing": processing_entry(), "utils.cleaning": cleaning_entry()})

    assert render_lock(reordered) == render_lock(two_entry_lock())


def test_empty_lock_renders_header_and_version_only() -> None:
    assert render_lock(Lock()) == (
        "# Written by micropkg-tasks: what each pulled micro-package installed. Do not edit by hand.\n"
        "version = 1\n"
    )
    assert parse_text(render_lock(Lock())) == Lock()


def test_parse_of_render_is_the_same_lock(tmp_path: Path) -> None:
    lock = two_entry_lock()
    lock.entries["utils.cleaning"].requirements.sort()  # render sorts them
    path = tmp_path / "micropkg.lock"
    path.write_text(render_lock(lock), encoding="utf-8")

    assert parse_text(render_lock(lock)) == lock
    assert read_lock(path) == lock
    assert render_lock(read_lock(path)) == EXPECTED_LOCK


def test_awkward_strings_round_trip() -> None:
    entry = LockEntry(
        module="pipelines.x",
        name="x",
        source='C:\\dist\\x "quoted" é.tar.gz',
        version="1.0",
        sdist_sha256="d" * 64,
        options={"fs-args": "s3 args.yml"},
        requirements=['pandas>=2; python_version < "3.12"'],
        files={'conf/base/we"ird\\name\té = x.yml': "e" * 64, "src/p/x/ünïcode.py": "f" * 64},
    )
    lock = Lock({"pipelines.x": entry})

    assert parse_text(render_lock(lock)) == lock


def test_absent_lock_is_empty(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "micropkg.lock") == Lock()


ENTRY = '[micropkg."pipelines.x"]\nname = "x"\nsource = "dist/x.tar.gz"\nversion = "0.1"\nsdist-sha256 = "aa"\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version = 1\n[micropkg\n", " is not valid TOML: "),
        ("version = 2\n", ": lock format 2 is not supported (expected 1)"),
        ('version = "1"\n', ": lock format '1' is not supported (expected 1)"),
        ('version = 1\nmicropkg = "x"\n', ": [micropkg] must be a table"),
        ('version = 1\n[micropkg]\n"pipelines.x" = 3\n', ' [micropkg."pipelines.x"] must be a table'),
        (ENTRY.replace('name = "x"\n', ""), " [micropkg.\"pipelines.x\"]: key 'name' must be a string"),
        (ENTRY.replace('version = "0.1"', "version = 1"), " [micropkg.\"pipelines.x\"]: key 'version' must be a string"),
        (ENTRY.replace('sdist-sha256 = "aa"', ""), " [micropkg.\"pipelines.x\"]: key 'sdist-sha256' must be a string"),
        (ENTRY + "source-sha256 = 5\n", " [micropkg.\"pipelines.x\"]: key 'source-sha256' must be a string"),
        (ENTRY + 'requirements = "pandas"\n', " [micropkg.\"pipelines.x\"]: 'requirements' must be a list of strings"),
        (ENTRY + "requirements = [1]\n", " [micropkg.\"pipelines.x\"]: 'requirements' must be a list of strings"),
        (ENTRY + "files = [\"a\"]\n", " [micropkg.\"pipelines.x\"]: 'files' must be a table of strings"),
        (ENTRY + '[micropkg."pipelines.x".options]\nalias = 1\n', " [micropkg.\"pipelines.x\"]: 'options' must be a table of strings"),
    ],
    ids=[
        "toml", "format", "format-type", "micropkg-not-table", "entry-not-table", "no-name", "version-type",
        "no-sha", "source-sha-type", "requirements-string", "requirements-items", "files-list", "options-values",
    ],
)
def test_malformed_lock_is_a_project_error_naming_the_file(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "micropkg.lock"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ProjectError) as caught:
        read_lock(path)

    message = str(caught.value)
    assert message.startswith(f"{path}{problem}")


def test_owner_of_and_requirements_of_others() -> None:
    lock = two_entry_lock()

    assert lock.owner_of("conf/base/parameters_cleaning.yml") is lock.entries["utils.cleaning"]
    assert lock.owner_of("src/spaceflights/pipelines/data_processing/nodes.py") is lock.entries["pipelines.data_processing"]
    assert lock.owner_of("src/spaceflights/pipelines/data_processing/other.py") is None
    assert lock.requirements_of_others("pipelines.data_processing") == {"scikit-learn>=1.3", "pandas>=2"}
    assert lock.requirements_of_others("utils.cleaning") == {"pandas>=2"}
    assert lock.requirements_of_others("not.installed") == {"scikit-learn>=1.3", "pandas>=2"}


def test_sha256_helpers(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")

    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_bytes(b"abc") == expected
    assert sha256_file(path) == expected
    assert sha256_file(tmp_path / "missing") is None


# -- apply_changes --------------------------------------------------------------------------

OLD = 1_000_000_000  # a fixed past mtime: any rewrite would show up in the snapshot
TREE = {
    "keep.txt": "keep\n",
    "update_me.txt": "old\n",
    "scripts/run.sh": "#!/bin/sh\necho old\n",
    "gone/only.txt": "bye\n",
    "gone/deeper/also.txt": "bye too\n",
    "shared/existing.txt": "stays\n",
}


def make_tree(root: Path) -> Path:
    build_file_tree(root, TREE)
    (root / "scripts" / "run.sh").chmod(0o755)
    (root / "update_me.txt").chmod(0o600)
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(OLD * 10**9, OLD * 10**9 + 123))
    return root


def plan(root: Path) -> list[FileChange]:
    return [
        FileChange(root / "update_me.txt", UPDATE, b"new\n"),
        FileChange(root / "fresh" / "sub" / "new.txt", CREATE, b"brand new\n"),
        FileChange(root / "scripts" / "run.sh", UPDATE, b"#!/bin/sh\necho new\n"),
        FileChange(root / "gone" / "only.txt", DELETE),
        FileChange(root / "keep.txt", UNCHANGED),
        FileChange(root / "gone" / "deeper" / "also.txt", DELETE),
        FileChange(root / "shared" / "added.txt", CREATE, b"added\n"),
    ]


AFTER = {
    "fresh/sub/new.txt": b"brand new\n",
    "keep.txt": b"keep\n",
    "scripts/run.sh": b"#!/bin/sh\necho new\n",
    "shared/added.txt": b"added\n",
    "shared/existing.txt": b"stays\n",
    "update_me.txt": b"new\n",
}


def test_apply_creates_updates_and_deletes(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj")
    before = snapshot_tree(root)

    apply_changes(root, plan(root))

    assert read_tree(root) == AFTER  # no backup or temporary files left behind
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()) == [
        "fresh", "fresh/sub", "scripts", "shared",
    ]  # gone/ and gone/deeper/ were pruned
    after = snapshot_tree(root)
    assert after["keep.txt"] == before["keep.txt"]  # untouched, same mtime
    assert after["shared/existing.txt"] == before["shared/existing.txt"]


def count_calls(tmp_path: Path, name: str) -> int:
    """How often a successful apply calls ``name`` (os.replace or _write_new)."""
    root = make_tree(tmp_path / "count")
    calls = 0
    target = os if name == "replace" else transaction
    real = getattr(target, name)

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(target, name, counting)
        apply_changes(root, plan(root))
    return calls


def test_the_plan_has_the_expected_number_of_steps(tmp_path: Path) -> None:
    # 2 updates (move aside + rename in), 2 creates (rename in), 2 deletes (move aside).
    assert count_calls(tmp_path, "replace") == 8
    assert count_calls(tmp_path, "_write_new") == 4


def many_creates(root: Path, count: int) -> list[FileChange]:
    return [FileChange(root / "many" / f"f{index:03}.txt", CREATE, f"{index}\n".encode()) for index in range(count)]


@pytest.mark.parametrize("count", [3, 40])  # flushed one by one, and side by side
def test_every_written_file_is_flushed_before_the_commit_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    root = make_tree(tmp_path / "proj")
    changes = plan(root) + many_creates(root, count)
    flushed: set[Path] = set()
    committed_after: list[set[Path]] = []
    real_fsync, real_commit = transaction._fsync, transaction.journal.commit

    def recording_fsync(path):  # type: ignore[no-untyped-def]
        real_fsync(path)
        flushed.add(Path(path))

    def recording_commit(*args, **kwargs):  # type: ignore[no-untyped-def]
        committed_after.append(set(flushed))
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(transaction, "_fsync", recording_fsync)
    monkeypatch.setattr(transaction.journal, "commit", recording_commit)
    apply_changes(root, changes)

    written = {change.path for change in changes if change.action in (CREATE, UPDATE)}
    assert committed_after == [written]


def test_a_flush_that_fails_restores_the_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A disk that fails to flush cannot be had on demand; the failure is injected.
    root = make_tree(tmp_path / "proj")
    before = snapshot_tree(root)
    real_fsync = os.fsync
    calls = 0

    def failing_fsync(descriptor):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 17:
            raise OSError(errno.EIO, "Input/output error")
        return real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(ProjectError, match="Input/output error; the project was restored unchanged") as caught:
        apply_changes(root, plan(root) + many_creates(root, 40))
    assert str(caught.value).startswith(f"could not write {root}/")
    monkeypatch.undo()
    assert snapshot_tree(root) == before


@pytest.mark.parametrize("fail_at", range(8))
@pytest.mark.parametrize("fault", ["oserror", "interrupt"])
def test_failure_at_any_rename_restores_the_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int, fault: str
) -> None:
    root = make_tree(tmp_path / "proj")
    before = snapshot_tree(root)
    real_replace = os.replace
    calls = 0

    def flaky_replace(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == fail_at + 1:
            if fault == "interrupt":
                raise KeyboardInterrupt
            raise OSError(errno.EIO, "Input/output error", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky_replace)
    expected = KeyboardInterrupt if fault == "interrupt" else ProjectError
    with pytest.raises(expected) as caught:
        apply_changes(root, plan(root))
    monkeypatch.undo()

    assert snapshot_tree(root) == before
    if fault == "oserror":
        message = str(caught.value)
        assert message.startswith(f"could not write {root}/")
        assert message.endswith(": Input/output error; the project was restored unchanged")


@pytest.mark.parametrize("fail_at", range(4))
def test_failure_while_writing_restores_the_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    root = make_tree(tmp_path / "proj")
    before = snapshot_tree(root)
    real_write = transaction._write_new
    calls = 0
    failed_on: list[Path] = []

    def flaky_write(path: Path, content: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == fail_at + 1:
            path.write_bytes(content[:3])  # half a file reached the disk
            failed_on.append(path)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, content)

    monkeypatch.setattr(transaction, "_write_new", flaky_write)
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, plan(root))

    assert str(caught.value) == (
        f"could not write {failed_on[0]}: No space left on device; the project was restored unchanged"
    )
    assert snapshot_tree(root) == before


def test_interrupt_while_writing_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path / "proj")
    before = snapshot_tree(root)
    real_write = transaction._write_new

    def interrupted(path: Path, content: bytes) -> None:
        if path.name == "added.txt":  # the last write of the plan
            raise KeyboardInterrupt
        real_write(path, content)

    monkeypatch.setattr(transaction, "_write_new", interrupted)
    with pytest.raises(KeyboardInterrupt):
        apply_changes(root, plan(root))

    assert snapshot_tree(root) == before


def test_temporary_file_is_removed_when_the_final_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build_file_tree(tmp_path / "proj", {"a.txt": "a\n"})
    before = snapshot_tree(root)

    def refuse(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "new" / "b.txt", CREATE, b"b\n")])
    monkeypatch.undo()

    assert str(caught.value) == (
        f"could not write {root / 'new' / 'b.txt'}: Permission denied; the project was restored unchanged"
    )
    assert snapshot_tree(root) == before  # neither new/ nor .b.txt.micropkg-new remain


@pytest.mark.parametrize("target", ["update_me.txt/child.txt", "update_me.txt/sub/child.txt"])
def test_parent_that_is_a_file_is_a_project_error_and_restores(tmp_path: Path, target: str) -> None:
    root = make_tree(tmp_path / "proj")
    before = snapshot_tree(root)
    changes = [
        FileChange(root / "scripts" / "run.sh", UPDATE, b"changed\n"),
        FileChange(root / "fresh" / "x.txt", CREATE, b"x\n"),
        FileChange(root / target, CREATE, b"child\n"),
    ]

    with pytest.raises(ProjectError) as caught:
        apply_changes(root, changes)

    # Refused before anything is touched, naming the file in the way.
    assert f"{root / 'update_me.txt'} is a file, not a folder" in str(caught.value)
    assert snapshot_tree(root) == before


def test_writing_over_an_existing_folder_is_refused_and_restores(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj")
    before = snapshot_tree(root)
    changes = [
        FileChange(root / "update_me.txt", UPDATE, b"new\n"),
        FileChange(root / "shared", CREATE, b"a file where a folder is\n"),
    ]

    with pytest.raises(MicropkgError) as caught:
        apply_changes(root, changes)

    assert str(caught.value) == f"cannot write {root / 'shared'}: a folder is in the way"
    assert snapshot_tree(root) == before


def test_deletes_prune_empty_folders_but_never_the_root(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "proj", {"a/b/c.txt": "c\n", "only.txt": "o\n"})

    apply_changes(root, [FileChange(root / "a" / "b" / "c.txt", DELETE), FileChange(root / "only.txt", DELETE)])

    assert root.is_dir()
    assert list(root.iterdir()) == []
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == [root]


def test_deletes_keep_folders_that_still_hold_files(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "proj", {"a/b/c.txt": "c\n", "a/keep.txt": "k\n"})

    apply_changes(root, [FileChange(root / "a" / "b" / "c.txt", DELETE)])

    assert read_tree(root) == {"a/keep.txt": b"k\n"}
    assert not (root / "a" / "b").exists()


def test_delete_of_a_missing_file_is_harmless(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "proj", {"a.txt": "a\n"})

    apply_changes(root, [FileChange(root / "missing.txt", DELETE)])

    assert read_tree(root) == {"a.txt": b"a\n"}


def test_create_without_content_is_a_bug_and_rolls_back(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj")
    before = snapshot_tree(root)

    with pytest.raises(ValueError, match="create of .*new.txt has no content"):
        apply_changes(root, [FileChange(root / "update_me.txt", UPDATE, b"x"), FileChange(root / "new.txt", CREATE)])

    assert snapshot_tree(root) == before


# -- project_lock ---------------------------------------------------------------------------

HOLDER = """\
import sys
from pathlib import Path
from micropkg_tasks.core.change.transaction import project_lock
with project_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_project_lock_excludes_another_process(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "proj", {"pyproject.toml": "[tool.kedro]\n"})
    before = snapshot_tree(root)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "held\n"

        started = time.monotonic()
        with pytest.raises(BusyError) as caught:
            with project_lock(root, timeout=0.3):
                pass
        assert time.monotonic() - started >= 0.3
        assert str(caught.value) == (
            f"project {root} is busy: another micropkg run is working on it (waited 0.3 s)"
        )
        assert snapshot_tree(root) == before  # the lock file lives outside the project

        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    with project_lock(root, timeout=5):
        pass


def test_project_lock_excludes_another_thread_and_waits_for_release(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    results: list[str] = []

    def try_briefly() -> None:
        try:
            with project_lock(root / "sub" / "..", timeout=0.1):  # another spelling, same project
                results.append("acquired")
        except BusyError:
            results.append("busy")

    def wait_longer() -> None:
        with project_lock(root, timeout=10):
            results.append("acquired after wait")

    with project_lock(root):
        brief = threading.Thread(target=try_briefly)
        brief.start()
        brief.join(timeout=10)
        patient = threading.Thread(target=wait_longer)
        patient.start()
        time.sleep(0.2)
        assert results == ["busy"]
    patient.join(timeout=10)

    assert results == ["busy", "acquired after wait"]


def test_lock_is_released_on_error_and_other_projects_are_independent(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()

    with pytest.raises(RuntimeError):
        with project_lock(one):
            with project_lock(two, timeout=0.1):
                raise RuntimeError("boom")

    with project_lock(one, timeout=0.1), project_lock(two, timeout=0.1):
        pass


# -- staging --------------------------------------------------------------------------------


def test_staging_changes_skip_identical_writes_and_sort_by_path(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {"same.txt": "same\n", "edit.txt": "old\n", "drop.txt": "x\n"})
    staging = Staging(root)

    staging.write(root / "same.txt", b"same\n")
    staging.write(root / "z_new.txt", b"new\n")
    staging.write(root / "edit.txt", b"new\n")
    staging.delete(root / "drop.txt")
    staging.delete(root / "never_existed.txt")

    assert staging.changes() == [
        FileChange(root / "drop.txt", DELETE),
        FileChange(root / "edit.txt", UPDATE, b"new\n"),
        FileChange(root / "z_new.txt", CREATE, b"new\n"),
    ]


def test_staging_reads_through_pending_writes(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {"a.txt": "disk\n"})
    staging = Staging(root)

    assert staging.read(root / "a.txt") == b"disk\n"
    staging.write(root / "a.txt", b"pending\n")
    staging.write(root / "b.txt", b"b\n")
    assert staging.read(root / "a.txt") == b"pending\n"
    assert staging.on_disk(root / "a.txt") == b"disk\n"
    assert staging.read(root / "b.txt") == b"b\n"
    staging.delete(root / "a.txt")
    assert staging.read(root / "a.txt") is None
    assert staging.read(root / "folder_or_missing") is None
    # Writing back what is on disk cancels the change.
    staging.write(root / "a.txt", b"disk\n")
    assert staging.changes() == [FileChange(root / "b.txt", CREATE, b"b\n")]
    assert read_tree(root) == {"a.txt": b"disk\n"}  # nothing touched the disk


def test_staging_changes_apply_cleanly(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "proj", {"a.txt": "a\n", "d/b.txt": "b\n"})
    staging = Staging(root)
    staging.write(root / "a.txt", b"A\n")
    staging.delete(root / "d" / "b.txt")
    staging.write(root / "n" / "c.txt", b"c\n")

    apply_changes(root, staging.changes())

    assert read_tree(root) == {"a.txt": b"A\n", "n/c.txt": b"c\n"}
    assert not (root / "d").exists()


def test_update_keeps_the_file_mode(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path / "proj", {"run.sh": "#!/bin/sh\necho old\n"})
    (root / "run.sh").chmod(0o755)

    apply_changes(root, [FileChange(root / "run.sh", UPDATE, b"#!/bin/sh\necho new\n")])

    assert (root / "run.sh").read_text() == "#!/bin/sh\necho new\n"
    assert (root / "run.sh").stat().st_mode & 0o777 == 0o755


def test_a_backup_left_by_a_killed_run_is_never_overwritten(tmp_path: Path) -> None:
    # A run killed mid-apply leaves .<name>.micropkg-backup: possibly the only copy of the old file.
    root = build_file_tree(tmp_path / "proj", {"a.txt": "new\n", ".a.txt.micropkg-backup": "the only old copy\n"})
    before = snapshot_tree(root)

    with pytest.raises(ProjectError) as caught:
        apply_changes(root, [FileChange(root / "a.txt", UPDATE, b"newer\n")])

    assert str(caught.value).startswith(f"{root / '.a.txt.micropkg-backup'} is left from an interrupted run")
    assert snapshot_tree(root) == before


def test_apply_changes_refuses_paths_through_symlinks_out_of_the_project_and_writes_nothing(tmp_path: Path) -> None:
    """The guard sits in the transaction too, not only in planning: a folder or a file that is a
    symlink leading out of the project is refused before anything is touched."""
    outside = build_file_tree(tmp_path / "outside", {"victim.txt": "victim\n"})
    root = build_file_tree(tmp_path / "proj", {"a.txt": "a\n", "pkg/__init__.py": ""})
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "pkg/victim.txt").symlink_to(outside / "victim.txt")
    before, outside_before = snapshot_tree(root), snapshot_tree(outside)
    for change in (
        FileChange(root / "linked" / "new.txt", CREATE, b"x\n"),
        FileChange(root / "linked" / "victim.txt", DELETE),
        FileChange(root / "pkg" / "victim.txt", UPDATE, b"x\n"),
        FileChange(root / "linked" / "deeper" / "new.txt", CREATE, b"x\n"),
    ):
        with pytest.raises(ProjectError, match="outside the project"):
            apply_changes(root, [FileChange(root / "a.txt", UPDATE, b"changed\n"), change])
        assert snapshot_tree(root) == before and snapshot_tree(outside) == outside_before


def test_a_fifo_at_an_install_path_is_replaced_only_with_force(tmp_path: Path) -> None:
    from tests.conftest import kedro_project, run_micropkg
    from tests.hostile_archives import valid_sdist

    root = kedro_project(tmp_path / "project")
    (tmp_path / "data_cleaning-0.1.tar.gz").write_bytes(valid_sdist())
    fifo = root / "src/spaceflights/data_cleaning/nodes.py"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    argv = ["pull", str(tmp_path / "data_cleaning-0.1.tar.gz"), "--no-compile"]
    refused = run_micropkg(argv, root)
    assert refused.exit_code == 1 and "a FIFO, device or socket is in the way" in refused.stderr
    forced = run_micropkg([*argv, "--force"], root)
    assert forced.exit_code == 0, forced.stderr
    assert fifo.is_file() and b"def clean" in fifo.read_bytes()
