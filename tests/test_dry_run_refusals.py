"""Dry runs and checks report everything the real run would refuse, and exit as it would.

For each kind of refusal (requirements that cannot both hold, a parameter key
defined twice, a copy owned by another source, files micropkg does not own),
``pull --dry-run``, ``sync-shared --dry-run`` and ``sync-shared --check`` must
name it in text and in ``--json``, exit 1 as the real run's refusal does, and
leave every project byte-for-byte unchanged. The real run is run last, to show
it does refuse.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micropkg_tasks import package
from tests.conftest import kedro_project
from tests.helpers import build_file_tree, snapshot_tree

CHURN, FORECAST = "projects/churn", "projects/forecast"
CLEANING_SOURCE = "projects/core/src/core/pipelines/data_cleaning"
IO_REQUIREMENTS = "projects/core/src/core/utils/io/requirements.txt"
CONFLICT_LINE = "pyyaml: requirements.in has 'pyyaml>=6.0', pipelines.data_cleaning needs 'pyyaml<6'"
CLASH_LINE = (
    "top-level key 'data_cleaning' in conf/base/parameters_data_cleaning.yml is also defined in "
    "conf/base/parameters.yml"
)


# -- sync-shared ------------------------------------------------------------------------------------


def _requirement_conflict(monorepo: Path) -> None:
    """churn lists pyyaml>=6.0; the shared pipeline comes to need pyyaml<6."""
    (monorepo / CLEANING_SOURCE / "requirements.txt").write_text("pyyaml<6\n")
    (monorepo / IO_REQUIREMENTS).write_text("")


def _parameter_clash(monorepo: Path) -> None:
    """churn's own parameters define the key the shared pipeline's parameters define."""
    (monorepo / CHURN / "conf/base/parameters.yml").write_text("data_cleaning:\n  own: 1\n")


SYNC_REFUSALS = {
    "requirement-conflict": (_requirement_conflict, ["sync refused: 1 requirement(s) cannot hold together",
                                                     CONFLICT_LINE]),
    "parameter-clash": (_parameter_clash, ["top-level parameter key(s) would be defined twice in conf/base",
                                           CLASH_LINE]),
}


@pytest.mark.parametrize("kind", sorted(SYNC_REFUSALS))
@pytest.mark.parametrize("mode", ["--dry-run", "--check"])
def test_sync_dry_run_and_check_report_what_the_real_sync_refuses(monorepo: Path, cli, kind: str, mode: str) -> None:
    make, lines = SYNC_REFUSALS[kind]
    make(monorepo)
    before = snapshot_tree(monorepo)

    text = cli(["sync-shared", mode, "--no-compile"], monorepo)
    as_json = cli(["sync-shared", mode, "--no-compile", "--json"], monorepo)

    assert text.exit_code == 1, text.stdout + text.stderr
    assert "Traceback" not in text.stderr
    assert f"{CHURN}: would be refused: " in text.stderr
    for line in lines:
        assert line in text.stderr
    assert as_json.exit_code == 1
    targets = {target["project"]: target for target in json.loads(as_json.stdout)["targets"]}
    assert targets[CHURN]["outcome"] == "would refuse"
    assert all(line in targets[CHURN]["error"] + "\n".join(targets[CHURN]["details"]) for line in lines)
    if kind == "requirement-conflict":
        assert [line[:len(CONFLICT_LINE)] for line in targets[CHURN]["requirements_conflicts"]] == [CONFLICT_LINE]
    assert targets[FORECAST]["outcome"] != "would refuse"
    assert snapshot_tree(monorepo) == before

    real = cli(["sync-shared", "--no-compile"], monorepo)
    assert real.exit_code == 1 and f"{CHURN}: refused: " in real.stderr
    assert all(line in real.stderr for line in lines)


def test_sync_dry_run_reports_a_copy_owned_by_another_source(monorepo: Path, cli, tmp_path: Path) -> None:
    """churn already has data_cleaning, pulled from a built sdist: the shared entry may not take it over."""
    sdists = tmp_path / "sdists"
    package(monorepo / "projects/core", "pipelines.data_cleaning", destination=str(sdists))
    (sdist,) = sdists.glob("*.tar.gz")
    pulled = cli(["pull", str(sdist), "--destination", "pipelines", "--no-compile"], monorepo / CHURN)
    assert pulled.exit_code == 0, pulled.stderr
    before = snapshot_tree(monorepo)

    dry = cli(["sync-shared", "--dry-run", "--no-compile", "--json"], monorepo)

    assert dry.exit_code == 1
    churn = next(t for t in json.loads(dry.stdout)["targets"] if t["project"] == CHURN)
    assert any("pipelines.data_cleaning" in line for line in churn["refused"]), churn
    assert snapshot_tree(monorepo) == before
    assert cli(["sync-shared", "--no-compile"], monorepo).exit_code == 1


# -- pull ---------------------------------------------------------------------------------------------


@pytest.fixture
def bulk(tmp_path: Path) -> Path:
    """An sdist of ``pipelines.bulk`` that needs pyyaml>=99 and defines the parameter key ``bulk``."""
    source = build_file_tree(tmp_path / "source", {
        "pyproject.toml": '[tool.kedro]\npackage_name = "core"\n',
        "src/core/__init__.py": "", "src/core/pipelines/__init__.py": "", "tests/__init__.py": "",
        "src/core/pipelines/bulk/__init__.py": '__version__ = "0.1"\n',
        "src/core/pipelines/bulk/nodes.py": "def run():\n    return 1\n",
        "src/core/pipelines/bulk/requirements.txt": "pyyaml>=99\n",
        "conf/base/parameters_bulk.yml": "bulk:\n  level: 1\n",
    }, dedent=False)
    return Path(package(source, "pipelines.bulk", destination=str(tmp_path / "sdists")).path)


def _pull_requirement_conflict(project: Path) -> None:
    (project / "requirements.txt").write_text("pyyaml<6\n")


def _pull_parameter_clash(project: Path) -> None:
    (project / "conf/base/parameters.yml").write_text("seed: 1\nbulk: 2\n")


def _pull_unowned_file(project: Path) -> None:
    build_file_tree(project, {"src/target/pipelines/bulk/nodes.py": "MINE = 1\n"}, dedent=False)


PULL_REFUSALS = {
    "requirement-conflict": (_pull_requirement_conflict, [
        "pull refused: 1 requirement(s) cannot hold together with requirements.in",
        "pyyaml: requirements.in has 'pyyaml<6', pipelines.bulk needs 'pyyaml>=99', and no version satisfies both",
    ]),
    "parameter-clash": (_pull_parameter_clash, [
        "pull refused: 1 top-level parameter key(s) would be defined twice in conf/base",
        "top-level key 'bulk' in conf/base/parameters_bulk.yml is also defined in conf/base/parameters.yml",
    ]),
    "unowned-file": (_pull_unowned_file, [
        "pull refused: 1 file(s) would be overwritten that micropkg does not own",
        "src/target/pipelines/bulk/nodes.py",
    ]),
}


@pytest.mark.parametrize("kind", sorted(PULL_REFUSALS))
def test_pull_dry_run_reports_what_the_real_pull_refuses(tmp_path: Path, cli, bulk: Path, kind: str) -> None:
    make, lines = PULL_REFUSALS[kind]
    project = kedro_project(tmp_path / "target", "target")
    make(project)
    before = snapshot_tree(project)
    argv = ["pull", str(bulk), "--destination", "pipelines", "--no-compile"]

    text = cli([*argv, "--dry-run"], project)
    as_json = cli([*argv, "--dry-run", "--json"], project)

    assert text.exit_code == 1, text.stdout + text.stderr
    assert "Traceback" not in text.stderr
    for line in lines:
        assert line in text.stderr
    assert as_json.exit_code == 1
    refusals = json.loads(as_json.stdout)["refusals"]
    assert all(any(line in r["message"] + "\n".join(r["details"]) for r in refusals) for line in lines), refusals
    assert snapshot_tree(project) == before

    real = cli(argv, project)
    assert real.exit_code == 1 and all(line in real.stderr for line in lines), real.stderr
    assert snapshot_tree(project) == before


def test_pull_dry_run_reports_every_refusal_at_once(tmp_path: Path, cli, bulk: Path) -> None:
    project = kedro_project(tmp_path / "target", "target")
    for make, _ in PULL_REFUSALS.values():
        make(project)
    before = snapshot_tree(project)

    result = cli(["pull", str(bulk), "--destination", "pipelines", "--no-compile", "--dry-run"], project)

    assert result.exit_code == 1
    for _, lines in PULL_REFUSALS.values():
        assert all(line in result.stderr for line in lines), result.stderr
    assert snapshot_tree(project) == before
