"""``pull``: safe, transactional installs of real sdists into real project trees."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from micropkg_tasks import package, package_all, pull, pull_all, status
from micropkg_tasks.core.errors import ConflictError, SdistError, UsageError
from micropkg_tasks.core.lock.lockfile import read_lock
from micropkg_tasks.core.sdist.read import SdistLimits
from tests import hostile_archives
from tests.conftest import kedro_project
from tests.helpers import read_tree, snapshot_tree

CORE = "projects/core"
SHARED = {
    "pipelines.data_cleaning": ("src/core/pipelines/data_cleaning", "tests/pipelines/data_cleaning"),
    "utils.io": ("src/core/utils/io", "tests/utils/io"),
}
PARAMS = ["conf/base/parameters_data_cleaning.yml", "conf/base/parameters/data_cleaning/thresholds.yml"]


def run_pytest(project: Path, tests: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests],
        cwd=project, capture_output=True, text=True, timeout=180,
        env={"PYTHONPATH": str(project / "src"), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def core_sdists(monorepo) -> dict[str, Path]:
    """Every micro-package of the example `core` project, packaged."""
    return {r.module_path: Path(r.path) for r in package_all(monorepo / CORE).results}


@pytest.fixture
def bare_core(monorepo, tmp_path) -> Path:
    """A copy of `core` with its micro-packages, their tests and parameters removed."""
    target = tmp_path / "bare-core"
    shutil.copytree(monorepo / CORE, target, ignore=shutil.ignore_patterns("dist"))
    for code, tests in SHARED.values():
        shutil.rmtree(target / code)
        shutil.rmtree(target / tests)
    for relative in PARAMS:
        (target / relative).unlink()
    shutil.rmtree(target / "conf/base/parameters")
    return target


# -- acceptance 1: round trip ---------------------------------------------------------------------


def test_round_trip_gives_back_identical_code_tests_and_parameters(monorepo, core_sdists, bare_core):
    pull(bare_core, str(core_sdists["pipelines.data_cleaning"]), destination="pipelines")
    pull(bare_core, str(core_sdists["utils.io"]), destination="utils", alias="io")
    original = read_tree(monorepo / CORE)
    pulled = read_tree(bare_core)
    for code, tests in SHARED.values():
        for folder in (code, tests):
            expected = {k: v for k, v in original.items() if k.startswith(folder + "/")}
            got = {k: v for k, v in pulled.items() if k.startswith(folder + "/")}
            assert got == expected, folder
    for relative in PARAMS:
        assert pulled[relative] == original[relative]
    assert run_pytest(bare_core, "tests").returncode == 0


def test_pull_with_alias_and_destination_points_every_import_at_the_new_place(core_sdists, tmp_path):
    project = kedro_project(tmp_path / "consumer", "churn")
    result = pull(project, str(core_sdists["pipelines.data_cleaning"]), alias="cleaning", destination="shared.steps")
    assert result.module == "shared.steps.cleaning"
    code = project / "src/churn/shared/steps/cleaning"
    assert (code / "__init__.py").read_text().count("from churn.shared.steps.cleaning.pipeline import") == 1
    test_text = (project / "tests/shared/steps/cleaning/test_nodes.py").read_text()
    assert "import churn.shared.steps.cleaning.nodes as nodes_module" in test_text
    assert 'mock.patch("churn.shared.steps.cleaning.nodes.rename_columns"' in test_text
    for path in list(code.rglob("*.py")) + list((project / "tests/shared").rglob("*.py")):
        for line in path.read_text().splitlines():
            if line.startswith(("import ", "from ")) or "patch(" in line:
                assert "core." not in line and "data_cleaning" not in line, (path, line)
    # The namespace string is the pipeline's own name, not a module path: it stays.
    assert 'namespace="data_cleaning"' in (code / "pipeline.py").read_text()
    # Missing packages on the way are created so the result imports.
    assert (project / "src/churn/shared/__init__.py").is_file()
    assert (project / "src/churn/shared/steps/__init__.py").is_file()
    assert (project / "tests/shared/steps/__init__.py").is_file()
    assert (project / "conf/base/parameters_cleaning.yml").is_file()
    tests = run_pytest(project, "tests")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout


# -- acceptance 3: hostile archives ---------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(hostile_archives.HOSTILE_CASES))
def test_hostile_archive_is_refused_and_project_untouched(case, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    archive = tmp_path / "evil-0.1.tar.gz"
    archive.write_bytes(hostile_archives.HOSTILE_CASES[case]())
    before = snapshot_tree(project)
    result = cli(["pull", str(archive), "--no-compile"], project)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert hostile_archives.EXPECTED_FRAGMENTS[case] in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot_tree(project) == before


def test_symlink_member_never_copies_the_target(tmp_path):
    # Kedro 0.19 follows such a member and copies e.g. /etc/hostname into the project.
    project = kedro_project(tmp_path / "target")
    archive = tmp_path / "evil-0.1.tar.gz"
    archive.write_bytes(hostile_archives.symlink_out_of_tree())
    with pytest.raises(SdistError, match="symlink"):
        pull(project, str(archive))
    assert not any(p.is_symlink() for p in project.rglob("*"))


def test_limits_are_configurable(tmp_path):
    project = kedro_project(tmp_path / "target")
    archive = tmp_path / "ok-0.1.tar.gz"
    archive.write_bytes(hostile_archives.valid_sdist())
    with pytest.raises(SdistError, match="member"):
        pull(project, str(archive), limits=SdistLimits(max_members=3))
    assert pull(project, str(archive), limits=SdistLimits(max_members=50)).count("create") > 0


# -- options are validated before anything is written ---------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--alias", "1abc"], "--alias '1abc' is not a valid Python package name"),
        (["--destination", "../outside"], "must be a dotted module path"),
        (["--destination", "/abs/b"], "must be a dotted module path"),
        (["--destination", "a/../b"], "must be a dotted module path"),
        (["--env", "../prod"], "--env '../prod' must be the name of one folder"),
    ],
)
def test_bad_options_fail_before_writing(core_sdists, tmp_path, cli, options, message):
    project = kedro_project(tmp_path / "target")
    before = snapshot_tree(project)
    result = cli(["pull", str(core_sdists["utils.io"]), *options, "--no-compile"], project)
    assert result.exit_code == 2
    assert message in result.stderr
    assert snapshot_tree(project) == before


def test_missing_sdist_is_a_clear_error(tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    result = cli(["pull", "dist/nope-0.1.tar.gz", "--no-compile"], project)
    assert result.exit_code == 2
    assert result.stderr == "error: sdist dist/nope-0.1.tar.gz does not exist\n"


# -- acceptance 4: a fault part-way through apply -------------------------------------------------


def test_fault_during_apply_restores_project_and_lock(core_sdists, tmp_path, monkeypatch):
    from micropkg_tasks.core.change import transaction

    project = kedro_project(tmp_path / "target")
    pull(project, str(core_sdists["utils.io"]), destination="utils", alias="io_helpers")
    # Change upstream so the second pull updates files, creates others and rewrites the lock.
    before = snapshot_tree(project)
    lock_before = (project / "micropkg.lock").read_bytes()
    real_write = transaction._write_new
    calls = {"n": 0}

    def failing_write(path, content):
        calls["n"] += 1
        if calls["n"] == 6:
            raise OSError(28, "No space left on device", str(path))
        real_write(path, content)

    monkeypatch.setattr(transaction, "_write_new", failing_write)
    with pytest.raises(Exception, match="No space left on device"):
        pull(project, str(core_sdists["pipelines.data_cleaning"]), destination="pipelines")
    assert calls["n"] == 6
    assert snapshot_tree(project) == before
    assert (project / "micropkg.lock").read_bytes() == lock_before


def test_keyboard_interrupt_during_apply_restores_project(core_sdists, tmp_path, monkeypatch):
    from micropkg_tasks.core.change import transaction

    project = kedro_project(tmp_path / "target")
    before = snapshot_tree(project)
    real_write = transaction._write_new
    calls = {"n": 0}

    def interrupted(path, content):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_write(path, content)

    monkeypatch.setattr(transaction, "_write_new", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pull(project, str(core_sdists["pipelines.data_cleaning"]))
    assert snapshot_tree(project) == before


# -- acceptance 5: conflicts, force, idempotency ---------------------------------------------------


def test_conflict_is_refused_then_forced(core_sdists, tmp_path, cli):
    project = kedro_project(
        tmp_path / "target",
        extra={"src/spaceflights/pipelines/data_cleaning/nodes.py": "# someone else's file\n"},
    )
    sdist = str(core_sdists["pipelines.data_cleaning"])
    before = snapshot_tree(project)
    refused = cli(["pull", sdist, "--destination", "pipelines", "--no-compile"], project)
    assert refused.exit_code == 1
    assert "pull refused: 1 file(s) would be overwritten" in refused.stderr
    assert "src/spaceflights/pipelines/data_cleaning/nodes.py (exists and was not installed by micropkg)" in refused.stderr
    assert snapshot_tree(project) == before
    forced = cli(["pull", sdist, "--destination", "pipelines", "--force", "--no-compile"], project)
    assert forced.exit_code == 0, forced.stderr
    assert "def clean(" in (project / "src/spaceflights/pipelines/data_cleaning/nodes.py").read_text()


def test_second_identical_pull_writes_nothing(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    sdist = str(core_sdists["utils.io"])
    first = cli(["pull", sdist, "--destination", "utils", "--alias", "io_helpers", "--no-compile"], project)
    assert first.exit_code == 0, first.stderr
    before = snapshot_tree(project)
    second = cli(["pull", sdist, "--destination", "utils", "--alias", "io_helpers", "--no-compile"], project)
    assert second.exit_code == 0
    assert "already up to date: nothing was written" in second.stdout
    assert snapshot_tree(project) == before  # content and mtimes


def test_edited_file_is_a_conflict_and_status_reports_it(core_sdists, tmp_path):
    project = kedro_project(tmp_path / "target")
    sdist = str(core_sdists["pipelines.data_cleaning"])
    pull(project, sdist, destination="pipelines")
    edited = project / "src/spaceflights/pipelines/data_cleaning/nodes.py"
    edited.write_text(edited.read_text() + "\n# local tweak\n")
    report = status(project)
    assert [(p.module, p.state, p.edited) for p in report.packages] == [
        ("pipelines.data_cleaning", "locally edited", ("src/spaceflights/pipelines/data_cleaning/nodes.py",))
    ]
    # Re-pulling the same sdist would undo the edit: refused.
    with pytest.raises(ConflictError) as raised:
        pull(project, sdist, destination="pipelines")
    assert raised.value.details == [
        "src/spaceflights/pipelines/data_cleaning/nodes.py (edited since pipelines.data_cleaning installed it)"
    ]


def test_newer_sdist_updates_unedited_files_and_deletes_dropped_ones(monorepo, tmp_path):
    core = monorepo / CORE
    project = kedro_project(tmp_path / "target")
    first = package(core, "pipelines.data_cleaning", destination=tmp_path / "v1")
    pull(project, first.path, destination="pipelines")
    module = core / "src/core/pipelines/data_cleaning"
    (module / "pipeline.py").unlink()
    (module / "__init__.py").write_text('__version__ = "0.4.0"\n')
    (module / "nodes.py").write_text((module / "nodes.py").read_text() + "\n\ndef extra():\n    return 1\n")
    (core / "conf/base/parameters/data_cleaning/thresholds.yml").unlink()
    second = package(core, "pipelines.data_cleaning", destination=tmp_path / "v2")
    result = pull(project, second.path, destination="pipelines")
    actions = {item.path: item.action for item in result.files}
    installed = "src/spaceflights/pipelines/data_cleaning"
    assert actions[f"{installed}/pipeline.py"] == "delete"
    assert actions["conf/base/parameters/data_cleaning/thresholds.yml"] == "delete"
    assert actions[f"{installed}/nodes.py"] == "update"
    assert actions[f"{installed}/__init__.py"] == "update"
    assert not (project / installed / "pipeline.py").exists()
    assert not (project / "conf/base/parameters").exists()  # emptied folders are pruned
    assert "def extra()" in (project / installed / "nodes.py").read_text()
    entry = read_lock(project / "micropkg.lock").entries["pipelines.data_cleaning"]
    assert entry.version == "0.4.0" and f"{installed}/pipeline.py" not in entry.files


def test_dropped_file_edited_locally_is_a_conflict(monorepo, tmp_path):
    core = monorepo / CORE
    project = kedro_project(tmp_path / "target")
    pull(project, package(core, "pipelines.data_cleaning", destination=tmp_path / "v1").path)
    (core / "src/core/pipelines/data_cleaning/pipeline.py").unlink()
    (core / "src/core/pipelines/data_cleaning/__init__.py").write_text('__version__ = "0.5"\n')
    kept = project / "src/spaceflights/data_cleaning/pipeline.py"
    kept.write_text("# mine now\n")
    newer = package(core, "pipelines.data_cleaning", destination=tmp_path / "v2").path
    before = snapshot_tree(project)
    with pytest.raises(ConflictError) as raised:
        pull(project, newer)
    assert raised.value.details == ["src/spaceflights/data_cleaning/pipeline.py (dropped upstream but edited locally)"]
    assert snapshot_tree(project) == before
    forced = pull(project, newer, force=True)
    assert ("src/spaceflights/data_cleaning/pipeline.py", "delete") in [(f.path, f.action) for f in forced.files]
    assert not kept.exists()


def test_file_deleted_locally_is_a_conflict_not_silently_restored(core_sdists, tmp_path):
    project = kedro_project(tmp_path / "target")
    sdist = str(core_sdists["pipelines.data_cleaning"])
    pull(project, sdist)
    deleted = project / "src/spaceflights/data_cleaning/pipeline.py"
    deleted.unlink()
    with pytest.raises(ConflictError) as raised:
        pull(project, sdist)
    assert raised.value.details == ["src/spaceflights/data_cleaning/pipeline.py (deleted since data_cleaning installed it)"]
    assert not deleted.exists()
    pull(project, sdist, force=True)
    assert deleted.is_file()


def test_dry_run_with_diff_writes_nothing(monorepo, tmp_path, cli):
    core = monorepo / CORE
    project = kedro_project(tmp_path / "target")
    pull(project, package(core, "pipelines.data_cleaning", destination=tmp_path / "v1").path, destination="pipelines")
    nodes = core / "src/core/pipelines/data_cleaning/nodes.py"
    nodes.write_text(nodes.read_text().replace("Remove the given keys", "Drop the given keys"))
    newer = package(core, "pipelines.data_cleaning", destination=tmp_path / "v2").path
    before = snapshot_tree(project)
    # The same version with other content: a real pull would refuse it, and the dry run says so, and
    # exits as the real pull would.
    refused = cli(["pull", newer, "--destination", "pipelines", "--dry-run"], project)
    assert refused.exit_code == 1, refused.stderr
    assert "different build of pipelines.data_cleaning 0.3.0" in refused.stderr
    result = cli(["pull", newer, "--destination", "pipelines", "--dry-run", "--diff", "--force"], project)
    assert result.exit_code == 0, result.stderr
    assert "update    src/spaceflights/pipelines/data_cleaning/nodes.py" in result.stdout
    assert "unchanged src/spaceflights/pipelines/data_cleaning/pipeline.py" in result.stdout
    assert "--- a/src/spaceflights/pipelines/data_cleaning/nodes.py" in result.stdout
    assert '-    """Remove the given keys from every record."""' in result.stdout
    assert '+    """Drop the given keys from every record."""' in result.stdout
    assert "dry run: nothing was written" in result.stdout
    assert snapshot_tree(project) == before


def test_dry_run_shows_conflicts_and_exits_as_the_refused_pull_would(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target", extra={"src/spaceflights/data_cleaning/nodes.py": "x = 1\n"})
    result = cli(["pull", str(core_sdists["pipelines.data_cleaning"]), "--dry-run"], project)
    assert result.exit_code == 1
    assert "conflict  src/spaceflights/data_cleaning/nodes.py (exists and was not installed by micropkg)" in result.stdout


# -- acceptance 6: requirements ---------------------------------------------------------------------


def _sdist_with_requires(tmp_path: Path, name: str, requires: list[str], version: str = "0.1") -> str:
    path = tmp_path / f"{name}-{version}.tar.gz"
    path.write_bytes(hostile_archives.valid_sdist(name, version, requires))
    return str(path)


def test_requirements_in_is_created_from_requirements_txt_and_merged(tmp_path):
    project = kedro_project(tmp_path / "target")
    (project / "requirements.txt").write_text("PyYAML>=6.0\nrequests[socks]>=2.31\nnumpy==1.26\n")
    sdist = _sdist_with_requires(
        tmp_path,
        "data_cleaning",
        ["pyyaml>=6.0", "Requests[socks]>=2.31", "numpy>=1.20", 'tomli>=2; python_version < "3.11"', "s3fs[boto3]>=2023"],
    )
    result = pull(project, sdist)
    assert (project / "requirements.in").read_text() == (
        "PyYAML>=6.0\n"
        "requests[socks]>=2.31\n"
        "numpy==1.26\n"
        "# Added by micropkg-tasks for data_cleaning\n"
        "numpy>=1.20\n"
        'tomli>=2; python_version < "3.11"\n'
        "s3fs[boto3]>=2023\n"
    )
    assert (project / "requirements.txt").read_text() == "PyYAML>=6.0\nrequests[socks]>=2.31\nnumpy==1.26\n"
    assert result.requirements_conflicts == ()
    assert result.requirements_overlaps == (
        "numpy: requirements.in has 'numpy==1.26'; 'numpy>=1.20' added for data_cleaning (pip-compile intersects them)",
    )
    entry = read_lock(project / "micropkg.lock").entries["data_cleaning"]
    assert entry.requirements == ["numpy>=1.20", 's3fs[boto3]>=2023', 'tomli>=2; python_version < "3.11"']


def test_requirements_that_cannot_both_hold_refuse_the_pull_naming_both_lines(tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    (project / "requirements.txt").write_text("numpy==1.26\n")
    before = snapshot_tree(project)
    result = cli(["pull", _sdist_with_requires(tmp_path, "data_cleaning", ["numpy>=2"]), "--no-compile"], project)
    assert result.exit_code == 1
    assert "pull refused: 1 requirement(s) cannot hold together with requirements.in" in result.stderr
    assert "numpy: requirements.in has 'numpy==1.26', data_cleaning needs 'numpy>=2'" in result.stderr
    assert snapshot_tree(project) == before


def test_an_overlapping_requirement_is_added_and_reported_on_the_command_line(tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    (project / "requirements.txt").write_text("pandas\n")
    result = cli(["pull", _sdist_with_requires(tmp_path, "data_cleaning", ["pandas>=2"]), "--no-compile"], project)
    assert result.exit_code == 0, result.stderr
    assert "requirements added: pandas>=2" in result.stdout
    assert "requirement overlap: pandas: requirements.in has 'pandas'; 'pandas>=2' added for data_cleaning" in result.stdout
    assert (project / "requirements.in").read_text() == "pandas\n# Added by micropkg-tasks for data_cleaning\npandas>=2\n"
    (tmp_path / "again").mkdir()
    as_json = cli(["pull", _sdist_with_requires(tmp_path / "again", "other", ["pandas>=2.1"]), "--no-compile", "--json"],
                  project)
    assert as_json.exit_code == 0, as_json.stderr
    [pulled] = json.loads(as_json.stdout)["results"]
    assert pulled["requirements_added"] == ["pandas>=2.1"]
    assert [line.split(";")[0] for line in pulled["requirements_overlaps"]] == ["pandas: requirements.in has 'pandas'"]


def test_requirements_dropped_upstream_are_removed_if_ours(tmp_path):
    project = kedro_project(tmp_path / "target")
    (project / "requirements.txt").write_text("pyyaml>=6.0\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pull(project, _sdist_with_requires(tmp_path / "a", "data_cleaning", ["attrs>=23", "pyyaml>=6.0"]))
    assert "attrs>=23" in (project / "requirements.in").read_text()
    result = pull(project, _sdist_with_requires(tmp_path / "b", "data_cleaning", ["pyyaml>=6.0"], version="0.2"))
    assert result.requirements_removed == ("attrs>=23",)
    assert (project / "requirements.in").read_text() == "pyyaml>=6.0\n"  # the user's own line stays


def test_legacy_layout_merges_into_src_requirements_in(core_sdists, tmp_path):
    project = kedro_project(tmp_path / "legacy", legacy=True)
    pull(project, str(core_sdists["utils.io"]), destination="utils", alias="io_helpers")
    assert (project / "src/requirements.in").is_file()
    assert not (project / "requirements.in").exists()
    assert (project / "src/tests/utils/io_helpers/test_readers.py").is_file()
    assert (project / "src/tests/utils/__init__.py").is_file()


# -- pull --all, the lock, and status ----------------------------------------------------------------


def test_pull_all_from_manifest_is_one_unit(monorepo, core_sdists, cli):
    forecast = monorepo / "projects/forecast"
    result = cli(["pull", "--all", "--no-compile"], forecast)
    assert result.exit_code == 0, result.stderr
    lock = read_lock(forecast / "micropkg.lock")
    assert sorted(lock.entries) == ["pipelines.cleaning", "utils.io"]
    assert lock.entries["utils.io"].source == "../core#utils.io"  # a sibling source, packaged in memory
    assert lock.entries["utils.io"].options == {"declared": "true", "destination": "utils", "env": "base"}
    tests = run_pytest(forecast, "src/tests")
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_pull_all_with_one_bad_entry_writes_nothing(monorepo, core_sdists, cli):
    forecast = monorepo / "projects/forecast"
    pyproject = forecast / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('"../core#utils.io" = {', '"../core/dist/io_utils-0.2.0.tar.gz" = {alias = "io", ')
    )
    (core_sdists["utils.io"]).write_bytes(hostile_archives.dotdot_member())
    before = snapshot_tree(forecast)
    result = cli(["pull", "--all", "--no-compile"], forecast)
    assert result.exit_code == 1
    assert "escapes" in result.stderr or ".." in result.stderr
    assert snapshot_tree(forecast) == before


def test_legacy_manifest_table_is_read(core_sdists, tmp_path):
    project = kedro_project(
        tmp_path / "target",
        pyproject_extra=f'\n[tool.kedro.pipeline.pull]\n"{core_sdists["utils.io"]}" = {{alias = "io_helpers"}}\n',
    )
    batch = pull_all(project)
    assert [r.module for r in batch.results] == ["io_helpers"]


def test_two_entries_installing_the_same_module_are_refused(core_sdists, tmp_path):
    sdist = core_sdists["pipelines.data_cleaning"]
    project = kedro_project(
        tmp_path / "target",
        pyproject_extra=f'\n[tool.kedro.micropkg.pull]\n"{sdist}" = {{}}\n"{sdist.with_name("copy.tar.gz")}" = {{}}\n',
    )
    shutil.copy(sdist, sdist.with_name("copy.tar.gz"))
    before = snapshot_tree(project)
    with pytest.raises(UsageError, match="would both install data_cleaning"):
        pull_all(project)
    assert snapshot_tree(project) == before


def test_lock_file_is_sorted_and_stable(core_sdists, tmp_path):
    project = kedro_project(tmp_path / "target")
    pull(project, str(core_sdists["utils.io"]), destination="utils", alias="io_helpers")
    pull(project, str(core_sdists["pipelines.data_cleaning"]), destination="pipelines")
    text = (project / "micropkg.lock").read_text()
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert text.index('[micropkg."pipelines.data_cleaning"]') < text.index('[micropkg."utils.io_helpers"]')
    # Within every files, blobs and options table, keys come sorted.
    tables = [table for table in text.split("\n\n") if table.startswith("[") and table.split("]")[0].endswith(
        (".files", ".blobs", ".options"))]
    assert len(tables) == 6
    for table in tables:
        keys = [line.split(" = ", 1)[0] for line in table.splitlines()[1:]]
        assert keys == sorted(keys)
    entry = read_lock(project / "micropkg.lock").entries["utils.io_helpers"]
    assert entry.sdist_sha256 and entry.version == "0.2.0" and entry.name == "io_utils"
    # The consumer's requirements.txt already had pyyaml, so this pull added nothing it owns.
    assert entry.requirements == []


def test_status_cli_lists_entries(core_sdists, tmp_path, cli):
    project = kedro_project(tmp_path / "target")
    pull(project, str(core_sdists["pipelines.data_cleaning"]), destination="pipelines")
    result = cli(["status"], project)
    assert result.exit_code == 0
    assert "pipelines.data_cleaning  0.3.0    in sync" in result.stdout
    as_json = cli(["status", "--json"], project)
    import json

    data = json.loads(as_json.stdout)
    assert data["packages"][0]["state"] == "in sync" and data["clean"] is True


def test_concurrent_run_waits_then_reports_busy(core_sdists, tmp_path):
    from micropkg_tasks.core.change.transaction import project_lock
    from micropkg_tasks.core.errors import BusyError

    project = kedro_project(tmp_path / "target")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from micropkg_tasks.core.change.transaction import project_lock\n"
         f"with project_lock(__import__('pathlib').Path({str(project)!r})):\n"
         "    print('locked', flush=True)\n"
         "    time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = snapshot_tree(project)
        with pytest.raises(BusyError, match="is busy: another micropkg run is working on it"):
            pull(project, str(core_sdists["utils.io"]), lock_timeout=0.5)
        assert snapshot_tree(project) == before
    finally:
        holder.kill()
        holder.wait(timeout=10)
    with project_lock(project, timeout=5):
        pass


def test_a_file_owned_by_another_micropackage_is_a_conflict(tmp_path):
    # Both sdists install conf/base/parameters/shared.yml: the second must not silently take it over.
    project = kedro_project(tmp_path / "target")
    first = tmp_path / "first-0.1.tar.gz"
    second = tmp_path / "second-0.1.tar.gz"
    shared_param = {"config/parameters/shared.yml": "value: 1\n"}
    first.write_bytes(hostile_archives.archive(_files("first", shared_param), "first-0.1"))
    second.write_bytes(hostile_archives.archive(_files("second", {"config/parameters/shared.yml": "value: 2\n"}), "second-0.1"))
    pull(project, str(first))
    before = snapshot_tree(project)
    with pytest.raises(ConflictError) as raised:
        pull(project, str(second))
    assert raised.value.details == ["conf/base/parameters/shared.yml (installed by first)"]
    assert snapshot_tree(project) == before
    forced = pull(project, str(second), force=True)
    assert ("conf/base/parameters/shared.yml", "update") in [(f.path, f.action) for f in forced.files]
    lock = read_lock(project / "micropkg.lock")
    assert "conf/base/parameters/shared.yml" not in lock.entries["first"].files
    assert "conf/base/parameters/shared.yml" in lock.entries["second"].files


def _files(name: str, config: dict[str, str]) -> dict[str, str]:
    files = {k: v for k, v in hostile_archives.sdist_files(name, "0.1", ()).items() if "/config/" not in k}
    files.update({f"{name}/{path}": text for path, text in config.items()})
    return files
