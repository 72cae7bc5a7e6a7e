"""Read micro-package ``requirements.txt`` files (SPEC §3).

Packaging turns a micro-package's ``requirements.txt`` into normalised PEP 508
strings for ``Requires-Dist``. Only plain requirements can travel inside an
sdist, so pip options are skipped with a warning and anything else that is not
a PEP 508 requirement is a clear error naming the file and line. Pulling merges
them into a project's ``requirements.in`` (core/requirements/merge.py).

Line handling follows pip's requirements-file rules (core/requirements/lines.py)
so a file behaves here as it does under ``pip install -r``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement

from micropkg_tasks.core.change.bounded import read_file_bytes
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.redaction import redact_urls_in
from micropkg_tasks.core.requirements.lines import (
    logical_lines,
    physical_lines,
    split_options,
    strip_inline_comment,
)

# Names pip would treat as a local archive rather than a project name; packaging
# accepts them as names, but they would never resolve from an index.
_ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar")


@dataclass(frozen=True)
class ParsedRequirements:
    """Requirements read from one file, plus what was skipped along the way."""

    requirements: tuple[str, ...]
    warnings: tuple[str, ...]


def _redact(text: str) -> str:
    """Hide credentials in any URL, so index credentials never reach messages (SPEC §8)."""
    return redact_urls_in(text)


def _invalid_reason(text: str) -> str | None:
    """Explain why ``text`` cannot be a requirement, or return None if it can."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        if "://" in text and "@" not in text.split("://", 1)[0]:
            return "a bare URL needs a name: write 'name @ URL'"
        if text.startswith((".", "/", "~", "\\")) or (len(text) > 2 and text[1] == ":" and text[2] in "/\\"):
            return "local paths cannot be packaged as requirements"
        # packaging appends a caret diagram on later lines; the first line is the reason.
        return str(exc).splitlines()[0] if str(exc) else "unparsable"
    if requirement.name.lower().endswith(_ARCHIVE_SUFFIXES):
        return "local archives cannot be packaged as requirements"
    if requirement.url is not None and not _is_absolute_url(requirement.url):
        return "the URL after '@' must be absolute, such as https://... or file:///..."
    for specifier in requirement.specifier:
        # Newer packaging accepts 'foo===' (an empty arbitrary version); nothing can match it.
        if not specifier.version.strip():
            return f"'{specifier.operator}' needs a version"
    return None


def _is_absolute_url(url: str) -> bool:
    scheme = urlsplit(url).scheme
    # A one-letter scheme is a Windows drive ('C:\\libs'), not a URL.
    return len(scheme) > 1


def _included_file(line: str) -> str | None:
    """The file named by ``-r FILE``, ``-rFILE``, ``--requirement FILE`` or ``--requirement=FILE``."""
    for option in ("--requirement", "-r"):
        if not line.startswith(option):
            continue
        rest = line[len(option):]
        if rest.startswith("="):
            rest = rest[1:]
        elif option == "--requirement" and rest and not rest[0].isspace():
            return None  # another long option that merely starts with the same letters
        return rest.strip() or None
    return None


# Reads the file an ``-r`` line names: ``(name as written, where the line is) -> its requirements``.
IncludeReader = Callable[[str, str], ParsedRequirements]


def parse_requirements_text(text: str, *, source: str, include: IncludeReader | None = None) -> ParsedRequirements:
    """Parse ``requirements.txt`` content into normalised PEP 508 strings.

    ``source`` names the file in warnings and errors. Blank lines and comments
    are skipped silently, pip option lines and per-requirement options with a
    warning. ``-r FILE`` lines are read through ``include`` when one is given,
    so their requirements are carried too. Anything else that is not a valid
    requirement raises :class:`ProjectError` naming ``source`` and the first
    physical line. Duplicates are kept in file order; merging deals with them.
    """
    requirements: list[str] = []
    warnings: list[str] = []
    for logical in logical_lines(physical_lines(text)):
        line = strip_inline_comment(logical.text)
        if not line:
            continue
        where = f"{source}:{logical.lineno}"
        included = _included_file(line) if include is not None else None
        if included is not None and include is not None:
            nested = include(included, where)
            requirements.extend(nested.requirements)
            warnings.extend(nested.warnings)
            continue
        if line.startswith("-"):
            warnings.append(f"{where}: skipped option line '{_redact(line)}'")
            continue
        requirement_text, options = split_options(line)
        reason = _invalid_reason(requirement_text)
        if reason is not None:
            raise ProjectError(f"{where}: '{_redact(line)}' is not a valid requirement ({reason})")
        if options:
            warnings.append(
                f"{where}: dropped option '{_redact(options)}' from requirement '{_redact(requirement_text)}'"
            )
        requirements.append(str(Requirement(requirement_text)))
    return ParsedRequirements(tuple(requirements), tuple(warnings))


def read_requirements_file(
    path: Path, *, display: str | None = None, includes_within: Path | None = None, _seen: frozenset[Path] = frozenset()
) -> ParsedRequirements:
    """Read and parse a requirements file; a missing file has no requirements.

    ``display`` is the name used in messages (for example a path relative to
    the project), defaulting to ``str(path)``. With ``includes_within`` (the
    micro-package folder), ``-r FILE`` lines are followed when FILE lies inside
    that folder, since it travels in the sdist too, and refused, naming the
    file and line, when it does not; without it they are skipped with a warning.
    """
    name = display if display is not None else str(path)
    include: IncludeReader | None = None
    if includes_within is not None:
        root = includes_within.resolve()
        here = Path(path).resolve()

        def include(target: str, where: str) -> ParsedRequirements:
            found = (here.parent / target).resolve()
            if not found.is_relative_to(root):
                raise ProjectError(
                    f"{where}: '-r {target}' points outside the micro-package folder, so its requirements "
                    "could not travel with it; copy them into this file or move the file into the folder"
                )
            if found in _seen or found == here:
                raise ProjectError(f"{where}: '-r {target}' includes a file that includes it again")
            if not found.is_file():
                raise ProjectError(f"{where}: '-r {target}' names a file that does not exist")
            # Name the included file the way this one is named (both sit in the micro-package folder).
            shown = (Path(name).parent / os.path.relpath(found, here.parent)).as_posix()
            return read_requirements_file(found, display=shown, includes_within=root, _seen=_seen | {here})

    try:
        data = read_file_bytes(path, display=name)
    except FileNotFoundError:
        if Path(path).is_symlink():  # never drop what a dangling link was meant to list, silently
            raise ProjectError(f"{name} is a symlink to a missing file; remove it or fix its target") from None
        return ParsedRequirements((), ())
    except OSError as exc:
        raise ProjectError(f"{name}: cannot read requirements file ({exc.strerror or exc})") from exc
    try:
        # utf-8-sig tolerates the BOM some Windows editors write.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{name}: requirements file is not valid UTF-8 (byte {exc.start})") from exc
    return parse_requirements_text(text, source=name, include=include)
