"""The interface: the Invoke collection, the ``micropkg`` Program, exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Collection

import micropkg_tasks
from tests.conftest import REPO_ROOT, kedro_project
from tests.helpers import snapshot_tree

TASKS = [
    "accept", "affected", "check", "compile-reqs", "package", "prerelease", "pull", "pull-all", "recover", "remove",
    "status", "sync-shared",
]


def run(argv: list[str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_tasks_attribute_is_a_collection_with_defaults():
    collection = micropkg_tasks.tasks
    assert isinstance(collection, Collection)
    assert sorted(collection.task_names) == TASKS
    assert collection.configuration()["micropkg"]["max_members"] == 10_000


def test_importing_the_library_does_not_import_invoke():
    code = "import sys, micropkg_tasks; print('invoke' in sys.modules)"
    completed = run([sys.executable, "-c", code], REPO_ROOT)
    assert completed.stdout.strip() == "False", completed.stderr


def test_console_script_version(venv_bin, tmp_path):
    completed = run([str(venv_bin / "micropkg"), "--version"], tmp_path)
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"micropkg {micropkg_tasks.__version__}"


@pytest.mark.parametrize("task", TASKS)
def test_every_task_has_help(cli, tmp_path, task):
    result = cli(["--help", task], tmp_path)
    assert result.exit_code == 0
    assert f"Usage: micropkg [--core-opts] {task}" in result.stdout
    assert "--json" in result.stdout
    assert ("--root" if task in ("pull-all", "sync-shared", "affected") else "--project") in result.stdout
    if task in ("pull", "pull-all", "sync-shared"):
        assert "--no-compile" in result.stdout
    docstring = result.stdout.split("Docstring:")[1].split("Options:")[0].strip()
    assert docstring and docstring != "none"


def test_repo_root_invoke_list_shows_the_tasks(venv_bin):
    completed = run([str(venv_bin / "invoke"), "--list"], REPO_ROOT)
    assert completed.returncode == 0, completed.stderr
    for name in [*TASKS, "test", "bench"]:
        assert f"  {name}" in completed.stdout


def test_example_monorepo_tasks_py_runs_package(venv_bin, monorepo):
    listed = run([str(venv_bin / "invoke"), "--list"], monorepo)
    assert listed.returncode == 0, listed.stderr
    packaged = run([str(venv_bin / "invoke"), "package", "--all"], monorepo / "projects" / "core")
    assert packaged.returncode == 0, packaged.stderr
    assert (monorepo / "projects/core/dist/io_utils-0.2.0.tar.gz").is_file()


def test_usage_errors_exit_2_through_plain_invoke_too(venv_bin, monorepo):
    completed = run([str(venv_bin / "invoke"), "package", "pipelines.data_cleaning", "--alias", "9x"],
                    monorepo / "projects" / "core")
    assert completed.returncode == 2
    assert completed.stderr == (
        "error: --alias '9x' is not a valid Python package name (use letters, digits and underscores, "
        "not starting with a digit, and not a keyword)\n"
    )


# The same mistake gives the same exit code and the same one sentence under both front ends.
@pytest.mark.parametrize("front_end", ["micropkg", "invoke"])
@pytest.mark.parametrize(
    ("argv", "where", "expected"),
    [
        (["package", "--all", "--jobs=abc"], "projects/core",
         "error: --jobs takes a whole number, such as --jobs=4, not 'abc'\n"),
        (["sync-shared", "--jobs", "two"], ".", "error: --jobs takes a whole number, such as --jobs=4, not 'two'\n"),
        (["pull-all", "--jobs=-1"], ".", "error: --jobs takes a whole number, such as --jobs=4, not '-1'\n"),
    ],
)
def test_bad_numbers_are_usage_errors_under_both_front_ends(venv_bin, monorepo, front_end, argv, where, expected):
    before = snapshot_tree(monorepo)
    completed = run([str(venv_bin / front_end), *argv], monorepo / where)
    assert (completed.returncode, completed.stderr) == (2, expected)
    assert snapshot_tree(monorepo) == before


@pytest.mark.parametrize("front_end", ["micropkg", "invoke"])
def test_no_project_here_is_a_usage_error_under_both_front_ends(venv_bin, tmp_path, front_end):
    # invoke needs a tasks.py to find the tasks; the folder is still not a project.
    (tmp_path / "tasks.py").write_text("from micropkg_tasks import tasks as ns\n")
    completed = run([str(venv_bin / front_end), "package", "--all"], tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.startswith(f"error: no project found at or above {tmp_path.resolve()}")
    assert len(completed.stderr.splitlines()) == 1


def test_unknown_task_is_a_usage_error(cli, tmp_path):
    result = cli(["frobnicate"], tmp_path)
    assert result.exit_code == 2
    assert "No idea what 'frobnicate' is!" in result.stderr


def test_not_a_project_names_the_folder(cli, tmp_path):
    result = cli(["status"], tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: no project found at or above {tmp_path.resolve()}")


def test_broken_pyproject_names_the_file(cli, tmp_path):
    project = kedro_project(tmp_path / "p")
    (project / "pyproject.toml").write_text("[tool.kedro\npackage_name = 'x'\n")
    result = cli(["status", "--project", str(project)], tmp_path)
    assert result.exit_code == 1
    assert f"{project / 'pyproject.toml'} is not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr


def test_json_output_of_package(cli, monorepo):
    result = cli(["package", "--all", "--json"], monorepo / "projects/core")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [r["name"] for r in data["results"]] == ["data_cleaning", "io_utils"]
    assert data["results"][1]["requirements"] == ["pyyaml>=6.0"]
    assert data["results"][0]["version_source"].startswith("micro-package __version__")


def test_unexpected_errors_are_one_line_unless_debug(cli, monorepo, monkeypatch):
    def boom(project):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("micropkg_tasks.ops.inspect.status.status", boom)
    result = cli(["status"], monorepo / "projects/core")
    assert result.exit_code == 1
    assert result.stderr == "error: unexpected RuntimeError: disk on fire (run with --debug for the traceback)\n"
    monkeypatch.setenv("MICROPKG_DEBUG", "1")
    debug = cli(["status"], monorepo / "projects/core")
    assert debug.exit_code == 1
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert debug.stderr.rstrip().endswith("RuntimeError: disk on fire")


def test_invoke_yaml_and_tool_micropkg_settings(cli, monorepo, tmp_path):
    from tests import hostile_archives

    project = kedro_project(tmp_path / "p")
    archive = tmp_path / "ok-0.1.tar.gz"
    archive.write_bytes(hostile_archives.valid_sdist())
    (project / "invoke.yaml").write_text("micropkg:\n  max_members: 3\n")
    limited = cli(["pull", str(archive), "--dry-run"], project)
    assert limited.exit_code == 1 and "member" in limited.stderr
    with open(project / "pyproject.toml", "a") as handle:
        handle.write("\n[tool.micropkg]\nmax_members = 100\n")
    allowed = cli(["pull", str(archive), "--dry-run"], project)
    assert allowed.exit_code == 0, allowed.stderr


def test_bad_setting_is_reported(cli, tmp_path):
    from tests import hostile_archives

    project = kedro_project(tmp_path / "p", pyproject_extra='\n[tool.micropkg]\nmax_members = "lots"\n')
    archive = tmp_path / "ok-0.1.tar.gz"
    archive.write_bytes(hostile_archives.valid_sdist())
    result = cli(["pull", str(archive), "--no-compile"], project)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {project / 'pyproject.toml'} [tool.micropkg] key 'max_members' must be a whole number "
        "of at least 1, such as 4, not 'lots'\n"
    )


def test_pull_positional_or_all(cli, monorepo):
    forecast = monorepo / "projects/forecast"
    neither = cli(["pull"], forecast)
    assert neither.exit_code == 2
    both = cli(["pull", "x.tar.gz", "--all", "--no-compile"], forecast)
    assert both.exit_code == 2 and "give a location or --all" in both.stderr


@pytest.mark.parametrize("task", ["package", "pull"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_after_a_task_with_a_positional_argument(cli, tmp_path, task, flag):
    # Invoke would hand the flag to the missing positional; the task shows its help instead.
    result = cli([task, flag], tmp_path)
    assert result.exit_code == 0, result.stderr
    assert f"Usage: micropkg [--core-opts] {task}" in result.stdout
    assert "--no-compile" in result.stdout or task == "package"


def test_no_task_has_surprising_short_flags(cli, tmp_path):
    # Auto short flags would give -j different meanings in different tasks: only Kedro 0.19's
    # (package and pull) and -q/-v (every task) exist.
    kedro = {"package": {"-a", "-d", "-e", "-q", "-v"}, "pull": {"-a", "-d", "-e", "-q", "-v"}}
    for task in TASKS:
        result = cli(["--help", task], tmp_path)
        shorts = {line.split()[0].rstrip(",") for line in result.stdout.splitlines()
                  if line.strip().startswith("-") and not line.strip().startswith("--")}
        assert shorts == kedro.get(task, {"-q", "-v"}), task
