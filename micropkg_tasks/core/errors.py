"""Errors that users see as one clear sentence.

Every failure the tool expects (bad input, a conflict, a busy project) is a
``MicropkgError``. The interface layer prints its message without a traceback
and exits with ``exit_code``; anything else is a bug and is reported as such.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_LOCAL_EDITS = 3
# The micro-packages were installed (that step committed), then requirements.txt could not be compiled.
EXIT_INSTALLED_NOT_COMPILED = 4
# A run stopped by a signal rolls back or finishes what it was writing, says how it left each
# target, then exits with 128 + the signal's number, as shells report a process the signal ended.
EXIT_ON_SIGNAL = {"SIGHUP": 129, "SIGINT": 130, "SIGTERM": 143}


def exit_code_for_signal(name: str) -> int:
    """The exit code of a run stopped by the signal ``name`` (``"SIGINT"``, ...)."""
    return EXIT_ON_SIGNAL.get(name, EXIT_ON_SIGNAL["SIGINT"])


class MicropkgError(Exception):
    """An expected failure, explained to the user in one sentence."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, details: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        # Extra lines (file lists, hints) shown under the message.
        self.details = list(details)

    def __str__(self) -> str:
        return self.message


class UsageError(MicropkgError):
    """The user asked for something invalid: a bad option, name or path."""

    exit_code = EXIT_USAGE


class ProjectError(MicropkgError):
    """A project, manifest or source file is missing or malformed."""


class NotFoundHereError(ProjectError):
    """The command was run where there is no project (or monorepo) to act on: a usage
    error, so it exits 2 like any other, under ``micropkg`` and ``invoke`` alike."""

    exit_code = EXIT_USAGE


class SdistError(MicropkgError):
    """An sdist is unsafe, corrupt or not shaped like a micro-package."""


class ConflictError(MicropkgError):
    """Applying a change would overwrite files the tool does not own."""


class BusyError(MicropkgError):
    """Another run holds the project's lock."""


class InstalledNotCompiledError(MicropkgError):
    """A pull or sync installed its micro-packages, then the compile of requirements.txt failed:
    not a plain failure, since the project did change."""

    exit_code = EXIT_INSTALLED_NOT_COMPILED
