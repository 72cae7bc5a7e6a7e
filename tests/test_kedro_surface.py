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


# ------------------------------------------------------- the edge cases a Kedro user trips over


def test_pull_destination_in_folder_form_is_made_dotted(run, target, sdists):
    result = _ok(run(["pull", str(sdists / CLEANING), "--destination", "pipelines/nested", "--no-compile"], target))
    assert "-> pipelines.nested.data_cleaning:" in result.stdout
    assert (target / "src/churn/pipelines/nested/data_cleaning/nodes.py").is_file()
    assert (target / "src/churn/pipelines/nested/__init__.py").is_file()
    assert 'destination = "pipelines.nested"' in (target / "micropkg.lock").read_text()


def test_empty_manifests_with_all_are_nothing_to_do(run, source, target):
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text[: text.index("[tool.kedro.micropkg.package]")] + "[tool.kedro.micropkg.package]\n")
    _add_to_pyproject(target, "[tool.kedro.micropkg.pull]\n")
    before = snapshot_tree(source.parent)
    packaged = _ok(run(["package", "--all"], source))
    assert packaged.stdout.startswith("nothing to package: [tool.kedro.micropkg.package] in ")
    pulled = _ok(run(["pull", "-a"], target))
    assert pulled.stdout.startswith("nothing to pull: [tool.kedro.micropkg.pull] in ")
    assert snapshot_tree(source.parent) == before


@pytest.mark.parametrize(
    ("argv", "sentence"),
    [
        (["package"], "error: package needs a module path (such as pipelines.data_cleaning, or several as a,b,c), "
                      "or --all to package every entry of [tool.micropkg.package] (or [tool.kedro.micropkg.package] "
                      "before Kedro 1.0)\n"),
        (["pull"], "error: pull needs a location (an sdist path, fsspec URL or name==version), or --all to pull "
                   "every entry of [tool.micropkg.pull] (or [tool.kedro.micropkg.pull] before Kedro 1.0)\n"),
        (["package", "pipelines.data_cleaning", "utils.text"],
         "error: give several modules as one comma-separated argument: micropkg package "
         "pipelines.data_cleaning,utils.text (a bare word after the module is read as another task)\n"),
        (["package", "-d", "out", "pipelines.data_cleaning", "-e", "base", "-q", "utils.text"],
         "error: give several modules as one comma-separated argument: micropkg package "
         "pipelines.data_cleaning,utils.text (a bare word after the module is read as another task)\n"),
        (["pull", "a-0.1.tar.gz", "b-0.1.tar.gz"],
         "error: pull takes one location per run ('b-0.1.tar.gz' was read as another task); pull each sdist "
         "separately, or list them in [tool.micropkg.pull] and run pull --all\n"),
    ],
)
def test_a_missing_or_space_separated_module_is_one_sentence_under_micropkg(source, argv, sentence):
    before = snapshot_tree(source)
    result = run_micropkg(argv, source)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", sentence)
    assert snapshot_tree(source) == before


@pytest.mark.parametrize("argv", [["package"], ["pull"], ["package", "pipelines.data_cleaning", "utils.text"]])
def test_under_plain_invoke_the_same_mistakes_stop_at_invokes_parser_and_write_nothing(source, argv):
    # Invoke's parser reports these before any task runs (docs/index.md says so); only its exit code is ours to check.
    before = snapshot_tree(source)
    result = run_invoke(argv, source)
    assert result.exit_code != 0 and result.stdout == "" and result.stderr.strip()
    assert snapshot_tree(source) == before


def test_one_character_aliases_are_refused(run, source, target, sdists):
    before = snapshot_tree(source)
    package = run(["package", "pipelines.data_cleaning", "--alias", "a"], source)
    assert package.exit_code == 2
    assert package.stderr == "error: --alias 'a' is too short: a package name needs at least 2 characters\n"
    pull = run(["pull", str(sdists / CLEANING), "--alias", "b", "--no-compile"], target)
    assert pull.exit_code == 2 and "--alias 'b' is too short" in pull.stderr
    _add_to_pyproject(target, f'[tool.kedro.micropkg.pull]\n"{sdists / CLEANING}" = {{alias = "c"}}\n')
    manifest = run(["pull", "--all", "--no-compile"], target)
    assert manifest.exit_code == 2 and "alias 'c' is too short" in manifest.stderr
    assert not (target / "micropkg.lock").exists()
    assert snapshot_tree(source) == before


def test_packaging_over_an_existing_sdist_says_unchanged_or_warns_that_it_overwrote(run, source):
    sdist = source / "dist" / CLEANING
    first = _ok(run(["package", "pipelines.data_cleaning"], source))
    assert "(unchanged" not in first.stdout and first.stderr == ""
    written = sdist.stat().st_mtime_ns
    again = _ok(run(["package", "pipelines.data_cleaning"], source))
    assert f"-> dist/{CLEANING} (unchanged: the same bytes were already there)" in again.stdout
    assert again.stderr == "" and sdist.stat().st_mtime_ns == written
    nodes = source / "src/core/pipelines/data_cleaning/nodes.py"
    nodes.write_text(nodes.read_text() + "\n# edited\n")
    changed = _ok(run(["package", "pipelines.data_cleaning"], source))
    assert changed.stderr == f"warning: dist/{CLEANING} already existed with different bytes and was overwritten\n"
    assert "(unchanged" not in changed.stdout
    assert b"# edited" in _members(sdist)["data_cleaning-0.3.0/data_cleaning/nodes.py"]


def test_requirements_included_with_r_inside_the_micro_package_are_carried(run, source):
    folder = source / "src/core/pipelines/data_cleaning"
    (folder / "requirements.txt").write_text("-r extra/more.txt\nrequests>=2\n")
    build_file_tree(folder, {"extra/more.txt": "# shared pins\npyyaml>=6\n"})
    result = _ok(run(["package", "pipelines.data_cleaning"], source))
    assert "2 requirements" in result.stdout and "skipped option" not in result.stderr
    pkg_info = _members(source / "dist" / CLEANING)["data_cleaning-0.3.0/PKG-INFO"].decode()
    assert re.findall(r"^Requires-Dist: (.+)$", pkg_info, re.MULTILINE) == ["pyyaml>=6", "requests>=2"]


def test_requirements_included_with_r_from_outside_the_micro_package_are_an_error_naming_file_and_line(run, source):
    folder = source / "src/core/pipelines/data_cleaning"
    (folder / "requirements.txt").write_text("requests>=2\n-r ../../../../requirements.txt\n")
    before = snapshot_tree(source)
    result = run(["package", "pipelines.data_cleaning"], source)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: src/core/pipelines/data_cleaning/requirements.txt:2: '-r ../../../../requirements.txt' points "
        "outside the micro-package folder, so its requirements could not travel with it; copy them into this "
        "file or move the file into the folder\n"
    )
    assert snapshot_tree(source) == before


def test_an_empty_micro_package_is_packaged_with_a_warning(run, source):
    build_file_tree(source, {"src/core/pipelines/skeleton/__init__.py": "", "src/core/pipelines/skeleton/nodes.py": ""})
    result = _ok(run(["package", "pipelines.skeleton"], source))
    assert result.stderr == (
        "warning: micro-package 'pipelines.skeleton' has no Python code yet: every .py file in "
        "src/core/pipelines/skeleton is empty; packaged anyway\n"
    )
    members = _members(source / "dist/skeleton-0.4.0.tar.gz")
    assert {"skeleton-0.4.0/skeleton/__init__.py", "skeleton-0.4.0/skeleton/nodes.py"} <= set(members)


def test_package_env_without_parameters_while_base_has_some_warns_naming_both(run, source):
    result = _ok(run(["package", "pipelines.data_cleaning", "-e", "local"], source))
    assert result.stderr == (
        "warning: conf/local has no parameter files for 'pipelines.data_cleaning', but conf/base has "
        "parameters/data_cleaning/thresholds.yml, parameters_data_cleaning.yml; the sdist carries no parameters "
        "(package with --env base to include those)\n"
    )
    assert not [n for n in _members(source / "dist" / CLEANING) if "/config/" in n]


def test_a_pull_names_the_files_it_deletes_without_verbose(run, source, target):
    _ok(run(["package", "pipelines.data_cleaning", "-d", "v1"], source))
    (source / "conf/base/parameters/data_cleaning/thresholds.yml").unlink()
    init = source / "src/core/pipelines/data_cleaning/__init__.py"
    init.write_text(init.read_text().replace('"0.3.0"', '"0.3.1"'))
    _ok(run(["package", "pipelines.data_cleaning", "-d", "v2"], source))
    _ok(run(["pull", str(source / "v1" / CLEANING), "--no-compile"], target))
    result = _ok(run(["pull", str(source / "v2/data_cleaning-0.3.1.tar.gz"), "--no-compile"], target))
    assert "  delete    conf/base/parameters/data_cleaning/thresholds.yml (dropped upstream)" in result.stdout
    assert "  update" not in result.stdout  # only deletions are listed without --verbose
    assert not (target / "conf/base/parameters/data_cleaning/thresholds.yml").exists()


def test_a_pull_that_would_define_a_parameter_key_twice_is_refused_naming_both_files(run, target, sdists):
    (target / "conf/base/parameters.yml").write_text("seed: 1\ndata_cleaning:\n  drop_columns: []\n")
    before = snapshot_tree(target)
    refused = run(["pull", str(sdists / CLEANING), "--no-compile"], target)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "error: pull refused: 2 top-level parameter key(s) would be defined twice in conf/base, which Kedro "
        "refuses to load; nothing was written (rename the keys, pull with another --env, or use --force to "
        "pull anyway)\n"
        "  top-level key 'data_cleaning' in conf/base/parameters/data_cleaning/thresholds.yml is also defined in "
        "conf/base/parameters.yml\n"
        "  top-level key 'data_cleaning' in conf/base/parameters_data_cleaning.yml is also defined in "
        "conf/base/parameters.yml\n"
    )
    assert snapshot_tree(target) == before
    # Another env has no such clash.
    _ok(run(["pull", str(sdists / CLEANING), "-e", "local", "--no-compile"], target))
    forced = _ok(run(["pull", str(sdists / CLEANING), "--alias", "cleaning", "--force", "--no-compile"], target))
    assert "warning: top-level key 'data_cleaning' in conf/base/parameters_cleaning.yml is also defined in " \
           "conf/base/parameters.yml; Kedro will refuse to load conf/base" in forced.stderr
    assert (target / "conf/base/parameters_cleaning.yml").is_file()


def test_duplicate_keys_follow_kedros_parameter_patterns_and_skip_private_keys():
    from micropkg_tasks.core.project.param_keys import duplicate_keys, is_parameters_file

    assert [is_parameters_file(p) for p in (
        "parameters.yml", "parameters_x.yaml", "parameters/x/a.yml", "sub/parameters.json", "x/params.yml",
        "catalog.yml", "parameters.txt", ".hidden/parameters.yml",
    )] == [True, True, True, True, False, False, False, False]
    files = {
        "parameters.yml": b"seed: 1\n_shared: {a: 1}\n",
        "parameters_new.yml": b"seed: 2\n_shared: {a: 2}\nnew: {}\n",
        "parameters/new/more.yml": b"new: {b: 1}\n",  # the same micro-package: as its source had it
        "other/params.yml": b"new: 1\n",  # not a parameters file for Kedro
        "parameters_broken.yml": b"seed: [\n",  # unreadable: Kedro reports it better
    }
    found = duplicate_keys(files, {"parameters_new.yml": "new", "parameters/new/more.yml": "new"})
    assert [(d.key, d.incoming, d.existing) for d in found] == [("seed", "parameters_new.yml", "parameters.yml")]
