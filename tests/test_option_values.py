"""Numbers users give, and the invoke config files they come from, through the real ``micropkg`` CLI.

Counts (``--jobs``, ``jobs``, ``max_members``) take ASCII digits only; sizes and timeouts
(``max_unpacked_mb``, ``lock_timeout``, the compile timeout, the fs-args' HTTP timeout) take
finite numbers that are not negative. Anything else is exit 2 with one sentence naming the
option or key, and the project is left as it was. A config file Invoke cannot read is named
in one sentence too, never a traceback.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from micropkg_tasks.core.sdist.write import DEFAULT_EPOCH
from tests.conftest import kedro_project
from tests.helpers import snapshot_tree
from tests.hostile_archives import valid_sdist

JOBS = "error: --jobs takes a whole number, such as --jobs=4, not {!r}\n"


def _refused(result, expected: str) -> None:
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return kedro_project(tmp_path / "p")


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "data_cleaning-0.1.tar.gz"
    path.write_bytes(valid_sdist())
    return path


def _with_settings(project: Path, table: str) -> Path:
    with open(project / "pyproject.toml", "a", encoding="utf-8") as handle:
        handle.write(f"\n[tool.micropkg]\n{table}\n")
    return project


# -- --jobs on the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["²", "٤", "4.0", "1e3", "-1", " ", "４"])
@pytest.mark.parametrize(("argv", "where"), [
    (["package", "--all", "--jobs"], "projects/core"),
    (["package", "--all", "--monorepo", "--jobs"], "."),
    (["sync-shared", "--jobs"], "."),
    (["pull-all", "--jobs"], "."),
    (["compile-reqs", "--jobs"], "."),
])
def test_jobs_takes_ascii_digits_only(cli, monorepo, argv, where, value):
    before = snapshot_tree(monorepo)
    _refused(cli([*argv, value], monorepo / where), JOBS.format(value))
    assert snapshot_tree(monorepo) == before


def test_jobs_in_ascii_digits_is_taken(cli, monorepo):
    result = cli(["sync-shared", "--no-compile", "--dry-run", "--jobs", "1"], monorepo)
    assert result.exit_code == 0, result.stderr


# -- [tool.micropkg] ----------------------------------------------------------------------------------

COUNT = "must be a whole number, such as 4, not {}"
MEMBERS = "must be a whole number of at least 1, such as 4, not {}"
SIZE = "must be a positive number of megabytes, such as 30, not {}"
SECONDS = "must be a finite, non-negative number of seconds, such as 30, not {}"


@pytest.mark.parametrize(("toml", "key", "sentence"), [
    ("max_unpacked_mb = nan", "max_unpacked_mb", SIZE.format("nan")),
    ("max_unpacked_mb = inf", "max_unpacked_mb", SIZE.format("inf")),
    ("max_unpacked_mb = 0", "max_unpacked_mb", SIZE.format("0")),
    ("max_unpacked_mb = -1.5", "max_unpacked_mb", SIZE.format("-1.5")),
    ("max_unpacked_mb = true", "max_unpacked_mb", SIZE.format("True")),
    ('max_unpacked_mb = "²"', "max_unpacked_mb", SIZE.format("'²'")),
    ("max_members = inf", "max_members", MEMBERS.format("inf")),
    ("max_members = 2.5", "max_members", MEMBERS.format("2.5")),
    ("max_members = 0", "max_members", MEMBERS.format("0")),
    ('max_members = "1e3"', "max_members", MEMBERS.format("'1e3'")),
    ("lock_timeout = nan", "lock_timeout", SECONDS.format("nan")),
    ("lock_timeout = -inf", "lock_timeout", SECONDS.format("-inf")),
    ("lock_timeout = -1", "lock_timeout", SECONDS.format("-1")),
    ('lock_timeout = "soon"', "lock_timeout", SECONDS.format("'soon'")),
])
def test_pull_refuses_a_bad_number_in_tool_micropkg(cli, project, archive, toml, key, sentence):
    _with_settings(project, toml)
    before = snapshot_tree(project)
    result = cli(["pull", str(archive), "--no-compile"], project)
    _refused(result, f"error: {project / 'pyproject.toml'} [tool.micropkg] key {key!r} {sentence}\n")
    assert snapshot_tree(project) == before


@pytest.mark.parametrize(("toml", "shown"), [("jobs = inf", "inf"), ("jobs = nan", "nan"), ("jobs = -2", "-2"),
                                             ('jobs = "²"', "'²'"), ("jobs = 1.5", "1.5")])
def test_package_refuses_a_bad_jobs_setting(cli, monorepo, toml, shown):
    core = _with_settings(monorepo / "projects/core", toml)
    before = snapshot_tree(monorepo)
    result = cli(["package", "--all"], core)
    _refused(result, f"error: {core / 'pyproject.toml'} [tool.micropkg] key 'jobs' {COUNT.format(shown)}\n")
    assert snapshot_tree(monorepo) == before


def test_recover_refuses_a_nan_lock_timeout(cli, project):
    _with_settings(project, "lock_timeout = nan")
    before = snapshot_tree(project)
    result = cli(["recover"], project)
    _refused(result, f"error: {project / 'pyproject.toml'} [tool.micropkg] key 'lock_timeout' "
                     f"{SECONDS.format('nan')}\n")
    assert snapshot_tree(project) == before


def test_good_numbers_are_taken(cli, project, archive):
    _with_settings(project, "max_unpacked_mb = 0.5\nmax_members = 50\nlock_timeout = 0\njobs = 2")
    result = cli(["pull", str(archive), "--no-compile"], project)
    assert result.exit_code == 0, result.stderr
    assert (project / "micropkg.lock").is_file()


def test_compile_refuses_a_nan_timeout_for_that_project(cli, project):
    """A project's compile settings fail that project's compile (a batch goes on with the others), so
    this is the batch's exit 1, with the one sentence naming the file and key."""
    with open(project / "pyproject.toml", "a", encoding="utf-8") as handle:
        handle.write("\n[tool.micropkg.compile]\ntimeout = nan\n")
    (project / "requirements.in").write_text("pyyaml\n")
    before = snapshot_tree(project)
    result = cli(["compile-reqs"], project)
    assert result.exit_code == 1
    assert f".: compile failed: {project / 'pyproject.toml'} [tool.micropkg.compile] key 'timeout' must be a " \
           "positive number of seconds, such as 30, not nan\n" in result.stderr
    assert snapshot_tree(project) == before


@pytest.mark.parametrize("argv", [["compile-reqs"], ["pull", "x-0.1.tar.gz"]])
def test_invoke_compile_timeout_is_a_usage_error_before_any_work(cli, project, argv):
    (project / "invoke.yaml").write_text("micropkg:\n  compile:\n    timeout: .inf\n")
    (project / "requirements.in").write_text("pyyaml\n")
    before = snapshot_tree(project)
    _refused(cli(argv, project), "error: invoke config micropkg.compile key 'timeout' must be a positive number "
                                 "of seconds, such as 30, not inf\n")
    assert snapshot_tree(project) == before


# -- the invoke config: invoke.yaml and INVOKE_MICROPKG_* ---------------------------------------------


@pytest.mark.parametrize(("yaml", "key", "sentence"), [
    ("lock_timeout: .nan", "lock_timeout", SECONDS.format("nan")),
    ("lock_timeout: .inf", "lock_timeout", SECONDS.format("inf")),
    ("jobs: .inf", "jobs", COUNT.format("inf")),
])
def test_invoke_yaml_numbers_are_checked_too(cli, monorepo, yaml, key, sentence):
    (monorepo / "invoke.yaml").write_text(f"micropkg:\n  {yaml}\n")
    before = snapshot_tree(monorepo)
    argv = ["pull-all", "--no-compile"] if key != "jobs" else ["compile-reqs"]
    _refused(cli(argv, monorepo), f"error: invoke config key 'micropkg.{key}' {sentence}\n")
    assert snapshot_tree(monorepo) == before


def test_pull_reads_max_unpacked_mb_from_invoke_yaml(cli, project, archive):
    (project / "invoke.yaml").write_text("micropkg:\n  max_unpacked_mb: .nan\n")
    _refused(cli(["pull", str(archive), "--no-compile"], project),
             f"error: invoke config key 'micropkg.max_unpacked_mb' {SIZE.format('nan')}\n")


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("INVOKE_MICROPKG_LOCK_TIMEOUT", "inf", f"invoke config key 'micropkg.lock_timeout' {SECONDS.format('inf')}"),
    ("INVOKE_MICROPKG_LOCK_TIMEOUT", "a while", "environment variable INVOKE_MICROPKG_LOCK_TIMEOUT must be a number"),
    ("INVOKE_MICROPKG_MAX_MEMBERS", "²", "environment variable INVOKE_MICROPKG_MAX_MEMBERS must be a number"),
])
def test_environment_numbers_are_checked(cli, monorepo, monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    before = snapshot_tree(monorepo)
    _refused(cli(["pull-all", "--no-compile"], monorepo), f"error: {expected}\n")
    assert snapshot_tree(monorepo) == before


# -- fs-args timeouts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("yaml", "key", "shown"), [
    ("client_kwargs:\n  timeout: .nan\n", "client_kwargs.timeout", "nan"),
    ("client_kwargs:\n  timeout: -3\n", "client_kwargs.timeout", "-3"),
    ("client_kwargs:\n  timeout: {total: .inf}\n", "client_kwargs.timeout.total", "inf"),
])
def test_fs_args_http_timeouts_are_checked(cli, project, tmp_path, yaml, key, shown):
    args = tmp_path / "args.yml"
    args.write_text(yaml)
    before = snapshot_tree(project)
    result = cli(["pull", "http://127.0.0.1:9/x-0.1.tar.gz", "--fs-args", str(args), "--no-compile"], project)
    _refused(result, f"error: fs-args key {key} must be a positive number of seconds, such as 30, not {shown}\n")
    assert snapshot_tree(project) == before


# -- SOURCE_DATE_EPOCH --------------------------------------------------------------------------------


def test_a_non_ascii_source_date_epoch_falls_back_to_the_default(cli, monorepo, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "١٧٠٠٠٠٠٠٠٠")  # Arabic-Indic digits: isdigit() says yes
    core = monorepo / "projects/core"
    result = cli(["package", "pipelines.data_cleaning", "--destination", str(monorepo / "out")], core)
    assert result.exit_code == 0, result.stderr
    (built,) = (monorepo / "out").glob("*.tar.gz")
    with tarfile.open(built) as archive:
        assert {member.mtime for member in archive.getmembers()} == {DEFAULT_EPOCH}


# -- invoke config files Invoke cannot read -----------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def _unreadable(path: Path) -> None:
    path.write_text("micropkg:\n  jobs: 2\n")
    path.chmod(0)


@pytest.mark.parametrize(("make", "reason"), [
    (lambda path: path.mkdir(), "is a folder, not a file"),
    (lambda path: path.write_text("micropkg: {jobs: 2\n"), "is not valid YAML (line 2)"),
    (lambda path: path.write_text("- jobs\n"), "must hold a mapping of settings at the top level"),
    (lambda path: path.write_text("micropkg: 4\n"), "key 'micropkg' must be a mapping of settings"),
    pytest.param(_unreadable, "cannot be read: permission denied", marks=pytest.mark.skipif(
        hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads a file of mode 000")),
])
@pytest.mark.parametrize("argv", [["status"], ["pull", "x-0.1.tar.gz", "--no-compile"], ["--list"]])
def test_an_unusable_user_invoke_yaml_is_one_sentence(cli, project, home, make, reason, argv):
    config = home / ".invoke.yaml"
    make(config)
    before = snapshot_tree(project)
    result = cli(argv, project)
    _refused(result, f"error: the invoke config file {config} {reason}\n")
    assert snapshot_tree(project) == before


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("invoke.json", '{"micropkg": ', "is not valid JSON"),
    ("invoke.yml", "micropkg:\n\t- x\n", "is not valid YAML (line 2)"),
    ("invoke.py", "raise RuntimeError('no')\n", "stops with an error when run"),
])
def test_an_unusable_project_invoke_file_is_one_sentence(cli, project, home, name, text, reason):
    (project / name).write_text(text)
    before = snapshot_tree(project)
    _refused(cli(["status"], project), f"error: the invoke config file {project / name} {reason}\n")
    assert snapshot_tree(project) == before


def test_a_secret_in_a_broken_config_file_is_not_shown(cli, project, home):
    (home / ".invoke.yaml").write_text("micropkg:\n  token: hunter2-secret-value: [\n")
    result = cli(["status"], project)
    assert result.exit_code == 2 and "hunter2" not in result.stdout + result.stderr
