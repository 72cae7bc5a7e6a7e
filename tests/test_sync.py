"""``sync-shared``, ``pull-all`` and ``status`` at the monorepo root, on real trees.

Every test starts from a scratch copy of ``examples/monorepo`` (the ``monorepo`` fixture):
``core`` owns ``pipelines.data_cleaning`` and ``utils.io``; ``churn`` (Kedro 0.19 layout) and
``forecast`` (Kedro 0.18 layout, ``src/tests``) receive them through ``[[tool.micropkg.shared]]``.
The CLI is driven in-process for exit codes and output; the functions for structured results.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import micropkg_tasks.core.change.transaction as transaction
import micropkg_tasks.ops.sync.sync as sync_module
from micropkg_tasks import package_all
from micropkg_tasks.core.lock.lockfile import read_lock
from micropkg_tasks.ops.inspect.monorepo_status import monorepo_status
from micropkg_tasks.ops.pull.pull_all import pull_all_projects
from micropkg_tasks.ops.sync.sync import sync_shared
from tests.conftest import run_micropkg
from tests.helpers import read_tree, snapshot_tree

CORE, CHURN, FORECAST = "projects/core", "projects/churn", "projects/forecast"
TESTS_DIR = {CHURN: "tests", FORECAST: "src/tests"}  # forecast uses the Kedro 0.18 layout

# Where the shared micro-packages land in each target.
INSTALLED = {
    CHURN: {
        "pipelines.data_cleaning": ("src/churn/pipelines/data_cleaning", "tests/pipelines/data_cleaning"),
        "utils.io": ("src/churn/utils/io", "tests/utils/io"),
    },
    FORECAST: {
        "pipelines.cleaning": ("src/forecast/pipelines/cleaning", "src/tests/pipelines/cleaning"),
        "utils.io": ("src/forecast/utils/io", "src/tests/utils/io"),
    },
}
CLEANING_CODE = {CHURN: "src/churn/pipelines/data_cleaning", FORECAST: "src/forecast/pipelines/cleaning"}
SOURCE_CLEANING = "projects/core/src/core/pipelines/data_cleaning"

OLD_DROP = "    return [{k: v for k, v in record.items() if k not in columns} for record in records]\n"
NEW_DROP = (
    "    dropped = set(columns)\n"
    "    return [{k: v for k, v in record.items() if k not in dropped} for record in records]\n"
)


def no_compile() -> list[str]:
    """``--no-compile`` once the tasks have it (compiling is added separately and is not tested here)."""
    from micropkg_tasks.cli.collection import make_collection

    body = make_collection().tasks["sync-shared"].body
    return ["--no-compile"] if "no_compile" in inspect.signature(body).parameters else []


def sync_cli(monorepo: Path, *args: str, cwd: Path | None = None):
    extra = no_compile() if "--check" not in args else []
    return run_micropkg(["sync-shared", *args, *extra], cwd or monorepo)


def run_pytest(project: Path, tests: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests],
        cwd=project, capture_output=True, text=True, timeout=180,
        env={"PYTHONPATH": str(project / "src"), "PATH": "/usr/bin:/bin"},
    )


def edit_upstream_and_drop_a_module(monorepo: Path) -> None:
    """Change a function in core's data_cleaning and delete its pipeline.py module."""
    source = monorepo / SOURCE_CLEANING
    nodes = source / "nodes.py"
    text = nodes.read_text(encoding="utf-8")
    assert OLD_DROP in text
    nodes.write_text(text.replace(OLD_DROP, NEW_DROP), encoding="utf-8")
    (source / "pipeline.py").unlink()
    (source / "__init__.py").write_text(
        '"""Cleaning steps every project runs on raw customer records."""\n\n__version__ = "0.3.0"\n',
        encoding="utf-8",
    )


def states(result) -> dict[tuple[str, str], str]:
    return {(s.project, s.module): s.state for t in result.targets for s in t.states}


def outcomes(result) -> dict[str, str]:
    return {t.project: t.outcome for t in result.targets}


def dist_folders(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("dist") if p.is_dir())


# -- acceptance 1: install everywhere, tests pass there, a second run is a no-op ----------------------


def test_sync_installs_every_shared_package_and_its_tests_pass_in_each_target(monorepo):
    core_before = snapshot_tree(monorepo / CORE)

    result = sync_cli(monorepo)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "projects/churn: updated 16 files (pipelines.data_cleaning not installed, utils.io not installed)",
        "projects/forecast: updated 17 files (pipelines.cleaning not installed, utils.io not installed)",
        "  requirement added: utils.io: pyyaml>=6.0",
        "synced 2 projects",
    ]
    for project, modules in INSTALLED.items():
        for code, tests in modules.values():
            assert (monorepo / project / code / "__init__.py").is_file()
            assert (monorepo / project / tests / "__init__.py").is_file()
    # Imports point at each target's own package; nothing refers to core any more.
    churn_test = (monorepo / CHURN / "tests/pipelines/data_cleaning/test_nodes.py").read_text()
    assert 'mock.patch("churn.pipelines.data_cleaning.nodes.rename_columns"' in churn_test
    forecast_test = (monorepo / FORECAST / "src/tests/pipelines/cleaning/test_nodes.py").read_text()
    assert "from forecast.pipelines.cleaning.nodes import clean" in forecast_test
    for project in (CHURN, FORECAST):
        for path, content in read_tree(monorepo / project).items():
            if path.endswith(".py"):
                assert b"core." not in content, f"{project}/{path} still imports core"
    # Parameters came along (renamed for the alias in forecast).
    assert (monorepo / CHURN / "conf/base/parameters_data_cleaning.yml").is_file()
    assert (monorepo / FORECAST / "conf/base/parameters_cleaning.yml").is_file()

    # The source is read, never written: no dist/ folder, no other litter.
    assert snapshot_tree(monorepo / CORE) == core_before
    assert dist_folders(monorepo) == []

    for project, tests in TESTS_DIR.items():
        run = run_pytest(monorepo / project, tests)
        assert run.returncode == 0, run.stdout + run.stderr
        assert " passed" in run.stdout
    # The pulled tests themselves ran, not only the project's own.
    churn_run = run_pytest(monorepo / CHURN, "tests/pipelines/data_cleaning")
    forecast_run = run_pytest(monorepo / FORECAST, "src/tests/utils/io")
    assert "4 passed" in churn_run.stdout and "2 passed" in forecast_run.stdout


def test_the_lock_records_each_synced_copy_with_its_source_project(monorepo):
    assert sync_shared(monorepo, jobs=1).exit_code == 0
    churn = read_lock(monorepo / CHURN / "micropkg.lock").entries
    forecast = read_lock(monorepo / FORECAST / "micropkg.lock").entries
    assert sorted(churn) == ["pipelines.data_cleaning", "utils.io"]
    assert sorted(forecast) == ["pipelines.cleaning", "utils.io"]
    assert churn["pipelines.data_cleaning"].source == "../core#pipelines.data_cleaning"
    assert forecast["pipelines.cleaning"].source == "../core#pipelines.data_cleaning"
    assert forecast["utils.io"].source == "../core#utils.io"
    # The alias is applied when the in-memory sdist is built, so the installed package is named after it.
    assert forecast["pipelines.cleaning"].name == "cleaning"
    assert forecast["pipelines.cleaning"].options == {"alias": "cleaning", "declared": "true", "destination": "pipelines", "env": "base"}
    assert churn["pipelines.data_cleaning"].source_sha256  # the content hash that drift checks compare
    assert "src/forecast/pipelines/cleaning/nodes.py" in forecast["pipelines.cleaning"].files
    text = (monorepo / CHURN / "micropkg.lock").read_text()
    assert 'source = "../core#pipelines.data_cleaning"\n' in text and text.endswith("\n")


def test_a_second_sync_writes_nothing_and_keeps_every_mtime(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    before = snapshot_tree(monorepo)

    again = sync_cli(monorepo)

    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines() == [
        "projects/churn: in sync",
        "projects/forecast: in sync",
        "everything was already in sync: nothing was written",
    ]
    check = sync_cli(monorepo, "--check")
    assert check.exit_code == 0
    assert check.stdout.splitlines()[-1] == "everything is in sync"
    result = sync_shared(monorepo, jobs=1)
    assert outcomes(result) == {CHURN: "in sync", FORECAST: "in sync"}
    assert set(states(result).values()) == {"in sync"}
    assert result.changed_projects == ()
    assert snapshot_tree(monorepo) == before  # content, modes and mtimes


def test_nothing_is_built_when_the_hashes_match_and_each_entry_is_built_once(monorepo, monkeypatch):
    built: list[str] = []
    real_build = sync_module.build_from_inputs

    def counting_build(project, inputs, *rest):
        built.append(inputs.module_path + (f" as {inputs.alias}" if inputs.alias else ""))
        return real_build(project, inputs, *rest)

    monkeypatch.setattr(sync_module, "build_from_inputs", counting_build)

    # Three shared entries, four installations: utils.io is built once for both targets.
    sync_shared(monorepo, jobs=1)
    assert sorted(built) == ["pipelines.data_cleaning", "pipelines.data_cleaning as cleaning", "utils.io"]

    # In sync: hashing the sources is enough, nothing is built.
    built.clear()
    sync_shared(monorepo, jobs=1)
    sync_shared(monorepo, jobs=1, check=True)
    assert built == []

    # Only the entry whose source moved is built again.
    readers = monorepo / CORE / "src/core/utils/io/readers.py"
    readers.write_text(readers.read_text() + "\n\nSUFFIX = '.yml'\n")
    result = sync_shared(monorepo, jobs=1)
    assert built == ["utils.io"]
    assert outcomes(result) == {CHURN: "updated", FORECAST: "updated"}
    assert dist_folders(monorepo) == []


def test_check_on_a_fresh_monorepo_exits_1_and_writes_nothing(monorepo):
    before = snapshot_tree(monorepo)
    result = sync_cli(monorepo, "--check")
    assert result.exit_code == 1
    assert "projects/churn: utils.io (from projects/core#utils.io): not installed" in result.stdout
    assert "  create    src/forecast/pipelines/cleaning/nodes.py" in result.stdout
    assert result.stdout.splitlines()[-1] == "upstream moved: run sync-shared"
    assert snapshot_tree(monorepo) == before


# -- acceptance 2: upstream edits a function and deletes a module ----------------------------------


def test_upstream_change_is_reported_by_check_then_synced(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    edit_upstream_and_drop_a_module(monorepo)
    before = snapshot_tree(monorepo)

    check = sync_cli(monorepo, "--check")

    assert check.exit_code == 1, check.stdout + check.stderr
    assert snapshot_tree(monorepo) == before  # --check writes nothing
    lines = check.stdout.splitlines()
    for line in [
        "projects/churn: pipelines.data_cleaning (from projects/core#pipelines.data_cleaning): upstream moved",
        "projects/churn: utils.io (from projects/core#utils.io): in sync",
        "  update    src/churn/pipelines/data_cleaning/__init__.py",
        "  update    src/churn/pipelines/data_cleaning/nodes.py",
        "  delete    src/churn/pipelines/data_cleaning/pipeline.py",
        "projects/forecast: pipelines.cleaning (from projects/core#pipelines.data_cleaning): upstream moved",
        "  update    src/forecast/pipelines/cleaning/nodes.py",
        "  delete    src/forecast/pipelines/cleaning/pipeline.py",
        "upstream moved: run sync-shared",
    ]:
        assert line in lines, line
    structured = sync_shared(monorepo, check=True, jobs=1)
    assert structured.exit_code == 1
    assert states(structured) == {
        (CHURN, "pipelines.data_cleaning"): "upstream moved",
        (CHURN, "utils.io"): "in sync",
        (FORECAST, "pipelines.cleaning"): "upstream moved",
        (FORECAST, "utils.io"): "in sync",
    }

    synced = sync_cli(monorepo)

    assert synced.exit_code == 0, synced.stderr
    assert "projects/churn: updated 3 files (pipelines.data_cleaning upstream moved)" in synced.stdout
    for project, code in CLEANING_CODE.items():
        folder = monorepo / project / code
        assert not (folder / "pipeline.py").exists()
        assert "dropped = set(columns)" in (folder / "nodes.py").read_text()
        assert "create_pipeline" not in (folder / "__init__.py").read_text()
        lock = read_lock(monorepo / project / "micropkg.lock")
        module = "pipelines.data_cleaning" if project == CHURN else "pipelines.cleaning"
        assert f"{code}/pipeline.py" not in lock.entries[module].files
        run = run_pytest(monorepo / project, TESTS_DIR[project])
        assert run.returncode == 0, run.stdout + run.stderr

    after = sync_cli(monorepo, "--check")
    assert after.exit_code == 0, after.stdout
    assert after.stdout.splitlines()[-1] == "everything is in sync"


def test_files_a_target_added_next_to_a_synced_copy_are_left_alone(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    extra = monorepo / CHURN / "src/churn/pipelines/data_cleaning/extra.py"
    extra.write_text("LOCAL = True\n")
    edit_upstream_and_drop_a_module(monorepo)
    assert sync_cli(monorepo).exit_code == 0
    assert extra.read_text() == "LOCAL = True\n"
    assert sync_cli(monorepo, "--check").exit_code == 0


# -- acceptance 3: a target edited locally ----------------------------------------------------------


def test_local_edit_exits_3_on_check_stops_that_target_only_and_force_overwrites(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    edited = monorepo / CHURN / "src/churn/pipelines/data_cleaning/nodes.py"
    edited.write_text(edited.read_text() + "\n# a local tweak\n")
    edit_upstream_and_drop_a_module(monorepo)  # so forecast has something to update

    check = sync_cli(monorepo, "--check")

    assert check.exit_code == 3, check.stdout
    lines = check.stdout.splitlines()
    assert (
        "projects/churn: pipelines.data_cleaning (from projects/core#pipelines.data_cleaning): locally edited; "
        "upstream moved" in lines
    )
    assert "  edited    src/churn/pipelines/data_cleaning/nodes.py" in lines
    assert "projects/forecast: pipelines.cleaning (from projects/core#pipelines.data_cleaning): upstream moved" in lines
    assert lines[-1] == "targets were edited locally"
    structured = sync_shared(monorepo, check=True, jobs=1)
    assert structured.exit_code == 3
    churn_state = next(s for t in structured.targets for s in t.states if s.module == "pipelines.data_cleaning")
    assert churn_state.edited == ("src/churn/pipelines/data_cleaning/nodes.py",)

    churn_before = snapshot_tree(monorepo / CHURN)
    refused = sync_cli(monorepo)

    assert refused.exit_code == 1
    assert (
        "projects/churn: refused: pipelines.data_cleaning: 1 file(s) would be overwritten that micropkg does not own "
        "or that were edited (use --force to overwrite them)" in refused.stderr
    )
    assert "  src/churn/pipelines/data_cleaning/nodes.py (edited since pipelines.data_cleaning installed it)" in (
        refused.stderr.splitlines()
    )
    assert "1 project not synced: projects/churn" in refused.stderr
    assert "projects/forecast: updated 3 files (pipelines.cleaning upstream moved)" in refused.stdout
    assert snapshot_tree(monorepo / CHURN) == churn_before  # the refused target is untouched
    assert not (monorepo / FORECAST / "src/forecast/pipelines/cleaning/pipeline.py").exists()

    forced = sync_cli(monorepo, "--force")

    assert forced.exit_code == 0, forced.stderr
    assert "projects/churn: updated 3 files (pipelines.data_cleaning locally edited)" in forced.stdout
    assert "projects/forecast: in sync" in forced.stdout
    assert "# a local tweak" not in edited.read_text()
    assert "dropped = set(columns)" in edited.read_text()
    assert not (monorepo / CHURN / "src/churn/pipelines/data_cleaning/pipeline.py").exists()
    assert sync_cli(monorepo, "--check").exit_code == 0


def test_a_local_edit_alone_is_reported_and_refused(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    readers = monorepo / FORECAST / "src/forecast/utils/io/readers.py"
    readers.write_text(readers.read_text().replace("an empty file is an empty list", "empty means []"))

    check = sync_cli(monorepo, "--check")
    assert check.exit_code == 3
    assert "projects/forecast: utils.io (from projects/core#utils.io): locally edited" in check.stdout
    assert "  edited    src/forecast/utils/io/readers.py" in check.stdout

    before = snapshot_tree(monorepo)
    refused = sync_cli(monorepo)
    assert refused.exit_code == 1
    assert "src/forecast/utils/io/readers.py (edited since utils.io installed it)" in refused.stderr
    assert "projects/churn: in sync" in refused.stdout
    assert snapshot_tree(monorepo) == before


# -- acceptance 4: --dry-run --diff -------------------------------------------------------------------


def test_dry_run_diff_shows_unified_diffs_and_writes_nothing(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    edit_upstream_and_drop_a_module(monorepo)
    before = snapshot_tree(monorepo)

    result = sync_cli(monorepo, "--dry-run", "--diff")

    assert result.exit_code == 0, result.stderr
    assert snapshot_tree(monorepo) == before
    out = result.stdout
    assert "projects/churn: would update 3 files (pipelines.data_cleaning upstream moved)" in out
    assert "--- a/src/churn/pipelines/data_cleaning/nodes.py\n+++ b/src/churn/pipelines/data_cleaning/nodes.py\n" in out
    assert "-" + OLD_DROP in out
    assert "+    dropped = set(columns)\n" in out
    assert "--- a/src/forecast/pipelines/cleaning/pipeline.py\n+++ /dev/null\n" in out
    assert "-from forecast.pipelines.cleaning import nodes\n" in out
    assert "--- a/micropkg.lock\n+++ b/micropkg.lock\n" in out
    assert out.splitlines()[-1] == "dry run: nothing was written"

    structured = sync_shared(monorepo, dry_run=True, diff=True, jobs=1)
    assert outcomes(structured) == {CHURN: "would update", FORECAST: "would update"}
    assert "+++ b/src/forecast/pipelines/cleaning/nodes.py" in next(t.diff for t in structured.targets
                                                                     if t.project == FORECAST)
    assert snapshot_tree(monorepo) == before


def test_dry_run_diff_of_a_first_install_shows_new_files(monorepo):
    before = snapshot_tree(monorepo)
    result = sync_cli(monorepo, "--dry-run", "--diff")
    assert result.exit_code == 0
    assert "--- /dev/null\n+++ b/src/churn/utils/io/readers.py\n" in result.stdout
    assert "projects/forecast: would update 17 files" in result.stdout
    assert snapshot_tree(monorepo) == before


def test_diff_without_dry_run_shows_the_diffs_it_applies(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    edit_upstream_and_drop_a_module(monorepo)
    result = sync_cli(monorepo, "--diff")
    assert result.exit_code == 0
    assert "+    dropped = set(columns)\n" in result.stdout
    assert "dropped = set(columns)" in (monorepo / CHURN / "src/churn/pipelines/data_cleaning/nodes.py").read_text()


# -- acceptance 5: a fault in one target ------------------------------------------------------------


def fail_inside(monkeypatch: pytest.MonkeyPatch, project: Path, *, on_write: int = 2) -> list[Path]:
    """Make the ``on_write``-th file write inside ``project`` fail, as a full disk would."""
    project = project.resolve()
    real_write = transaction._write_new
    writes: list[Path] = []

    def faulty_write(path: Path, content: bytes) -> None:
        if project in Path(path).resolve().parents:
            writes.append(Path(path))
            if len(writes) >= on_write:
                raise OSError(28, "No space left on device", str(path))
        real_write(path, content)

    monkeypatch.setattr(transaction, "_write_new", faulty_write)
    return writes


def test_a_fault_during_the_first_install_leaves_that_target_byte_for_byte_unchanged(monorepo, monkeypatch):
    forecast_before = snapshot_tree(monorepo / FORECAST)
    writes = fail_inside(monkeypatch, monorepo / FORECAST, on_write=5)

    result = sync_shared(monorepo, jobs=1)

    assert len(writes) == 5  # four writes went through before the fault, and were rolled back
    assert outcomes(result) == {CHURN: "updated", FORECAST: "failed"}
    failed = next(t for t in result.targets if t.project == FORECAST)
    assert "No space left on device; the project was restored unchanged" in failed.error
    assert result.exit_code == 1
    assert snapshot_tree(monorepo / FORECAST) == forecast_before  # no new folders, backups or temp files
    for code, tests in INSTALLED[CHURN].values():
        assert (monorepo / CHURN / code / "__init__.py").is_file()

    monkeypatch.undo()
    retry = sync_shared(monorepo, jobs=1)
    assert outcomes(retry) == {CHURN: "in sync", FORECAST: "updated"}


def test_a_fault_during_an_update_restores_content_modes_and_mtimes(monorepo, monkeypatch):
    assert sync_shared(monorepo, jobs=1).exit_code == 0
    edit_upstream_and_drop_a_module(monorepo)
    forecast_before = snapshot_tree(monorepo / FORECAST)
    fail_inside(monkeypatch, monorepo / FORECAST, on_write=2)

    result = sync_shared(monorepo, jobs=1)

    assert outcomes(result) == {CHURN: "updated", FORECAST: "failed"}
    assert snapshot_tree(monorepo / FORECAST) == forecast_before
    assert (monorepo / FORECAST / "src/forecast/pipelines/cleaning/pipeline.py").is_file()
    assert not (monorepo / CHURN / "src/churn/pipelines/data_cleaning/pipeline.py").exists()
    check = sync_shared(monorepo, check=True, jobs=1)
    assert states(check)[(FORECAST, "pipelines.cleaning")] == "upstream moved"
    assert states(check)[(CHURN, "pipelines.data_cleaning")] == "in sync"


def test_a_fault_in_one_target_through_the_cli_with_jobs_1(monorepo, monkeypatch):
    forecast_before = snapshot_tree(monorepo / FORECAST)
    fail_inside(monkeypatch, monorepo / FORECAST, on_write=3)

    result = sync_cli(monorepo, "--jobs", "1")

    assert result.exit_code == 1
    assert "projects/churn: updated 16 files" in result.stdout
    assert "projects/forecast: failed: could not write " in result.stderr
    assert "No space left on device; the project was restored unchanged" in result.stderr
    assert "1 project not synced: projects/forecast" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot_tree(monorepo / FORECAST) == forecast_before
    assert (monorepo / CHURN / "src/churn/utils/io/readers.py").is_file()


# -- --only, root discovery, --json -------------------------------------------------------------------


def test_only_syncs_the_named_shared_package(monorepo):
    churn_before = snapshot_tree(monorepo / CHURN)

    by_alias = sync_cli(monorepo, "--only", "cleaning")

    assert by_alias.exit_code == 0, by_alias.stderr
    assert by_alias.stdout.splitlines() == [
        "projects/forecast: updated 9 files (pipelines.cleaning not installed)",
        "synced 1 project",
    ]
    assert snapshot_tree(monorepo / CHURN) == churn_before
    assert (monorepo / FORECAST / "src/forecast/pipelines/cleaning/nodes.py").is_file()
    assert not (monorepo / FORECAST / "src/forecast/utils").exists()
    assert sync_cli(monorepo, "--check", "--only", "cleaning").exit_code == 0
    assert sync_cli(monorepo, "--check").exit_code == 1  # the rest is still missing

    by_path = sync_cli(monorepo, "--only", "utils.io")
    assert by_path.exit_code == 0
    assert "projects/churn: updated" in by_path.stdout and "projects/forecast: updated" in by_path.stdout
    assert not (monorepo / CHURN / "src/churn/pipelines/data_cleaning").exists()
    assert sorted(read_lock(monorepo / CHURN / "micropkg.lock").entries) == ["utils.io"]

    # The last part of the module path selects both entries that share data_cleaning.
    by_name = sync_cli(monorepo, "--only", "data_cleaning")
    assert by_name.exit_code == 0
    assert by_name.stdout.splitlines() == [
        "projects/churn: updated 8 files (pipelines.data_cleaning not installed)",
        "projects/forecast: in sync",
        "synced 1 project",
    ]

    unknown = sync_cli(monorepo, "--only", "scoring")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == (
        "error: --only 'scoring' matches no shared micro-package (shared: pipelines.data_cleaning, utils.io)"
    )


def test_sync_finds_the_root_from_a_nested_folder_or_takes_root(monorepo, tmp_path):
    nested = monorepo / "projects/churn/src/churn/pipelines"
    check = sync_cli(monorepo, "--check", cwd=nested)
    assert check.exit_code == 1
    assert "projects/forecast: utils.io (from projects/core#utils.io): not installed" in check.stdout

    synced = sync_cli(monorepo, cwd=nested)
    assert synced.exit_code == 0, synced.stderr
    assert "synced 2 projects" in synced.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    by_option = sync_cli(monorepo, "--check", "--root", str(monorepo), cwd=elsewhere)
    assert by_option.exit_code == 0, by_option.stdout + by_option.stderr
    assert sync_shared(nested, check=True).exit_code == 0


def test_check_json_gives_states_and_the_exit_code(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    readers = monorepo / CHURN / "src/churn/utils/io/readers.py"
    readers.write_text(readers.read_text() + "# mine\n")
    edit_upstream_and_drop_a_module(monorepo)

    result = sync_cli(monorepo, "--check", "--json")

    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["check"] is True
    found = {(s["project"], s["module"]): (s["state"], s["edited"]) for t in data["targets"] for s in t["states"]}
    assert found == {
        (CHURN, "pipelines.data_cleaning"): ("upstream moved", []),
        (CHURN, "utils.io"): ("locally edited", ["src/churn/utils/io/readers.py"]),
        (FORECAST, "pipelines.cleaning"): ("upstream moved", []),
        (FORECAST, "utils.io"): ("in sync", []),
    }


# -- status at the monorepo root --------------------------------------------------------------------


def test_status_at_the_root_is_one_table_of_every_project(monorepo):
    fresh = run_micropkg(["status"], monorepo)
    assert fresh.exit_code == 0
    assert fresh.stdout.splitlines()[0].split() == ["PROJECT", "MODULE", "VERSION", "STATE", "SOURCE"]
    assert fresh.stdout.count("not installed") == 4

    assert sync_cli(monorepo).exit_code == 0
    edited = monorepo / FORECAST / "src/forecast/pipelines/cleaning/nodes.py"
    edited.write_text(edited.read_text() + "# mine\n")
    readers = monorepo / CORE / "src/core/utils/io/readers.py"
    readers.write_text(readers.read_text() + "\n\nSUFFIX = '.yml'\n")
    before = snapshot_tree(monorepo)

    table = run_micropkg(["status"], monorepo)

    assert table.exit_code == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows == [
        ["PROJECT", "MODULE", "VERSION", "STATE", "SOURCE"],
        ["projects/churn", "pipelines.data_cleaning", "0.3.0", "in", "sync", "../core#pipelines.data_cleaning"],
        ["projects/churn", "utils.io", "0.2.0", "upstream", "moved", "../core#utils.io"],
        ["projects/forecast", "pipelines.cleaning", "0.3.0", "locally", "edited", "../core#pipelines.data_cleaning"],
        ["projects/forecast", "utils.io", "0.2.0", "upstream", "moved", "../core#utils.io"],
        ["projects/forecast:", "edited:", "src/forecast/pipelines/cleaning/nodes.py"],
    ]

    as_json = run_micropkg(["status", "--json"], monorepo)
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert data["projects"] == [CHURN, CORE, FORECAST]
    assert data["clean"] is False
    assert [(r["project"], r["module"], r["version"], r["source"], r["state"], r["edited"]) for r in data["rows"]] == [
        (CHURN, "pipelines.data_cleaning", "0.3.0", "../core#pipelines.data_cleaning", "in sync", []),
        (CHURN, "utils.io", "0.2.0", "../core#utils.io", "upstream moved", []),
        (FORECAST, "pipelines.cleaning", "0.3.0", "../core#pipelines.data_cleaning", "locally edited",
         ["src/forecast/pipelines/cleaning/nodes.py"]),
        (FORECAST, "utils.io", "0.2.0", "../core#utils.io", "upstream moved", []),
    ]
    assert snapshot_tree(monorepo) == before  # status only reads

    # Inside one project, status covers that project; --all-projects widens it again.
    inside = run_micropkg(["status", "--json"], monorepo / CHURN)
    assert [p["module"] for p in json.loads(inside.stdout)["packages"]] == ["pipelines.data_cleaning", "utils.io"]
    wide = run_micropkg(["status", "--all-projects", "--json"], monorepo / CHURN / "src")
    assert len(json.loads(wide.stdout)["rows"]) == 4


def test_status_lists_micro_packages_pulled_from_sdists_too(monorepo):
    sdists = {r.module_path: Path(r.path) for r in package_all(monorepo / CORE).results}
    pulled = run_micropkg(
        ["pull", str(sdists["utils.io"]), "--destination", "utils", "--alias", "records", *no_compile()],
        monorepo / CHURN,
    )
    assert pulled.exit_code == 0, pulled.stderr
    assert sync_cli(monorepo).exit_code == 0
    report = monorepo_status(monorepo)
    by_key = {(r.project, r.module): r for r in report.rows}
    assert sorted(k for k in by_key if k[0] == CHURN) == [
        (CHURN, "pipelines.data_cleaning"), (CHURN, "utils.io"), (CHURN, "utils.records"),
    ]
    records = by_key[(CHURN, "utils.records")]
    assert (records.source, records.version, records.state) == ("../core/dist/io_utils-0.2.0.tar.gz", "0.2.0", "in sync")
    assert report.clean

    # A new build of the sdist at the recorded location means upstream moved.
    readers = monorepo / CORE / "src/core/utils/io/readers.py"
    readers.write_text(readers.read_text() + "\n\nSUFFIX = '.yml'\n")
    package_all(monorepo / CORE)
    report = monorepo_status(monorepo)
    assert {(r.project, r.module): r.state for r in report.rows}[(CHURN, "utils.records")] == "upstream moved"
    assert not report.clean


# -- pull-all -----------------------------------------------------------------------------------------


def break_manifest(project: Path) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    assert "../core#pipelines.data_cleaning" in text
    pyproject.write_text(text.replace("../core#pipelines.data_cleaning", "../core#pipelines.data_mangling"))


def test_pull_all_collects_a_broken_project_and_pulls_the_others(monorepo):
    break_manifest(monorepo / CHURN)  # first in order: the others must still be pulled
    churn_before = snapshot_tree(monorepo / CHURN)

    result = run_micropkg(["pull-all", *no_compile()], monorepo)

    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert "projects/core: no pull manifest, skipped" in out
    assert "projects/forecast:" in out
    assert "pulled ../core#pipelines.data_cleaning (cleaning 0.3.0) -> pipelines.cleaning: 9 created" in out
    assert "pulled ../core#utils.io (io 0.2.0) -> utils.io: 8 created" in out
    err = result.stderr
    assert "projects/churn: failed: micro-package 'pipelines.data_mangling' does not exist" in err
    assert err.splitlines()[-1] == "error: 1 project(s) failed: projects/churn"
    assert snapshot_tree(monorepo / CHURN) == churn_before
    assert (monorepo / FORECAST / "src/forecast/utils/io/readers.py").is_file()
    run = run_pytest(monorepo / FORECAST, TESTS_DIR[FORECAST])
    assert run.returncode == 0, run.stdout + run.stderr


def test_pull_all_function_reports_per_project_results_serially_too(monorepo):
    break_manifest(monorepo / CHURN)

    result = pull_all_projects(monorepo, jobs=1)

    assert [p.project for p in result.failed] == [CHURN]
    assert "'pipelines.data_mangling' does not exist" in result.failed[0].error
    assert result.changed_projects == (FORECAST,)
    rows = {p.project: p for p in result.projects}
    assert rows[CORE].skipped
    assert rows[FORECAST].batch is not None and rows[FORECAST].batch.applied

    # Fixed, a second run pulls churn and leaves forecast as it is.
    (monorepo / CHURN / "pyproject.toml").write_text(
        (monorepo / CHURN / "pyproject.toml").read_text().replace("data_mangling", "data_cleaning")
    )
    forecast_before = snapshot_tree(monorepo / FORECAST)
    again = pull_all_projects(monorepo, jobs=1)
    assert again.failed == () and again.changed_projects == (CHURN,)
    assert snapshot_tree(monorepo / FORECAST) == forecast_before


def test_pull_all_dry_run_writes_nothing(monorepo):
    before = snapshot_tree(monorepo)
    result = run_micropkg(["pull-all", "--dry-run", *no_compile()], monorepo / "projects")
    assert result.exit_code == 0, result.stderr
    assert "would pull ../core#utils.io" in result.stdout
    assert snapshot_tree(monorepo) == before


# -- local edits of every kind stop a target; one broken target does not stop the others ----------------


def test_dry_run_does_not_call_a_locally_edited_target_in_sync(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    readers = monorepo / CHURN / "src/churn/utils/io/readers.py"
    readers.write_text(readers.read_text() + "# mine\n")
    assert sync_cli(monorepo).exit_code == 1  # the real run refuses churn
    dry = sync_cli(monorepo, "--dry-run")
    assert "projects/churn: in sync" not in dry.stdout
    assert "src/churn/utils/io/readers.py" in dry.stdout + dry.stderr


def test_a_locally_edited_file_dropped_upstream_stops_that_target(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    pipeline = monorepo / FORECAST / "src/forecast/pipelines/cleaning/pipeline.py"
    pipeline.write_text(pipeline.read_text() + "# mine\n")
    edit_upstream_and_drop_a_module(monorepo)
    assert sync_cli(monorepo, "--check").exit_code == 3
    result = sync_cli(monorepo)
    assert result.exit_code == 1
    assert "src/forecast/pipelines/cleaning/pipeline.py" in result.stderr


def test_a_file_deleted_in_a_target_stops_that_target(monorepo):
    assert sync_cli(monorepo).exit_code == 0
    writers = monorepo / CHURN / "src/churn/utils/io/writers.py"
    writers.unlink()
    check = sync_cli(monorepo, "--check")
    assert check.exit_code == 3 and "  edited    src/churn/utils/io/writers.py" in check.stdout
    result = sync_cli(monorepo)
    assert result.exit_code == 1
    assert not writers.exists()


def test_an_unreadable_lock_in_one_target_does_not_stop_the_others(monorepo):
    (monorepo / FORECAST / "micropkg.lock").write_text("version = [\n")
    result = sync_shared(monorepo, jobs=1)
    assert outcomes(result) == {CHURN: "updated", FORECAST: "failed"}
