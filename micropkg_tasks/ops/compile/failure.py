"""Explaining a failed compile in one sentence, and saying why it failed (SPEC §9, §12).

pip-tools and uv print pages on a failure: a traceback, pip's resolver report,
retry warnings. This keeps the one line that matters (the conflicting
requirements and where each comes from, the requirement nothing matches) and a
few detail lines, all with credentials hidden, and names a *cause* callers can
act on: an index that could not be reached reads differently from a genuine
conflict, so a pull whose install committed can say what to fix.
"""

from __future__ import annotations

import re
from typing import Sequence

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.fs_args import redact_urls_in as redact

IN_NAME = "requirements.in"
_MAX_DETAILS = 12

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


# Why a compile failed, as a word callers can act on (``CompileOutcome.cause``, ``--json``).
CAUSE_INDEX_UNREACHABLE = "index-unreachable"  # no connection, DNS, TLS or time-out talking to the index
CAUSE_INDEX_REFUSED = "index-refused"  # the index answered 401 or 403
CAUSE_RESOLUTION = "resolution"  # the requirements cannot be satisfied together, or nothing matches
CAUSE_TIMEOUT = "timeout"  # the compiler ran past [tool.micropkg.compile] timeout
CAUSE_OTHER = "error"  # anything else: a bad option, a broken requirements.in, an unusable pip config...

# Lower-case signs, in pip's or uv's output, of an index that was never reached or refused us.
_UNREACHABLE = (
    "newconnectionerror", "failed to establish a new connection", "max retries exceeded", "connecttimeouterror",
    "readtimeouterror", "read timed out", "connection refused", "name or service not known", "nodename nor servname",
    "temporary failure in name resolution", "connection broken by", "could not fetch url", "proxyerror", "sslerror",
    "network is unreachable", "no route to host", "tcp connect error", "dns error", "error sending request",
    "failed to fetch",
)
_REFUSED = ("401 client error", "403 client error", "http error 401", "http error 403", "401 unauthorized",
            "403 forbidden")


class CompileError(MicropkgError):
    """A compile that failed, with ``cause`` (one of the ``CAUSE_*`` words) saying why."""

    def __init__(self, message: str, *, cause: str = CAUSE_OTHER, details: Sequence[str] = ()) -> None:
        super().__init__(message, details=list(details))
        self.cause = cause


def failure(backend: str, output: str, where: str, outcome: str) -> CompileError:
    output = redact(output)
    message, details = (_uv_failure if backend == "uv" else _pip_tools_failure)(output, where)
    details = [line for line in details if line][: _MAX_DETAILS]
    lowered = output.lower()
    cause = CAUSE_RESOLUTION if message.startswith("could not resolve") else CAUSE_OTHER
    what = message.split(": ", 1)[-1].rstrip(". ")
    if any(sign in lowered for sign in _UNREACHABLE):
        cause, message = CAUSE_INDEX_UNREACHABLE, f"could not compile {where}: the package index could not be reached ({what})"
    elif any(sign in lowered for sign in _REFUSED):
        cause, message = CAUSE_INDEX_REFUSED, f"could not compile {where}: the package index refused access ({what})"
    return CompileError(f"{message.rstrip('. ')}; {outcome}", cause=cause, details=details)
