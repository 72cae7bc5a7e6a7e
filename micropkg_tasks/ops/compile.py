"""``compile-reqs``: compile a project's ``requirements.in`` into ``requirements.txt`` (SPEC §9).

pip-tools' ``pip-compile`` runs in a subprocess with the current interpreter
(``python -m piptools compile``), or ``uv pip compile`` when the project asks
for ``backend = "uv"``. It runs in the folder that holds the pair (the project
root, or ``src/`` in the older layout) and writes to a temporary file beside
``requirements.txt``, seeded with the current pins so nothing moves that does
not have to. Only a successful compile is moved into place; a failure leaves
the old file byte-for-byte and no temporary file behind.

A comment line at the top of the result records the sha256 of
``requirements.in`` and a fingerprint of the settings, so an unchanged input is
not compiled again.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from micropkg_tasks.core.compile_settings import (
    CompileSettings,
    PinChange,
    compile_settings,
    diff_pins,
    inputs_digest,
    options_fingerprint,
    parse_pins,
    read_marker,
    with_marker,
)
from micropkg_tasks.core.bounded import read_file_bytes
from micropkg_tasks.core.errors import MicropkgError, ProjectError
from micropkg_tasks.core.fs_args import redact_urls_in as redact
from micropkg_tasks.core.project import Project, as_project
from micropkg_tasks.core.pathguard import guard
from micropkg_tasks.core.transaction import project_lock

COMPILED = "compiled"
SKIPPED_UNCHANGED = "skipped-unchanged"
DISABLED = "disabled"
NO_REQUIREMENTS_IN = "no-requirements-in"

IN_NAME = "requirements.in"
TXT_NAME = "requirements.txt"
_MAX_DETAILS = 12


@dataclass(frozen=True)
class CompileResult:
    """What one compile did."""

    project: str  # project root
    status: str  # "compiled" | "skipped-unchanged" | "disabled" | "no-requirements-in"
    requirements_txt: str  # relative to the project root
    added: tuple[PinChange, ...] = ()
    removed: tuple[PinChange, ...] = ()
    repinned: tuple[PinChange, ...] = ()
    seconds: float = 0.0
    command: tuple[str, ...] = ()  # what ran, credentials hidden; empty when nothing ran
    backend: str = "pip-tools"
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether any pin moved (the file may still have changed in comments only)."""
        return bool(self.added or self.removed or self.repinned)


def requirements_current(project: Project | str | os.PathLike[str], *, settings: CompileSettings | None = None) -> bool:
    """True when ``requirements.txt`` was compiled by micropkg from the current ``requirements.in``
    with the current settings (or there is nothing to compile, or compiling is turned off)."""
    resolved = as_project(project)
    settings = settings or compile_settings(resolved)
    if not settings.enabled or not resolved.requirements_in.is_file():
        return True
    try:
        text = read_file_bytes(resolved.requirements_txt).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return False
    return read_marker(text) == (inputs_digest(resolved.requirements_in), options_fingerprint(settings))


def _find_uv(project: Project) -> str:
    # An un-activated virtualenv (``.venv/bin/micropkg``) is not on PATH, but the uv
    # installed beside this interpreter is the one the user meant.
    uv = shutil.which("uv") or shutil.which("uv", path=sysconfig.get_path("scripts"))
    if uv is None:
        raise ProjectError(
            f'the compile backend for {project.root} is "uv" ([tool.micropkg.compile] backend = "uv"), '
            "but uv is not installed or not on PATH; install uv, or remove the setting to use pip-tools"
        )
    return uv


def _display_command(settings: CompileSettings) -> str:
    """The command written into the header: relative names, no temp file, no secrets."""
    args = [redact(arg) for arg in settings.args]
    if settings.backend == "uv":
        return shlex.join(["uv", "pip", "compile", *args, IN_NAME, "-o", TXT_NAME])
    return shlex.join(["pip-compile", *args, f"--output-file={TXT_NAME}", IN_NAME])


def _has_option(args: Sequence[str], *names: str) -> bool:
    return any(arg.split("=", 1)[0] in names for arg in args)


def _command(settings: CompileSettings, output: str, *, upgrade: bool, extra_args: Sequence[str], uv: str | None) -> list[str]:
    chosen = [*settings.args, *(["--upgrade"] if upgrade else []), *extra_args]
    if settings.backend == "uv":
        assert uv is not None
        python = [] if _has_option(chosen, "--python", "-p", "--python-version") else ["--python", sys.executable]
        return [uv, "pip", "compile", *python, *chosen, "--custom-compile-command", _display_command(settings),
                "--output-file", output, IN_NAME]
    # -v makes pip print "The conflict is caused by:" (to stdout) on a resolution failure.
    return [sys.executable, "-m", "piptools", "compile", "-v", *chosen, f"--output-file={output}", IN_NAME]


def _shown(command: Sequence[str], output: str) -> tuple[str, ...]:
    """The command as reported: the temp name shown as requirements.txt, credentials hidden."""
    return tuple(redact(part.replace(output, TXT_NAME)) for part in command)


def _run(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout: float, where: str, outcome: str
) -> subprocess.CompletedProcess[str]:
    """Run in its own process group so a timeout or Ctrl-C stops pip's children too."""
    try:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, errors="replace", start_new_session=True,
        )
    except FileNotFoundError:
        raise MicropkgError(f"cannot compile {where}: {command[0]} was not found") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise MicropkgError(
            f"compiling {where} took longer than {timeout:g} s and was stopped; {outcome} "
            "(raise [tool.micropkg.compile] timeout if the index is slow)"
        ) from None
    except BaseException:
        _kill(process)
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _kill(process: subprocess.Popen[str]) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except OSError:
        pass  # the process group has already exited; there is nothing left to stop
    process.communicate()


# -- explaining failures --------------------------------------------------------------------------

_CAUSE_USER = re.compile(r"^The user requested(?: \(constraint\))? (?P<req>.+)$")
_CAUSE_DEP = re.compile(r"^(?P<parent>\S+ \S+) depends on (?P<req>.+)$")
_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement (?P<req>.+?) \(from versions: (?P<versions>[^)]*)\)")
_IMPOSSIBLE = re.compile(r"RequirementInformation\(requirement=\w+\('(?P<req>[^']+)'\), parent=(?P<parent>None|\w+\('(?P<url>[^']*)'\))")
_EXCEPTION_PREFIX = re.compile(r"^(?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*: ")  # "pip._internal.exceptions.X: "
_NOISE = ("Traceback", "The above exception", "During handling", "Using pip-tools configuration", "Usage:")
_WHEEL_NAME = re.compile(r"([^/]+?)-([^-/]+)-[^-/]+-[^-/]+-[^-/]+\.whl$")


def _pip_tools_failure(stderr: str, where: str) -> tuple[str, list[str]]:
    lines = [line.rstrip() for line in stderr.splitlines()]
    details: list[str] = []
    error_lines = [line.strip() for line in lines if line.strip().startswith("ERROR:")]
    details.extend(error_lines[-1:])

    causes: list[str] = []
    if "The conflict is caused by:" in [line.strip() for line in lines]:
        start = [line.strip() for line in lines].index("The conflict is caused by:") + 1
        for line in lines[start:]:
            text = line.strip()
            if not text:
                break
            details.append(text)
            if match := _CAUSE_USER.match(text):
                causes.append(f"{match['req']} (in {IN_NAME})")
            elif match := _CAUSE_DEP.match(text):
                causes.append(f"{match['req']} (from {match['parent']})")
            else:
                causes.append(text)
    if not causes:
        for match in _IMPOSSIBLE.finditer(stderr):
            if match["parent"] == "None":
                causes.append(f"{match['req']} (in {IN_NAME})")
            elif wheel := _WHEEL_NAME.search(match["url"] or ""):
                causes.append(f"{match['req']} (from {wheel[1].replace('_', '-')} {wheel[2]})")
            else:
                causes.append(match["req"])
        causes = list(dict.fromkeys(causes))
    if len(causes) >= 2:
        return f"could not resolve {where}: {causes[0]} conflicts with {' and '.join(causes[1:])}", details
    if match := _NO_VERSION.search(stderr):
        versions = match["versions"].strip() or "none"
        return (
            f"could not resolve {where}: no version matches {match['req']} (available: {versions})",
            details,
        )
    if "No matching distribution found for" in stderr:
        name = stderr.split("No matching distribution found for", 1)[1].strip().splitlines()[0]
        return f"could not resolve {where}: no distribution found for {name}", details
    # Not a resolution failure (a bad option, an unreadable requirements.in, a network fault...).
    useful = list(dict.fromkeys(
        _EXCEPTION_PREFIX.sub("", line.strip()) for line in lines
        if line.strip() and not line.startswith((" ", "\t", *_NOISE)) and not line.strip().startswith("WARNING:")
    ))
    last = (error_lines or useful or ["pip-compile exited with an error"])[-1]
    return f"pip-compile failed for {where}: {last}", useful[-_MAX_DETAILS:]


def _uv_failure(output: str, where: str) -> tuple[str, list[str]]:
    cleaned = []
    for line in output.splitlines():
        text = line.strip().lstrip("×╰─▶│ ").strip()
        if text:
            cleaned.append(text)
    index = next((i for i, line in enumerate(cleaned) if "No solution found" in line), None)
    if index is not None:
        explanation = cleaned[index + 1 :]
        causes = [line.removeprefix("cause:").strip() for line in explanation if not line.startswith("hint:")]
        summary = " ".join(causes) or "no solution found"
        return f"could not resolve {where} (uv): {summary}", explanation
    errors = [line.removeprefix("error:").strip() for line in cleaned if line.startswith("error:")]
    last = (errors or cleaned or ["uv exited with an error"])[-1]
    return f"uv pip compile failed for {where}: {last}", cleaned[-_MAX_DETAILS:]


def _failure(backend: str, output: str, where: str, outcome: str) -> MicropkgError:
    output = redact(output)
    message, details = (_uv_failure if backend == "uv" else _pip_tools_failure)(output, where)
    details = [line for line in details if line][: _MAX_DETAILS]
    return MicropkgError(f"{message.rstrip('. ')}; {outcome}", details=details)


# -- the operation --------------------------------------------------------------------------------


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _result(project: Project, status: str, started: float, settings: CompileSettings, **fields: object) -> CompileResult:
    return CompileResult(
        project=str(project.root),
        status=status,
        requirements_txt=project.relative(project.requirements_txt),
        seconds=round(time.monotonic() - started, 3),
        backend=settings.backend,
        **fields,  # type: ignore[arg-type]
    )


def compile_requirements(
    project: Project | str | os.PathLike[str],
    *,
    upgrade: bool = False,
    extra_args: Sequence[str] = (),
    settings: CompileSettings | None = None,
    force: bool = False,
    lock_timeout: float = 30.0,
) -> CompileResult:
    """Compile the project's ``requirements.in`` into ``requirements.txt``.

    Skipped when the inputs and settings are unchanged since the last compile,
    unless ``force``, ``upgrade`` or ``extra_args`` (one-off arguments such as
    ``--upgrade-package NAME``) are given. ``settings`` default to the project's
    own; pass :func:`compile_settings` with the monorepo and invoke layers to
    use those too. Raises :class:`MicropkgError` on a resolution failure, with
    the old ``requirements.txt`` untouched.
    """
    started = time.monotonic()
    resolved = as_project(project)
    settings = settings or compile_settings(resolved)
    extra_args = tuple(extra_args)
    if not settings.enabled:
        return _result(resolved, DISABLED, started, settings)
    source = resolved.requirements_in
    if not source.is_file():
        return _result(resolved, NO_REQUIREMENTS_IN, started, settings)
    where = resolved.relative(source)

    with project_lock(resolved.root, timeout=lock_timeout, managed=resolved.managed_paths()) as recovery:
        recovered = (recovery.message,) if recovery else ()
        target = resolved.requirements_txt
        guard(resolved.root, target, "write")
        digest = inputs_digest(source)
        fingerprint = options_fingerprint(settings)
        try:
            old_bytes: bytes | None = read_file_bytes(target)
        except FileNotFoundError:
            old_bytes = None
        old_text = old_bytes.decode("utf-8", errors="replace") if old_bytes is not None else ""
        if not (force or upgrade or extra_args) and read_marker(old_text) == (digest, fingerprint):
            return _result(resolved, SKIPPED_UNCHANGED, started, settings, warnings=recovered)
        uv = _find_uv(resolved) if settings.backend == "uv" else None

        handle, temp_name = tempfile.mkstemp(prefix=".requirements.", suffix=".txt.tmp", dir=target.parent)
        temp = Path(temp_name)
        try:
            # Seed the temp file with the current pins: both compilers keep them unless asked to upgrade.
            with os.fdopen(handle, "wb") as stream:
                stream.write(old_bytes or b"")
            command = _command(settings, temp.name, upgrade=upgrade, extra_args=extra_args, uv=uv)
            env = dict(os.environ)
            env["CUSTOM_COMPILE_COMMAND"] = _display_command(settings)  # pip-tools' header line
            env.setdefault("PIP_NO_INPUT", "1")  # never wait for a password prompt
            shown_txt = resolved.relative(target)
            outcome = f"{shown_txt} was left as it was" if old_bytes is not None else f"{shown_txt} was not written"
            completed = _run(command, cwd=target.parent, env=env, timeout=settings.timeout, where=where, outcome=outcome)
            if completed.returncode != 0:
                # pip prints "The conflict is caused by:" to stdout, its ERROR line to stderr.
                raise _failure(settings.backend, completed.stderr + "\n" + completed.stdout, where, outcome)
            new_text = temp.read_bytes().decode("utf-8", errors="replace").replace(temp.name, TXT_NAME)
            new_text = with_marker(new_text, digest, fingerprint)
            new_bytes = new_text.encode("utf-8")
            if new_bytes != old_bytes:
                temp.write_bytes(new_bytes)
                os.chmod(temp, (target.stat().st_mode & 0o7777) if old_bytes is not None else _new_file_mode())
                os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)

    added, removed, repinned = diff_pins(parse_pins(old_text), parse_pins(new_text))
    warnings = recovered + tuple(
        redact(line.strip()) for line in completed.stderr.splitlines() if line.strip().startswith("WARNING:")
    )
    return _result(
        resolved, COMPILED, started, settings, added=added, removed=removed, repinned=repinned,
        command=_shown(command, temp.name), warnings=warnings,
    )
