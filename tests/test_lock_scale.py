"""Large locks: one size limit for writing and reading ``micropkg.lock``, the fast reader of the
lock as written agreeing with ``tomllib``, dependents computed for every entry at once, and
conflicted files that cannot be read.

Speed itself is measured in ``benchmarks/lock_scale.py``, not here.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.lock import lockfile
from micropkg_tasks.core.lock.lock_text import parse_rendered
from micropkg_tasks.core.lock.lockfile import Lock, LockEntry, parse_lock, read_lock, render_lock, sha256_bytes
from tests.conftest import kedro_project
from tests.helpers import snapshot_tree
from tests.hostile_archives import valid_sdist
from tests.hypothesis_profiles import examples

PACKAGE = "spaceflights"


def _entry(module: str, *, files: dict[str, str] | None = None, depends_on: list[str] | None = None,
           conflicts: list[str] | None = None) -> LockEntry:
    name = module.rsplit(".", 1)[-1]
    return LockEntry(
        module=module, name=name, source=f"dist/{name}-0.1.tar.gz", version="0.1", sdist_sha256="0" * 64,
        files=files or {}, depends_on=depends_on or [], conflicts=conflicts or [],
    )


def _installed(project: Path, count: int) -> Lock:
    """``count`` installed micro-packages, each importing the one before it (a chain)."""
    lock = Lock()
    for index in range(count):
        module = f"pipelines.p{index:04d}"
        relative = f"src/{PACKAGE}/pipelines/p{index:04d}.py"
        data = f"VALUE = {index}\n".encode()
        (project / relative).write_bytes(data)
        lock.entries[module] = _entry(
            module, files={relative: sha256_bytes(data)},
            depends_on=[f"pipelines.p{index - 1:04d}"] if index else [],
        )
    (project / "micropkg.lock").write_text(render_lock(lock), encoding="utf-8")
    return lock


# -- dependents, once for the whole lock --------------------------------------------------------------


def test_status_names_every_entrys_dependents(cli, tmp_path):
    project = kedro_project(tmp_path / "p")
    _installed(project, 300)
    result = cli(["status", "--json"], project)
    assert result.exit_code == 0, result.stderr
    packages = {p["module"]: p for p in json.loads(result.stdout)["packages"]}
    assert len(packages) == 300 and {p["state"] for p in packages.values()} == {"in sync"}
    assert packages["pipelines.p0000"]["needed_by"] == ["pipelines.p0001"]
    assert packages["pipelines.p0150"]["needed_by"] == ["pipelines.p0151"]
    assert packages["pipelines.p0150"]["depends_on"] == ["pipelines.p0149"]
    assert packages["pipelines.p0299"]["needed_by"] == []
    text = cli(["status"], project)
    assert "  pipelines.p0001 is needed by pipelines.p0002\n" in text.stdout


def test_dependents_index_matches_asking_entry_by_entry():
    lock = Lock({
        "pipelines.a": _entry("pipelines.a"),
        "pipelines.b": _entry("pipelines.b", depends_on=["pipelines.a"]),
        "pipelines.c": _entry("pipelines.c", depends_on=["pipelines.b", "pipelines.a"]),
        "pipelines.d": _entry("pipelines.d", depends_on=["pipelines.gone"]),
    })
    index = lock.dependents()
    for module in [*lock.entries, "pipelines.gone"]:
        assert list(index.get(module, ())) == lock.dependents_of(module)
    assert index["pipelines.a"] == ("pipelines.b", "pipelines.c")


# -- the reader of the lock as written ------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_PATHS = st.lists(st.from_regex(r"src/[a-z]{1,6}(/[a-z_]{1,6}){0,2}\.py", fullmatch=True), max_size=3, unique=True)


# Text the renderer writes without escapes: printable, no quote, no backslash.
_PLAIN = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"),
                               exclude_characters='"\\', include_characters=" "), max_size=12)


@st.composite
def _locks(draw, text: st.SearchStrategy[str] = _TEXT) -> Lock:
    some = text.filter(bool)  # origin and source-sha256 are written only when set
    lock = Lock()
    for module in draw(st.lists(text, max_size=4, unique=True)):
        paths = sorted(draw(_PATHS))  # the lock keeps its lists sorted
        lock.entries[module] = LockEntry(
            module=module, name=draw(text), source=draw(text), version=draw(text), sdist_sha256=draw(text),
            source_sha256=draw(st.none() | some), origin=draw(st.none() | some),
            options=draw(st.dictionaries(st.from_regex(r"[a-z_-]{1,8}", fullmatch=True), text, max_size=3)),
            requirements=sorted(draw(st.lists(text, max_size=3))),
            depends_on=sorted(draw(st.lists(text, max_size=3))),
            files={path: draw(text) for path in paths},
            blobs={path: draw(text) for path in paths if draw(st.booleans())},
            conflicts=[path for path in paths if draw(st.booleans())],
        )
    return lock


@settings(max_examples=examples("source"))
@given(_locks())
def test_the_fast_reader_agrees_with_tomllib_on_every_rendered_lock(lock):
    text = render_lock(lock)
    fast = parse_rendered(text)
    assert fast is None or fast == tomllib.loads(text)
    assert parse_lock(tomllib.loads(text), display="lock").entries == lock.entries


@settings(max_examples=examples("source"))
@given(_locks(_PLAIN))
def test_the_fast_reader_reads_every_lock_written_without_escapes(lock):
    text = render_lock(lock)
    assert parse_rendered(text) == tomllib.loads(text)


def test_the_fast_reader_takes_a_plain_rendered_lock(tmp_path):
    project = kedro_project(tmp_path / "p")
    lock = _installed(project, 5)
    text = (project / "micropkg.lock").read_text(encoding="utf-8")
    assert parse_rendered(text) == tomllib.loads(text)
    assert read_lock(project / "micropkg.lock").entries == lock.entries


@pytest.mark.parametrize("edit", [
    lambda text: text.replace("\n", "\r\n"),
    lambda text: text.replace('name = "p0001"', 'name   =   "p0001"'),
    lambda text: text.replace('name = "p0001"', 'name = "p0001"  # renamed'),
    lambda text: text.replace('name = "p0001"', 'name = "p\\u0030001"'),
    lambda text: text.replace('version = "0.1"', "version = '0.1'"),
    lambda text: text + "\n# a note at the end\n",
    lambda text: text.replace('version = "0.1"\n', 'version = "0.1"\nextra = 1\n', 1),
])
def test_hand_edits_are_read_by_tomllib_with_the_same_result(tmp_path, edit):
    project = kedro_project(tmp_path / "p")
    _installed(project, 3)
    path = project / "micropkg.lock"
    edited = edit(path.read_text(encoding="utf-8"))
    assert parse_rendered(edited) is None
    path.write_bytes(edited.encode("utf-8"))
    assert lockfile.read_lock(path).entries.keys() == {"pipelines.p0000", "pipelines.p0001", "pipelines.p0002"}


@pytest.mark.parametrize("edit", [
    # The same file listed twice, and the same entry twice: invalid TOML, never silently merged.
    lambda text: text.replace(".py\" = ", ".py\" = \"x\"\n\"src/spaceflights/pipelines/p0000.py\" = ", 1),
    lambda text: text + text[text.index('\n[micropkg."pipelines.p0001"]'):],
])
def test_a_key_twice_is_refused_as_tomllib_refuses_it(tmp_path, edit):
    project = kedro_project(tmp_path / "p")
    _installed(project, 2)
    path = project / "micropkg.lock"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ProjectError, match="is not valid TOML"):
        read_lock(path)


# -- one size limit for writing and reading ---------------------------------------------------------------


def test_the_writer_and_the_reader_share_one_limit(tmp_path, monkeypatch):
    project = kedro_project(tmp_path / "p")
    lock = _installed(project, 4)
    size = len(render_lock(lock).encode("utf-8"))
    monkeypatch.setattr(lockfile, "MAX_LOCK_BYTES", size)
    assert read_lock(project / "micropkg.lock").entries == lock.entries  # exactly at the limit: both take it
    monkeypatch.setattr(lockfile, "MAX_LOCK_BYTES", size - 1)
    with pytest.raises(ProjectError, match="over the .* this tool reads back; nothing was written"):
        render_lock(lock)
    with pytest.raises(ProjectError, match="larger than"):
        read_lock(project / "micropkg.lock")


def test_a_pull_that_would_write_a_lock_over_the_limit_is_refused_before_writing(cli, tmp_path, monkeypatch):
    project = kedro_project(tmp_path / "p")
    _installed(project, 4)
    archive = tmp_path / "data_cleaning-0.1.tar.gz"
    archive.write_bytes(valid_sdist())
    monkeypatch.setattr(lockfile, "MAX_LOCK_BYTES", (project / "micropkg.lock").stat().st_size + 100)
    before = snapshot_tree(project)
    result = cli(["pull", str(archive), "--no-compile"], project)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith("error: micropkg.lock would be ") and result.stderr.count("\n") == 1
    assert "with 5 entries" in result.stderr and "nothing was written" in result.stderr
    assert snapshot_tree(project) == before
    assert cli(["status"], project).exit_code == 0  # the project is still usable


# -- conflicted files that cannot be read ---------------------------------------------------------------


@pytest.mark.parametrize("replace", ["folder", "fifo"])
def test_an_unreadable_conflicted_file_stays_conflicted(cli, tmp_path, replace):
    project = kedro_project(tmp_path / "p")
    relative = f"src/{PACKAGE}/pipelines/x/nodes.py"
    path = project / relative
    path.parent.mkdir(parents=True)
    lock = Lock({"pipelines.x": _entry("pipelines.x", files={relative: sha256_bytes(b"a\n")}, conflicts=[relative])})
    (project / "micropkg.lock").write_text(render_lock(lock), encoding="utf-8")
    if replace == "folder":
        path.mkdir()
    else:
        os.mkfifo(path)
    result = cli(["status", "--json"], project)
    assert result.exit_code == 0, result.stderr
    (package,) = json.loads(result.stdout)["packages"]
    assert (package["state"], package["conflicted"], package["edited"]) == ("conflicted", [relative], [relative])


def test_a_deleted_conflicted_file_is_missing_not_conflicted(cli, tmp_path):
    project = kedro_project(tmp_path / "p")
    relative = f"src/{PACKAGE}/pipelines/x/nodes.py"
    lock = Lock({"pipelines.x": _entry("pipelines.x", files={relative: sha256_bytes(b"a\n")}, conflicts=[relative])})
    (project / "micropkg.lock").write_text(render_lock(lock), encoding="utf-8")
    result = cli(["status", "--json"], project)
    (package,) = json.loads(result.stdout)["packages"]
    assert (package["state"], package["conflicted"], package["missing"]) == ("locally edited", [], [relative])
