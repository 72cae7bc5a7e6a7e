"""Reading ``micropkg.lock`` fast when it is exactly as the tool writes it.

The standard library's TOML parser is written in Python and takes about a second
per 10,000 lock entries, which made ``status`` on a large lock slow before it had
looked at a single file. The lock is almost always exactly as
:func:`micropkg_tasks.core.lock.lockfile.render_lock` wrote it, so this module reads that
form (and nothing else) with a few regular expressions, which costs a small
fraction of that.

:func:`parse_rendered` returns the same data ``tomllib.loads`` would, or None when
the text is not in the rendered form: a hand edit, another line ending, an escape
sequence, a key twice, anything unexpected. The caller then parses it with
``tomllib``, which also gives the error message for text that is not valid TOML.
``tests/test_lock_scale.py`` checks that both readers agree on rendered locks.
"""

from __future__ import annotations

import re
from typing import Any

HEADER = "# Written by micropkg-tasks: what each pulled micro-package installed. Do not edit by hand.\n"

# A TOML basic string without escapes (any text with a backslash goes to tomllib):
# no quote, no backslash, no control character other than tab.
_STR = r'"[^"\\\x00-\x08\x0a-\x1f\x7f]*"'


def _array(name: str) -> str:
    return rf"\[(?P<{name}>(?:{_STR}(?:, {_STR})*)?)\]"


_ENTRY = re.compile(
    rf"\n\[micropkg\.(?P<key>{_STR})\]\n"
    rf"name = (?P<name>{_STR})\n"
    rf"source = (?P<source>{_STR})\n"
    rf"version = (?P<version>{_STR})\n"
    rf"sdist-sha256 = (?P<sdist>{_STR})\n"
    rf"(?:source-sha256 = (?P<source_sha>{_STR})\n)?"
    rf"(?:origin = (?P<origin>{_STR})\n)?"
    rf"(?:commit = (?P<commit>{_STR})\n)?"
    rf"(?:depends-on = {_array('depends')}\n)?"
    rf"requirements = {_array('requirements')}\n"
    rf"(?:conflicts = {_array('conflicts')}\n)?"
    rf"(?:created = {_array('created')}\n)?"
    r"\n\[micropkg\.(?P=key)\.options\]\n"
    rf"(?P<options>(?:[A-Za-z0-9_-]+ = {_STR}\n)*)"
    r"\n\[micropkg\.(?P=key)\.files\]\n"
    rf"(?P<files>(?:{_STR} = {_STR}\n)*)"
    r"(?:\n\[micropkg\.(?P=key)\.blobs\]\n"
    rf"(?P<blobs>(?:{_STR} = {_STR}\n)*))?"
    r"(?:\n\[micropkg\.(?P=key)\.customised\]\n"
    rf"(?P<customised>(?:{_STR} = {_STR}\n)*))?"
)
_VERSION = re.compile(r"version = (0|[1-9][0-9]{0,8})\n")
_STRINGS = re.compile(_STR)
_PAIR = re.compile(rf"({_STR}|[A-Za-z0-9_-]+) = ({_STR})\n")


def _strings(text: str | None) -> list[str]:
    return [match[1:-1] for match in _STRINGS.findall(text)] if text else []


def _table(text: str | None) -> dict[str, str] | None:
    """The pairs of a table body, or None if a key comes twice (an error tomllib reports)."""
    if not text:
        return {}
    pairs = _PAIR.findall(text)
    table = {key[1:-1] if key.startswith('"') else key: value[1:-1] for key, value in pairs}
    return table if len(table) == len(pairs) else None


def parse_rendered(text: str) -> dict[str, Any] | None:
    """The lock's data if ``text`` is exactly in the form the tool writes, else None."""
    if not text.startswith(HEADER) or "\\" in text or "\r" in text:
        return None
    version = _VERSION.match(text, len(HEADER))
    if version is None:
        return None
    data: dict[str, Any] = {"version": int(version.group(1))}
    entries: dict[str, Any] = {}
    position = version.end()
    match_entry = _ENTRY.match
    while position < len(text):
        match = match_entry(text, position)
        if match is None:
            return None
        position = match.end()
        entry = _entry_data(match.groups())
        key = match["key"][1:-1]
        if entry is None or key in entries:
            return None
        entries[key] = entry
    if entries:
        data["micropkg"] = entries
    return data


def _entry_data(groups: tuple[str | None, ...]) -> dict[str, Any] | None:
    """One entry's data from the groups of an ``_ENTRY`` match (in the order they appear there),
    or None if one of its tables names a key twice."""
    (_, name, source, version, sdist, source_sha, origin, commit, depends, requirements, conflicts, created,
     options, files, blobs, customised) = groups
    entry: dict[str, Any] = {
        "name": name[1:-1], "source": source[1:-1], "version": version[1:-1],  # type: ignore[index]
        "sdist-sha256": sdist[1:-1],  # type: ignore[index]
    }
    if source_sha is not None:
        entry["source-sha256"] = source_sha[1:-1]
    if origin is not None:
        entry["origin"] = origin[1:-1]
    if commit is not None:
        entry["commit"] = commit[1:-1]
    if depends is not None:
        entry["depends-on"] = _strings(depends)
    entry["requirements"] = _strings(requirements)
    if conflicts is not None:
        entry["conflicts"] = _strings(conflicts)
    if created is not None:
        entry["created"] = _strings(created)
    tables = {"options": _table(options), "files": _table(files)}
    if blobs is not None:
        tables["blobs"] = _table(blobs)
    if customised is not None:
        tables["customised"] = _table(customised)
    if None in tables.values():
        return None
    entry.update(tables)
    return entry
