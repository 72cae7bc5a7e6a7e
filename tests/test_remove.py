"""`micropkg remove MODULE`: undo a pull as one unit, refusing edited files without --force."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from micropkg_tasks import package_all
from micropkg_tasks.core.lock.lockfile import read_lock
from tests.conftest import kedro_project
from tests.helpers import snapshot_tree

CORE = "projects/core"
IGNORED = ("requirements.in", "requirements.txt")


def _without_requirements(snapshot: dict) -> dict:
    return {path: value for path, value in snapshot.items() if not path.startswith(IGNORED)}


@pytest.fixture
def core_sdists(monorepo) -> dict[str, Path]:
    return {r.module_path: Path(r.path) for r in package_all(monorepo / CORE).results}


def _pull(cli, project: Path, sdist: Path, *options: str) -> None:
    result = cli(["pull", str(sdist), "--no-compile", *options], project)
    assert result.exit_code == 0, result.stderr


def test_remove_leaves_the_project_as_if_the_copy_had_never_been_pulled(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    before = snapshot_tree(project)
    _pull(cli, project, core_sdists["pipelines.data_cleaning"], "--destination", "pipelines")
    added = read_lock(project / "micropkg.lock").entries["pipelines.data_cleaning"].requirements
    assert (project / "tests/pipelines/data_cleaning").is_dir()
    # Its tests ran: byte-code caches go with the copy.
    cache = project / "src/spaceflights/pipelines/data_cleaning/__pycache__"
    cache.mkdir()
    (cache / "nodes.cpython-311.pyc").write_bytes(b"\0")

    removed = cli(["remove", "pipelines.data_cleaning"], project)

    assert removed.exit_code == 0, removed.stderr
    assert "removed" in removed.stdout and "src/spaceflights/pipelines/data_cleaning/nodes.py" in removed.stdout
    for line in added:
        assert line in removed.stdout  # the requirements it added stay, and are named
    assert _without_requirements(snapshot_tree(project)) == _without_requirements(before)


def test_remove_keeps_other_entries_and_only_deletes_its_own_files(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    _pull(cli, project, core_sdists["utils.io"], "--destination", "utils", "--alias", "io")
    after_first = snapshot_tree(project)
    first_lock = (project / "micropkg.lock").read_bytes()
    _pull(cli, project, core_sdists["pipelines.data_cleaning"], "--destination", "pipelines")

    removed = cli(["remove", "pipelines.data_cleaning", "--json"], project)

    assert removed.exit_code == 0, removed.stderr
    document = json.loads(removed.stdout)
    assert document["module"] == "pipelines.data_cleaning" and document["applied"] is True
    assert list(read_lock(project / "micropkg.lock").entries) == ["utils.io"]
    assert (project / "micropkg.lock").read_bytes() == first_lock
    after = snapshot_tree(project)
    assert _without_requirements(after) == _without_requirements(after_first) | {"micropkg.lock": after["micropkg.lock"]}


def test_an_edited_copy_is_refused_naming_the_files_then_forced(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    _pull(cli, project, core_sdists["pipelines.data_cleaning"], "--destination", "pipelines")
    edited = project / "src/spaceflights/pipelines/data_cleaning/nodes.py"
    edited.write_text(edited.read_text() + "\n# local tweak\n")
    before = snapshot_tree(project)

    planned = cli(["remove", "pipelines.data_cleaning", "--dry-run"], project)
    assert planned.exit_code == 0
    assert "nodes.py (edited since installed)" in planned.stdout
    assert "a real remove would stop: 1 file(s) of pipelines.data_cleaning were edited" in planned.stderr
    refused = cli(["remove", "pipelines.data_cleaning"], project)

    assert refused.exit_code == 1
    assert "src/spaceflights/pipelines/data_cleaning/nodes.py" in refused.stderr
    assert "--force" in refused.stderr
    assert snapshot_tree(project) == before

    forced = cli(["remove", "pipelines.data_cleaning", "--force"], project)
    assert forced.exit_code == 0, forced.stderr
    assert not edited.exists()
    assert not (project / "micropkg.lock").exists()


def test_dry_run_prints_the_plan_and_writes_nothing(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    _pull(cli, project, core_sdists["pipelines.data_cleaning"], "--destination", "pipelines")
    before = snapshot_tree(project)

    planned = cli(["remove", "pipelines.data_cleaning", "--dry-run"], project)

    assert planned.exit_code == 0, planned.stderr
    assert "would remove" in planned.stdout
    assert "delete    src/spaceflights/pipelines/data_cleaning/nodes.py" in planned.stdout
    assert "dry run: nothing was written" in planned.stdout
    assert snapshot_tree(project) == before


def test_an_unknown_module_is_one_sentence_listing_what_is_installed(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    _pull(cli, project, core_sdists["utils.io"], "--destination", "utils", "--alias", "io")
    before = snapshot_tree(project)

    unknown = cli(["remove", "pipelines.nope"], project)

    assert unknown.exit_code == 2
    assert "pipelines.nope is not installed" in unknown.stderr and "utils.io" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert snapshot_tree(project) == before


def test_files_someone_else_put_in_the_copy_stay(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    _pull(cli, project, core_sdists["pipelines.data_cleaning"], "--destination", "pipelines")
    mine = project / "src/spaceflights/pipelines/data_cleaning/notes.md"
    mine.write_text("my notes\n")

    removed = cli(["remove", "pipelines.data_cleaning"], project)

    assert removed.exit_code == 0, removed.stderr
    assert mine.read_text() == "my notes\n"
    assert "notes.md was not installed by micropkg and stays" in removed.stderr
    assert not (project / "src/spaceflights/pipelines/data_cleaning/nodes.py").exists()


def test_a_copy_another_micro_package_imports_is_refused_without_force(tmp_path, cli):
    manifest = '\n[tool.kedro.micropkg.package]\n"pipelines.p0" = {}\n"utils.cleaning" = {}\n'
    core = kedro_project(tmp_path / "core", "core_pkg", pyproject_extra=manifest, extra={
        "src/core_pkg/utils/__init__.py": "",
        "src/core_pkg/utils/cleaning/__init__.py": '__version__ = "0.3"\n',
        "src/core_pkg/utils/cleaning/ops.py": "def clean(text):\n    return text.strip()\n",
        "src/core_pkg/pipelines/p0/__init__.py": '__version__ = "0.2"\n',
        "src/core_pkg/pipelines/p0/helpers.py": "from core_pkg.utils.cleaning.ops import clean\n",
    })
    assert cli(["package", "--all"], core).exit_code == 0
    project = kedro_project(tmp_path / "app", "app_pkg")
    _pull(cli, project, core / "dist/p0-0.2.tar.gz", "--with-deps")
    before = snapshot_tree(project)

    refused = cli(["remove", "utils.cleaning"], project)

    assert refused.exit_code == 1
    assert "p0 import(s) utils.cleaning" in refused.stderr
    assert snapshot_tree(project) == before
    forced = cli(["remove", "utils.cleaning", "--force"], project)
    assert forced.exit_code == 0, forced.stderr
    assert "p0 import(s) utils.cleaning, which is no longer installed" in forced.stderr
    assert list(read_lock(project / "micropkg.lock").entries) == ["p0"]


def test_remove_resolves_a_copy_with_two_owners(monorepo, cli):
    """A copy pulled from an sdist kept elsewhere (not the source's own ``dist/`` build, which is the
    same source) that sync-shared also claims: the hint names remove, and after it sync-shared
    installs the copy again from its shared source."""
    churn = monorepo / "projects/churn"
    assert cli(["package", "--all"], monorepo / CORE).exit_code == 0
    elsewhere = monorepo.parent / "released"
    elsewhere.mkdir()
    shutil.copy(monorepo / CORE / "dist/data_cleaning-0.3.0.tar.gz", elsewhere)
    _pull(cli, churn, elsewhere / "data_cleaning-0.3.0.tar.gz", "--destination", "pipelines", "--force")
    check = cli(["sync-shared", "--check"], monorepo)
    assert check.exit_code == 1
    assert "`micropkg remove MODULE --project TARGET`" in check.stderr

    removed = cli(["remove", "pipelines.data_cleaning", "--project", str(churn)], monorepo)

    assert removed.exit_code == 0, removed.stderr
    synced = cli(["sync-shared", "--no-compile"], monorepo)
    assert synced.exit_code == 0, synced.stdout + synced.stderr
    entry = read_lock(churn / "micropkg.lock").entries["pipelines.data_cleaning"]
    assert entry.source == "../core#pipelines.data_cleaning"


def test_dry_run_after_a_killed_run_writes_nothing_and_names_recover(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    _pull(cli, project, core_sdists["pipelines.data_cleaning"], "--destination", "pipelines")
    nodes = "src/spaceflights/pipelines/data_cleaning/nodes.py"
    journal = project / ".micropkg/journal"
    journal.write_text(json.dumps({"format": 1, "state": "applying", "entries": [[nodes, True, False]],
                                   "created-dirs": []}))
    before = snapshot_tree(project)

    planned = cli(["remove", "pipelines.data_cleaning", "--dry-run"], project)

    assert planned.exit_code == 1
    assert "micropkg recover" in planned.stderr
    assert snapshot_tree(project) == before


def test_a_lock_whose_created_files_reach_outside_is_refused_whole(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    _pull(cli, project, core_sdists["pipelines.data_cleaning"], "--destination", "pipelines")
    lock = project / "micropkg.lock"
    text = lock.read_text()
    assert 'created = ["tests/pipelines/__init__.py"]' in text
    lock.write_text(text.replace('created = ["tests/pipelines/__init__.py"]', 'created = ["../outside/__init__.py"]'))
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/__init__.py").write_text("")
    before = snapshot_tree(tmp_path)

    refused = cli(["remove", "pipelines.data_cleaning"], project)

    assert refused.exit_code == 1
    assert "micropkg.lock is invalid and was not used" in refused.stderr and "../outside/__init__.py" in refused.stderr
    assert snapshot_tree(tmp_path) == before
