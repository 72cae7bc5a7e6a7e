"""``compile_requirements``: real pip-compile, offline, against tiny wheels built on the fly."""

from __future__ import annotations

import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import invoke
import pytest

from micropkg_tasks import pull
from micropkg_tasks.core.errors import MicropkgError, ProjectError
from micropkg_tasks.core.project.project import load_project
from micropkg_tasks.core.requirements.compile_settings import (
    CompileSettings,
    PinChange,
    compile_settings,
    diff_pins,
    inputs_digest,
    parse_pins,
    read_marker,
)
from micropkg_tasks.ops.compile import process as compile_process
from micropkg_tasks.ops.compile.compile import compile_requirements, requirements_current
from micropkg_tasks.ops.compile.failure import _pip_tools_failure
from tests import hostile_archives
from tests.conftest import kedro_project
from tests.wheelhouse import offline_pip, wheelhouse  # noqa: F401  (fixtures)

HEADER_COMMAND = "#    pip-compile --output-file=requirements.txt requirements.in"


def project_with(tmp_path: Path, requirements_in: str | None, *, legacy: bool = False, pyproject_extra: str = "") -> Path:
    folder = "src/" if legacy else ""
    extra: dict[str, str | bytes] = {f"{folder}requirements.txt": ""}
    if requirements_in is not None:
        extra[f"{folder}requirements.in"] = requirements_in
    root = kedro_project(tmp_path / "project", legacy=legacy, extra=extra, pyproject_extra=pyproject_extra)
    (root / folder / "requirements.txt").unlink()
    return root


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".requirements"))


@pytest.fixture
def no_subprocess(monkeypatch):
    """Fail the test if anything is run."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"nothing should run, but {args[0]!r} was started")

    monkeypatch.setattr(compile_process.subprocess, "Popen", refuse)


# -- acceptance 1: compile, skip, conflict --------------------------------------------------------


def test_compile_pins_the_highest_allowed_versions(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a>=2\n")
    result = compile_requirements(root)
    assert result.status == "compiled"
    assert result.requirements_txt == "requirements.txt"
    text = (root / "requirements.txt").read_text()
    assert parse_pins(text) == {"small-a": "2.0", "small-b": "1.1"}
    assert result.added == (PinChange("small-a", None, "2.0"), PinChange("small-b", None, "1.1"))
    assert result.removed == result.repinned == ()
    # Stable and reviewable: a marker first, pip-tools' header with relative names, no temp names.
    assert text.splitlines()[0].startswith("# micropkg: requirements.in sha256=")
    assert HEADER_COMMAND in text.splitlines()
    assert ".tmp" not in text and ".requirements." not in text
    assert "--output-file=requirements.txt" in result.command and "requirements.in" in result.command
    assert result.seconds > 0
    assert leftovers(root) == []
    assert requirements_current(root)


def test_second_run_is_skipped_as_unchanged(offline_pip, tmp_path, monkeypatch):
    root = project_with(tmp_path, "small-a>=2\n")
    compile_requirements(root)
    before = (root / "requirements.txt").stat()
    monkeypatch.setattr(compile_process.subprocess, "Popen", lambda *a, **k: pytest.fail("pip-compile ran"))
    result = compile_requirements(root)
    assert result.status == "skipped-unchanged"
    assert result.command == () and result.added == result.removed == result.repinned == ()
    after = (root / "requirements.txt").stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)


def test_force_upgrade_and_extra_args_compile_even_when_unchanged(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a>=2\n")
    compile_requirements(root)
    assert compile_requirements(root, force=True).status == "compiled"
    assert compile_requirements(root, upgrade=True).status == "compiled"
    assert compile_requirements(root, extra_args=["--no-annotate"]).status == "compiled"
    # A one-off argument does not make the next plain run stale.
    assert compile_requirements(root).status == "skipped-unchanged"


def test_unsatisfiable_pin_gives_a_clear_error_and_keeps_the_old_file(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a>=2\n")
    compile_requirements(root)
    old = (root / "requirements.txt").read_bytes()
    (root / "requirements.in").write_text("small-a>=2\nsmall-a==1.0\n")
    with pytest.raises(MicropkgError) as caught:
        compile_requirements(root)
    message = str(caught.value)
    assert message.startswith("could not resolve requirements.in: ")
    assert "small-a>=2" in message and "small-a==1.0" in message and "conflicts with" in message
    assert "requirements.txt was left as it was" in message
    assert "\n" not in message and "Traceback" not in message
    assert not any("Traceback" in line or 'File "' in line for line in caught.value.details)
    assert any("The user requested small-a==1.0" in line for line in caught.value.details)
    assert (root / "requirements.txt").read_bytes() == old
    assert leftovers(root) == []
    assert not requirements_current(root)


def test_conflict_through_a_dependency_names_the_parent(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a>=2\nsmall-b<1.1\n")
    with pytest.raises(MicropkgError) as caught:
        compile_requirements(root)
    assert str(caught.value) == (
        "could not resolve requirements.in: small-b<1.1 (in requirements.in) conflicts with "
        "small-b>=1.1 (from small-a 2.0); requirements.txt was not written"
    )
    assert not (root / "requirements.txt").exists()
    assert leftovers(root) == []


def test_missing_distribution_says_what_is_available(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a>=3\n")
    with pytest.raises(MicropkgError, match=r"no version matches small-a>=3 \(available: 1.0, 2.0\)"):
        compile_requirements(root)


def test_bad_arguments_are_one_sentence_too(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a\n")
    with pytest.raises(MicropkgError, match=r"^pip-compile failed for requirements.in: Error: No such option '--bogus'"):
        compile_requirements(root, extra_args=["--bogus"])


def test_pulled_requirements_compile_offline(offline_pip, tmp_path):
    """The acceptance flow: pull a micro-package requiring small-a>=2, then compile."""
    root = kedro_project(tmp_path / "target", extra={"requirements.txt": "small-c\n"})
    sdist = tmp_path / "cleaning-0.1.tar.gz"
    sdist.write_bytes(hostile_archives.valid_sdist("cleaning", "0.1", ["small-a>=2"]))
    assert pull(root, str(sdist)).requirements_added == ("small-a>=2",)
    result = compile_requirements(root)
    assert parse_pins((root / "requirements.txt").read_text()) == {"small-a": "2.0", "small-b": "1.1", "small-c": "0.5"}
    assert [change.name for change in result.added] == ["small-a", "small-b", "small-c"]
    assert compile_requirements(root).status == "skipped-unchanged"


# -- what changed ---------------------------------------------------------------------------------


def test_added_removed_and_repinned_are_reported(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a<2\n")
    first = compile_requirements(root)
    assert parse_pins((root / "requirements.txt").read_text()) == {"small-a": "1.0", "small-b": "1.1"}
    assert len(first.added) == 2
    (root / "requirements.in").write_text("small-a>=2\nsmall-c\n")
    second = compile_requirements(root)
    assert second.repinned == (PinChange("small-a", "1.0", "2.0"),)
    assert second.added == (PinChange("small-c", None, "0.5"),)
    assert second.removed == ()
    (root / "requirements.in").write_text("small-a>=2\n")
    third = compile_requirements(root)
    assert third.removed == (PinChange("small-c", "0.5", None),)
    assert third.added == third.repinned == ()


def test_existing_pins_are_kept_unless_upgrading(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-b\n")
    (root / "requirements.txt").write_text("small-b==1.0\n")  # hand-written: no marker, so it is compiled
    kept = compile_requirements(root)
    assert parse_pins((root / "requirements.txt").read_text()) == {"small-b": "1.0"}
    assert kept.status == "compiled" and not kept.changed
    upgraded = compile_requirements(root, upgrade=True)
    assert upgraded.repinned == (PinChange("small-b", "1.0", "1.1"),)


def test_hand_edited_file_without_the_marker_is_compiled(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a>=2\n")
    compile_requirements(root)
    path = root / "requirements.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))
    assert not requirements_current(root)
    assert compile_requirements(root).status == "compiled"
    assert requirements_current(root)


def test_included_files_are_part_of_the_digest(offline_pip, tmp_path):
    root = project_with(tmp_path, "-c constraints.txt\nsmall-a\n")
    (root / "constraints.txt").write_text("small-a<2\n")
    compile_requirements(root)
    assert parse_pins((root / "requirements.txt").read_text())["small-a"] == "1.0"
    (root / "constraints.txt").write_text("small-a>=2\n")
    assert not requirements_current(root)
    assert compile_requirements(root).repinned == (PinChange("small-a", "1.0", "2.0"),)


# -- settings -------------------------------------------------------------------------------------


def test_compile_false_and_enabled_false_disable_it(tmp_path, no_subprocess):
    root = project_with(tmp_path / "a", "small-a\n", pyproject_extra="\n[tool.micropkg]\ncompile = false\n")
    result = compile_requirements(root)
    assert result.status == "disabled" and result.command == ()
    assert not (root / "requirements.txt").exists()
    assert requirements_current(root)
    other = project_with(tmp_path / "b", "small-a\n", pyproject_extra="\n[tool.micropkg.compile]\nenabled = false\n")
    assert compile_requirements(other).status == "disabled"


def test_no_requirements_in_runs_nothing(tmp_path, no_subprocess):
    root = project_with(tmp_path, None)
    result = compile_requirements(root)
    assert result.status == "no-requirements-in"
    assert result.requirements_txt == "requirements.txt"


def test_settings_precedence_project_then_monorepo_then_invoke(tmp_path):
    invoke_layer = invoke.Config(defaults={"micropkg": {"compile": {
        "args": ["--invoke"], "backend": "uv", "timeout": 5, "enabled": False,
    }}}).micropkg.compile
    monorepo = {"compile": {"args": ["--monorepo"], "backend": "pip-tools"}}
    bare = load_project(project_with(tmp_path / "bare", "x\n"))
    assert compile_settings(bare) == CompileSettings()
    assert compile_settings(bare, invoke_config=invoke_layer) == CompileSettings(False, ("--invoke",), "uv", 5.0)
    assert compile_settings(bare, monorepo=monorepo, invoke_config=invoke_layer) == CompileSettings(
        False, ("--monorepo",), "pip-tools", 5.0
    )
    project = load_project(project_with(
        tmp_path / "own", "x\n", pyproject_extra='\n[tool.micropkg.compile]\nargs = ["--project"]\nenabled = true\n'
    ))
    assert compile_settings(project, monorepo=monorepo, invoke_config=invoke_layer) == CompileSettings(
        True, ("--project",), "pip-tools", 5.0
    )
    opted_out = load_project(project_with(tmp_path / "out", "x\n", pyproject_extra="\n[tool.micropkg]\ncompile = false\n"))
    assert not compile_settings(opted_out, monorepo=monorepo).enabled
    assert not compile_settings(bare, monorepo={"compile": False}).enabled


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('compile = "no"', "must be true, false or a table"),
        ('compile = {args = "--generate-hashes"}', "key 'args' must be a list of strings"),
        ("compile = {args = [1]}", "1 is not a string"),
        ('compile = {args = ["--output-file=x.txt"]}', "must not set '--output-file=x.txt'"),
        ('compile = {args = ["-o", "x.txt"]}', "must not set '-o'"),
        ('compile = {backend = "poetry"}', "key 'backend' must be one of 'pip-tools', 'uv'"),
        ("compile = {timeout = 0}", "key 'timeout' must be a positive number"),
        ('compile = {enabled = "yes"}', "key 'enabled' must be true or false"),
        ("compile = {arg = []}", "unknown key 'arg'"),
        ('compile = {emit_index_url = "yes"}', "key 'emit_index_url' must be true or false"),
        ("compile = {emit_find_links = 1}", "key 'emit_find_links' must be true or false"),
        ('compile = {args = ["--emit-index-url"]}', "must not set '--emit-index-url': use emit_index_url = true"),
        ('compile = {args = ["--no-emit-find-links"]}', "must not set '--no-emit-find-links': use emit_find_links"),
        ('compile = {args = ["--emit-trusted-host"]}', "use emit_index_url = true or false"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path, toml, expected):
    project = load_project(project_with(tmp_path, "x\n", pyproject_extra=f"\n[tool.micropkg]\n{toml}\n"))
    with pytest.raises(MicropkgError) as caught:  # a bad number is a UsageError (exit 2)
        compile_settings(project)
    assert str(project.pyproject_path) in str(caught.value)
    assert "[tool.micropkg.compile]" in str(caught.value)
    assert expected in str(caught.value)


def test_bad_monorepo_and_invoke_settings_name_where(tmp_path):
    project = load_project(project_with(tmp_path, "x\n"))
    with pytest.raises(ProjectError, match=r"^/repo/pyproject.toml \[tool.micropkg.compile\] key 'backend'"):
        compile_settings(project, monorepo={"compile": {"backend": 3}}, monorepo_path="/repo/pyproject.toml")
    with pytest.raises(ProjectError, match=r"^invoke config micropkg.compile key 'args'"):
        compile_settings(project, invoke_config={"args": "x"})


def test_config_args_reach_pip_compile_and_changing_them_makes_the_file_stale(offline_pip, tmp_path):
    root = project_with(
        tmp_path, "small-a>=2\n", pyproject_extra='\n[tool.micropkg.compile]\nargs = ["--generate-hashes"]\n'
    )
    result = compile_requirements(root)
    text = (root / "requirements.txt").read_text()
    assert "--generate-hashes" in result.command
    assert "#    pip-compile --generate-hashes --output-file=requirements.txt requirements.in" in text
    assert text.count("--hash=sha256:") == 2
    assert parse_pins(text) == {"small-a": "2.0", "small-b": "1.1"}
    # Dropping the argument from config makes the file stale even though requirements.in is unchanged.
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('args = ["--generate-hashes"]', "args = []"))
    assert not requirements_current(root)
    assert compile_requirements(root).status == "compiled"
    assert "--hash=" not in (root / "requirements.txt").read_text()


def test_legacy_layout_compiles_src_requirements(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a>=2\n", legacy=True)
    result = compile_requirements(root)
    assert result.requirements_txt == "src/requirements.txt"
    assert not (root / "requirements.txt").exists()
    text = (root / "src/requirements.txt").read_text()
    assert HEADER_COMMAND in text.splitlines()
    assert parse_pins(text) == {"small-a": "2.0", "small-b": "1.1"}
    assert leftovers(root / "src") == []
    assert compile_requirements(root).status == "skipped-unchanged"


def test_credentials_never_reach_the_command_or_the_file(offline_pip, tmp_path):
    # no-index (from pip.conf) means the index is never contacted.
    url = "https://alice:s3cret@index.invalid/simple"
    root = project_with(
        tmp_path, "small-a\n", pyproject_extra=f'\n[tool.micropkg.compile]\nargs = ["--extra-index-url", "{url}"]\n'
    )
    result = compile_requirements(root)
    assert "s3cret" not in " ".join(result.command)
    assert "https://***@index.invalid/simple" in result.command
    assert "s3cret" not in (root / "requirements.txt").read_text()


def test_file_mode_is_kept_and_a_new_file_is_not_private(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-c\n")
    compile_requirements(root)
    assert stat.S_IMODE((root / "requirements.txt").stat().st_mode) == 0o666 & ~_umask()
    (root / "requirements.txt").chmod(0o640)
    (root / "requirements.in").write_text("small-c\nsmall-b\n")
    compile_requirements(root)
    assert stat.S_IMODE((root / "requirements.txt").stat().st_mode) == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_timeout_stops_the_compiler_and_keeps_the_old_file(offline_pip, tmp_path):
    root = project_with(tmp_path, "small-a\n")
    (root / "requirements.txt").write_text("small-a==1.0\n")
    with pytest.raises(MicropkgError, match="took longer than 0.05 s and was stopped"):
        compile_requirements(root, settings=CompileSettings(timeout=0.05))
    assert (root / "requirements.txt").read_text() == "small-a==1.0\n"
    assert leftovers(root) == []


# -- uv -------------------------------------------------------------------------------------------


def test_uv_backend_without_uv_is_a_clear_error(tmp_path, monkeypatch, no_subprocess):
    root = project_with(tmp_path, "small-a\n", pyproject_extra='\n[tool.micropkg.compile]\nbackend = "uv"\n')
    # uv is a test dependency, so hide it: nothing on PATH, nothing beside the interpreter.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr("sysconfig.get_path", lambda name: str(tmp_path / "empty"))
    with pytest.raises(ProjectError, match=r'backend = "uv"\), but uv is not installed or not on PATH'):
        compile_requirements(root)
    assert not (root / "requirements.txt").exists()


# uv is in the test extras: a missing uv is a broken environment, so this test fails rather than skips.
def test_uv_backend_compiles_the_same_inputs(offline_pip, tmp_path):
    # uv does not read pip.conf: the wheelhouse comes through args.
    args = f'["--no-index", "--find-links", "{offline_pip}"]'
    root = project_with(
        tmp_path, "small-a>=2\n", pyproject_extra=f'\n[tool.micropkg.compile]\nbackend = "uv"\nargs = {args}\n'
    )
    result = compile_requirements(root)
    text = (root / "requirements.txt").read_text()
    assert result.backend == "uv" and result.command[1:4] == ("pip", "compile", "--python")
    assert parse_pins(text) == {"small-a": "2.0", "small-b": "1.1"}
    assert ".tmp" not in text and "-o requirements.txt" in text
    assert compile_requirements(root).status == "skipped-unchanged"
    (root / "requirements.in").write_text("small-a>=2\nsmall-a==1.0\n")
    old = (root / "requirements.txt").read_bytes()
    with pytest.raises(MicropkgError, match=r"could not resolve requirements.in \(uv\): .*small-a==1.0"):
        compile_requirements(root)
    assert (root / "requirements.txt").read_bytes() == old
    assert leftovers(root) == []


# -- pure helpers ---------------------------------------------------------------------------------


def test_parse_pins_ignores_comments_hashes_and_options():
    text = (
        "# micropkg: requirements.in sha256=abc options=def\n"
        "--find-links /wheels\n"
        "--index-url https://u:p@example.invalid/simple\n"
        "\n"
        "Small_A==2.0 \\\n"
        "    --hash=sha256:aaa \\\n"
        "    --hash=sha256:bbb\n"
        "    # via -r requirements.in\n"
        "small-b[extra]==1.1  # via small-a\n"
        "small-c @ https://u:p@example.invalid/small_c-0.5.whl\n"
        "unpinned>=1\n"
    )
    assert parse_pins(text) == {
        "small-a": "2.0",
        "small-b": "1.1",
        "small-c": "@ https://***@example.invalid/small_c-0.5.whl",
    }


def test_diff_pins_sorts_each_kind():
    added, removed, repinned = diff_pins({"b": "1", "c": "1", "d": "1"}, {"a": "1", "b": "2", "d": "1"})
    assert added == (PinChange("a", None, "1"),)
    assert removed == (PinChange("c", "1", None),)
    assert repinned == (PinChange("b", "1", "2"),)


def test_inputs_digest_is_the_plain_sha256_without_includes(tmp_path):
    import hashlib

    path = tmp_path / "requirements.in"
    path.write_text("small-a\n")
    assert inputs_digest(path) == hashlib.sha256(b"small-a\n").hexdigest()
    assert read_marker("# micropkg: requirements.in sha256=abc options=def\n#\n") == ("abc", "def")
    assert read_marker("small-a==1.0\n") is None


def test_conflict_is_explained_from_the_traceback_alone():
    """With --quiet in args pip omits "The conflict is caused by:"; the message still names both sides."""
    stderr = (
        "  ERROR: Cannot install -r requirements.in (line 1) and small-b<1.1 because these package versions "
        "have conflicting dependencies.\nTraceback (most recent call last):\n"
        "pip._vendor.resolvelib.resolvers.exceptions.ResolutionImpossible: [RequirementInformation(requirement="
        "SpecifierRequirement('small-b<1.1'), parent=None), RequirementInformation(requirement="
        "SpecifierRequirement('small-b>=1.1'), parent=LinkCandidate('file:///w/small_a-2.0-py3-none-any.whl'))]\n"
    )
    message, details = _pip_tools_failure(stderr, "requirements.in")
    assert message == (
        "could not resolve requirements.in: small-b<1.1 (in requirements.in) conflicts with small-b>=1.1 (from small-a 2.0)"
    )
    assert details[0].startswith("ERROR: Cannot install")


# -- a killed compile ------------------------------------------------------------------------------


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, from /proc."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        current = pending.pop()
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                found_here = {int(child) for child in children.read_text().split()}
            except OSError:
                continue
            pending.extend(found_here - found)
            found |= found_here
    return found


def _is_compiler(pid: int) -> bool:
    """Whether ``pid`` is still a live (not zombie) process running pip-tools."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return state != "Z" and b"piptools" in command


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the compiler's processes in /proc")
def test_kill_9_mid_compile_leaves_no_compiler_and_the_next_run_no_temp_file(offline_pip, tmp_path, venv_bin, cli):
    """micropkg is killed while pip-compile waits on an index that never answers."""
    root = project_with(tmp_path, "small-z\n")  # not in the wheelhouse: pip asks the index
    (root / "requirements.txt").write_text("small-c==0.5\n")
    conf = tmp_path / "index.conf"
    with socket.socket() as stall:  # accepts connections (the kernel's backlog) and never answers
        stall.bind(("127.0.0.1", 0))
        stall.listen(8)
        conf.write_text(f"[global]\nindex-url = http://127.0.0.1:{stall.getsockname()[1]}/simple\n"
                        f"find-links = {offline_pip}\ntimeout = 600\nretries = 0\n")
        env = {**os.environ, "PIP_CONFIG_FILE": str(conf)}
        run = subprocess.Popen([str(venv_bin / "micropkg"), "compile-reqs"], cwd=root, env=env, start_new_session=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ready, _, _ = select.select([stall], [], [], 120)  # bounded: pip has reached the index
            assert ready, "pip-compile never reached the index"
            compilers = {pid for pid in _descendants(run.pid) if _is_compiler(pid)}
            assert compilers, "no pip-compile process under micropkg"
            temporary = sorted(path.name for path in (root / ".micropkg").iterdir() if path.name.endswith(".tmp"))
            assert len(temporary) == 1  # in the run-state folder, not beside requirements.txt
            assert leftovers(root) == []
        finally:
            os.kill(run.pid, signal.SIGKILL)
            run.wait(timeout=60)
        deadline = time.monotonic() + 60  # a bound no loaded machine reaches: death is near-instant
        while any(_is_compiler(pid) for pid in compilers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_is_compiler(pid) for pid in compilers), "pip-compile outlived micropkg"

    (root / "requirements.in").write_text("small-c\n")
    result = cli(["compile-reqs"], root)
    assert result.exit_code == 0, result.stderr
    everything = [path.relative_to(root).as_posix() for path in root.rglob("*")]
    assert [name for name in everything if name.endswith(".tmp")] == []
    assert parse_pins((root / "requirements.txt").read_text()) == {"small-c": "0.5"}


def test_a_compile_removes_what_killed_compiles_left_and_nothing_else(offline_pip, tmp_path, cli):
    root = project_with(tmp_path, "small-c\n")
    (root / ".micropkg").mkdir()
    killed_now = root / ".micropkg/requirements.k1ll3d.txt.tmp"
    killed_before = root / ".requirements.0ld3r.txt.tmp"  # where earlier versions wrote theirs
    for path in (killed_now, killed_before):
        path.write_text("small-c==0.5\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    planted_link = root / ".requirements.l1nk.txt.tmp"
    planted_link.symlink_to(outside)
    result = cli(["compile-reqs"], root)
    assert result.exit_code == 0, result.stderr
    assert not killed_now.exists() and not killed_before.exists()
    assert planted_link.is_symlink() and outside.read_text() == "keep me\n"
