"""Which manifest table help and errors point to: never one that breaks a Kedro 1.x project."""

from __future__ import annotations

import pytest

from tests.conftest import kedro_project
from tests.helpers import snapshot_tree


@pytest.mark.parametrize(
    ("init_version", "extra", "package_table", "pull_table"),
    [
        # Kedro 1.x fails every command on unknown [tool.kedro] keys: always [tool.micropkg.*].
        ("1.0.0", "", "tool.micropkg.package", "tool.micropkg.pull"),
        # Nothing there yet: the table that works with every Kedro.
        ("0.19.15", "", "tool.micropkg.package", "tool.micropkg.pull"),
        # A Kedro 0.19 project that already keeps its manifests under [tool.kedro]: the same place.
        ("0.19.15", '\n[tool.kedro.micropkg.pull]\n', "tool.kedro.micropkg.package", "tool.kedro.micropkg.pull"),
        ("0.19.15", '\n[tool.kedro.micropkg.package]\n', "tool.kedro.micropkg.package", "tool.kedro.micropkg.pull"),
    ],
)
def test_the_no_manifest_error_names_a_table_the_project_can_hold(
    tmp_path, cli, init_version, extra, package_table, pull_table
):
    project = kedro_project(tmp_path / "p", pyproject_extra=extra)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"0.19.15"', f'"{init_version}"'))
    before = snapshot_tree(project)

    packaged = cli(["package", "--all"], project)
    pulled = cli(["pull", "--all"], project)

    if "package" in extra:
        assert packaged.exit_code == 0  # an empty manifest is nothing to package
    else:
        assert packaged.exit_code == 2
        assert f"has no [{package_table}] manifest; list the micro-packages to package there" in packaged.stderr
    if "pull" in extra:
        assert pulled.exit_code == 0
    else:
        assert pulled.exit_code == 2
        assert f"has no [{pull_table}] manifest; list the sdists to pull there" in pulled.stderr
    assert snapshot_tree(project) == before


def test_help_names_the_micropkg_tables_first(tmp_path, cli):
    project = kedro_project(tmp_path / "p")
    for task, table in (("package", "[tool.micropkg.package]"), ("pull", "[tool.micropkg.pull]")):
        shown = cli(["--help", task], project)
        assert shown.exit_code == 0
        text = " ".join(shown.stdout.split())
        assert "manifest in pyproject.toml" in text and table in text


def test_micropkg_tables_are_read_as_manifests(tmp_path, cli):
    extra = '\n[tool.micropkg.package]\n"pipelines.x" = {}\n'
    project = kedro_project(
        tmp_path / "p", pyproject_extra=extra,
        extra={"src/spaceflights/pipelines/x/__init__.py": '__version__ = "0.2"\n'},
    )
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"0.19.15"', '"1.0.0"'))

    packaged = cli(["package", "--all"], project)

    assert packaged.exit_code == 0, packaged.stderr
    assert (project / "dist/x-0.2.tar.gz").is_file()
