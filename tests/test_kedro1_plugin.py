"""``kedro micropkg`` restored in Kedro 1.x by our plugin, end to end with real Kedro (SPEC §14).

Kedro runs from its own cached venv with the newest Kedro 1.x (``tests/kedro_env.py``),
never from ours; this checkout is installed beside it with ``pip install --target``, so
Kedro finds the plugin through the ``kedro.project_commands`` entry point exactly as it
would after ``pip install micropkg-tasks[kedro]``. Skipped when the venv cannot be made.

The flow is what a Kedro user does: ``kedro new`` (no starter, offline), ``kedro
pipeline create data_processing`` with real nodes, parameters and tests, ``kedro
micropkg package``, ``kedro micropkg pull`` into a second new project under an alias,
then ``kedro run --pipeline <alias>`` and the pulled tests, there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import read_tree
from tests.kedro_env import clean_env, install_plugin, installed_kedro_version, kedro1_bin, run_kedro  # noqa: F401

pytestmark = [pytest.mark.interop, pytest.mark.slow]

NODES = '''"""Nodes of the data_processing pipeline."""


def make_numbers(numbers: list[int]) -> list[int]:
    return list(numbers)


def scale(numbers: list[int], factor: int) -> list[int]:
    return [number * factor for number in numbers]
'''

PIPELINE = '''"""The data_processing pipeline: numbers from parameters, then scaled."""

from kedro.pipeline import Node, Pipeline

from source_project.pipelines.data_processing.nodes import make_numbers, scale


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(make_numbers, "params:data_processing.numbers", "raw_numbers", name="make_numbers"),
            Node(scale, ["raw_numbers", "params:data_processing.factor"], "scaled_numbers", name="scale"),
        ]
    )
'''

PARAMETERS = """data_processing:
  numbers: [1, 2, 3]
  factor: 10
"""

TESTS = '''from unittest import mock

import source_project.pipelines.data_processing.nodes as nodes_module
from source_project.pipelines.data_processing.nodes import scale
from source_project.pipelines.data_processing.pipeline import create_pipeline


def test_scale_multiplies_every_number():
    assert scale([1, 2, 3], 10) == [10, 20, 30]


def test_pipeline_turns_parameters_into_scaled_numbers():
    pipeline = create_pipeline()
    assert pipeline.inputs() == {"params:data_processing.numbers", "params:data_processing.factor"}
    assert pipeline.outputs() == {"scaled_numbers"}


def test_nodes_can_be_patched_by_dotted_path():
    with mock.patch("source_project.pipelines.data_processing.nodes.make_numbers", return_value=[7]):
        assert nodes_module.make_numbers([1]) == [7]
'''


def _ok(result: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{what} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _pytest(kedro1_bin: Path, project: Path, tests: str) -> subprocess.CompletedProcess[str]:
    """The project's tests with the Kedro venv's python, as the project's own users run them."""
    command = [str(kedro1_bin / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
               "--rootdir", str(project), tests]
    return subprocess.run(
        command, cwd=project, env=clean_env({"PYTHONPATH": str(project / "src")}), capture_output=True,
        text=True, timeout=180, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def plugin_env(kedro1_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:  # noqa: F811
    """``PYTHONPATH`` holding this checkout, installed without dependencies (the venv has them)."""
    site = install_plugin(tmp_path_factory.mktemp("plugin") / "site")
    return {"PYTHONPATH": str(site)}


def _new_project(kedro1_bin: Path, parent: Path, name: str, env: dict[str, str]) -> Path:  # noqa: F811
    _ok(run_kedro(kedro1_bin, ["new", "--name", name, "--tools", "test", "--example", "n"], cwd=parent, env=env),
        f"kedro new {name}")
    project = parent / name
    assert (project / "pyproject.toml").is_file()
    return project


def test_kedro_1x_packages_and_pulls_through_the_plugin_and_the_pulled_pipeline_runs(
    kedro1_bin: Path, plugin_env: dict[str, str], tmp_path: Path, record_property  # noqa: F811
) -> None:
    started = time.monotonic()
    version = installed_kedro_version(kedro1_bin.parent)
    assert version is not None and version.startswith("1.")
    record_property("kedro_version", version)

    # 1. kedro new, no starter: works offline.
    source = _new_project(kedro1_bin, tmp_path, "source-project", plugin_env)
    # 2. kedro pipeline create, then real nodes, parameters and tests.
    _ok(run_kedro(kedro1_bin, ["pipeline", "create", "data_processing"], cwd=source, env=plugin_env),
        "kedro pipeline create")
    code = source / "src/source_project/pipelines/data_processing"
    (code / "nodes.py").write_text(NODES)
    (code / "pipeline.py").write_text(PIPELINE)
    (source / "conf/base/parameters_data_processing.yml").write_text(PARAMETERS)
    (source / "tests/pipelines/data_processing/test_pipeline.py").write_text(TESTS)
    _ok(_pytest(kedro1_bin, source, "tests/pipelines/data_processing"), "the source project's own tests")
    _ok(run_kedro(kedro1_bin, ["run", "--pipeline", "data_processing"], cwd=source, env=plugin_env),
        "kedro run in the source project")

    # 3. kedro micropkg package, through the plugin, with Kedro 0.19's short options.
    help_text = _ok(run_kedro(kedro1_bin, ["micropkg", "--help"], cwd=source, env=plugin_env), "kedro micropkg --help")
    assert "package" in help_text.stdout and "pull" in help_text.stdout
    packaged = _ok(
        run_kedro(kedro1_bin, ["micropkg", "package", "pipelines.data_processing", "-e", "base", "-d", "dist", "-v"],
                  cwd=source, env=plugin_env),
        "kedro micropkg package",
    )
    sdist = source / "dist/data_processing-0.1.tar.gz"
    assert sdist.is_file(), packaged.stdout
    assert "packaged pipelines.data_processing -> dist/data_processing-0.1.tar.gz" in packaged.stdout

    # 4. kedro micropkg pull into a second new project, under an alias.
    target = _new_project(kedro1_bin, tmp_path, "target-project", plugin_env)
    before = read_tree(target)
    pulled = _ok(
        run_kedro(kedro1_bin, ["micropkg", "pull", str(sdist), "--alias", "cleaning", "-d", "pipelines", "-e", "base"],
                  cwd=target, env=plugin_env),
        "kedro micropkg pull",
    )
    assert "-> pipelines.cleaning: 6 created" in pulled.stdout
    after = read_tree(target)
    assert set(after) - set(before) == {
        "src/target_project/pipelines/cleaning/__init__.py",
        "src/target_project/pipelines/cleaning/nodes.py",
        "src/target_project/pipelines/cleaning/pipeline.py",
        "tests/pipelines/cleaning/__init__.py",
        "tests/pipelines/cleaning/test_pipeline.py",
        "conf/base/parameters_cleaning.yml",
        "micropkg.lock",
    }
    assert {path for path in before if after.get(path) != before[path]} == set()
    pulled_tests = after["tests/pipelines/cleaning/test_pipeline.py"].decode()
    assert 'mock.patch("target_project.pipelines.cleaning.nodes.make_numbers"' in pulled_tests
    assert "source_project" not in pulled_tests

    # 5. The pulled pipeline runs under its alias, and its tests pass there.
    ran = _ok(run_kedro(kedro1_bin, ["run", "--pipeline", "cleaning"], cwd=target, env=plugin_env),
              "kedro run --pipeline cleaning")
    assert "Completed 2 out of 2 tasks" in ran.stdout + ran.stderr
    tested = _ok(_pytest(kedro1_bin, target, "tests/pipelines/cleaning"), "the pulled tests")
    assert tested.stdout.strip().splitlines()[-1].startswith("3 passed")

    # Pulling the same sdist again changes nothing, and says so.
    again = _ok(
        run_kedro(kedro1_bin, ["micropkg", "pull", str(sdist), "--alias", "cleaning", "-d", "pipelines"],
                  cwd=target, env=plugin_env),
        "kedro micropkg pull again",
    )
    assert "already up to date" in again.stdout
    assert read_tree(target) == after
    seconds = time.monotonic() - started
    record_property("seconds", round(seconds, 1))
    sys.stderr.write(f"\n[kedro 1.x end to end] Kedro {version}: {seconds:.1f} s\n")


def test_kedro_1x_plugin_takes_kedro_0_19s_options_and_errors(
    kedro1_bin: Path, plugin_env: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    project = _new_project(kedro1_bin, tmp_path, "opts-project", plugin_env)
    _ok(run_kedro(kedro1_bin, ["pipeline", "create", "data_processing"], cwd=project, env=plugin_env), "create")
    pyproject = project / "pyproject.toml"
    # Kedro 1.x refuses unknown keys under [tool.kedro], so the manifests live in [tool.micropkg.*].
    pyproject.write_text(pyproject.read_text() + '\n[tool.micropkg.package]\n"pipelines.data_processing" = {}\n')

    # No module and no --all: one sentence suggesting --all, exit 2, nothing written.
    before = read_tree(project)
    missing = run_kedro(kedro1_bin, ["micropkg", "package"], cwd=project, env=plugin_env)
    assert missing.returncode == 2
    assert "error: package needs a module path" in missing.stderr and "--all" in missing.stderr
    assert read_tree(project) == before

    # -a packages the manifest; an empty pull manifest is "nothing to pull".
    everything = _ok(run_kedro(kedro1_bin, ["micropkg", "package", "-a"], cwd=project, env=plugin_env), "package -a")
    assert (project / "dist/data_processing-0.1.tar.gz").is_file(), everything.stdout
    pyproject.write_text(pyproject.read_text() + "\n[tool.micropkg.pull]\n")
    nothing = _ok(run_kedro(kedro1_bin, ["micropkg", "pull", "--all"], cwd=project, env=plugin_env), "pull --all")
    assert "nothing to pull" in nothing.stdout

    # A one-character alias is refused, as Kedro 0.19 refused it.
    short = run_kedro(kedro1_bin, ["micropkg", "package", "pipelines.data_processing", "--alias", "x"],
                      cwd=project, env=plugin_env)
    assert short.returncode == 2 and "--alias 'x' is too short" in short.stderr


STDERR_LOGGING = """version: 1
disable_existing_loggers: False
handlers:
  console:
    class: logging.StreamHandler
    stream: ext://sys.stderr
loggers:
  kedro:
    level: INFO
root:
  handlers: [console]
"""


def test_kedro_1x_help_errors_and_json_name_only_what_kedro_1x_accepts(
    kedro1_bin: Path, plugin_env: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    project = _new_project(kedro1_bin, tmp_path, "json-project", plugin_env)
    _ok(run_kedro(kedro1_bin, ["pipeline", "create", "data_processing"], cwd=project, env=plugin_env), "create")

    # The help for -a and the error without a manifest name the table Kedro 1.x accepts.
    shown = _ok(run_kedro(kedro1_bin, ["micropkg", "package", "--help"], cwd=project, env=plugin_env), "help")
    help_text = " ".join(shown.stdout.split())
    assert "[tool.micropkg.package]" in help_text and "tool.kedro.micropkg" not in help_text
    before = read_tree(project)
    missing = run_kedro(kedro1_bin, ["micropkg", "package", "--all"], cwd=project, env=plugin_env)
    assert missing.returncode == 2
    assert "has no [tool.micropkg.package] manifest; list the micro-packages to package there" in missing.stderr
    assert read_tree(project) == before

    # Following that advice keeps every kedro command working.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.micropkg.package]\n"pipelines.data_processing" = {}\n')
    _ok(run_kedro(kedro1_bin, ["registry", "list"], cwd=project, env=plugin_env), "kedro registry list")

    # --json: whatever Kedro logs while the command runs goes to stderr. Kedro itself logs one line
    # about its logging configuration when it starts, before any plugin is loaded; everything
    # after that is the JSON document alone.
    default = _ok(run_kedro(kedro1_bin, ["micropkg", "package", "--all", "--json"], cwd=project, env=plugin_env),
                  "package --all --json")
    document = default.stdout[default.stdout.index("\n{") + 1:] if not default.stdout.startswith("{") \
        else default.stdout
    assert json.loads(document)["results"][0]["module_path"] == "pipelines.data_processing"

    # With the project's logging sent to stderr (conf/logging.yml, as Kedro documents), stdout is
    # exactly the JSON document.
    (project / "conf/logging.yml").write_text(STDERR_LOGGING)
    piped = subprocess.run(
        f"{kedro1_bin / 'kedro'} micropkg package --all --json | {kedro1_bin / 'python'} -m json.tool",
        shell=True, cwd=project, env=clean_env(plugin_env), capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert json.loads(piped.stdout)["results"][0]["module_path"] == "pipelines.data_processing"
    assert "logging configuration" in piped.stderr
