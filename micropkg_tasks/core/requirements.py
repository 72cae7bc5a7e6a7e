"""Read micro-package ``requirements.txt`` files and merge requirements into ``requirements.in``.

Two jobs live here (SPEC §3 and §6):

* packaging: turn a micro-package's ``requirements.txt`` into normalised PEP 508
  strings for ``Requires-Dist``. Only plain requirements can travel inside an
  sdist, so pip options are skipped with a warning and anything else that is not
  a PEP 508 requirement is a clear error naming the file and line;
* pulling: merge those strings into a project's ``requirements.in`` as a pure
  text-to-text function, so the caller can stage, diff and dry-run the result.

Line handling follows pip's requirements-file rules (continuations, then
comments, then options) so a file behaves here as it does under ``pip install -r``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from micropkg_tasks.core.bounded import read_file_bytes
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.specifiers import can_both_hold
from micropkg_tasks.core.redaction import redact_urls_in

# Names pip would treat as a local archive rather than a project name; packaging
# accepts them as names, but they would never resolve from an index.
_ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar")

HEADER_PREFIX = "# Added by micropkg-tasks for "


@dataclass(frozen=True)
class ParsedRequirements:
    """Requirements read from one file, plus what was skipped along the way."""

    requirements: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RequirementConflict:
    """An incoming requirement that meets a line already in ``requirements.in`` with the same name.

    Used both for overlaps (both lines can hold: the incoming one is added and
    pip-compile intersects them) and for conflicts (they cannot both hold).
    """

    name: str
    existing: str
    incoming: str


@dataclass(frozen=True)
class MergeResult:
    """The outcome of :func:`merge_requirements`."""

    text: str
    added: tuple[str, ...]
    already_present: tuple[str, ...]
    conflicts: tuple[RequirementConflict, ...]  # cannot both hold: the incoming line was not added
    removed: tuple[str, ...]
    overlaps: tuple[RequirementConflict, ...] = ()  # both can hold: the incoming line was added too
    # The input text, kept so ``changed`` needs no argument; not part of the public contract.
    original_text: str = field(default="", repr=False)

    @property
    def changed(self) -> bool:
        """Whether the new text differs from the text that was passed in."""
        return self.text != self.original_text


@dataclass(frozen=True)
class _LogicalLine:
    """One requirement-file line after joining backslash continuations."""

    lineno: int  # 1-based number of the first physical line, used in messages
    indices: tuple[int, ...]  # 0-based physical lines it spans
    text: str


def _physical_lines(text: str) -> list[str]:
    """Split on ``\\n`` only, keeping any ``\\r`` so merged text stays verbatim."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        # A trailing newline terminates the last line; it does not start a new one.
        lines.pop()
    return lines


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _logical_lines(lines: Sequence[str]) -> list[_LogicalLine]:
    """Join backslash continuations the way pip does.

    A full comment line ends a pending continuation instead of being glued to
    it, and no space is inserted at the join (``foo>=1,\\`` + ``<2`` is one
    specifier).
    """
    result: list[_LogicalLine] = []
    parts: list[str] = []
    indices: list[int] = []

    def flush() -> None:
        if indices:
            result.append(_LogicalLine(indices[0] + 1, tuple(indices), "".join(parts)))
            parts.clear()
            indices.clear()

    for index, raw in enumerate(lines):
        line = raw.rstrip("\r")
        if _is_comment(line):
            flush()
            result.append(_LogicalLine(index + 1, (index,), line))
            continue
        indices.append(index)
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(line)
        flush()
    flush()
    return result


def _strip_inline_comment(text: str) -> str:
    """Drop a ``#`` comment that starts the line or follows whitespace.

    A ``#`` glued to other characters is kept, because URL fragments such as
    ``pkg @ https://x/pkg.tar.gz#sha256=...`` are part of the requirement.
    """
    for index, char in enumerate(text):
        if char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].strip()
    return text.strip()


def _split_options(text: str) -> tuple[str, str]:
    """Split ``foo==1 --hash=...`` into the requirement and its trailing pip options.

    Like pip, options start at the first whitespace-preceded ``-``; the
    requirement part is cut at that position rather than re-joined from
    tokens, so quoted marker values keep their spacing.
    """
    for index in range(1, len(text)):
        if text[index] == "-" and text[index - 1].isspace():
            return text[:index].strip(), text[index:].strip()
    return text.strip(), ""


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
    for logical in _logical_lines(_physical_lines(text)):
        line = _strip_inline_comment(logical.text)
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
        requirement_text, options = _split_options(line)
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


@dataclass(frozen=True)
class _Entry:
    """A requirement found in ``requirements.in``, with where it sits."""

    line: _LogicalLine
    written: str  # the requirement as written, without comment or options
    requirement: Requirement


def _key(requirement: Requirement) -> tuple[str, str]:
    # Markers decide the environment, so the same name under different markers is a separate entry.
    marker = str(requirement.marker) if requirement.marker is not None else ""
    return canonicalize_name(requirement.name), marker


def _extras(requirement: Requirement) -> frozenset[str]:
    return frozenset(canonicalize_name(extra) for extra in requirement.extras)


def _signature(requirement: Requirement) -> tuple[object, ...]:
    """What makes two requirements equal: name, marker, specifiers (as a set), extras and URL."""
    return (_key(requirement), frozenset(requirement.specifier), _extras(requirement), requirement.url)


def _satisfied_by(incoming: Requirement, existing: Requirement) -> bool:
    """Whether ``existing`` already asks for everything ``incoming`` asks for."""
    if incoming.url is not None and incoming.url != existing.url:
        return False
    spec_ok = not incoming.specifier or incoming.specifier == existing.specifier
    return spec_ok and _extras(incoming) <= _extras(existing)


def _parse_exact(text: str, *, origin: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "unparsable"
        raise ProjectError(f"{origin}: '{text}' is not a valid requirement ({reason})") from exc


def _existing_entries(lines: Sequence[str]) -> list[_Entry]:
    """Find the requirement lines in ``requirements.in``; everything else is ignored."""
    entries: list[_Entry] = []
    for logical in _logical_lines(lines):
        line = _strip_inline_comment(logical.text)
        if not line or line.startswith("-"):
            continue
        written, _options = _split_options(line)
        try:
            requirement = Requirement(written)
        except InvalidRequirement:
            continue  # bare URLs, paths and the like are kept but never matched
        entries.append(_Entry(logical, written, requirement))
    return entries


def merge_requirements(
    existing_text: str,
    incoming: Sequence[str],
    *,
    origin: str,
    remove: Sequence[str] = (),
) -> MergeResult:
    """Merge ``incoming`` requirements into the text of a ``requirements.in``.

    Existing lines are kept verbatim. Matching is by canonical name and marker:

    * a match that already covers the incoming requirement is reported in
      ``already_present`` (identical lines are never repeated);
    * a match it can hold together with (``pandas`` and ``pandas>=2``) is an
      overlap: the incoming line is added too, and reported in ``overlaps``;
      pip-compile intersects the two;
    * a match it cannot hold together with (``pyyaml<6`` and ``pyyaml>=6.0``)
      is a :class:`RequirementConflict` and nothing is appended for it; the
      caller refuses the change.

    New requirements go at the end under ``# Added by micropkg-tasks for <origin>``
    (reusing that block when it exists). ``remove`` lists requirements this origin
    added earlier and that are no longer wanted; matching lines are deleted unless
    also incoming, and the origin's header goes when nothing remains under it.
    When nothing changes, the text is returned untouched. Runs in time linear in
    the number of lines.
    """
    lines = _physical_lines(existing_text)
    # New lines follow the file's own line ending so CRLF files stay consistent.
    eol = "\r" if lines and lines[0].endswith("\r") else ""
    header = HEADER_PREFIX + origin
    entries = _existing_entries(lines)
    incoming_reqs = [_parse_exact(text, origin=origin) for text in incoming]

    # Removals first, so an updated pin (remove old, add new) replaces the line instead of overlapping.
    by_signature: dict[tuple[object, ...], list[_Entry]] = {}
    for entry in entries if remove else ():
        by_signature.setdefault(_signature(entry.requirement), []).append(entry)
    still_incoming = {_signature(req) for req in incoming_reqs} if remove else set()
    deleted: set[int] = set()
    removed: dict[str, None] = {}
    for text in remove:
        target = _parse_exact(text, origin=origin)
        signature = _signature(target)
        if signature in still_incoming:
            continue
        hits = by_signature.get(signature, [])
        for entry in hits:
            deleted.update(entry.line.indices)
        if hits:
            removed.setdefault(str(target))
    entries = [entry for entry in entries if not deleted.intersection(entry.line.indices)]

    # Merge one at a time; requirements added in this call count as existing, which collapses duplicates.
    known: dict[tuple[str, str], list[tuple[Requirement, str, bool]]] = {}
    for entry in entries:
        known.setdefault(_key(entry.requirement), []).append((entry.requirement, entry.written, False))
    added: list[str] = []
    present: dict[str, None] = {}
    conflicts: dict[RequirementConflict, None] = {}
    overlaps: dict[RequirementConflict, None] = {}
    for requirement in incoming_reqs:
        normalised = str(requirement)
        key = _key(requirement)
        matches = known.setdefault(key, [])
        if any(_satisfied_by(requirement, req) for req, _, _ in matches):
            if not all(is_new for _, _, is_new in matches):
                present.setdefault(normalised)
            continue
        clash = next((written for req, written, _ in matches if not can_both_hold(requirement, req)), None)
        if clash is not None:
            conflicts.setdefault(RequirementConflict(key[0], clash, normalised))
            continue
        listed = next((written for _, written, is_new in matches if not is_new), None)
        if listed is not None:
            overlaps.setdefault(RequirementConflict(key[0], listed, normalised))
        matches.append((requirement, normalised, True))
        added.append(normalised)

    output = _rebuild(lines, deleted, added, header, eol)
    text = existing_text if output is None else output
    return MergeResult(
        text, tuple(added), tuple(present), tuple(conflicts), tuple(removed),
        overlaps=tuple(overlaps), original_text=existing_text,
    )


def _rebuild(lines: list[str], deleted: set[int], added: list[str], header: str, eol: str) -> str | None:
    """Apply deletions and additions; None means nothing to change."""
    if not deleted and not added:
        return None
    headers = [i for i, line in enumerate(lines) if line.strip() == header]
    insert_after: int | None = None
    if added and headers:
        # Append into the last block of this origin: it runs until a blank line or another tool header.
        insert_after = headers[-1]
        for index in range(headers[-1] + 1, len(lines)):
            if not lines[index].strip() or lines[index].strip().startswith(HEADER_PREFIX):
                break
            if index not in deleted:
                insert_after = index
    new_lines = [line + eol for line in added]
    out: list[str] = []
    for index, line in enumerate(lines):
        if index not in deleted:
            out.append(line)
        if index == insert_after:
            out.extend(new_lines)
    if added and insert_after is None:
        out.extend([header + eol, *new_lines])
    out = _drop_empty_headers(out, header)
    while out and not out[-1].strip():
        out.pop()  # the result ends with exactly one newline
    return "\n".join(out) + "\n" if out else ""


def _has_requirement(lines: list[str]) -> bool:
    """Whether any of ``lines`` is a requirement; stops at the first one, so a long block costs one parse."""
    for logical in _logical_lines(lines):
        line = _strip_inline_comment(logical.text)
        if not line or line.startswith("-"):
            continue
        try:
            Requirement(_split_options(line)[0])
        except InvalidRequirement:
            continue
        return True
    return False


def _drop_empty_headers(lines: list[str], header: str) -> list[str]:
    """Remove this origin's headers that no longer have a requirement under them."""
    result: list[str] = []
    for index, line in enumerate(lines):
        if line.strip() == header:
            block: list[str] = []
            for following in lines[index + 1 :]:
                if not following.strip() or following.strip().startswith(HEADER_PREFIX):
                    break
                block.append(following)
            if not _has_requirement(block):
                continue
        result.append(line)
    return result
