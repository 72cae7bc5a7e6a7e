"""Kedro 0.19's ``kedro micropkg`` command surface, as a Kedro user meets it (SPEC §12, §14).

Every row of the migration table in ``docs/index.md`` is run through the CLI,
under ``micropkg`` (in process) and under plain ``invoke`` (a subprocess, with a
``tasks.py`` that imports the collection), and its effect checked on disk. The
edge cases a Kedro user trips over follow: each is a CLI-level test too.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Callable

import pytest

import micropkg_tasks
from tests.conftest import EXAMPLE_MONOREPO, REPO_ROOT, CliResult, kedro_project, run_micropkg
from tests.helpers import build_file_tree, snapshot_tree

Runner = Callable[[list[str], Path], CliResult]

TASKS_PY = "from micropkg_tasks import tasks as ns  # noqa: F401\n"
CLEANING = "data_cleaning-0.3.0.tar.gz"
IO_UTILS = "io_utils-0.2.0.tar.gz"


def run_invoke(argv: list[str], cwd: Path) -> CliResult:
    """Plain ``invoke`` from our venv, finding the ``tasks.py`` above ``cwd``."""
    import sys

    invoke = Path(sys.executable).parent / "invoke"
    result = subprocess.run(
        [str(invoke), *argv], cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    return CliResult(result.returncode, result.stdout, result.stderr)


@pytest.fixture(params=["micropkg", "invoke"])
def run(request: pytest.FixtureRequest) -> Runner:
    return run_micropkg if request.param == "micropkg" else run_invoke


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of the example ``core`` project, below a folder with a ``tasks.py``."""
    (tmp_path / "tasks.py").write_text(TASKS_PY)
    target = tmp_path / "core"
    shutil.copytree(EXAMPLE_MONOREPO / "projects/core", target, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    return target


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A fresh Kedro 0.19-layout project, below a folder with a ``tasks.py``."""
    (tmp_path / "tasks.py").write_text(TASKS_PY)
    return kedro_project(tmp_path / "churn", "churn")


@pytest.fixture(scope="module")
def sdists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's two sdists, built once through the library."""
    folder = tmp_path_factory.mktemp("sdists")
    core = folder / "core"
    shutil.copytree(EXAMPLE_MONOREPO / "projects/core", core, ignore=shutil.ignore_patterns("__pycache__", "dist"))
    micropkg_tasks.package_all(core, destination=str(folder))
    assert sorted(p.name for p in folder.glob("*.tar.gz")) == [CLEANING, IO_UTILS]
    return folder


def _ok(result: CliResult) -> CliResult:
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def _members(sdist: Path) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(sdist.read_bytes()), mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}  # type: ignore[union-attr]


def _add_to_pyproject(project: Path, text: str) -> None:
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n" + text)


# ------------------------------------------------------- one scenario per row of the table


def row_package_module(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    _ok(run(["package", "pipelines.data_cleaning"], source))
    assert (source / "dist" / CLEANING).is_file()
    build_file_tree(source, {"src/core/utils/text/__init__.py": "def shout(word):\n    return word.upper()\n"})
    _ok(run(["package", "pipelines.data_cleaning,utils.text", "-d", "both"], source))
    assert sorted(p.name for p in (source / "both").iterdir()) == [CLEANING, "text-0.4.0.tar.gz"]


def row_package_env(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    build_file_tree(source, {"conf/uat/parameters_data_cleaning.yml": "data_cleaning: {drop_columns: [uat]}\n"})
    _ok(run(["package", "pipelines.data_cleaning", "-e", "uat"], source))
    members = _members(source / "dist" / CLEANING)
    config = {name.split("/config/", 1)[1]: data for name, data in members.items() if "/config/" in name}
    assert config == {"parameters_data_cleaning.yml": b"data_cleaning: {drop_columns: [uat]}\n"}
    _ok(run(["package", "pipelines.data_cleaning", "--env", "base", "-d", "base-dist"], source))
    assert len([n for n in _members(source / "base-dist" / CLEANING) if "/config/" in n]) == 2


def row_package_alias(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    _ok(run(["package", "pipelines.data_cleaning", "--alias", "cleaning"], source))
    assert (source / "dist/cleaning-0.3.0.tar.gz").is_file()
    refused = run(["package", "utils.io", "--alias", "io"], source)
    assert refused.exit_code == 2 and "shadow the standard library" in refused.stderr


def row_package_destination(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    _ok(run(["package", "pipelines.data_cleaning", "-d", "short"], source))
    _ok(run(["package", "pipelines.data_cleaning", "--destination", "long"], source))
    assert (source / "short" / CLEANING).read_bytes() == (source / "long" / CLEANING).read_bytes()


def row_package_all(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    _ok(run(["package", "-a"], source))
    assert sorted(p.name for p in (source / "dist").iterdir()) == [CLEANING, IO_UTILS]
    shutil.rmtree(source / "dist")
    _ok(run(["package", "--all", "--jobs", "1"], source))
    assert sorted(p.name for p in (source / "dist").iterdir()) == [CLEANING, IO_UTILS]


def row_pull_location(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    _ok(run(["pull", str(sdists / CLEANING), "--no-compile"], target))
    assert (target / "src/churn/data_cleaning/nodes.py").is_file()
    assert (target / "tests/data_cleaning/test_nodes.py").is_file()


def row_pull_all(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    _add_to_pyproject(target, f'[tool.kedro.micropkg.pull]\n"{sdists / CLEANING}" = {{destination = "pipelines"}}\n')
    _ok(run(["pull", "-a", "--no-compile"], target))
    assert (target / "src/churn/pipelines/data_cleaning/nodes.py").is_file()
    assert "already up to date" in _ok(run(["pull", "--all", "--no-compile"], target)).stdout


def row_pull_env(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    _ok(run(["pull", str(sdists / CLEANING), "-e", "local", "--no-compile"], target))
    assert (target / "conf/local/parameters_data_cleaning.yml").is_file()
    assert not (target / "conf/base/parameters_data_cleaning.yml").exists()


def row_pull_alias(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    _ok(run(["pull", str(sdists / CLEANING), "--alias", "cleaning", "--no-compile"], target))
    assert (target / "src/churn/cleaning/nodes.py").is_file()
    assert (target / "conf/base/parameters_cleaning.yml").is_file()


def row_pull_destination(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    _ok(run(["pull", str(sdists / CLEANING), "-d", "pipelines", "--no-compile"], target))
    assert (target / "src/churn/pipelines/data_cleaning/nodes.py").is_file()
    _ok(run(["pull", str(sdists / IO_UTILS), "--destination", "utils/shared", "--no-compile"], target))
    assert (target / "src/churn/utils/shared/io_utils/readers.py").is_file()


def row_pull_fs_args(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    args = build_file_tree(target.parent, {"fs.yml": "auto_mkdir: true\n"}) / "fs.yml"
    _ok(run(["pull", str(sdists / CLEANING), "--fs-args", str(args), "--no-compile"], target))
    assert (target / "src/churn/data_cleaning/nodes.py").is_file()
    memory = run(["pull", "memory://nowhere/x-0.1.tar.gz", "--fs-args", str(args), "--no-compile"], target)
    assert memory.exit_code == 1 and "memory://nowhere/x-0.1.tar.gz" in memory.stderr


def row_verbosity(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    verbose = _ok(run(["pull", str(sdists / CLEANING), "-v", "--no-compile"], target))
    assert "  create    src/churn/data_cleaning/nodes.py" in verbose.stdout
    quiet = _ok(run(["package", "pipelines.data_cleaning", "-q"], source))
    assert quiet.stdout == "" and (source / "dist" / CLEANING).is_file()
    assert _ok(run(["status", "--quiet"], target)).stdout == ""
    assert "data_cleaning" in _ok(run(["status", "--verbose"], target)).stdout


def row_package_manifest(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    build_file_tree(source, {"conf/uat/parameters_data_cleaning.yml": "data_cleaning: {}\n"})
    pyproject = source / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        '"pipelines.data_cleaning" = {}',
        '"pipelines.data_cleaning" = {alias = "cleaning", destination = "shared", env = "uat"}',
    ))
    _ok(run(["package", "-a"], source))
    members = _members(source / "shared/cleaning-0.3.0.tar.gz")
    assert [n for n in members if "/config/" in n] == ["cleaning-0.3.0/cleaning/config/parameters_cleaning.yml"]
    assert (source / "dist" / IO_UTILS).is_file()


def row_pull_manifest(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    build_file_tree(target, {"fs.yml": "auto_mkdir: true\n"})
    _add_to_pyproject(target, f'[tool.kedro.micropkg.pull]\n"{sdists / IO_UTILS}" = {{alias = "io_tools", '
                              f'destination = "utils", env = "local", fs_args = "fs.yml"}}\n')
    _ok(run(["pull", "--all", "--no-compile"], target))
    assert (target / "src/churn/utils/io_tools/readers.py").is_file()
    lock = (target / "micropkg.lock").read_text()
    assert 'alias = "io_tools"' in lock and 'env = "local"' in lock and 'destination = "utils"' in lock


def row_legacy_manifests(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    pyproject = source / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("[tool.kedro.micropkg.package]", "[tool.kedro.pipeline.package]"))
    _ok(run(["package", "--all"], source))
    assert sorted(p.name for p in (source / "dist").iterdir()) == [CLEANING, IO_UTILS]
    _add_to_pyproject(target, f'[tool.kedro.pipeline.pull]\n"{sdists / CLEANING}" = {{}}\n')
    _ok(run(["pull", "--all", "--no-compile"], target))
    assert (target / "src/churn/data_cleaning/nodes.py").is_file()


def row_new_pull_options(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    dry = _ok(run(["pull", str(sdists / CLEANING), "--dry-run", "--diff", "--no-compile"], target))
    assert "dry run: nothing was written" in dry.stdout and "+++ b/src/churn/data_cleaning/nodes.py" in dry.stdout
    (target / "src/churn/data_cleaning").mkdir(parents=True)
    (target / "src/churn/data_cleaning/nodes.py").write_text("mine\n")
    assert run(["pull", str(sdists / CLEANING), "--no-compile"], target).exit_code == 1
    forced = _ok(run(["pull", str(sdists / CLEANING), "--force", "--json", "--no-compile"], target))
    assert '"applied": true' in forced.stdout
    assert "data_cleaning" in _ok(run(["status"], target)).stdout


def row_new_tasks(run: Runner, source: Path, target: Path, sdists: Path) -> None:
    for task in ("sync-shared", "pull-all", "compile-reqs", "prerelease"):
        assert f"[--core-opts] {task}" in _ok(run(["--help", task], target)).stdout
    assert "requirements.txt skipped (no requirements.in)" in _ok(run(["compile-reqs"], source)).stdout


ROWS: dict[tuple[str, str], Callable[[Runner, Path, Path, Path], None]] = {
    ("`kedro micropkg package MODULE_PATH`", "`micropkg package MODULE_PATH`"): row_package_module,
    ("`kedro micropkg package -e/--env ENV`", "`-e/--env ENV`"): row_package_env,
    ("`kedro micropkg package --alias NAME`", "`--alias NAME`"): row_package_alias,
    ("`kedro micropkg package -d/--destination DIR`", "`-d/--destination DIR`"): row_package_destination,
    ("`kedro micropkg package -a/--all`", "`-a/--all`"): row_package_all,
    ("`kedro micropkg pull PACKAGE_PATH`", "`micropkg pull LOCATION`"): row_pull_location,
    ("`kedro micropkg pull -a/--all`", "`-a/--all`"): row_pull_all,
    ("`kedro micropkg pull -e/--env ENV`", "`-e/--env ENV`"): row_pull_env,
    ("`kedro micropkg pull --alias NAME`", "`--alias NAME`"): row_pull_alias,
    ("`kedro micropkg pull -d/--destination DEST`", "`-d/--destination DEST`"): row_pull_destination,
    ("`kedro micropkg pull --fs-args FILE`", "`--fs-args FILE`"): row_pull_fs_args,
    ("`kedro micropkg ... -v/--verbose`", "`-v/--verbose`, and `-q/--quiet`"): row_verbosity,
    ("`[tool.kedro.micropkg.package]` `\"mod.path\" = {alias, destination, env}`", "the same table, read as is"):
        row_package_manifest,
    ("`[tool.kedro.micropkg.pull]` `\"location\" = {alias, destination, env, fs_args}`", "the same table, read as is"):
        row_pull_manifest,
    ("`[tool.kedro.pipeline.package]`, `[tool.kedro.pipeline.pull]` (older Kedro)",
     "read when the `micropkg` tables are absent"): row_legacy_manifests,
    ("—", "`micropkg status`, `pull --dry-run --diff`, `pull --force`, `--json`"): row_new_pull_options,
    ("—", "`sync-shared`, `pull-all`, `compile-reqs`, `prerelease`"): row_new_tasks,
}


def migration_table() -> list[tuple[str, str]]:
    """The (Kedro 0.19, micropkg-tasks) cells of every row of docs/index.md's migration table."""
    text = (REPO_ROOT / "docs/index.md").read_text(encoding="utf-8")
    section = text.split("## Coming from `kedro micropkg`", 1)[1]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith(("| Kedro 0.19 |", "|---")):
            continue
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        rows.append((cells[0], cells[1]))
    return rows


def test_every_row_of_the_migration_table_has_a_scenario():
    assert migration_table() == list(ROWS)


@pytest.mark.parametrize("row", list(ROWS), ids=[f"{kedro} -> {ours}"[:70] for kedro, ours in ROWS])
def test_migration_table_row_works(row, run, source, target, sdists):
    ROWS[row](run, source, target, sdists)
