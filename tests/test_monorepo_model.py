"""The monorepo model: root discovery, project globs, shared entries, their defaults and validation.

Everything runs on a scratch copy of ``examples/monorepo`` (the ``monorepo`` fixture) or on
small trees built next to it; nothing is mocked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from micropkg_tasks.core.errors import MicropkgError, ProjectError, UsageError
from micropkg_tasks.core.project.monorepo import (
    find_monorepo_root,
    load_monorepo,
    require_monorepo,
    select_shared,
)
from tests.conftest import kedro_project, run_micropkg
from tests.helpers import snapshot_tree

MONOREPO_TABLE = '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n'


def write_config(root: Path, shared: str = "", *, head: str = MONOREPO_TABLE, name: str = "pyproject.toml") -> Path:
    path = root / name
    path.write_text(head + ("\n" + shared if shared else ""), encoding="utf-8")
    return path


def shared(micropkg: str | None = None, source: str | None = None, **keys: object) -> str:
    """One ``[[tool.micropkg.shared]]`` table; values are written as TOML via JSON literals."""
    lines = ["[[tool.micropkg.shared]]"]
    if micropkg is not None:
        lines.append(f"micropkg = {json.dumps(micropkg)}")
    if source is not None:
        lines.append(f"source = {json.dumps(source)}")
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


# -- finding the root ----------------------------------------------------------------------------


def test_root_is_found_from_any_folder_below_it(monorepo):
    root = monorepo.resolve()
    for start in (
        monorepo,
        monorepo / "projects",
        monorepo / "projects/churn",
        monorepo / "projects/churn/src/churn/pipelines/scoring",
        monorepo / "projects/forecast/src/tests",
    ):
        assert find_monorepo_root(start) == root, start
    assert require_monorepo(monorepo / "projects/core/src/core/utils/io").root == root


def test_no_root_above_a_plain_folder_is_a_clear_error(tmp_path):
    lonely = kedro_project(tmp_path / "lonely")
    assert find_monorepo_root(lonely) is None
    with pytest.raises(ProjectError, match=r"no monorepo found at or above .*lonely.*\[tool\.micropkg\.monorepo\]"):
        require_monorepo(lonely)
    result = run_micropkg(["sync-shared", "--check"], lonely)
    assert result.exit_code == 2
    assert "error: no monorepo found at or above" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_pyproject_without_the_monorepo_table_is_not_a_root(monorepo):
    # The projects' own pyproject.toml files do not stop the search: only [tool.micropkg.monorepo] does.
    assert (monorepo / "projects/churn/pyproject.toml").is_file()
    assert find_monorepo_root(monorepo / "projects/churn") == monorepo.resolve()


# -- the example, and the defaults of a shared entry ----------------------------------------------


def test_example_monorepo_model(monorepo):
    model = load_monorepo(monorepo)
    root = monorepo.resolve()
    assert model.root == root
    assert model.config_path == root / "pyproject.toml"
    assert [model.relative(p) for p in model.projects] == ["projects/churn", "projects/core", "projects/forecast"]
    assert model.warnings == ()

    first, second, third = model.shared
    assert (first.micropkg, first.alias, first.destination, first.env, first.index) == (
        "pipelines.data_cleaning", None, "pipelines", "base", 1,
    )
    assert first.source == root / "projects/core"
    assert [(model.relative(t.project), t.module) for t in first.targets] == [
        ("projects/churn", "pipelines.data_cleaning")
    ]
    # An alias renames the installed package; the destination still defaults to the source's parent module.
    assert (second.alias, second.name, second.destination) == ("cleaning", "cleaning", "pipelines")
    assert [(model.relative(t.project), t.module) for t in second.targets] == [
        ("projects/forecast", "pipelines.cleaning")
    ]
    # No `targets`: every other project of the monorepo.
    assert [(model.relative(t.project), t.module) for t in third.targets] == [
        ("projects/churn", "utils.io"),
        ("projects/forecast", "utils.io"),
    ]


def test_destination_and_env_keys_and_a_top_level_micro_package(monorepo):
    core = monorepo / "projects/core"
    (core / "src/core/helpers").mkdir()
    (core / "src/core/helpers/__init__.py").write_text("")
    (core / "conf/uat").mkdir()
    write_config(
        monorepo,
        shared("utils.io", "projects/core", targets=["projects/churn"], destination="shared.tools", env="uat")
        + shared("helpers", "projects/core", targets=["projects/forecast"]),
    )
    model = load_monorepo(monorepo)
    tools, helpers = model.shared
    assert (tools.destination, tools.env, tools.targets[0].module) == ("shared.tools", "uat", "shared.tools.io")
    # A micro-package at the top of the project package lands at the top of the target's package.
    assert (helpers.destination, helpers.targets[0].module) == (None, "helpers")


# -- project globs ---------------------------------------------------------------------------------


def test_several_globs_are_merged_and_folders_without_a_project_are_skipped(monorepo):
    kedro_project(monorepo / "libs/geo", "geo")
    (monorepo / "projects/docs").mkdir()  # a folder, but not a project
    (monorepo / "projects/docs/index.md").write_text("# docs\n")
    write_config(
        monorepo,
        head='[tool.micropkg.monorepo]\nprojects = ["projects/*", "libs/*", "projects/core"]\n',
    )
    model = load_monorepo(monorepo)
    assert [model.relative(p) for p in model.projects] == [
        "libs/geo", "projects/churn", "projects/core", "projects/forecast",
    ]
    assert model.warnings == ()


def test_a_glob_that_matches_no_project_is_a_usage_error_naming_the_file_and_the_glob(monorepo):
    path = write_config(monorepo, head='[tool.micropkg.monorepo]\nprojects = ["projects/*", "apps/*"]\n')
    with pytest.raises(UsageError) as caught:
        load_monorepo(monorepo)
    assert str(path) in str(caught.value)
    assert "projects glob 'apps/*' matches no project" in str(caught.value)


@pytest.mark.parametrize(
    ("projects", "message"),
    [
        ('"projects/*"', r"'projects' must be a list of folder globs"),
        ('["../*"]', r"projects glob '\.\./\*' must stay inside the monorepo"),
        ('["/abs/*"]', r"projects glob '/abs/\*' must stay inside the monorepo"),
    ],
)
def test_bad_project_globs(monorepo, projects, message):
    path = write_config(monorepo, head=f"[tool.micropkg.monorepo]\nprojects = {projects}\n")
    with pytest.raises(ProjectError, match=message) as caught:
        load_monorepo(monorepo)
    assert str(path) in str(caught.value)


# -- micropkg.toml as the monorepo file ------------------------------------------------------------


def test_micropkg_toml_declares_the_monorepo(monorepo):
    pyproject = monorepo / "pyproject.toml"
    (monorepo / "micropkg.toml").write_text(pyproject.read_text(encoding="utf-8"), encoding="utf-8")
    pyproject.unlink()
    nested = monorepo / "projects/forecast/src/forecast"
    assert find_monorepo_root(nested) == monorepo.resolve()
    model = load_monorepo(monorepo)
    assert model.config_path == monorepo.resolve() / "micropkg.toml"
    assert len(model.shared) == 3
    # The whole flow works with it, from a folder deep inside one project.
    synced = run_micropkg(["sync-shared", *no_compile()], nested)
    assert synced.exit_code == 0, synced.stderr
    assert (monorepo / "projects/forecast/src/forecast/pipelines/cleaning/nodes.py").is_file()
    assert run_micropkg(["sync-shared", "--check"], nested).exit_code == 0


def test_micropkg_toml_wins_over_the_pyproject_of_the_same_folder(monorepo):
    write_config(monorepo, head='[tool.micropkg.monorepo]\nprojects = ["projects/core"]\n')
    write_config(monorepo, head=MONOREPO_TABLE, name="micropkg.toml")
    model = load_monorepo(monorepo)
    assert model.config_path.name == "micropkg.toml"
    assert len(model.projects) == 3


def test_the_root_pyproject_may_hold_other_tables(tmp_path):
    root = tmp_path / "mono"
    kedro_project(root / "projects/a", "alpha")
    write_config(root, head='[project]\nname = "mono"\n\n' + MONOREPO_TABLE)
    assert [p.name for p in load_monorepo(root).projects] == ["a"]


# -- validation: every message names the file and the entry ----------------------------------------


def _error(monorepo: Path, entries: str) -> tuple[MicropkgError, Path]:
    (monorepo / "projects/notes").mkdir(exist_ok=True)  # a folder that is not a project
    path = write_config(monorepo, shared("utils.io", "projects/core") + entries)
    with pytest.raises(MicropkgError) as caught:
        load_monorepo(monorepo)
    return caught.value, path


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            shared("pipelines.data_cleaning", "projects/notes"),
            "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning) source 'projects/notes' is not a project",
            id="source-not-a-project",
        ),
        pytest.param(
            shared("pipelines.data_cleaning", "projects/missing"),
            "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning) source 'projects/missing' does not exist",
            id="source-missing",
        ),
        pytest.param(
            shared("pipelines.data_cleaning", "projects/core", targets=["projects/churn", "projects/notes"]),
            "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning) target 'projects/notes' is not a project",
            id="target-not-a-project",
        ),
        pytest.param(
            shared("pipelines.feature_engineering", "projects/core", targets=["projects/churn"]),
            "[[tool.micropkg.shared]] #2 (pipelines.feature_engineering): micro-package "
            "'pipelines.feature_engineering' does not exist in projects/core "
            "(src/core/pipelines/feature_engineering/__init__.py is missing)",
            id="micropkg-missing-in-source",
        ),
        pytest.param(
            shared("pipelines.data_cleaning", "projects/core", targets=["projects/churn", "projects/core"]),
            "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning): projects/core is both the source and a target",
            id="source-is-also-a-target",
        ),
        pytest.param(
            shared("pipelines.data_cleaning", "projects/core", targets=["projects/churn"], destination="utils",
                   alias="io"),
            "projects/churn module 'utils.io' is claimed by shared entries #1 and #2",
            id="same-target-module-claimed-twice",
        ),
        pytest.param(
            shared("pipelines.data_cleaning", "../elsewhere"),
            "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning) source '../elsewhere' is outside the monorepo",
            id="source-outside",
        ),
        pytest.param(
            shared("pipelines.data_cleaning", "projects/core", target=["projects/churn"]),
            "[[tool.micropkg.shared]] #2 has unknown key 'target'",
            id="unknown-key",
        ),
        pytest.param(
            shared(None, "projects/core"),
            "[[tool.micropkg.shared]] #2 has no 'micropkg'",
            id="no-micropkg",
        ),
        pytest.param(
            shared("pipelines.data_cleaning", None),
            "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning) has no 'source'",
            id="no-source",
        ),
        pytest.param(
            shared("pipelines.data_cleaning", "projects/core", targets="projects/churn"),
            "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning) 'targets' must be a list of project folders",
            id="targets-not-a-list",
        ),
    ],
)
def test_validation_errors_name_the_file_and_the_entry(monorepo, entry, expected):
    error, path = _error(monorepo, entry)
    message = str(error)
    assert message.startswith(str(path)), message
    assert expected in message


def test_the_same_module_claimed_through_an_alias_in_another_entry(monorepo):
    # Entry #1 installs utils.io into churn; entry #3 would install data_cleaning there as utils.io too.
    error, _ = _error(
        monorepo,
        shared("pipelines.data_cleaning", "projects/core", targets=["projects/forecast"])
        + shared("pipelines.data_cleaning", "projects/core", targets=["projects/churn"], alias="io",
                 destination="utils"),
    )
    assert "projects/churn module 'utils.io' is claimed by shared entries #1 and #3" in str(error)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"alias": "bad-name"}, "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning) alias 'bad-name'"),
        ({"env": "../base"}, "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning) env '../base'"),
        ({"destination": "pipelines..x"}, "[[tool.micropkg.shared]] #2 (pipelines.data_cleaning) destination"),
    ],
)
def test_bad_option_values_are_usage_errors_naming_the_entry(monorepo, keys, expected):
    error, path = _error(monorepo, shared("pipelines.data_cleaning", "projects/core", **keys))
    assert isinstance(error, UsageError)
    assert str(path) in str(error) and expected in str(error)


def test_shared_written_as_a_single_table_is_explained(monorepo):
    path = write_config(monorepo, '[tool.micropkg.shared]\nmicropkg = "utils.io"\nsource = "projects/core"\n')
    with pytest.raises(ProjectError, match=r"must be written as \[\[tool\.micropkg\.shared\]\] tables"):
        load_monorepo(monorepo)
    assert path.is_file()


@pytest.mark.parametrize("task", [["sync-shared", "--check"], ["sync-shared"], ["status"], ["pull-all"]])
def test_the_cli_reports_a_validation_error_in_one_line_with_exit_1(monorepo, task):
    (monorepo / "projects/notes").mkdir()
    path = write_config(monorepo, shared("utils.io", "projects/notes"))
    before = sorted(p.relative_to(monorepo).as_posix() for p in monorepo.rglob("*"))
    result = run_micropkg(task, monorepo / "projects")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.strip() == (
        f"error: {path.resolve()} [[tool.micropkg.shared]] #1 (utils.io) source 'projects/notes' is not a project "
        "(no pyproject.toml with a package_name)"
    )
    assert sorted(p.relative_to(monorepo).as_posix() for p in monorepo.rglob("*")) == before


HONEST_CHECK_TASKS = [
    ["sync-shared", "--check"], ["sync-shared"], ["status"], ["pull-all"], ["pull", "--all"], ["package", "--all"],
    ["compile-reqs"], ["prerelease"],
]


def _config_for(case: str) -> tuple[str, str, str]:
    """(head, shared entries, what the one-sentence error must say) for each dishonest config."""
    head = '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n'
    if case == "typo-glob":
        return '[tool.micropkg.monorepo]\nprojects = ["project/*"]\n', "", "projects glob 'project/*' matches no project"
    if case == "missing-source":
        return head, shared("utils.io", "projects/nowhere"), "source 'projects/nowhere' does not exist"
    if case == "missing-target":
        return head, shared("utils.io", "projects/core", targets=["projects/churm"]), "target 'projects/churm' does not exist"
    return head, shared("utils.io", "projects/core", targets=[]), "no project receives it"


@pytest.mark.parametrize("case", ["typo-glob", "missing-source", "missing-target", "no-target"])
@pytest.mark.parametrize("task", HONEST_CHECK_TASKS, ids=lambda task: " ".join(task))
def test_a_config_that_cannot_see_exits_2_with_one_sentence_under_every_task(monorepo, task, case):
    head, entries, expected = _config_for(case)
    path = write_config(monorepo, entries, head=head)
    before = snapshot_tree(monorepo)
    result = run_micropkg(task, monorepo)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {path.resolve()}")
    assert expected in result.stderr
    assert "in sync" not in result.stdout
    assert snapshot_tree(monorepo) == before


# -- --only ----------------------------------------------------------------------------------------


def test_select_shared_by_module_path_last_part_or_alias(monorepo):
    model = load_monorepo(monorepo)
    indices = lambda only: [entry.index for entry in select_shared(model, only)]  # noqa: E731
    assert indices(None) == [1, 2, 3]
    assert indices("pipelines.data_cleaning") == [1, 2]
    assert indices("data_cleaning") == [1, 2]
    assert indices("cleaning") == [2]
    assert indices("utils.io") == [3]
    assert indices("io") == [3]
    with pytest.raises(UsageError, match=r"--only 'scoring' matches no shared micro-package "
                                         r"\(shared: pipelines\.data_cleaning, utils\.io\)"):
        select_shared(model, "scoring")


def no_compile() -> list[str]:
    """``--no-compile`` once the task has it (compiling is added separately and is not tested here)."""
    import inspect

    from micropkg_tasks.cli.collection import make_collection

    body = make_collection().tasks["sync-shared"].body
    return ["--no-compile"] if "no_compile" in inspect.signature(body).parameters else []
