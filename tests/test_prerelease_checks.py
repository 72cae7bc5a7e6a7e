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
