"""Reading ``micropkg.lock`` fast when it is exactly as the tool writes it.

The standard library's TOML parser is written in Python and takes about a second
per 10,000 lock entries, which made ``status`` on a large lock slow before it had
looked at a single file. The lock is almost always exactly as
:func:`micropkg_tasks.core.lockfile.render_lock` wrote it, so this module reads that
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
    return [match[1:-1] for match in _STRINGS.findall(text or "")]


def _table(text: str | None) -> dict[str, str] | None:
    """The pairs of a table body, or None if a key comes twice (an error tomllib reports)."""
    pairs = _PAIR.findall(text or "")
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
    while position < len(text):
        match = _ENTRY.match(text, position)
        if match is None:
            return None
        position = match.end()
        key = match["key"][1:-1]
        options, files = _table(match["options"]), _table(match["files"])
        blobs = _table(match["blobs"]) if match["blobs"] is not None else {}
        customised = _table(match["customised"]) if match["customised"] is not None else {}
        if key in entries or options is None or files is None or blobs is None or customised is None:
            return None
        entry: dict[str, Any] = {
            "name": match["name"][1:-1],
            "source": match["source"][1:-1],
            "version": match["version"][1:-1],
            "sdist-sha256": match["sdist"][1:-1],
        }
        if match["source_sha"] is not None:
            entry["source-sha256"] = match["source_sha"][1:-1]
        if match["origin"] is not None:
            entry["origin"] = match["origin"][1:-1]
        if match["commit"] is not None:
            entry["commit"] = match["commit"][1:-1]
        if match["depends"] is not None:
            entry["depends-on"] = _strings(match["depends"])
        entry["requirements"] = _strings(match["requirements"])
        if match["conflicts"] is not None:
            entry["conflicts"] = _strings(match["conflicts"])
        if match["created"] is not None:
            entry["created"] = _strings(match["created"])
        entry["options"], entry["files"] = options, files
        if match["blobs"] is not None:
            entry["blobs"] = blobs
        if match["customised"] is not None:
            entry["customised"] = customised
        entries[key] = entry
    if entries:
        data["micropkg"] = entries
    return data
