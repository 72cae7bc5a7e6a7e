"""``compile-reqs``: compile a project's ``requirements.in`` into ``requirements.txt`` (SPEC §9).

pip-tools' ``pip-compile`` runs in a subprocess with the current interpreter
(``python -m piptools compile``), or ``uv pip compile`` when the project asks
for ``backend = "uv"``, tethered so that it dies with micropkg. It runs in the
folder that holds the pair (the project root, or ``src/`` in the older layout)
and writes to a temporary file in the project's run-state folder ``.micropkg/``,
seeded with the current pins so nothing moves that does not have to. A killed
compile's temporary file is removed by the next compile. Only a successful
compile is moved into place, with index and find-links lines left out unless
asked for and credentials stripped; a failure leaves the old file byte-for-byte.

A comment line at the top of the result records the sha256 of
``requirements.in`` and a fingerprint of the settings, so an unchanged input is
not compiled again.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from micropkg_tasks.core.change.atomic import write_atomically
from micropkg_tasks.core.change.bounded import read_file_bytes
from micropkg_tasks.core.change.journal import STATE_FOLDER
from micropkg_tasks.core.change.pathguard import guard
from micropkg_tasks.core.change.transaction import project_lock
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.fs_args import redact_urls_in as redact
from micropkg_tasks.core.project.project import Project, as_project
from micropkg_tasks.core.requirements.compile_output import environment_secrets, scrubbed, unreadable_pip_config
from micropkg_tasks.core.requirements.compile_settings import (
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
from micropkg_tasks.ops.compile.failure import CAUSE_TIMEOUT, CompileError, failure
from micropkg_tasks.ops.compile.process import run_tethered as _run

COMPILED = "compiled"
SKIPPED_UNCHANGED = "skipped-unchanged"
DISABLED = "disabled"
NO_REQUIREMENTS_IN = "no-requirements-in"

IN_NAME = "requirements.in"
TXT_NAME = "requirements.txt"


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
        emit = [*(["--emit-index-url"] if settings.emit_index_url else []),
                *(["--emit-find-links"] if settings.emit_find_links else [])]
        return [uv, "pip", "compile", *python, *chosen, *emit, "--custom-compile-command", _display_command(settings),
                "--output-file", output, IN_NAME]
    emit = [
        "--emit-index-url" if settings.emit_index_url else "--no-emit-index-url",
        "--emit-trusted-host" if settings.emit_index_url else "--no-emit-trusted-host",
        "--emit-find-links" if settings.emit_find_links else "--no-emit-find-links",
    ]
    # -v makes pip print "The conflict is caused by:" (to stdout) on a resolution failure.
    return [sys.executable, "-m", "piptools", "compile", "-v", *chosen, *emit, f"--output-file={output}", IN_NAME]


def _shown(command: Sequence[str], output: str) -> tuple[str, ...]:
    """The command as reported: the temp name shown as requirements.txt, credentials hidden."""
    return tuple(redact(part.replace(output, TXT_NAME)) for part in command)


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


# A compile writes to a temporary file in the run-state folder, where a killed run's file is
# removed by the next compile (which holds the project's lock, so no other compile is running).
_TEMP_PREFIX, _TEMP_SUFFIX = "requirements.", ".txt.tmp"


def _temp_output(root: Path, seed: bytes | None) -> Path:
    """A new temporary output file, seeded with the current pins: both compilers keep them
    unless asked to upgrade."""
    folder = root / STATE_FOLDER
    guard(root, folder, "write")
    handle, name = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX, dir=folder)
    with os.fdopen(handle, "wb") as stream:
        stream.write(seed or b"")
    return Path(name)


def _remove_leftovers(root: Path, target: Path) -> None:
    """Remove temporary outputs of compiles that were killed: in the run-state folder, and
    beside ``requirements.txt`` where earlier versions wrote them."""
    found = [*(root / STATE_FOLDER).glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"),
             *target.parent.glob(f".{_TEMP_PREFIX}*{_TEMP_SUFFIX}")]
    for path in found:
        if path.is_symlink() or not path.is_file():
            continue  # never made by a compile: not ours to remove
        guard(root, path, "remove")
        path.unlink(missing_ok=True)


def _safe_text(written: str, temp: Path, settings: CompileSettings, where: str, outcome: str) -> str:
    """The compiler's output as it may be committed: temp names replaced, index and find-links
    lines only if asked for, no credentials. Refused if a credential from the environment or
    the config arguments is still in it."""
    text = scrubbed(written.replace(str(temp), TXT_NAME).replace(temp.name, TXT_NAME), settings)
    for secret, source in environment_secrets(os.environ, settings.args).items():
        if secret in text:
            raise CompileError(
                f"refusing to write the compile of {where}: it still holds a credential from {source}; {outcome}"
            )
    return text


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
    use those too. Raises :class:`CompileError` (its ``cause`` says why) on a failure, with
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
        digest, fingerprint = inputs_digest(source), options_fingerprint(settings)
        old_bytes = _current_bytes(target)
        old_text = old_bytes.decode("utf-8", errors="replace") if old_bytes is not None else ""
        if not (force or upgrade or extra_args) and read_marker(old_text) == (digest, fingerprint):
            return _result(resolved, SKIPPED_UNCHANGED, started, settings, warnings=recovered)
        uv = _find_uv(resolved) if settings.backend == "uv" else None
        shown_txt = resolved.relative(target)
        outcome = f"{shown_txt} was left as it was" if old_bytes is not None else f"{shown_txt} was not written"
        if settings.backend == "pip-tools" and (reason := unreadable_pip_config(os.environ)):
            raise CompileError(f"cannot compile {where}: {reason}; {outcome}")
        _remove_leftovers(resolved.root, target)
        temp = _temp_output(resolved.root, old_bytes)
        try:
            command = _command(settings, str(temp), upgrade=upgrade, extra_args=extra_args, uv=uv)
            completed = _run_compiler(command, settings, target.parent, where, outcome)
            written = temp.read_bytes().decode("utf-8", errors="replace")
            new_text = with_marker(_safe_text(written, temp, settings, where, outcome), digest, fingerprint)
            _write_if_changed(target, new_text.encode("utf-8"), old_bytes, temp)
        finally:
            temp.unlink(missing_ok=True)

    added, removed, repinned = diff_pins(parse_pins(old_text), parse_pins(new_text))
    return _result(
        resolved, COMPILED, started, settings, added=added, removed=removed, repinned=repinned,
        command=_shown(command, str(temp)), warnings=recovered + _compiler_warnings(completed.stderr),
    )


def _current_bytes(target: Path) -> bytes | None:
    """The ``requirements.txt`` there now, or None."""
    try:
        return read_file_bytes(target)
    except FileNotFoundError:
        return None


def _run_compiler(
    command: list[str], settings: CompileSettings, cwd: Path, where: str, outcome: str
) -> subprocess.CompletedProcess[str]:
    """Run the compiler, bounded by the settings' timeout; its failure is a ``CompileError``."""
    env = dict(os.environ)
    env["CUSTOM_COMPILE_COMMAND"] = _display_command(settings)  # pip-tools' header line
    env.setdefault("PIP_NO_INPUT", "1")  # never wait for a password prompt
    try:
        completed = _run(command, python_module=settings.backend == "pip-tools", cwd=cwd, env=env,
                         timeout=settings.timeout)
    except subprocess.TimeoutExpired:
        raise CompileError(
            f"compiling {where} took longer than {settings.timeout:g} s and was stopped; {outcome} "
            "(raise [tool.micropkg.compile] timeout if the index is slow)", cause=CAUSE_TIMEOUT,
        ) from None
    if completed.returncode != 0:
        # pip prints "The conflict is caused by:" to stdout, its ERROR line to stderr.
        raise failure(settings.backend, completed.stderr + "\n" + completed.stdout, where, outcome)
    return completed


def _write_if_changed(target: Path, new_bytes: bytes, old_bytes: bytes | None, temp: Path) -> None:
    """Put the new ``requirements.txt`` in place, keeping the old one's mode, unless it is the same."""
    if new_bytes != old_bytes:
        mode = (target.stat().st_mode & 0o7777) if old_bytes is not None else _new_file_mode()
        write_atomically(target, new_bytes, temp=temp, mode=mode)


def _compiler_warnings(stderr: str) -> tuple[str, ...]:
    """The compiler's WARNING lines, credentials hidden."""
    return tuple(redact(line.strip()) for line in stderr.splitlines() if line.strip().startswith("WARNING:"))
