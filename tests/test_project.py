"""Tests for the project model: discovery, layouts and settings read from files (SPEC §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.project.project import (
    Project,
    find_project_root,
    is_project_dir,
    load_project,
)
from tests.conftest import kedro_project
from tests.helpers import build_file_tree


def project_error(root: Path) -> str:
    with pytest.raises(ProjectError) as caught:
        load_project(root)
    return str(caught.value)


# -- discovery -------------------------------------------------------------------


def test_root_is_found_from_a_nested_folder(tmp_path: Path) -> None:
    root = kedro_project(tmp_path / "proj")
    nested = root / "src" / "spaceflights" / "pipelines"

    assert find_project_root(nested) == root.resolve()
    assert find_project_root(root) == root.resolve()


def test_discovery_skips_a_monorepo_pyproject_without_package_name(tmp_path: Path) -> None:
    build_file_tree(tmp_path, {
        "pyproject.toml": """
            [tool.micropkg.monorepo]
            projects = ["projects/*"]
        """,
    })
    root = kedro_project(tmp_path / "projects" / "alpha")

    assert not is_project_dir(tmp_path)
    assert find_project_root(root / "conf" / "base") == root.resolve()


def test_discovery_stops_at_a_broken_pyproject_so_load_can_explain_it(tmp_path: Path) -> None:
    kedro_project(tmp_path)
    inner = build_file_tree(tmp_path / "inner", {"pyproject.toml": "[tool.kedro\n"})

    (inner / "deeper").mkdir()

    assert is_project_dir(inner)
    assert find_project_root(inner / "deeper") == inner.resolve()


def test_no_project_above_the_start_folder_is_an_error(tmp_path: Path) -> None:
    start = tmp_path / "plain" / "folder"
    start.mkdir(parents=True)
    build_file_tree(tmp_path / "plain", {"pyproject.toml": '[project]\nname = "x"\n'})

    with pytest.raises(ProjectError) as caught:
        find_project_root(start)

    assert str(caught.value) == (
        f"no project found at or above {start.resolve()}: expected a pyproject.toml with "
        "[tool.kedro] or [tool.micropkg] and a package_name"
    )


# -- which table names the package --------------------------------------------------


def test_kedro_table_wins_over_micropkg_table(tmp_path: Path) -> None:
    root = kedro_project(tmp_path, pyproject_extra='\n[tool.micropkg]\npackage_name = "other"\n')

    project = load_project(root)

    assert project.package_name == "spaceflights"
    assert project.metadata_table == "tool.kedro"


def test_micropkg_table_is_the_fallback_for_non_kedro_projects(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {
        "pyproject.toml": """
            [project]
            name = "plain-lib"

            [tool.micropkg]
            package_name = "plain_lib"
        """,
        "src/plain_lib/__init__.py": "",
    })

    project = load_project(root)

    assert project.package_name == "plain_lib"
    assert project.metadata_table == "tool.micropkg"
    assert project.package_dir == root.resolve() / "src" / "plain_lib"
    assert project.settings == {"package_name": "plain_lib"}


def test_kedro_table_without_package_name_falls_back_to_micropkg(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {
        "pyproject.toml": """
            [tool.kedro]
            project_name = "Odd"

            [tool.micropkg]
            package_name = "odd"
        """,
        "src/odd/__init__.py": "",
    })

    project = load_project(root)

    assert (project.package_name, project.metadata_table) == ("odd", "tool.micropkg")


# -- layouts -----------------------------------------------------------------------


def test_kedro_019_layout_keeps_requirements_and_tests_at_the_root(tmp_path: Path) -> None:
    root = kedro_project(tmp_path).resolve()

    project = load_project(root)

    assert project == Project(
        root=root,
        package_name="spaceflights",
        source_dir=root / "src",
        conf_dir=root / "conf",
        tests_dir=root / "tests",
        requirements_dir=root,
        legacy_layout=False,
        metadata_table="tool.kedro",
        project_version=None,
        settings={},
    )
    assert project.requirements_txt == root / "requirements.txt"
    assert project.requirements_in == root / "requirements.in"
    assert project.lock_path == root / "micropkg.lock"
    assert project.pyproject_path == root / "pyproject.toml"
    assert project.module_dir("pipelines.data_processing") == root / "src/spaceflights/pipelines/data_processing"
    assert project.module_tests_dir("pipelines.data_processing") == root / "tests/pipelines/data_processing"
    assert project.env_dir("uat") == root / "conf" / "uat"


def test_legacy_layout_keeps_requirements_and_tests_under_src(tmp_path: Path) -> None:
    root = kedro_project(tmp_path, legacy=True).resolve()

    project = load_project(root)

    assert project.legacy_layout is True
    assert project.tests_dir == root / "src" / "tests"
    assert project.requirements_dir == root / "src"
    assert project.requirements_txt == root / "src" / "requirements.txt"
    assert project.module_tests_dir("pipelines.x") == root / "src/tests/pipelines/x"


@pytest.mark.parametrize(
    ("files", "legacy"),
    [
        ({}, False),  # nothing anywhere: the modern layout
        ({"src/requirements.in": "pandas\n"}, True),
        ({"src/tests/__init__.py": ""}, True),
        ({"src/tests/__init__.py": "", "tests/__init__.py": ""}, False),  # root wins when both exist
        ({"src/requirements.txt": "x\n", "requirements.in": "x\n"}, False),
    ],
    ids=["empty", "src-requirements-in", "src-tests", "both-tests", "root-requirements-in"],
)
def test_layout_detection(tmp_path: Path, files: dict[str, str], legacy: bool) -> None:
    root = build_file_tree(tmp_path, {
        "pyproject.toml": '[tool.kedro]\npackage_name = "pkg"\n',
        "src/pkg/__init__.py": "",
        **files,
    })

    assert load_project(root).legacy_layout is legacy


def test_custom_source_dir(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {
        "pyproject.toml": """
            [tool.kedro]
            package_name = "pkg"
            source_dir = "python/code"
        """,
        "python/code/pkg/__init__.py": "",
        "python/code/tests/__init__.py": "",
    }).resolve()

    project = load_project(root)

    assert project.source_dir == root / "python" / "code"
    assert project.package_dir == root / "python" / "code" / "pkg"
    assert project.legacy_layout is True
    assert project.tests_dir == root / "python" / "code" / "tests"


@pytest.mark.parametrize("source_dir", ["../elsewhere", "/tmp"])
def test_source_dir_outside_the_project_is_an_error(tmp_path: Path, source_dir: str) -> None:
    root = build_file_tree(tmp_path / "proj", {
        "pyproject.toml": f'[tool.kedro]\npackage_name = "pkg"\nsource_dir = "{source_dir}"\n',
    }).resolve()
    (tmp_path / "elsewhere" / "pkg").mkdir(parents=True)

    message = project_error(root)

    assert message.startswith(f"{root / 'pyproject.toml'} [tool.kedro] source_dir ")
    assert message.endswith(f"is outside the project folder {root}")


def test_source_dir_must_be_a_non_empty_string(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {
        "pyproject.toml": '[tool.kedro]\npackage_name = "pkg"\nsource_dir = 3\n',
    }).resolve()

    assert project_error(root) == f"{root / 'pyproject.toml'} [tool.kedro] key 'source_dir' must be a non-empty string"


# -- errors ---------------------------------------------------------------------------


def test_missing_package_name_names_the_pyproject(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {"pyproject.toml": '[tool.kedro]\nproject_name = "x"\n'}).resolve()

    assert project_error(root) == f"{root / 'pyproject.toml'}: [tool.kedro] has no package_name"


def test_pyproject_without_any_project_table_is_not_a_project(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {"pyproject.toml": '[project]\nname = "lib"\n'}).resolve()

    assert project_error(root) == (
        f"{root / 'pyproject.toml'} has no [tool.kedro] or [tool.micropkg] table with a package_name; "
        "is this a project folder?"
    )


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {"pyproject.toml": '[tool.kedro]\npackage_name = "x\n'}).resolve()

    message = project_error(root)

    assert message.startswith(f"{root / 'pyproject.toml'} is not valid TOML: ")
    assert "line 2" in message


def test_non_utf8_pyproject_names_the_file(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {"pyproject.toml": b'[tool.kedro]\npackage_name = "\xff"\n'}).resolve()

    assert project_error(root) == f"{root / 'pyproject.toml'} is not valid UTF-8"


def test_folder_without_pyproject_is_not_a_project(tmp_path: Path) -> None:
    root = tmp_path.resolve()

    assert project_error(root) == f"{root} is not a project: {root / 'pyproject.toml'} does not exist"


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path.resolve() / "nope"

    assert project_error(missing) == f"project folder {missing} does not exist"


def test_missing_package_folder_is_an_error(tmp_path: Path) -> None:
    root = build_file_tree(tmp_path, {"pyproject.toml": '[tool.kedro]\npackage_name = "ghost"\n'}).resolve()

    assert project_error(root) == (
        f"{root / 'pyproject.toml'} names package 'ghost', but {root / 'src' / 'ghost'} does not exist"
    )


@pytest.mark.parametrize("name", ["my-pkg", "class", "1pkg"])
def test_package_name_must_be_a_python_identifier(tmp_path: Path, name: str) -> None:
    root = build_file_tree(tmp_path, {"pyproject.toml": f'[tool.kedro]\npackage_name = "{name}"\n'}).resolve()

    assert project_error(root) == (
        f"{root / 'pyproject.toml'} [tool.kedro] package_name {name!r} is not a valid Python package name"
    )


# -- settings ---------------------------------------------------------------------------


def test_conf_source_moves_the_config_folder(tmp_path: Path) -> None:
    root = kedro_project(tmp_path, pyproject_extra='\n[tool.micropkg]\nconf_source = "settings/conf"\n').resolve()

    project = load_project(root)

    assert project.conf_dir == root / "settings" / "conf"
    assert project.env_dir("base") == root / "settings" / "conf" / "base"
    assert project.settings == {"conf_source": "settings/conf"}


def test_conf_source_outside_the_project_is_an_error(tmp_path: Path) -> None:
    root = kedro_project(tmp_path / "p", pyproject_extra='\n[tool.micropkg]\nconf_source = "../conf"\n').resolve()

    assert project_error(root) == (
        f"{root / 'pyproject.toml'} [tool.micropkg] conf_source is outside the project folder {root}"
    )


def test_static_project_version_is_read(tmp_path: Path) -> None:
    root = kedro_project(tmp_path, pyproject_extra='\n[project]\nname = "spaceflights"\nversion = "1.4.0"\n')

    assert load_project(root).project_version == "1.4.0"


def test_dynamic_project_version_is_ignored(tmp_path: Path) -> None:
    root = kedro_project(
        tmp_path,
        pyproject_extra='\n[project]\nname = "spaceflights"\nversion = "9.9"\ndynamic = ["version"]\n',
    )

    assert load_project(root).project_version is None


def test_relative_shows_paths_from_the_root_with_slashes(tmp_path: Path) -> None:
    project = load_project(kedro_project(tmp_path / "p"))

    assert project.relative(project.root / "src" / "spaceflights" / "__init__.py") == "src/spaceflights/__init__.py"
    assert project.relative(tmp_path / "outside.txt") == str(tmp_path / "outside.txt")


def test_settings_are_plain_python_values(tmp_path: Path) -> None:
    root = kedro_project(tmp_path, pyproject_extra='\n[tool.micropkg]\nenvs = ["base", "uat"]\n[tool.micropkg.extra]\nn = 3\n')

    settings = load_project(root).settings

    assert settings == {"envs": ["base", "uat"], "extra": {"n": 3}}
    assert type(settings["envs"]) is list and type(settings["extra"]) is dict
    assert type(settings["extra"]["n"]) is int
