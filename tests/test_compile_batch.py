"""Compiling after a batch: once per changed project, at the end, through the real CLI and real pip-compile.

pip runs offline against the test wheelhouse (``offline_pip``); a spy counts how
often pip-compile really runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from micropkg_tasks.ops import compile as compile_module
from tests import hostile_archives
from tests.conftest import kedro_project
from tests.helpers import snapshot_tree


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
