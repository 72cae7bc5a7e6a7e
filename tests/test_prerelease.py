"""``prerelease``: the six checks on the example monorepo, each failure breaking exactly its own
check, the JSON report against docs/prerelease.schema.json, and progress output that is redrawn on
a terminal only.

Everything runs offline: the projects' requirements point at the test wheelhouse (small-b,
small-c), and pip resolves from it alone.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest

from micropkg_tasks.ops.inspect.prerelease import CHECKS, CheckResult, PrereleaseReport, prerelease
from tests.conftest import EXAMPLE_MONOREPO, REPO_ROOT, run_micropkg
from tests.wheelhouse import write_pip_conf

SCHEMA_PATH = REPO_ROOT / "docs" / "prerelease.schema.json"
PROJECTS = ("projects/churn", "projects/core", "projects/forecast")
ROW = re.compile(r"^(\S+)\s{2,}(\S.*?)\s{2,}(PASS|FAIL|NOT RUN)\s{2,}(\d+\.\d)s$")


# -- setting up a monorepo that passes ------------------------------------------------------------


def make_ready(root: Path) -> None:
    """Point the example's requirements at the wheelhouse, install the shared micro-packages into
    their targets (which compiles them) and compile every project."""
    (root / "projects/churn/requirements.txt").write_text("small-c\n", encoding="utf-8")
    (root / "projects/forecast/src/requirements.txt").write_text("small-c\n", encoding="utf-8")
    (root / "projects/core/src/core/utils/io/requirements.txt").write_text("small-b\n", encoding="utf-8")
    synced = run_micropkg(["sync-shared"], root)
    assert synced.exit_code == 0, synced.stdout + synced.stderr
    compiled = run_micropkg(["compile-reqs", "--all-projects"], root)
    assert compiled.exit_code == 0, compiled.stdout + compiled.stderr


@pytest.fixture(scope="module")
def ready_template(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """One prerelease-ready copy of the example per module; tests work on copies of it."""
    base = tmp_path_factory.mktemp("prerelease-template")
    root = base / "monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, root, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc", ".nox"))
    with pytest.MonkeyPatch.context() as patch:  # what offline_pip does, for a module-scoped fixture
        for key in list(os.environ):
            if key.startswith(("PIP_", "UV_")) or key in ("SOURCE_DATE_EPOCH", "CI"):
                patch.delenv(key)
        patch.setenv("PIP_CONFIG_FILE", str(write_pip_conf(base / "pip.conf", wheelhouse)))
        patch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        patch.setenv("PIP_TOOLS_CACHE_DIR", str(base / "pip-tools-cache"))
        patch.setenv("MICROPKG_CACHE_DIR", str(base / "micropkg-cache"))
        make_ready(root)
    return root


@pytest.fixture
def ready(ready_template: Path, tmp_path: Path, offline_pip: Path) -> Path:
    target = tmp_path / "monorepo"
    shutil.copytree(ready_template, target)
    return target


def table_rows(stdout: str) -> dict[tuple[str, str], str]:
    """The summary table as {(project, check): RESULT}; fails on a malformed or repeated row."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["PROJECT", "CHECK", "RESULT", "TIME"])
    rows: dict[tuple[str, str], str] = {}
    for line in lines[header + 1:]:
        match = ROW.match(line)
        if match is None:
            break
        key = (match.group(1), match.group(2))
        assert key not in rows, f"row repeated: {line!r}"
        rows[key] = match.group(3)
    return rows


def _progress_lines(stderr: str) -> list[str]:
    """Plain progress lines, ``[N] message``, numbered from 1 without gaps; the messages."""
    found = [re.match(r"^\[(\d+)\] (.+)$", line) for line in stderr.splitlines()]
    found = [match for match in found if match]
    assert [int(match.group(1)) for match in found] == list(range(1, len(found) + 1)), stderr
    return [match.group(2) for match in found]


def failing(report: PrereleaseReport) -> set[tuple[str, str]]:
    return {(check.project, check.check) for check in report.failures}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def resync(root: Path) -> None:
    """After editing a shared micro-package in core, bring its targets up to date again."""
    synced = run_micropkg(["sync-shared"], root)
    assert synced.exit_code == 0, synced.stdout + synced.stderr


# -- acceptance 1: the example passes and prints the table ----------------------------------------


def test_prerelease_passes_on_the_example_and_prints_the_table(monorepo: Path, offline_pip: Path) -> None:
    make_ready(monorepo)

    result = run_micropkg(["prerelease"], monorepo)

    assert result.exit_code == 0, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert rows == {(project, check): "PASS" for project in PROJECTS for check in CHECKS}
    assert list(rows) == [(project, check) for project in PROJECTS for check in CHECKS]  # in run order
    assert result.stdout.rstrip().endswith("21 of 21 checks passed")
    assert "FAIL" not in result.stderr


def test_verbose_gives_each_reason_and_quiet_prints_nothing(ready: Path) -> None:
    verbose = run_micropkg(["prerelease", "--project", "projects/churn", "--verbose"], ready)
    assert verbose.exit_code == 0, verbose.stdout + verbose.stderr
    assert "projects/churn: in sync: 2 shared copy(ies) in sync" in verbose.stdout
    assert "projects/churn: lock clean: 2 installed micro-package(s) unedited" in verbose.stdout
    assert _progress_lines(verbose.stderr) == [f"projects/churn: {check}" for check in CHECKS]

    quiet = run_micropkg(["prerelease", "--project", "projects/churn", "--quiet"], ready)
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_every_task_takes_quiet_and_verbose(tmp_path: Path) -> None:
    from micropkg_tasks.cli.collection import make_collection

    names = sorted(make_collection().task_names)
    assert "prerelease" in names
    for name in names:
        # `micropkg --help <task>`: `micropkg package --help` hands "--help" to the missing positional.
        shown = run_micropkg(["--help", name], tmp_path)
        assert shown.exit_code == 0, shown.stderr
        assert "--quiet" in shown.stdout and "--verbose" in shown.stdout, name


# -- acceptance 2: each fault breaks exactly its own check ----------------------------------------


def run_keep_going(root: Path) -> tuple[dict[tuple[str, str], str], str, str]:
    result = run_micropkg(["prerelease", "--keep-going"], root)
    assert result.exit_code == 1, result.stdout + result.stderr
    rows = table_rows(result.stdout)
    assert set(rows) == {(project, check) for project in PROJECTS for check in CHECKS}
    failed = {key for key, value in rows.items() if value == "FAIL"}
    assert set(rows.values()) <= {"PASS", "FAIL"}  # --keep-going: nothing is left "not run"
    assert result.stdout.rstrip().endswith(f"{21 - len(failed)} of 21 checks passed; prerelease failed")
    return rows, result.stderr, result.stdout


def test_a_failing_packaged_test_breaks_round_trip(ready: Path) -> None:
    tests = ready / "projects/core/tests/pipelines/data_cleaning/test_nodes.py"
    tests.write_text(tests.read_text() + "\n\ndef test_made_to_fail():\n    assert 1 == 2\n")
    resync(ready)  # the tests are part of the shared micro-package

    rows, stderr, _ = run_keep_going(ready)

    assert {key for key, value in rows.items() if value == "FAIL"} == {("projects/core", "round-trip")}
    assert "FAIL projects/core: round-trip: pulled sdists do not import or their tests fail" in stderr
    assert "pipelines.data_cleaning: packaged tests failed" in stderr
    assert "test_made_to_fail" in stderr
    assert "utils.io" not in stderr  # the other sdist's tests still pass


def test_a_source_edit_not_synced_breaks_in_sync(ready: Path) -> None:
    nodes = ready / "projects/core/src/core/pipelines/data_cleaning/nodes.py"
    nodes.write_text(nodes.read_text() + "\n\ndef newer():\n    return 2\n")
    version = ready / "projects/core/src/core/pipelines/data_cleaning/__init__.py"  # bumped, as the version check asks
    version.write_text(version.read_text().replace('"0.3.0"', '"0.3.1"'))

    rows, stderr, _ = run_keep_going(ready)

    assert {key for key, value in rows.items() if value == "FAIL"} == {
        ("projects/churn", "in sync"),
        ("projects/forecast", "in sync"),
    }
    assert "FAIL projects/churn: in sync: 1 shared copy(ies) out of sync: run sync-shared" in stderr
    assert "pipelines.data_cleaning (from projects/core#pipelines.data_cleaning): upstream moved" in stderr
    assert "pipelines.cleaning (from projects/core#pipelines.data_cleaning): upstream moved" in stderr


def test_an_uncompiled_requirements_in_breaks_requirements_current(ready: Path) -> None:
    requirements_in = ready / "projects/churn/requirements.in"
    requirements_in.write_text(requirements_in.read_text() + "small-a\n")

    rows, stderr, _ = run_keep_going(ready)

    assert {key for key, value in rows.items() if value == "FAIL"} == {("projects/churn", "requirements current")}
    assert (
        "FAIL projects/churn: requirements current: requirements.txt is not compiled from the current "
        "requirements.in: run compile-reqs"
    ) in stderr


def test_an_edited_installed_copy_breaks_lock_clean_unless_allowed(ready: Path) -> None:
    readers = ready / "projects/forecast/src/forecast/utils/io/readers.py"
    readers.write_text(readers.read_text() + "# a local fix\n")

    report = prerelease(ready, keep_going=True)

    # The shared copy is edited, so sync-shared --check flags it too.
    assert failing(report) == {("projects/forecast", "in sync"), ("projects/forecast", "lock clean")}
    lock = next(c for c in report.failures if c.check == "lock clean")
    assert "edited locally" in lock.reason and "allow-edited" in lock.reason
    assert "utils.io: src/forecast/utils/io/readers.py" in lock.details

    pyproject = ready / "projects/forecast/pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.micropkg.prerelease]\nallow-edited = ["utils.io"]\n')
    again = prerelease(ready, projects=[ready / "projects/forecast"], keep_going=True)
    assert failing(again) == {("projects/forecast", "in sync")}


def test_a_clock_in_the_build_breaks_reproducible(ready: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import micropkg_tasks.core.sdist.write as sdist_write

    clock = itertools.count(1_700_000_000)
    monkeypatch.setattr(sdist_write, "source_date_epoch", lambda: next(clock))

    report = prerelease(ready, keep_going=True)

    assert not report.ok
    assert failing(report) == {("projects/core", "reproducible")}
    check = report.failures[0]
    assert check.reason == "2 sdist(s) are not reproducible"
    assert [line.split(":")[0] for line in check.details] == ["pipelines.data_cleaning", "utils.io"]
    assert all("two builds differ" in line for line in check.details)


def test_an_import_of_a_missing_third_party_module_breaks_round_trip(ready: Path) -> None:
    readers = ready / "projects/core/src/core/utils/io/readers.py"
    edit(readers, "import yaml\n", "import yaml\nimport small_c_not_installed  # not in the sdist, nor installed\n")
    resync(ready)

    rows, stderr, _ = run_keep_going(ready)

    assert {key for key, value in rows.items() if value == "FAIL"} == {("projects/core", "round-trip")}
    assert (
        f"utils.io does not import: module 'small_c_not_installed' is not installed in {sys.executable}" in stderr
    )


def test_an_import_of_a_project_module_the_sdist_does_not_contain_breaks_round_trip(ready: Path) -> None:
    core = ready / "projects/core/src/core"
    (core / "utils/extra.py").write_text("def helper():\n    return 1\n")
    edit(
        core / "pipelines/data_cleaning/nodes.py",
        "from typing import Any\n",
        "from typing import Any\n\nfrom core.utils.extra import helper  # not in the sdist\n",
    )
    version = core / "pipelines/data_cleaning/__init__.py"  # bumped, so only the broken import fails
    version.write_text(version.read_text().replace('"0.3.0"', '"0.3.1"'))
    # sync-shared refuses to install a copy that cannot import, so the targets stay behind.
    refused = run_micropkg(["sync-shared"], ready)
    assert refused.exit_code == 1 and "imports core.utils.extra" in refused.stderr

    report = prerelease(ready, keep_going=True)

    assert failing(report) == {("projects/core", "round-trip"), ("projects/churn", "in sync"),
                               ("projects/forecast", "in sync")}
    [round_trip] = [c for c in report.failures if c.check == "round-trip"]
    assert "core.utils.extra" in " ".join((round_trip.reason, *round_trip.details))


def test_without_keep_going_the_first_failure_stops_the_run(ready: Path) -> None:
    requirements_in = ready / "projects/churn/requirements.in"
    requirements_in.write_text(requirements_in.read_text() + "small-a\n")

    result = run_micropkg(["prerelease"], ready)

    assert result.exit_code == 1
    rows = table_rows(result.stdout)
    expected = {(project, check): "NOT RUN" for project in PROJECTS for check in CHECKS}
    expected.update({("projects/churn", check): "PASS" for check in CHECKS[:4]})
    expected[("projects/churn", "requirements current")] = "FAIL"
    assert rows == expected
    assert "4 of 21 checks passed; prerelease failed" in result.stdout
    assert "projects/core: reproducible" not in result.stderr  # never started: no progress line


def test_one_project_only(ready: Path) -> None:
    requirements_in = ready / "projects/churn/requirements.in"
    requirements_in.write_text(requirements_in.read_text() + "small-a\n")

    result = run_micropkg(["prerelease", "--project", "projects/forecast"], ready)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(table_rows(result.stdout)) == {("projects/forecast", check) for check in CHECKS}


# -- acceptance 3: --json against docs/prerelease.schema.json -------------------------------------


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_schema_matches_the_report_classes(validator) -> None:
    schema = validator.schema
    assert set(schema["properties"]) == {f.name for f in fields(PrereleaseReport)} | {"ok"}
    check = schema["$defs"]["check"]
    assert set(check["properties"]) == {f.name for f in fields(CheckResult)}
    assert set(check["required"]) == set(check["properties"])
    assert check["properties"]["check"]["enum"] == list(CHECKS)


def test_json_reports_validate_passing_and_failing(ready: Path, validator) -> None:
    passing = run_micropkg(["prerelease", "--json"], ready)
    assert passing.exit_code == 0, passing.stderr
    assert passing.stderr == ""  # no progress lines around the data
    document = json.loads(passing.stdout)
    validator.validate(document)
    assert document["ok"] is True and document["root"] == str(ready.resolve())
    assert [(c["project"], c["check"], c["status"]) for c in document["checks"]] == [
        (project, check, "pass") for project in PROJECTS for check in CHECKS
    ]

    requirements_in = ready / "projects/churn/requirements.in"
    requirements_in.write_text(requirements_in.read_text() + "small-a\n")
    failed = run_micropkg(["prerelease", "--json"], ready)
    assert failed.exit_code == 1
    document = json.loads(failed.stdout)
    validator.validate(document)
    assert document["ok"] is False
    statuses = {(c["project"], c["check"]): c["status"] for c in document["checks"]}
    assert statuses[("projects/churn", "requirements current")] == "fail"
    assert statuses[("projects/forecast", "lock clean")] == "not run"


def _valid_document() -> dict:
    return {
        "root": "/repo",
        "ok": False,
        "checks": [
            {"project": "projects/core", "check": "reproducible", "status": "pass", "seconds": 0.1,
             "reason": "2 sdist(s) identical across two builds", "details": []},
            {"project": "projects/core", "check": "round-trip", "status": "fail", "seconds": 1.5,
             "reason": "pulled sdists do not import or their tests fail",
             "details": ["utils.io: packaged tests failed"]},
            {"project": "projects/core", "check": "lock clean", "status": "not run", "seconds": 0.0,
             "reason": "an earlier check failed", "details": []},
        ],
    }


def _break(document: dict, how: str) -> dict:
    broken = copy.deepcopy(document)
    first = broken["checks"][0]
    if how == "no ok":
        del broken["ok"]
    elif how == "ok as string":
        broken["ok"] = "true"
    elif how == "unknown status":
        first["status"] = "passed"
    elif how == "unknown check":
        first["check"] = "linted"
    elif how == "negative seconds":
        first["seconds"] = -1
    elif how == "seconds as string":
        first["seconds"] = "0.1s"
    elif how == "details as string":
        first["details"] = "oops"
    elif how == "missing reason":
        del first["reason"]
    elif how == "extra field":
        first["colour"] = "green"
    elif how == "checks as object":
        broken["checks"] = {"projects/core": first}
    return broken


def test_the_schema_accepts_a_valid_document(validator) -> None:
    validator.validate(_valid_document())


@pytest.mark.parametrize(
    "how",
    ["no ok", "ok as string", "unknown status", "unknown check", "negative seconds", "seconds as string",
     "details as string", "missing reason", "extra field", "checks as object"],
)
def test_the_schema_rejects_an_invalid_document(validator, how: str) -> None:
    assert not validator.is_valid(_break(_valid_document(), how))


# -- acceptance 5: progress on a terminal only ----------------------------------------------------


def _micropkg(venv_bin: Path) -> str:
    executable = venv_bin / "micropkg"
    if not executable.exists():
        pytest.skip(f"{executable} is not installed")
    return str(executable)


def _environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "TERM", "COLUMNS")}
    env.update(extra)
    return env


@pytest.mark.parametrize("ci", [False, True], ids=["piped", "CI=true"])
def test_piped_output_has_no_control_characters(
    monorepo: Path, offline_pip: Path, venv_bin: Path, ci: bool
) -> None:
    micropkg = _micropkg(venv_bin)
    (monorepo / "projects/churn/requirements.txt").write_text("small-c\n")
    (monorepo / "projects/forecast/src/requirements.txt").write_text("small-c\n")
    (monorepo / "projects/core/src/core/utils/io/requirements.txt").write_text("small-b\n")
    env = _environment(**({"CI": "true", "TERM": "xterm"} if ci else {}))
    steps = [
        (["package", "--all"], monorepo / "projects/core", "pipelines.data_cleaning"),
        (["sync-shared"], monorepo, "projects/churn"),
        (["pull-all"], monorepo, "projects/forecast"),
        (["prerelease"], monorepo, "projects/forecast: lock clean"),
    ]
    for argv, cwd, mentioned in steps:
        done = subprocess.run(
            [micropkg, *argv], cwd=cwd, env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=300,
        )
        stdout, stderr = done.stdout.decode(), done.stderr.decode()
        assert done.returncode == 0, (argv, stdout, stderr)
        for stream in (stdout, stderr):
            assert "\r" not in stream and "\x1b" not in stream, (argv, stream)
        progress = _progress_lines(stderr)  # plain lines, one per step
        assert any(mentioned in line for line in progress), (argv, stderr)
    assert "21 of 21 checks passed" in stdout


def _run_on_a_terminal(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    """Run ``command`` with stdin, stdout and stderr on a pseudo-terminal; return all it wrote."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower)
    finally:
        os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        else:
            process.kill()
            pytest.fail(f"{command} did not finish in {timeout} s")
        assert process.wait(timeout=30) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_the_progress_line_is_redrawn(monorepo: Path, venv_bin: Path) -> None:
    micropkg = _micropkg(venv_bin)
    core = monorepo / "projects/core"

    live = _run_on_a_terminal([micropkg, "package", "--all"], core, _environment(TERM="xterm"))
    assert "\r\x1b[K[1] packaging pipelines.data_cleaning" in live
    assert "\r\x1b[K[2] packaging utils.io" in live
    assert "packaged utils.io -> dist/io_utils-0.2.0.tar.gz" in live

    # Under CI=true a terminal gets plain lines too (the terminal itself turns \n into \r\n).
    plain = _run_on_a_terminal([micropkg, "package", "--all"], core, _environment(TERM="xterm", CI="true"))
    assert "\x1b" not in plain and "\r" not in plain.replace("\r\n", "\n")
    assert "[1] packaging pipelines.data_cleaning\r\n" in plain

    # --quiet: no progress at all, and --json keeps the terminal free of it as well.
    quiet = _run_on_a_terminal([micropkg, "package", "--all", "--quiet"], core, _environment(TERM="xterm"))
    assert "\x1b" not in quiet and "packaging" not in quiet
    as_json = _run_on_a_terminal([micropkg, "package", "--all", "--json"], core, _environment(TERM="xterm"))
    assert "\x1b" not in as_json and "[1]" not in as_json
