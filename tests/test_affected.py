"""``affected --since REF`` and ``--since`` on prerelease and compile-reqs, on a real git monorepo.

The monorepo is ``examples/monorepo`` reshaped so that a dependency matters: ``utils.io`` is
no longer shared on its own, but ``pipelines.data_cleaning`` imports it, so sync-shared takes
it to every target of data_cleaning. A fourth project, ``reporting``, pulls ``utils.io`` from
its sibling ``core`` by hand, and a fifth, ``billing``, shares nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import kedro_project, run_micropkg
from tests.helpers import commit_all, git, snapshot_tree

ROOT_CONFIG = """\
[tool.micropkg.monorepo]
projects = ["projects/*"]

[[tool.micropkg.shared]]
micropkg = "pipelines.data_cleaning"
source = "projects/core"
targets = ["projects/churn"]

[[tool.micropkg.shared]]
micropkg = "pipelines.data_cleaning"
source = "projects/core"
targets = ["projects/forecast"]
alias = "cleaning"
"""
ALL = ["projects/billing", "projects/churn", "projects/core", "projects/forecast", "projects/reporting"]




@pytest.fixture
def repo(monorepo: Path) -> Path:
    (monorepo / "pyproject.toml").write_text(ROOT_CONFIG)
    nodes = monorepo / "projects/core/src/core/pipelines/data_cleaning/nodes.py"
    nodes.write_text(nodes.read_text().replace(
        "from __future__ import annotations\n", "from __future__ import annotations\n\nfrom core.utils.io import read_records\n"
    ))
    kedro_project(monorepo / "projects/reporting", "reporting")
    kedro_project(monorepo / "projects/billing", "billing")
    pulled = run_micropkg(["pull", "../core#utils.io", "--alias", "io_utils", "--destination", "utils", "--no-compile"],
                          monorepo / "projects/reporting")
    assert pulled.exit_code == 0, pulled.stderr
    git(monorepo, "init", "-q")
    commit_all(monorepo, "the monorepo")
    return monorepo


def affected(repo: Path, since: str = "HEAD~1") -> dict[str, list[str]]:
    result = run_micropkg(["affected", "--since", since, "--json"], repo)
    assert result.exit_code == 0, result.stderr
    return {item["project"]: item["reasons"] for item in json.loads(result.stdout)}


def test_an_edit_in_a_dependency_lists_its_project_and_every_copy_that_depends_on_it(repo):
    readers = repo / "projects/core/src/core/utils/io/readers.py"
    readers.write_text(readers.read_text() + "\n# tuned\n")
    commit_all(repo, "edit utils.io")
    found = affected(repo)
    assert sorted(found) == ["projects/churn", "projects/core", "projects/forecast", "projects/reporting"]
    assert found["projects/core"] == ["files in it changed (projects/core/src/core/utils/io/readers.py)"]
    # churn and forecast hold utils.io because their copy of data_cleaning imports it.
    assert found["projects/churn"] == [
        "its copy utils.io (a dependency of pipelines.data_cleaning) is shared from projects/core#utils.io, "
        "whose source changed (projects/core/src/core/utils/io/readers.py)"
    ]
    assert found["projects/forecast"] == [
        "its copy utils.io (a dependency of pipelines.cleaning) is shared from projects/core#utils.io, "
        "whose source changed (projects/core/src/core/utils/io/readers.py)"
    ]
    assert found["projects/reporting"] == [
        "its copy utils.io_utils was pulled from projects/core#utils.io, whose source changed "
        "(projects/core/src/core/utils/io/readers.py)"
    ]
    # The text report says the same, one project per line and its reasons below it.
    text = run_micropkg(["affected", "--since", "HEAD~1"], repo).stdout.splitlines()
    assert [line for line in text if not line.startswith(" ")] == sorted(found)


def test_an_edit_in_a_tests_folder_or_a_parameter_file_of_a_micro_package_counts(repo):
    (repo / "projects/core/conf/base/parameters_data_cleaning.yml").write_text("threshold: 2\n")
    commit_all(repo, "new parameters")
    assert sorted(affected(repo)) == ["projects/churn", "projects/core", "projects/forecast"]
    test_file = repo / "projects/core/tests/utils/io/test_readers.py"
    test_file.write_text(test_file.read_text() + "\n")
    commit_all(repo, "edit a test of utils.io")
    assert sorted(affected(repo)) == ["projects/churn", "projects/core", "projects/forecast", "projects/reporting"]


def test_a_readme_change_lists_none_and_prerelease_since_checks_nothing(repo, tmp_path):
    (repo / "README.md").write_text("Read me.\n")
    commit_all(repo, "docs")
    assert affected(repo) == {}
    assert "no project is affected by the 1 changed file since HEAD~1" in run_micropkg(
        ["affected", "--since", "HEAD~1"], repo).stdout
    report = tmp_path / "out.xml"
    result = run_micropkg(["prerelease", "--since", "HEAD~1", "--json", "--junit-xml", str(report)], repo)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["checks"] == []
    assert report.is_file()
    assert run_micropkg(["prerelease", "--since", "HEAD~1"], repo).stdout == "no projects to check\n"


def test_a_root_pyproject_change_lists_every_project(repo):
    config = repo / "pyproject.toml"
    config.write_text(config.read_text() + "\n# touched\n")
    commit_all(repo, "root config")
    found = affected(repo)
    assert sorted(found) == ALL
    assert all(reasons[0] == "the monorepo's pyproject.toml changed" for reasons in found.values())


def test_project_files_are_named_as_reasons_and_uncommitted_changes_count(repo):
    (repo / "projects/billing/requirements.in").write_text("pyyaml\n")  # untracked, not committed
    lock = repo / "projects/reporting/micropkg.lock"
    lock.write_text(lock.read_text() + "\n")
    found = affected(repo, "HEAD")
    assert found == {
        "projects/billing": ["its requirements.in changed"],
        "projects/reporting": ["its micropkg.lock changed"],
    }


def test_prerelease_since_runs_on_exactly_the_affected_projects(repo):
    readers = repo / "projects/core/src/core/utils/io/readers.py"
    readers.write_text(readers.read_text() + "\n# tuned\n")
    commit_all(repo, "edit utils.io")
    # Nothing was synced, so churn's "in sync" fails first and the rest are listed as not run:
    # the report still names every project it acts on, and no other.
    result = run_micropkg(["prerelease", "--since", "HEAD~1", "--json"], repo)
    assert result.exit_code == 1
    checks = json.loads(result.stdout)["checks"]
    assert sorted({check["project"] for check in checks}) == [
        "projects/churn", "projects/core", "projects/forecast", "projects/reporting"
    ]


def test_compile_reqs_since_compiles_only_the_affected_projects(repo, offline_pip):
    (repo / "projects/billing/requirements.in").write_text("small-c\n")
    result = run_micropkg(["compile-reqs", "--since", "HEAD", "--json"], repo)
    assert result.exit_code == 0, result.stderr
    assert [outcome["project"] for outcome in json.loads(result.stdout)] == ["projects/billing"]


def test_bad_refs_and_places_are_one_sentence_and_change_nothing(repo, tmp_path):
    before = snapshot_tree(repo)
    for argv, words in (
        (["affected"], "affected needs --since REF"),
        (["affected", "--since", "no-such-branch"], "--since no-such-branch: no such commit in"),
        (["prerelease", "--since", "HEAD~1", "--project", "projects/core"], "prerelease --since acts on the monorepo"),
        (["affected", "--since", "HEAD", "--root", str(tmp_path / "nowhere")], "no monorepo found"),
    ):
        result = run_micropkg(argv, repo)
        assert result.exit_code == 2, (argv, result.stderr)
        assert words in result.stderr
        assert "Traceback" not in result.stderr
    assert snapshot_tree(repo) == before


def test_outside_a_git_repository_since_is_a_usage_error(monorepo):
    result = run_micropkg(["affected", "--since", "HEAD"], monorepo)
    assert result.exit_code == 2
    assert "--since needs a git repository" in result.stderr
