"""Tests for static version resolution and parameter-file selection (SPEC §3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.project.params import rename_for_alias, select_parameter_files
from micropkg_tasks.core.project.project import Project, load_project
from micropkg_tasks.core.project.version import ResolvedVersion, read_dunder_version, resolve_version
from tests.conftest import kedro_project
from tests.helpers import build_file_tree

MODULE = "pipelines.data_processing"
MODULE_INIT = "src/spaceflights/pipelines/data_processing/__init__.py"
PACKAGE_INIT = "src/spaceflights/__init__.py"
EXPLODES = "raise SystemExit('project code must never be imported')\n"


def make_project(
    tmp_path: Path, *, module_init: str | None, package_init: str, pyproject_extra: str = ""
) -> Project:
    extra = {PACKAGE_INIT: package_init}
    if module_init is not None:
        extra[MODULE_INIT] = module_init
    else:
        extra["src/spaceflights/pipelines/data_processing/nodes.py"] = ""
    return load_project(kedro_project(tmp_path / "proj", extra=extra, pyproject_extra=pyproject_extra))


def resolve(project: Project) -> tuple[ResolvedVersion, list[str]]:
    return resolve_version(project, project.module_dir(MODULE))


# -- version ---------------------------------------------------------------------------


def test_micro_package_version_wins(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        module_init=EXPLODES + '__version__ = "1.2.0"\n',
        package_init=EXPLODES + '__version__ = "9.9"\n',
        pyproject_extra='\n[project]\nname = "s"\nversion = "7.0"\n',
    )

    assert resolve(project) == (ResolvedVersion("1.2.0", f"micro-package __version__ ({MODULE_INIT})"), [])


def test_falls_back_to_the_project_package_version(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        module_init='"""Data processing."""\nVERSION = "5"\n',
        package_init=EXPLODES + '__version__ = "0.3.1"\n',
        pyproject_extra='\n[project]\nname = "s"\nversion = "7.0"\n',
    )

    assert resolve(project) == (ResolvedVersion("0.3.1", f"project package __version__ ({PACKAGE_INIT})"), [])


def test_falls_back_to_the_static_project_version(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        module_init=None,  # a namespace package: no __init__.py at all
        package_init=EXPLODES,
        pyproject_extra='\n[project]\nname = "s"\nversion = "7.0.1"\n',
    )

    assert resolve(project) == (ResolvedVersion("7.0.1", "[project] version (pyproject.toml)"), [])


def test_dynamic_project_version_falls_back_to_the_default(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        module_init=EXPLODES,
        package_init=EXPLODES,
        pyproject_extra='\n[project]\nname = "s"\nversion = "7.0"\ndynamic = ["version"]\n',
    )

    assert resolve(project) == (ResolvedVersion("0.1", "default"), [])


def test_computed_versions_are_noted_and_skipped(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        module_init=EXPLODES + "from importlib.metadata import version\n__version__ = version('x')\n",
        package_init="import os\n\n__version__ = os.environ['V']\n",
    )

    assert resolve(project) == (
        ResolvedVersion("0.1", "default"),
        [
            f"{MODULE_INIT}: __version__ at line 3 is computed, not a string literal; falling back",
            f"{PACKAGE_INIT}: __version__ at line 3 is computed, not a string literal; falling back",
        ],
    )


def test_annotated_assignment_is_read(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        module_init=EXPLODES + 'from typing import Final\n__version__: Final[str] = "2.0.0b1"\n',
        package_init='__version__ = "1"\n',
    )

    assert resolve(project)[0] == ResolvedVersion("2.0.0b1", f"micro-package __version__ ({MODULE_INIT})")


def test_bare_annotation_is_not_a_version(tmp_path: Path) -> None:
    path = build_file_tree(tmp_path, {"__init__.py": "__version__: str\n"}) / "__init__.py"

    assert read_dunder_version(path) == (None, "no __version__")


def test_chained_assignment_is_read(tmp_path: Path) -> None:
    path = build_file_tree(tmp_path, {"__init__.py": '__version__ = VERSION = "3.1"\n'}) / "__init__.py"

    assert read_dunder_version(path) == ("3.1", None)


def test_version_is_normalised(tmp_path: Path) -> None:
    project = make_project(tmp_path, module_init='__version__ = "1.0-RC1"\n', package_init="")

    assert resolve(project)[0].version == "1.0rc1"


def test_invalid_version_names_the_file(tmp_path: Path) -> None:
    project = make_project(tmp_path, module_init='__version__ = "first release"\n', package_init="")

    with pytest.raises(ProjectError) as caught:
        resolve(project)

    assert str(caught.value) == f"{MODULE_INIT}: version 'first release' is not a valid PEP 440 version"


def test_invalid_project_version_names_pyproject(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, module_init="", package_init="", pyproject_extra='\n[project]\nname = "s"\nversion = "v-one"\n'
    )

    with pytest.raises(ProjectError) as caught:
        resolve(project)

    assert str(caught.value) == "pyproject.toml: version 'v-one' is not a valid PEP 440 version"


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, module_init='x = 1\n__version__ = "1.0\n', package_init="")

    with pytest.raises(ProjectError) as caught:
        resolve(project)

    message = str(caught.value)
    assert message.startswith(f"{project.root / MODULE_INIT}:2: invalid Python syntax (")


def test_project_code_is_never_imported(tmp_path: Path) -> None:
    # Every __init__.py raises SystemExit at import; resolution still works, and
    # nothing from the project lands in sys.modules.
    import sys

    project = make_project(tmp_path, module_init=EXPLODES + '__version__ = "4.5"\n', package_init=EXPLODES)

    assert resolve(project)[0].version == "4.5"
    assert "spaceflights" not in sys.modules
    assert not list(project.root.rglob("__pycache__"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('__version__ = "0.0.0"\n__version__ = "1.4"\n', ("1.4", None)),
        ('__version__ = str(1)\n__version__ = "1.5"\n', ("1.5", None)),
        ('__version__ = "1.6"\n__version__ = str(2)\n', (None, "__version__ at line 2 is computed, not a string literal")),
    ],
    ids=["two-literals", "computed-then-literal", "literal-then-computed"],
)
def test_last_assignment_wins_like_at_import(tmp_path: Path, source: str, expected: tuple) -> None:
    path = build_file_tree(tmp_path, {"__init__.py": source}) / "__init__.py"

    assert read_dunder_version(path) == expected


# -- parameters ------------------------------------------------------------------------------

NAME = "data_processing"
CONF = {
    # **/parameters_<name>.yml
    "parameters_data_processing.yml": "a: 1\n",
    "nested/deeper/parameters_data_processing.yml": "b: 1\n",
    # **/<name>/**/*
    "data_processing/params.yml": "c: 1\n",
    "data_processing/sub/deep.json": "{}\n",
    "pipelines/data_processing/extra.yml": "d: 1\n",
    # parameters*/**/<name>.yml
    "parameters/data_processing.yml": "e: 1\n",
    "parameters_shared/more/data_processing.yml": "f: 1\n",
    # parameters*/**/<name>/**/*
    "parameters/models/data_processing/a.yml": "g: 1\n",
    # not matched
    "parameters.yml": "seed: 1\n",
    "parameters_data_processing_extra.yml": "no: 1\n",
    "parameters_data_processing.yaml": "no: 1\n",
    "data_processing.yml": "no: 1\n",
    "other/data_processing.yml": "no: 1\n",
    "parameters/data_processing_extra.yml": "no: 1\n",
    "data_processing_extra/params.yml": "no: 1\n",
    "parameters_other.yml": "no: 1\n",
    # matched by the globs, but never packaged
    "data_processing/catalog.yml": "raw: {type: x}\n",
    "data_processing/catalog_extra.yml": "raw: {type: x}\n",
    "data_processing/credentials.yml": "secret: 1\n",
    "pipelines/data_processing/credentials/keys.yml": "secret: 1\n",
}


def test_kedro_globs_select_exactly_the_parameter_files(tmp_path: Path) -> None:
    env = build_file_tree(tmp_path / "conf" / "base", CONF)

    selected, refused = select_parameter_files(env, NAME)

    assert selected == [
        "data_processing/params.yml",
        "data_processing/sub/deep.json",
        "nested/deeper/parameters_data_processing.yml",
        "parameters/data_processing.yml",
        "parameters/models/data_processing/a.yml",
        "parameters_data_processing.yml",
        "parameters_shared/more/data_processing.yml",
        "pipelines/data_processing/extra.yml",
    ]
    assert refused == [
        "data_processing/catalog.yml",
        "data_processing/catalog_extra.yml",
        "data_processing/credentials.yml",
        "pipelines/data_processing/credentials/keys.yml",
    ]


def test_selection_equals_what_the_kedro_globs_find(tmp_path: Path) -> None:
    # Kedro 0.19's _find_config_files: the same four globs with pathlib, files only.
    env = build_file_tree(tmp_path / "conf" / "base", CONF)
    patterns = [f"**/parameters_{NAME}.yml", f"**/{NAME}/**/*", f"parameters*/**/{NAME}.yml", f"parameters*/**/{NAME}/**/*"]
    kedro = {p.relative_to(env).as_posix() for pattern in patterns for p in env.glob(pattern) if p.is_file()}

    selected, refused = select_parameter_files(env, NAME)

    assert set(selected) | set(refused) == kedro


def test_symlinks_are_skipped(tmp_path: Path) -> None:
    outside = build_file_tree(tmp_path / "outside", {"secret.yml": "token: x\n", "dir/p.yml": "x: 1\n"})
    env = build_file_tree(tmp_path / "conf" / "base", {"data_processing/params.yml": "a: 1\n"})
    os.symlink(outside / "secret.yml", env / "parameters_data_processing.yml")
    os.symlink(outside / "secret.yml", env / "data_processing" / "linked.yml")
    os.symlink(outside / "dir", env / "data_processing" / "linked_dir")

    assert select_parameter_files(env, NAME) == (["data_processing/params.yml"], [])


def test_missing_env_folder_selects_nothing(tmp_path: Path) -> None:
    assert select_parameter_files(tmp_path / "conf" / "uat", NAME) == ([], [])


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("parameters_data_processing.yml", "parameters_dp.yml"),
        ("nested/parameters_data_processing.yml", "nested/parameters_dp.yml"),
        ("data_processing/params.yml", "data_processing/params.yml"),  # folders keep their names
        ("pipelines/data_processing/data_processing.yml", "pipelines/data_processing/dp.yml"),
        ("parameters/data_processing.yml", "parameters/dp.yml"),
        ("data_processing/data_processing_data_processing.yml", "data_processing/dp_dp.yml"),
        ("parameters.yml", "parameters.yml"),
    ],
)
def test_alias_renames_file_names_only(relative: str, expected: str) -> None:
    assert rename_for_alias(relative, NAME, "dp") == expected


def test_alias_equal_to_the_name_changes_nothing() -> None:
    assert rename_for_alias("parameters_data_processing.yml", NAME, NAME) == "parameters_data_processing.yml"
