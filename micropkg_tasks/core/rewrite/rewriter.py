"""Rewrite references to moved modules in one Python source file (SPEC §4).

Packaging turns ``spaceflights.pipelines.data_cleaning`` into the top-level
package ``data_cleaning`` (or an alias); pulling moves it back under a project.
:func:`rewrite_module` rewrites imports, attribute chains and dotted string
literals for a set of :class:`ModuleMove` s and reports references that will not
resolve after packaging.

How it works: a cheap substring probe skips files that cannot be affected; the
standard ``ast`` module (fast, in C) then finds what needs rewriting and the
line of every outside reference; only when something must change is the file
parsed with libcst, a concrete syntax tree that reproduces every byte it does
not touch, so formatting, comments and docstrings survive exactly.

Relative imports are never rewritten. Sdists we write are pulled back
exactly, with no exceptions: packaging records which lines it rewrote, and pull
puts those back (``core/rewrite/restore.py``) before moving full paths to full paths.
For sdists without that record (Kedro's), package side then pull side gives
back the original text, with these known asymmetries (all semantically
equivalent or unavoidable, because the packaged forms coincide):

* ``import spaceflights.pipelines.data_cleaning`` (the root itself, no ``as``)
  in a file with no plain ``import spaceflights.pipelines.data_cleaning.<sub>``
  packages to ``import data_cleaning`` and uses ``data_cleaning.…``; it comes
  back as ``from spaceflights.pipelines import data_cleaning`` and the uses stay
  ``data_cleaning.…``. Both bind a name that resolves to the same module.
* ``import spaceflights.pipelines.data_cleaning as dc`` and
  ``from spaceflights.pipelines import data_cleaning as dc`` both package to
  ``import data_cleaning as dc``; it comes back as the ``from`` form.
* A string equal to the root (``"spaceflights.pipelines.data_cleaning"``)
  packages to ``"data_cleaning"``, which the pull side cannot tell from a
  namespace string, so it is not restored.
* ``from spaceflights.pipelines import data_cleaning, other`` is split into
  two statements and not merged back (``other`` is reported anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from micropkg_tasks.core.change.bounded import MAX_PARSED_BYTES, MIB, parsing
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.rewrite.pysource import parse_source, parseable_text
from micropkg_tasks.core.rewrite.strings import (
    MoveTable,
    OutsideReference,
    is_dotted,
    might_need_work,
    scan,
)

__all__ = ["ModuleMove", "OutsideReference", "RewriteResult", "rewrite_module"]

# What the first rewrite that changes something imports (libcst, through this module):
# worker processes that will rewrite load it as they start.
REWRITER_MODULES = ("micropkg_tasks.core.rewrite.cst",)


@dataclass(frozen=True)
class ModuleMove:
    """Module ``old`` (and everything below it) now lives at ``new``.

    ``string_roots`` (pull side) restricts string rewriting to literals naming
    ``old.<root>...`` with ``<root>`` in the set.
    """

    old: str
    new: str
    string_roots: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not (is_dotted(self.old) and is_dotted(self.new)):
            raise ValueError(f"not a dotted module path: {self.old!r} -> {self.new!r}")


@dataclass(frozen=True)
class RewriteResult:
    """The rewritten source, whether it differs, and the outside references."""

    code: str
    changed: bool
    outside: tuple[OutsideReference, ...]


def rewrite_module(
    source: str,
    moves: Sequence[ModuleMove],
    *,
    project_package: str | None = None,
    package_depth: int | None = None,
    filename: str = "<string>",
) -> RewriteResult:
    """Rewrite every reference to a moved module in ``source``.

    ``project_package`` and ``package_depth`` are for the package side: they
    turn on reporting of absolute references into the project that no move
    covers, and of relative imports climbing above the micro-package root.
    Raises ``ProjectError`` if ``source`` is not valid Python.
    """
    table = MoveTable(moves)
    if not might_need_work(source, table, project_package, package_depth):
        return RewriteResult(source, False, ())
    if len(source) > MAX_PARSED_BYTES:
        raise ProjectError(f"{filename} is larger than {MAX_PARSED_BYTES // MIB} MiB, too large to rewrite its imports")
    # The parsers get the text without a byte order mark and with old-Mac line endings as LF
    # (see parseable_text); both are put back, unchanged, on the result.
    bom = "\ufeff" if source.startswith("\ufeff") else ""
    text = parseable_text(source)
    cr_only = text != source[len(bom) :]
    with parsing(filename, "rewrite its imports"):
        parsed = parse_source(text, filename)
        outside, hot, chain_roots = scan(parsed, table, project_package, package_depth)
        code = text
        if hot:
            # libcst is imported only here: most files need no rewriting, and importing
            # it costs more than the rest of a small command's start-up.
            from micropkg_tasks.core.rewrite.cst import rewrite_statements

            code = rewrite_statements(text, parsed.tree, hot, table, chain_roots, filename)
    if cr_only:
        code = code.replace("\n", "\r")
    code = bom + code
    if code != source:
        _check_layout_kept(source, code, filename)
    return RewriteResult(code, code != source, tuple(outside))


def _line_endings(text: str) -> tuple[str, ...]:
    """The kinds of line break in ``text`` ("\\r\\n", lone "\\r", lone "\\n")."""
    crlf = text.count("\r\n")
    kinds = {"\r\n": crlf, "\r": text.count("\r") - crlf, "\n": text.count("\n") - crlf}
    return tuple(kind for kind, count in kinds.items() if count)


def _ending(text: str) -> str:
    for suffix in ("\r\n", "\r", "\n"):
        if text.endswith(suffix):
            return suffix
    return ""


def _check_layout_kept(source: str, code: str, filename: str) -> None:
    """Refuse, rather than alter silently, a rewrite that changed anything but import text:
    no new kind of line break, the same final line break, the same form feeds and BOM."""
    kept = (
        set(_line_endings(code)) <= set(_line_endings(source))
        and _ending(code) == _ending(source)
        and code.count("\f") == source.count("\f")
        and code.startswith("\ufeff") == source.startswith("\ufeff")
    )
    if not kept:
        raise ProjectError(
            f"{filename}: rewriting its imports would change its line breaks or form feeds, "
            "so it is refused (save it with LF or CRLF line endings)"
        )
