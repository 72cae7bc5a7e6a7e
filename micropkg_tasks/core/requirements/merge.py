"""Merge a micro-package's requirements into a project's ``requirements.in`` (SPEC §6).

A pure text-to-text function, so the caller can stage, diff and dry-run the result.
Existing lines are kept verbatim; lines follow pip's rules (core/requirements/lines.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.requirements.lines import (
    LogicalLine,
    logical_lines,
    physical_lines,
    split_options,
    strip_inline_comment,
)
from micropkg_tasks.core.requirements.specifiers import can_both_hold

HEADER_PREFIX = "# Added by micropkg-tasks for "


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
class _Entry:
    """A requirement found in ``requirements.in``, with where it sits."""

    line: LogicalLine
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
    for logical in logical_lines(lines):
        line = strip_inline_comment(logical.text)
        if not line or line.startswith("-"):
            continue
        written, _options = split_options(line)
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
    lines = physical_lines(existing_text)
    # New lines follow the file's own line ending so CRLF files stay consistent.
    eol = "\r" if lines and lines[0].endswith("\r") else ""
    entries = _existing_entries(lines)
    incoming_reqs = [_parse_exact(text, origin=origin) for text in incoming]
    # Removals first, so an updated pin (remove old, add new) replaces the line instead of overlapping.
    deleted, removed = _removed_lines(entries, incoming_reqs, remove, origin=origin)
    entries = [entry for entry in entries if not deleted.intersection(entry.line.indices)]
    merged = _merge_incoming(entries, incoming_reqs)
    output = _rebuild(lines, deleted, merged.added, HEADER_PREFIX + origin, eol)
    text = existing_text if output is None else output
    return MergeResult(
        text, tuple(merged.added), tuple(merged.present), tuple(merged.conflicts), tuple(removed),
        overlaps=tuple(merged.overlaps), original_text=existing_text,
    )


def _removed_lines(
    entries: Sequence[_Entry], incoming: Sequence[Requirement], remove: Sequence[str], *, origin: str
) -> tuple[set[int], dict[str, None]]:
    """The physical lines of the requirements ``remove`` lists (unless also incoming), and
    those requirements, as removed."""
    by_signature: dict[tuple[object, ...], list[_Entry]] = {}
    for entry in entries if remove else ():
        by_signature.setdefault(_signature(entry.requirement), []).append(entry)
    still_incoming = {_signature(req) for req in incoming} if remove else set()
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
    return deleted, removed


@dataclass
class _Merged:
    """What merging the incoming requirements into the kept ones found (each in order, once)."""

    added: list[str] = field(default_factory=list)
    present: dict[str, None] = field(default_factory=dict)
    conflicts: dict[RequirementConflict, None] = field(default_factory=dict)
    overlaps: dict[RequirementConflict, None] = field(default_factory=dict)


def _merge_incoming(entries: Sequence[_Entry], incoming: Sequence[Requirement]) -> _Merged:
    """Merge one at a time; requirements added in this call count as existing, which collapses duplicates."""
    known: dict[tuple[str, str], list[tuple[Requirement, str, bool]]] = {}
    for entry in entries:
        known.setdefault(_key(entry.requirement), []).append((entry.requirement, entry.written, False))
    merged = _Merged()
    for requirement in incoming:
        normalised = str(requirement)
        key = _key(requirement)
        matches = known.setdefault(key, [])
        if any(_satisfied_by(requirement, req) for req, _, _ in matches):
            if not all(is_new for _, _, is_new in matches):
                merged.present.setdefault(normalised)
            continue
        clash = next((written for req, written, _ in matches if not can_both_hold(requirement, req)), None)
        if clash is not None:
            merged.conflicts.setdefault(RequirementConflict(key[0], clash, normalised))
            continue
        listed = next((written for _, written, is_new in matches if not is_new), None)
        if listed is not None:
            merged.overlaps.setdefault(RequirementConflict(key[0], listed, normalised))
        matches.append((requirement, normalised, True))
        merged.added.append(normalised)
    return merged


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
    for logical in logical_lines(lines):
        line = strip_inline_comment(logical.text)
        if not line or line.startswith("-"):
            continue
        try:
            Requirement(split_options(line)[0])
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
