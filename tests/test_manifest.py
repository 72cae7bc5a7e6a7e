"""Tests for Kedro-compatible manifests in pyproject.toml (SPEC §5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from micropkg_tasks.core.errors import UsageError
from micropkg_tasks.core.project.manifest import (
    PackageEntry,
    PullEntry,
    is_url,
    read_package_manifest,
    read_pull_manifest,
)
from micropkg_tasks.core.project.project import Project, load_project
from tests.conftest import kedro_project

PACKAGE = "[tool.kedro.micropkg.package]"
PULL = "[tool.kedro.micropkg.pull]"


def project_with(tmp_path: Path, manifest: str) -> Project:
    root = kedro_project(tmp_path / "proj", pyproject_extra="\n" + manifest.strip() + "\n")
    return load_project(root)


def where(project: Project, table: str) -> str:
    return f"{project.pyproject_path} {table}"


def usage_error(reader, project: Project) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as caught:
        reader(project)
    return str(caught.value)


# -- package table ---------------------------------------------------------------------


def test_package_table_is_read_in_order_with_defaults(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
"utils.cleaning" = {{alias = "cleaning_utils", env = "uat"}}
"pipelines.data_processing" = {{}}
""")

    assert read_package_manifest(project) == [
        PackageEntry(module_path="utils.cleaning", alias="cleaning_utils", env="uat"),
        PackageEntry(module_path="pipelines.data_processing", alias=None, destination=None, env="base", fs_args=None),
    ]


def test_no_manifest_means_no_entries(tmp_path: Path) -> None:
    project = project_with(tmp_path, "")

    assert read_package_manifest(project) == []
    assert read_pull_manifest(project) == []


def test_package_destination_and_fs_args_resolve_against_the_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
"utils.cleaning" = {{destination = "dist/shared", fs-args = "conf/fs.yml"}}
"utils.other" = {{destination = "s3://bucket/micropkgs", fs_args = "/etc/fs.yml"}}
""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    entries = read_package_manifest(project)

    assert entries[0].destination == str(project.root / "dist" / "shared")
    assert entries[0].fs_args == str(project.root / "conf" / "fs.yml")
    assert entries[1].destination == "s3://bucket/micropkgs"
    assert entries[1].fs_args == "/etc/fs.yml"


def test_legacy_pipeline_tables_are_read_when_the_new_ones_are_absent(tmp_path: Path) -> None:
    project = project_with(tmp_path, """
[tool.kedro.pipeline.package]
"pipelines.data_processing" = {alias = "dp"}

[tool.kedro.pipeline.pull]
"https://example.com/dp-0.1.tar.gz" = {destination = "pipelines"}
""")

    assert read_package_manifest(project) == [PackageEntry("pipelines.data_processing", alias="dp")]
    assert read_pull_manifest(project) == [
        PullEntry("https://example.com/dp-0.1.tar.gz", destination="pipelines")
    ]


def test_new_tables_win_over_legacy_ones(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"""
[tool.kedro.pipeline.package]
"pipelines.old" = {{}}

{PACKAGE}
"pipelines.new" = {{}}
""")

    assert [entry.module_path for entry in read_package_manifest(project)] == ["pipelines.new"]


# -- unquoted dotted keys -----------------------------------------------------------------


def test_unquoted_dotted_key_with_empty_options_shows_the_quoted_form(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
pipelines.x = {{}}
""")

    assert usage_error(read_package_manifest, project) == (
        f"{where(project, PACKAGE)} key 'pipelines' is an unquoted dotted key, which TOML reads as "
        'nested tables; quote it: "pipelines.x" = {}'
    )


def test_unquoted_dotted_key_with_options_shows_the_quoted_form(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
"utils.ok" = {{}}
pipelines.x = {{alias = "y"}}
""")

    assert usage_error(read_package_manifest, project) == (
        f"{where(project, PACKAGE)} key 'pipelines' is an unquoted dotted key, which TOML reads as "
        'nested tables; quote it: "pipelines.x" = { alias = "y" }'
    )


def test_several_unquoted_keys_under_one_prefix_are_all_shown(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
pipelines.a = {{}}
pipelines.deep.b = {{env = "uat"}}
""")

    message = usage_error(read_package_manifest, project)

    assert message.endswith('quote it: "pipelines.a" = {}; "pipelines.deep.b" = { env = "uat" }')


def test_unquoted_dotted_key_in_the_pull_table_shows_the_quoted_form(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"""
{PULL}
data_processing-0.1.tar.gz = {{}}
""")

    assert usage_error(read_pull_manifest, project) == (
        f"{where(project, PULL)} key 'data_processing-0' is an unquoted dotted key, which TOML reads as "
        'nested tables; quote it: "data_processing-0.1.tar.gz" = {}'
    )


# -- options -------------------------------------------------------------------------------


def test_unknown_option_names_the_entry_and_the_option(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
"pipelines.x" = {{alais = "y"}}
""")

    assert usage_error(read_package_manifest, project) == (
        f"{where(project, PACKAGE)} entry 'pipelines.x' has unknown option 'alais' "
        "(known options: alias, destination, env, fs-args)"
    )


def test_unknown_pull_option_names_the_location(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"""
{PULL}
"dist/x-0.1.tar.gz" = {{version = "2"}}
""")

    assert usage_error(read_pull_manifest, project) == (
        f"{where(project, PULL)} entry 'dist/x-0.1.tar.gz' has unknown option 'version' "
        "(known options: alias, destination, env, fs-args, merge)"
    )


def test_entry_that_is_not_a_table(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
"pipelines.x" = "cleaning"
""")

    message = usage_error(read_package_manifest, project)

    assert message.startswith(
        f"{where(project, PACKAGE)} entry 'pipelines.x' must be a table of options such as {{alias = \"x\"}}, got "
    )
    assert message.endswith(" 'cleaning'")


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1", "1"), ("true", "True"), ('["a"]', "['a']")],
)
def test_option_of_the_wrong_type(tmp_path: Path, value: str, shown: str) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
"pipelines.x" = {{alias = {value}}}
""")

    message = usage_error(read_package_manifest, project)

    # The type name is Python's (int, bool, list); the key and value are what matter.
    assert message.startswith(f"{where(project, PACKAGE)} entry 'pipelines.x' option 'alias' must be a string, got ")
    assert message.endswith(f" {shown}")


@pytest.mark.parametrize("alias", ["class", "1cleaning", "my-alias"])
def test_alias_must_be_a_package_name(tmp_path: Path, alias: str) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
"pipelines.x" = {{alias = "{alias}"}}

{PULL}
"dist/x-0.1.tar.gz" = {{alias = "{alias}"}}
""")

    hint = "(use letters, digits and underscores, not starting with a digit, and not a keyword)"
    assert usage_error(read_package_manifest, project) == (
        f"{where(project, PACKAGE)} 'pipelines.x' alias {alias!r} is not a valid Python package name {hint}"
    )
    assert usage_error(read_pull_manifest, project) == (
        f"{where(project, PULL)} 'dist/x-0.1.tar.gz' alias {alias!r} is not a valid Python package name {hint}"
    )


@pytest.mark.parametrize("env", ["uat/x", "..\\\\x", "..", ""])
def test_env_must_be_one_folder_name(tmp_path: Path, env: str) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
"pipelines.x" = {{env = "{env}"}}
""")
    shown_env = env.replace("\\\\", "\\")

    assert usage_error(read_package_manifest, project) == (
        f"{where(project, PACKAGE)} 'pipelines.x' env {shown_env!r} must be the name of one folder "
        "under conf/, such as 'base'"
    )


@pytest.mark.parametrize("key", ["pipelines/x", "pipelines..x", "pipelines.class"])
def test_package_key_must_be_a_module_path(tmp_path: Path, key: str) -> None:
    project = project_with(tmp_path, f"""
{PACKAGE}
"{key}" = {{}}
""")

    assert usage_error(read_package_manifest, project) == (
        f"{where(project, PACKAGE)} key {key!r} is not a dotted Python module path "
        "(expected something like 'pipelines.data_cleaning')"
    )


@pytest.mark.parametrize("destination", ["../pipelines", "/abs/pipelines", "utils..shared", "utils\\\\shared"])
def test_pull_destination_must_be_a_module_path(tmp_path: Path, destination: str) -> None:
    project = project_with(tmp_path, f"""
{PULL}
"dist/x-0.1.tar.gz" = {{destination = "{destination}"}}
""")

    assert usage_error(read_pull_manifest, project) == (
        f"{where(project, PULL)} 'dist/x-0.1.tar.gz' destination {destination.replace(chr(92) * 2, chr(92))!r} "
        "must be a dotted module path such as 'pipelines' or 'utils.shared' (or its folder form "
        "'utils/shared') inside the project package"
    )


@pytest.mark.parametrize("destination", ["utils/shared", "utils/shared/", "./utils/shared"])
def test_pull_destination_in_folder_form_is_made_dotted(tmp_path: Path, destination: str) -> None:
    project = project_with(tmp_path, f"""
{PULL}
"dist/x-0.1.tar.gz" = {{destination = "{destination}"}}
""")

    assert [entry.destination for entry in read_pull_manifest(project)] == ["utils.shared"]


def test_manifest_that_is_an_array_of_tables_is_an_error(tmp_path: Path) -> None:
    project = project_with(tmp_path, """
[[tool.kedro.micropkg.package]]
"pipelines.x" = {}
""")

    assert usage_error(read_package_manifest, project) == (
        f"{project.pyproject_path}: [tool.kedro.micropkg.package] must be a table of entries, not an "
        "array of tables ([[...]]); write it as [tool.kedro.micropkg.package] with one line per entry"
    )


def test_manifest_that_is_a_string_is_an_error(tmp_path: Path) -> None:
    project = project_with(tmp_path, """
[tool.kedro.micropkg]
pull = "dist/x-0.1.tar.gz"
""")

    message = usage_error(read_pull_manifest, project)

    assert message.startswith(f"{project.pyproject_path}: [tool.kedro.micropkg.pull] must be a table of entries, not ")
    assert message.endswith("; write it as [tool.kedro.micropkg.pull] with one line per entry")


# -- pull table ------------------------------------------------------------------------------


def test_pull_table_spec_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = project_with(tmp_path, f"""
{PULL}
"dist/data_processing-0.1.tar.gz" = {{}}
"s3://bucket/micropkgs/cleaning_utils-0.3.tar.gz" = {{alias = "cleaning", destination = "utils", fs-args = "s3_args.yml"}}
"some-micropkg==1.2" = {{}}
"local-0.2.tar.gz" = {{env = "uat", fs_args = "conf/local/fs.yml"}}
"../shared/dist/common-1.0.tar.gz" = {{destination = "utils.shared"}}
""")
    monkeypatch.chdir(tmp_path)  # not the project root: paths must not depend on cwd

    entries = read_pull_manifest(project)

    root = project.root
    assert entries[:4] == [
        PullEntry(location=str(root / "dist" / "data_processing-0.1.tar.gz")),
        PullEntry(
            location="s3://bucket/micropkgs/cleaning_utils-0.3.tar.gz",
            alias="cleaning",
            destination="utils",
            fs_args=str(root / "s3_args.yml"),
        ),
        PullEntry(location="some-micropkg==1.2"),
        PullEntry(location=str(root / "local-0.2.tar.gz"), env="uat", fs_args=str(root / "conf/local/fs.yml")),
    ]
    assert Path(entries[4].location).resolve() == (tmp_path / "shared" / "dist" / "common-1.0.tar.gz").resolve()
    assert entries[4].destination == "utils.shared"


def test_absolute_pull_location_is_kept(tmp_path: Path) -> None:
    sdist = tmp_path / "abs" / "x-0.1.tar.gz"
    project = project_with(tmp_path, f"""
{PULL}
"{sdist.as_posix()}" = {{}}
""")

    assert read_pull_manifest(project) == [PullEntry(location=sdist.as_posix())]


@pytest.mark.parametrize(
    ("location", "url"),
    [
        ("s3://bucket/a.tar.gz", True),
        ("gcs://bucket/a.tar.gz", True),
        ("git+https://host/repo", True),
        ("memory://x/a.tar.gz", True),
        ("dist/a.tar.gz", False),
        ("/abs/a.tar.gz", False),
        ("weird scheme://x", False),
        ("name==1.2", False),
    ],
)
def test_is_url(location: str, url: bool) -> None:
    assert is_url(location) is url
