"""``--format github`` (automatic under ``GITHUB_ACTIONS=true``): workflow-command annotations at
the file at fault, escaped as GitHub requires, a step summary; and ``prerelease --junit-xml``.

Annotations are read back with GitHub's own rules for workflow commands (implemented
here: split at ``::``, properties at ``,`` and ``=``, then percent-decoding with ``%25``
last), and the JUnit XML with junitparser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from micropkg_tasks.cli.github import Finding, workflow_command
from tests.conftest import run_micropkg
from tests.helpers import git, snapshot_tree

ODD_NAME = "notes 100%, v1.txt"  # a file name with % and a comma, which annotations must escape


# -- GitHub's side: how the runner reads a workflow command -------------------------------------


def unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return (text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",")
            .replace("%25", "%"))


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    assert line.startswith("::"), line
    end = line.index("::", 2)
    head, message = line[2:end], line[end + 2:]
    name, _, raw = head.partition(" ")
    properties = {}
    for pair in raw.split(","):
        key, _, value = pair.partition("=")
        properties[key] = unescape_property(value)
    return name, properties, unescape_data(message)


def annotations(text: str) -> list[tuple[str, dict[str, str], str]]:
    return [parse_command(line) for line in text.splitlines() if line.startswith(("::error ", "::warning "))]


# -- fixtures -----------------------------------------------------------------------------------




@pytest.fixture
def synced(monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example monorepo, synced, in a folder of a git repository (so paths start with ``monorepo/``).

    core packages nothing here (prerelease stays quick), and churn compiles nothing.
    """
    core = monorepo / "projects/core/pyproject.toml"
    text = core.read_text()
    core.write_text(text[: text.index("# What this project shares")])
    churn = monorepo / "projects/churn/pyproject.toml"
    churn.write_text(churn.read_text() + "\n[tool.micropkg]\ncompile = false\n")
    (monorepo / "projects/core/src/core/utils/io" / ODD_NAME).write_text("notes\n")
    done = run_micropkg(["sync-shared", "--no-compile"], monorepo)
    assert done.exit_code == 0, done.stderr
    git(monorepo.parent, "init", "-q")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return monorepo


# -- acceptance: a stale and an edited copy, each at its file -------------------------------------


def test_stale_and_edited_copies_are_errors_at_the_file_at_fault(synced, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    readers = synced / "projects/core/src/core/utils/io/readers.py"
    readers.write_text(readers.read_text() + "\n# upstream moves\n")
    edited = synced / "projects/churn/src/churn/pipelines/data_cleaning/nodes.py"
    edited.write_text(edited.read_text() + "\n# a local edit\n")
    odd = synced / "projects/forecast/src/forecast/utils/io" / ODD_NAME
    odd.write_text("edited too\n")
    before = snapshot_tree(synced)

    result = run_micropkg(["sync-shared", "--check"], synced)
    assert result.exit_code == 3
    found = annotations(result.stdout)
    by_file = {props["file"]: (name, props, message) for name, props, message in found}
    repository = synced.parent
    for path in by_file:
        assert (repository / path).is_file(), path  # relative to the repository's root, not the monorepo's
    # The locally edited copy: the edited file itself.
    name, props, message = by_file["monorepo/projects/churn/src/churn/pipelines/data_cleaning/nodes.py"]
    assert (name, props["line"], props["title"]) == ("error", "1", "micropkg: locally edited")
    assert "projects/churn: pipelines.data_cleaning (from projects/core#pipelines.data_cleaning)" in message
    # A file name with % and a comma comes back exactly as it is on disk.
    assert by_file[f"monorepo/projects/forecast/src/forecast/utils/io/{ODD_NAME}"][0] == "error"
    # The stale copies: the source file whose change moved them.
    name, props, message = by_file["monorepo/projects/core/src/core/utils/io/readers.py"]
    assert (name, props["line"], props["title"]) == ("error", "1", "micropkg: upstream moved")
    stale = [m for n, p, m in found if p["title"] == "micropkg: upstream moved"]
    assert any(m.startswith("projects/churn: utils.io (from projects/core#utils.io): upstream moved") for m in stale)
    # The summary is a Markdown table with one row per copy.
    table = summary.read_text()
    assert "| Project | Copy | Source | State |" in table
    assert "| projects/churn | utils.io | projects/core#utils.io | upstream moved |" in table
    assert "| projects/churn | pipelines.data_cleaning | projects/core#pipelines.data_cleaning | locally edited |" in table
    assert snapshot_tree(synced) == before  # the summary lives outside; nothing in the monorepo is written


def test_in_sync_gives_no_annotation_and_format_text_turns_them_off(synced):
    clean = run_micropkg(["sync-shared", "--check"], synced)
    assert clean.exit_code == 0
    assert annotations(clean.stdout) == []
    edited = synced / "projects/churn/src/churn/pipelines/data_cleaning/nodes.py"
    edited.write_text(edited.read_text() + "\n# a local edit\n")
    assert annotations(run_micropkg(["sync-shared", "--check", "--format", "text"], synced).stdout) == []
    # With --json, stdout stays JSON and the annotations go to stderr, which the runner reads too.
    as_json = run_micropkg(["sync-shared", "--check", "--json"], synced)
    assert as_json.stdout.lstrip().startswith("{")
    assert len(annotations(as_json.stderr)) == 1


def test_status_findings_are_warnings_and_a_bad_format_is_a_usage_error(synced, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS")
    edited = synced / "projects/churn/src/churn/pipelines/data_cleaning/nodes.py"
    edited.write_text(edited.read_text() + "\n# a local edit\n")
    result = run_micropkg(["status", "--format", "github"], synced)
    assert result.exit_code == 0
    [(name, props, message)] = annotations(result.stdout)
    assert (name, props["file"]) == ("warning", "monorepo/projects/churn/src/churn/pipelines/data_cleaning/nodes.py")
    assert annotations(run_micropkg(["status"], synced).stdout) == []  # not under GitHub Actions: plain text
    bad = run_micropkg(["status", "--format", "xml"], synced)
    assert bad.exit_code == 2
    assert "--format takes text or github" in bad.stderr


def test_outside_a_git_repository_paths_are_relative_to_the_monorepo(monorepo, monkeypatch):
    assert run_micropkg(["sync-shared", "--no-compile"], monorepo).exit_code == 0
    edited = monorepo / "projects/churn/src/churn/pipelines/data_cleaning/nodes.py"
    edited.write_text(edited.read_text() + "\n# a local edit\n")
    result = run_micropkg(["sync-shared", "--check", "--format", "github"], monorepo)
    [(_, props, _)] = annotations(result.stdout)
    assert props["file"] == "projects/churn/src/churn/pipelines/data_cleaning/nodes.py"


# -- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "50% done", "line one\nline two", "a, b: c", "carriage\r\nreturn", "%25 is not %, and %0A is not a newline",
    "::error::nested", "ends with %",
])
def test_messages_titles_and_paths_round_trip_through_githubs_unescaping(tmp_path, text):
    finding = Finding("error", tmp_path / f"dir/{text}.py", title=f"title: {text}", message=text, line=7)
    name, props, message = parse_command(workflow_command(finding, tmp_path))
    assert (name, message, props["title"], props["file"], props["line"]) == (
        "error", text, f"title: {text}", f"dir/{text}.py", "7",
    )
    assert "\n" not in workflow_command(finding, tmp_path) and "\r" not in workflow_command(finding, tmp_path)


# -- JUnit XML -----------------------------------------------------------------------------------


def test_prerelease_junit_xml_has_one_case_per_project_and_check_and_the_failure(synced, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report = tmp_path / "out.xml"
    result = run_micropkg(["prerelease", "--keep-going", "--junit-xml", str(report)], synced)
    assert result.exit_code == 1

    xml = JUnitXml.fromfile(str(report))
    cases = {(suite.name, case.name): case for suite in xml for case in suite}
    projects = ("projects/churn", "projects/core", "projects/forecast")
    checks = (
        "reproducible", "installable", "round-trip", "in sync", "requirements current", "lock clean", "version bumped",
    )
    assert sorted(cases) == sorted((p, c) for p in projects for c in checks)
    assert all(case.classname == project for (project, _), case in cases.items())
    failed = {key: case for key, case in cases.items() if not case.is_passed}
    assert list(failed) == [("projects/forecast", "requirements current")]
    [failure] = failed[("projects/forecast", "requirements current")].result
    assert isinstance(failure, Failure)
    assert failure.message == (
        "src/requirements.txt is not compiled from the current requirements.in: run compile-reqs"
    )
    assert (xml.tests, xml.failures, xml.errors) == (21, 1, 0)

    # The same failure is an annotation at the file at fault, its message read back whole.
    [(name, props, message)] = annotations(result.stdout)
    assert (name, props["file"]) == ("error", "monorepo/projects/forecast/src/requirements.in")
    assert message == f"projects/forecast: {failure.message}"
    assert "| projects/forecast | requirements current | FAIL |" in summary.read_text()


def test_checks_not_run_are_skipped_cases_and_details_go_in_the_failure_text(synced, tmp_path):
    edited = synced / "projects/churn/src/churn/pipelines/data_cleaning/nodes.py"
    edited.write_text(edited.read_text() + "\n# a local edit\n")
    report = tmp_path / "out.xml"
    result = run_micropkg(["prerelease", "--junit-xml", str(report)], synced)
    assert result.exit_code == 1
    cases = {(suite.name, case.name): case for suite in JUnitXml.fromfile(str(report)) for case in suite}
    [failure] = cases[("projects/churn", "in sync")].result
    assert failure.text.splitlines()[1:] == [
        "pipelines.data_cleaning (from projects/core#pipelines.data_cleaning): locally edited",
        "  edited: src/churn/pipelines/data_cleaning/nodes.py",
    ]
    skipped = [key for key, case in cases.items() if case.result and isinstance(case.result[0], Skipped)]
    assert len(skipped) == 21 - 4  # churn's three before it passed; everything after it did not run
    # A multi-line message round-trips through the annotation too.
    [(_, _, message)] = annotations(result.stdout)
    assert message.splitlines()[1:] == failure.text.splitlines()[1:]


def test_a_junit_path_in_a_missing_folder_is_refused_before_any_work(synced, tmp_path):
    before = snapshot_tree(synced)
    result = run_micropkg(["prerelease", "--junit-xml", str(tmp_path / "no/such/folder/out.xml")], synced)
    assert result.exit_code == 2
    assert "--junit-xml" in result.stderr and "does not exist" in result.stderr
    assert "[1]" not in result.stderr  # no check started
    assert snapshot_tree(synced) == before
