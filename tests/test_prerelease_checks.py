"""prerelease's round trip in a fresh project, and its version-bump check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import kedro_project

MANIFEST = '\n[tool.kedro.micropkg.package]\n"pipelines.reporting" = {}\n"pipelines.data_science" = {}\n'

# reporting imports data_science and comes first: its round trip brings data_science along at its own
# path, so one shared scratch project would then hold model_options twice.
# The spaceflights layout: each pipeline's parameter file holds top-level keys such as model_options.
SPACEFLIGHTS = {
    "src/spaceflights/pipelines/data_science/__init__.py": '__version__ = "0.1"\n',
    "src/spaceflights/pipelines/data_science/nodes.py": "def split(data, options):\n    return data[: options['n']]\n",
    "conf/base/parameters_data_science.yml": "model_options:\n  n: 2\n  features: [a, b]\n",
    "tests/pipelines/__init__.py": "",
    "tests/pipelines/data_science/__init__.py": "",
    "tests/pipelines/data_science/test_nodes.py": (
        "from spaceflights.pipelines.data_science.nodes import split\n\n\n"
        "def test_split():\n    assert split([1, 2, 3], {'n': 2}) == [1, 2]\n"
    ),
    "src/spaceflights/pipelines/reporting/__init__.py": '__version__ = "0.1"\n',
    "src/spaceflights/pipelines/reporting/nodes.py": (
        "from spaceflights.pipelines.data_science.nodes import split\n\n\n"
        "def first_two(data):\n    return split(data, {'n': 2})\n"
    ),
    "conf/base/parameters_reporting.yml": "report_options:\n  title: cars\n",
}


def test_round_trip_passes_a_parameter_file_with_top_level_keys(tmp_path: Path, cli, offline_pip: Path) -> None:
    project = kedro_project(tmp_path / "spaceflights", pyproject_extra=MANIFEST, extra=SPACEFLIGHTS)

    result = cli(["prerelease", "--json"], project)

    assert result.exit_code == 0, result.stdout + result.stderr
    [round_trip] = [row for row in json.loads(result.stdout)["checks"] if row["check"] == "round-trip"]
    assert round_trip["status"] == "pass"
    assert "2 pulled under fresh names; tests passed for 1" in round_trip["reason"]


# -- version bumped --------------------------------------------------------------------------------

SHARED_ROOT = (
    '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n\n'
    '[[tool.micropkg.shared]]\nmicropkg = "pipelines.data_science"\nsource = "projects/core"\n'
)
INIT = "src/spaceflights/pipelines/data_science/__init__.py"


@pytest.fixture
def shared(tmp_path: Path, cli) -> Path:
    """A monorepo whose core shares pipelines.data_science with app, synced."""
    root = tmp_path / "mono"
    root.mkdir()
    (root / "pyproject.toml").write_text(SHARED_ROOT)
    kedro_project(root / "projects/core", pyproject_extra=MANIFEST, extra=SPACEFLIGHTS)
    kedro_project(root / "projects/app", "app")
    synced = cli(["sync-shared", "--no-compile"], root)
    assert synced.exit_code == 0, synced.stdout + synced.stderr
    return root


def _rows(result) -> dict[tuple[str, str], dict]:
    return {(row["project"], row["check"]): row for row in json.loads(result.stdout)["checks"]}


def test_a_change_without_a_version_bump_fails_naming_the_file(shared: Path, cli, offline_pip: Path) -> None:
    nodes = shared / "projects/core/src/spaceflights/pipelines/data_science/nodes.py"
    nodes.write_text(nodes.read_text() + "\n\ndef more():\n    return 1\n")
    junit = shared.parent / "report.xml"

    result = cli(["prerelease", "--keep-going", "--json", "--junit-xml", str(junit)], shared)

    assert result.exit_code == 1
    row = _rows(result)[("projects/core", "version bumped")]
    assert row["status"] == "fail"
    assert row["details"] == [
        "pipelines.data_science changed since projects/app installed it as pipelines.data_science 0.1: "
        f"bump `__version__` in projects/core/{INIT}"
    ]
    assert _rows(result)[("projects/app", "version bumped")]["status"] == "pass"
    xml = junit.read_text()
    assert 'name="version bumped"' in xml and f"projects/core/{INIT}" in xml

    table = cli(["prerelease", "--keep-going"], shared)
    assert any(line.split()[:3] == ["projects/core", "version", "bumped"] and "FAIL" in line
               for line in table.stdout.splitlines())

    (shared / "projects/core" / INIT).write_text('__version__ = "0.2"\n')
    bumped = cli(["prerelease", "--keep-going", "--json"], shared)
    assert _rows(bumped)[("projects/core", "version bumped")]["status"] == "pass"


def test_an_unchanged_source_passes_the_version_check(shared: Path, cli, offline_pip: Path) -> None:
    result = cli(["prerelease", "--keep-going", "--json"], shared)
    row = _rows(result)[("projects/core", "version bumped")]
    assert row["status"] == "pass", row
    assert row["reason"].startswith("1 cop(ies) elsewhere")
