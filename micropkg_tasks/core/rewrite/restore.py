"""An exact way back for the files our own sdists carry (SPEC §4 round trip).

Packaging shortens references (``pkg.pipelines.x.nodes`` becomes ``x.nodes``);
a pull cannot tell a shortened string from one that was short in the source,
and several import forms package to the same text. So packaging records, per
file, the lines it changed and what they were. Pull puts those lines back,
giving the source file exactly, and then moves references from the source
project's names to the target's, full path to full path, which has no
ambiguity. The record carries the sha256 of the packaged file: a file edited
inside the sdist afterwards is pulled by the ordinary rules instead.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping

from micropkg_tasks.core.errors import MicropkgError, SdistError
from micropkg_tasks.core.project.names import is_identifier, is_module_path
from micropkg_tasks.core.rewrite.restore_tokens import shorten, tokens
from micropkg_tasks.core.rewrite.rewriter import ModuleMove, rewrite_module

# The records travel as a member of their own next to PKG-INFO: source lines hold tabs, line
# breaks and any length, which [tool.micropkg] values must not.
RESTORE_MEMBER = "micropkg-restore.json"
_FORMAT = 1


def _lines(text: str) -> list[str]:
    """Lines with their ``\\n``; joining them gives ``text`` back (other line breaks stay inside)."""
    parts = text.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def record_edits(original: str, packaged: str) -> dict[str, Any]:
    """What turns ``packaged`` back into ``original``: replaced line ranges of ``packaged``."""
    old, new = _lines(original), _lines(packaged)
    matcher = difflib.SequenceMatcher(None, new, old, autojunk=False)
    edits = [
        {"line": i1, "count": i2 - i1, "text": "".join(old[j1:j2])}
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]
    return {"sha256": hashlib.sha256(packaged.encode("utf-8")).hexdigest(), "edits": edits}


def restore(packaged: str, record: Mapping[str, Any]) -> str | None:
    """The source text recorded for ``packaged``; None when the record does not fit it."""
    if not isinstance(record, Mapping) or record.get("sha256") != hashlib.sha256(packaged.encode("utf-8")).hexdigest():
        return None
    edits = record.get("edits")
    if not isinstance(edits, list):
        return None
    lines = _lines(packaged)
    for edit in sorted(edits, key=lambda e: e.get("line", -1) if isinstance(e, Mapping) else -1, reverse=True):
        if not isinstance(edit, Mapping):
            return None
        start, count, text = edit.get("line"), edit.get("count"), edit.get("text")
        if not (isinstance(start, int) and isinstance(count, int) and isinstance(text, str)):
            return None
        if start < 0 or count < 0 or start + count > len(lines):
            return None
        lines[start : start + count] = [text] if text else []
    return "".join(lines)


def render_records(records: Mapping[str, Any]) -> bytes:
    """The member's bytes: sorted keys, so the same records give the same bytes."""
    document = {"format": _FORMAT, "files": records}
    return (json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1) + "\n").encode("utf-8")


def parse_records(data: bytes) -> Mapping[str, Any] | None:
    """The records per file, or None when the member is not records we wrote."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        return None
    files = document.get("files")
    return files if isinstance(files, dict) else None


@dataclass(frozen=True)
class ExactRestore:
    """How to pull an sdist of ours exactly: its restore records, and full-path moves from the
    source project's names to the target's (identity moves left out)."""

    records: Mapping[str, Any]
    moves: tuple[ModuleMove, ...]
    key_prefix: str = ""  # where the files handed to ``rewrite`` sit in the sdist (``<name>/``, ``tests/``)
    # What packaging applied (source paths to the sdist's names): a record is trusted only if
    # packaging its restored text again gives the packaged file back exactly.
    packaging_moves: tuple[ModuleMove, ...] = ()
    source: str = "the sdist"

    def installed(self, relative: str, packaged: str) -> str | None:
        """The file as the target gets it: restored to the source text, then ``moves`` applied;
        None when it was changed after packaging (the ordinary rules apply)."""
        key = f"{self.key_prefix}{relative}"
        restored = restore(packaged, self.records[key]) if key in self.records else packaged
        if restored is None:
            return None
        result = restored
        if self.moves:
            result = rewrite_module(restored, list(self.moves), filename=f"{self.source}: {key}").code
        if restored != packaged:
            self._check_only_references_differ(key, packaged, restored, result)
        return result

    def _check_only_references_differ(self, key: str, packaged: str, restored: str, installed: str) -> None:
        """A record is data from the archive: it must not be a way to put into the project text
        that the packaged file does not show. Packaging the restored text again with the
        rewriter must give the packaged file back byte for byte, so the two differ only in
        references to the micro-package's own paths, and the pull moves exactly those."""
        if self._proven_by_tokens(self.records[key], packaged, installed):
            return
        try:
            again = rewrite_module(restored, list(self.packaging_moves), filename=f"{self.source}: {key}").code
        except MicropkgError:
            again = None  # not even Python any more: certainly not what was packaged
        if again != packaged:
            raise SdistError(
                f"{self.source}: the restore record of {key} in {RESTORE_MEMBER} changes more than the module "
                "references packaging rewrites; the sdist was altered after packaging, so it is refused"
            )

    def _proven_by_tokens(self, record: Mapping[str, Any], packaged: str, installed: str) -> bool:
        """Without a parse (see ``core/rewrite/restore_tokens.py``): each range of lines the record
        replaces differs from its replacement only where that spells out the micro-package's
        own paths, and the pull moved every one of them (none is left in the installed text)."""
        own = [(move.old, move.new) for move in self.packaging_moves]
        lines = _lines(packaged)
        end = 0
        for edit in sorted(record["edits"], key=lambda e: e["line"]):  # checked by ``restore``
            if edit["line"] < end:
                return False  # ranges that overlap are no record packaging writes
            start, end = edit["line"], edit["line"] + edit["count"]
            before, after = tokens("".join(lines[start:end])), tokens(edit["text"])
            if before is None or after is None or shorten(after, own) != before:
                return False
        # A path spelt out and not moved is still in the text, whole or as the parent of a
        # ``from ... import`` (``shorten`` only takes paths written without spaces).
        moved = [move.old for move in self.moves if move.old in dict(own)]
        return not any(path and path in installed for old in moved for path in (old, old.rpartition(".")[0]))


def _normal(name: str) -> bool:
    """Python reads identifiers in NFKC form: a name that is not would match other spellings."""
    return unicodedata.normalize("NFKC", name) == name


def restore_source(
    micropkg: Mapping[str, Any], files: Mapping[str, bytes], source: str, name: str
) -> tuple[Mapping[str, Any], str, str] | None:
    """``(records, source package, source module path)`` for our sdists; None for Kedro's (today's rules).

    ``micropkg`` is the sdist's ``[tool.micropkg]``, ``files`` its members below the root folder
    and ``name`` its package (its name, or the alias it was packaged under). The records may only
    spell out the paths of that package: ``project`` is a package name, and ``module`` a module
    path whose last part is ``name``, unless the sdist records ``name`` as its alias.
    """
    if micropkg.get("restore") != RESTORE_MEMBER:
        return None
    source_module, source_project, alias = (micropkg.get(k) for k in ("module", "project", "alias"))
    if not (isinstance(source_project, str) and is_identifier(source_project) and _normal(source_project)):
        raise SdistError(f"{source}: [tool.micropkg] project {source_project!r} is not a package name, so its "
                         f"{RESTORE_MEMBER} cannot be trusted and the sdist is refused")
    named = isinstance(source_module, str) and is_module_path(source_module) and _normal(source_module)
    if not named or (source_module.rsplit(".", 1)[-1] != name and alias != name):
        raise SdistError(f"{source}: [tool.micropkg] module {source_module!r} is not the module path of its "
                         f"package {name!r}, so its {RESTORE_MEMBER} cannot be trusted and the sdist is refused")
    records = parse_records(files.get(RESTORE_MEMBER, b""))
    if records is None:
        raise SdistError(
            f"{source}: [tool.micropkg] restore names {RESTORE_MEMBER}, but that member is missing or not "
            "restore records this tool wrote"
        )
    return records, source_project, source_module
