"""Compiling after a batch: once per changed project, at the end, through the real CLI and real pip-compile.

pip runs offline against the test wheelhouse (``offline_pip``); a spy counts how
often pip-compile really runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micropkg_tasks.core.errors import EXIT_INSTALLED_NOT_COMPILED
from micropkg_tasks.ops.compile import compile as compile_module
from tests import hostile_archives
from tests.conftest import kedro_project
from tests.helpers import snapshot_tree
from tests.servers import free_port


@pytest.fixture
def compile_calls(monkeypatch) -> list[list[str]]:
    """Every pip-compile command that really ran (the spy calls through to the real one)."""
    calls: list[list[str]] = []
    real_run = compile_module._run

    def spy(command, **kwargs):
        calls.append(list(command))
        return real_run(command, **kwargs)

    monkeypatch.setattr(compile_module, "_run", spy)
    return calls


def _sdist(folder: Path, name: str, requires: list[str]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-0.1.tar.gz"
    path.write_bytes(hostile_archives.valid_sdist(name, "0.1", requires))
    return path.name


@pytest.fixture
def consumer(tmp_path: Path) -> Path:
    """A project whose pull manifest lists five micro-packages, each with its own requirements."""
    dist = tmp_path / "dist"
    requirements = {
        "alpha": ["small-a>=2"],
        "beta": ["small-b"],
        "gamma": ["small-c"],
        "delta": ["small-a"],
        "epsilon": ["small-c>=0.5"],
    }
    manifest = "".join(
        f'"../dist/{_sdist(dist, name, reqs)}" = {{destination = "pipelines"}}\n'
        for name, reqs in requirements.items()
    )
    project = kedro_project(tmp_path / "consumer", pyproject_extra=f"\n[tool.kedro.micropkg.pull]\n{manifest}")
    (project / "requirements.txt").write_text("")
    return project


def pins(project: Path) -> set[str]:
    return {
        line.split(" ")[0]
        for line in (project / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }


def test_pull_all_of_five_compiles_exactly_once(consumer, cli, offline_pip, compile_calls):
    result = cli(["pull", "--all"], consumer)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(compile_calls) == 1
    assert pins(consumer) == {"small-a==2.0", "small-b==1.1", "small-c==0.5"}
    assert "compiled requirements.txt" in result.stdout

    # Nothing changed: no pull writes, so nothing to compile.
    again = cli(["pull", "--all"], consumer)
    assert again.exit_code == 0
    assert len(compile_calls) == 1
    assert "already up to date" in again.stdout

    # compile-reqs on its own sees requirements.in unchanged since the last compile.
    skipped = cli(["compile-reqs"], consumer)
    assert skipped.exit_code == 0
    assert "requirements.txt skipped (requirements.in unchanged since the last compile)" in skipped.stdout
    assert len(compile_calls) == 1


def test_no_compile_flag_is_honoured(consumer, cli, offline_pip, compile_calls):
    result = cli(["pull", "--all", "--no-compile"], consumer)
    assert result.exit_code == 0, result.stderr
    assert compile_calls == []
    assert (consumer / "requirements.txt").read_text() == ""
    assert "small-a>=2" in (consumer / "requirements.in").read_text()


def test_compile_false_in_the_project_is_honoured(tmp_path, cli, offline_pip, compile_calls):
    project = kedro_project(tmp_path / "p", pyproject_extra="\n[tool.micropkg]\ncompile = false\n")
    sdist = tmp_path / "alpha-0.1.tar.gz"
    sdist.write_bytes(hostile_archives.valid_sdist("alpha", "0.1", ["small-a>=2"]))
    result = cli(["pull", str(sdist)], project)
    assert result.exit_code == 0, result.stderr
    assert compile_calls == []
    assert "requirements.txt skipped (compile = false)" in result.stdout


def test_unsatisfiable_pin_keeps_requirements_txt_and_exits_1(consumer, cli, offline_pip, compile_calls):
    first = cli(["pull", "--all"], consumer)
    assert first.exit_code == 0, first.stderr
    (consumer / "requirements.in").write_text((consumer / "requirements.in").read_text() + "small-a==1.0\n")
    before = snapshot_tree(consumer)
    result = cli(["compile-reqs"], consumer)
    assert result.exit_code == 1
    assert "could not resolve requirements.in" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot_tree(consumer) == before


def test_pull_all_in_a_monorepo_compiles_each_changed_project_once(monorepo, cli, offline_pip, compile_calls):
    package = cli(["package", "--all"], monorepo / "projects/core")
    assert package.exit_code == 0, package.stderr
    # The example's requirements name real packages; point both consumers at the wheelhouse's.
    (monorepo / "projects/churn/requirements.txt").write_text("small-c\n")
    (monorepo / "projects/forecast/src/requirements.txt").write_text("small-c\n")
    core_io = monorepo / "projects/core/src/core/utils/io/requirements.txt"
    core_io.write_text("small-b\n")
    assert cli(["package", "--all"], monorepo / "projects/core").exit_code == 0
    result = cli(["pull-all"], monorepo)
    assert result.exit_code == 0, result.stdout + result.stderr
    # churn pulls only data_cleaning (no requirements): its requirements.in never changes.
    assert [call[-1] for call in compile_calls] == ["requirements.in"]
    assert "projects/forecast: compiled src/requirements.txt" in result.stdout
    assert pins(monorepo / "projects/forecast/src") == {"small-b==1.1", "small-c==0.5"}


def test_sync_shared_compiles_changed_targets_once(monorepo, cli, offline_pip, compile_calls):
    (monorepo / "projects/churn/requirements.txt").write_text("small-c\n")
    (monorepo / "projects/forecast/src/requirements.txt").write_text("small-c\n")
    (monorepo / "projects/core/src/core/utils/io/requirements.txt").write_text("small-a>=2\n")
    result = cli(["sync-shared"], monorepo)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(compile_calls) == 2  # churn and forecast, once each
    assert pins(monorepo / "projects/churn") == {"small-a==2.0", "small-b==1.1", "small-c==0.5"}
    again = cli(["sync-shared"], monorepo)
    assert again.exit_code == 0
    assert len(compile_calls) == 2


# -- a compile that fails after the install committed ------------------------------------------------

INSTALLED = "error: the micro-packages were installed, but requirements.txt could not be compiled and was left as it was ("
ADVICE = "); run `micropkg compile-reqs` once that is fixed"


@pytest.fixture
def unreachable_index(offline_pip, tmp_path, monkeypatch) -> Path:
    """pip's index is a closed port (every connection refused at once); the wheelhouse still
    serves small-a, small-b and small-c, so only a requirement outside it needs the index."""
    conf = tmp_path / "unreachable.conf"
    conf.write_text(
        f"[global]\nindex-url = http://127.0.0.1:{free_port()}/simple\nfind-links = {offline_pip}\n"
        "retries = 1\ntimeout = 5\n"
    )
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    return conf


def _last_error(stderr: str) -> str:
    return [line for line in stderr.splitlines() if line.startswith("error: ")][-1]


def test_pull_whose_compile_cannot_reach_the_index_says_the_install_committed(tmp_path, cli, unreachable_index):
    project = kedro_project(tmp_path / "p", extra={"requirements.txt": "small-c\n"})
    sdist = tmp_path / _sdist(tmp_path, "alpha", ["small-z>=1"])
    result = cli(["pull", str(sdist)], project)
    assert result.exit_code == EXIT_INSTALLED_NOT_COMPILED == 4
    assert _last_error(result.stderr) == f"{INSTALLED}the package index could not be reached{ADVICE}"
    assert "Traceback" not in result.stderr
    # The install step is whole; the compile step changed nothing.
    assert (project / "src/spaceflights/alpha/__init__.py").is_file()
    assert "small-z>=1" in (project / "requirements.in").read_text()
    assert (project / "requirements.txt").read_text() == "small-c\n"
    assert "alpha" in (project / "micropkg.lock").read_text()


def test_pull_whose_compile_meets_a_genuine_conflict_names_that_instead(tmp_path, cli, offline_pip):
    # No index at all (offline_pip): small-a>=2 needs small-b>=1.1, and the project holds small-b<1.1.
    project = kedro_project(tmp_path / "p", extra={"requirements.txt": "small-b<1.1\n"})
    sdist = tmp_path / _sdist(tmp_path, "alpha", ["small-a>=2"])
    result = cli(["pull", str(sdist)], project)
    assert result.exit_code == 4
    assert _last_error(result.stderr) == (
        f"{INSTALLED}the requirements cannot be satisfied together (a resolution conflict){ADVICE}"
    )
    assert (project / "src/spaceflights/alpha/__init__.py").is_file()
    assert (project / "requirements.txt").read_text() == "small-b<1.1\n"


def test_compile_reqs_alone_still_exits_1(tmp_path, cli, unreachable_index):
    project = kedro_project(tmp_path / "p", extra={"requirements.in": "small-z\n"})
    result = cli(["compile-reqs", "--json"], project)
    assert result.exit_code == 1
    assert json.loads(result.stdout)[0]["cause"] == "index-unreachable"
    assert "installed" not in result.stderr


def _monorepo_needing_the_index(monorepo: Path) -> None:
    (monorepo / "projects/churn/requirements.txt").write_text("small-c\n")
    (monorepo / "projects/forecast/src/requirements.txt").write_text("small-c\n")
    (monorepo / "projects/core/src/core/utils/io/requirements.txt").write_text("small-z>=1\n")


def test_sync_shared_whose_compiles_cannot_reach_the_index(monorepo, cli, unreachable_index):
    _monorepo_needing_the_index(monorepo)
    result = cli(["sync-shared", "--json"], monorepo)
    assert result.exit_code == 4, result.stderr
    report = json.loads(result.stdout)
    assert [outcome["cause"] for outcome in report["compiled"]] == ["index-unreachable", "index-unreachable"]
    assert {target["outcome"] for target in report["targets"]} >= {"updated"}
    last = _last_error(result.stderr)
    assert last.startswith(INSTALLED) and last.endswith(ADVICE)
    assert last.count("the package index could not be reached") == 2
    assert "in projects/churn, " in last and "in projects/forecast, " in last
    assert "small-z>=1" in (monorepo / "projects/churn/requirements.in").read_text()
    assert (monorepo / "projects/churn/requirements.txt").read_text() == "small-c\n"


def test_pull_all_whose_compile_cannot_reach_the_index(monorepo, cli, unreachable_index):
    assert cli(["package", "--all"], monorepo / "projects/core").exit_code == 0
    _monorepo_needing_the_index(monorepo)
    assert cli(["package", "--all"], monorepo / "projects/core").exit_code == 0
    result = cli(["pull-all"], monorepo)
    assert result.exit_code == 4, result.stdout + result.stderr
    assert _last_error(result.stderr) == (
        f"{INSTALLED}in projects/forecast, the package index could not be reached{ADVICE}"
    )
    assert (monorepo / "projects/forecast/src/requirements.txt").read_text() == "small-c\n"


def test_a_refused_target_keeps_exit_1_and_the_compile_is_still_explained(monorepo, cli, unreachable_index):
    assert cli(["sync-shared", "--no-compile"], monorepo).exit_code == 0
    edited = monorepo / "projects/churn/src/churn/pipelines/data_cleaning/nodes.py"
    edited.write_text(edited.read_text() + "\n# a local tweak\n")  # that micro-package is refused in churn
    _monorepo_needing_the_index(monorepo)  # utils.io is updated in both, then their compiles need the index
    result = cli(["sync-shared"], monorepo)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "refused: pipelines.data_cleaning" in result.stderr
    assert _last_error(result.stderr) == (
        "error: the micro-packages that could be installed were installed, but requirements.txt could not be "
        "compiled and was left as it was (in projects/churn, the package index could not be reached; "
        f"in projects/forecast, the package index could not be reached{ADVICE}"
    )
    assert "small-z>=1" in (monorepo / "projects/forecast/src/requirements.in").read_text()
    assert (monorepo / "projects/forecast/src/requirements.txt").read_text() == "small-c\n"
