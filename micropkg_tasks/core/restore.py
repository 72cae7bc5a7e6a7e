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
from dataclasses import dataclass
from typing import Any, Mapping

from micropkg_tasks.core.errors import MicropkgError, SdistError
from micropkg_tasks.core.rewrite import ModuleMove
from micropkg_tasks.core.rewrite_strings import is_dotted

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

    def original(self, relative: str, packaged: str) -> str | None:
        """The file as it was in the source, which ``moves`` then take to the target; None when it
        was changed after packaging (the ordinary rules apply)."""
        key = f"{self.key_prefix}{relative}"
        if key not in self.records:
            return packaged
        restored = restore(packaged, self.records[key])
        if restored is not None and restored != packaged:
            self._check_only_references_differ(key, packaged, restored)
        return restored

    def _check_only_references_differ(self, key: str, packaged: str, restored: str) -> None:
        """A record is data from the archive: it must not be a way to put into the project text
        that the packaged file does not show. Packaging the restored text again must give the
        packaged file back byte for byte, so the two differ only in the references packaging
        rewrites."""
        # Most records only spell out module paths that packaging shortened: then the texts
        # differ only where those paths stand, and no parse is needed to see it.
        shortened = restored
        for move in self.packaging_moves:
            shortened = shortened.replace(move.old, move.new)
        if shortened == packaged:
            return
        from micropkg_tasks.core.rewrite import rewrite_module

        try:
            again = rewrite_module(restored, list(self.packaging_moves), filename=f"{self.source}: {key}").code
        except MicropkgError:
            again = None  # not even Python any more: certainly not what was packaged
        if again != packaged:
            raise SdistError(
                f"{self.source}: the restore record of {key} in {RESTORE_MEMBER} changes more than the module "
                "references packaging rewrites; the sdist was altered after packaging, so it is refused"
            )


def restore_source(
    micropkg: Mapping[str, Any], files: Mapping[str, bytes], source: str
) -> tuple[Mapping[str, Any], str, str] | None:
    """``(records, source package, source module path)`` for our sdists; None for Kedro's (today's rules).

    ``micropkg`` is the sdist's ``[tool.micropkg]`` and ``files`` its members below the root folder.
    """
    member, source_module, source_project = (micropkg.get(k) for k in ("restore", "module", "project"))
    if member != RESTORE_MEMBER or not (isinstance(source_module, str) and isinstance(source_project, str)):
        return None
    if not (is_dotted(source_module) and is_dotted(source_project)):
        return None
    records = parse_records(files.get(RESTORE_MEMBER, b""))
    if records is None:
        raise SdistError(
            f"{source}: [tool.micropkg] restore names {RESTORE_MEMBER}, but that member is missing or not "
            "restore records this tool wrote"
        )
    return records, source_project, source_module
