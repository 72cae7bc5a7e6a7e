"""A cheap, token by token proof that a restore record only spells out the micro-package's own paths.

A restore record (``core/rewrite/restore.py``) turns a packaged file back into its source
text. It comes from the archive, so it must not be a way to put into a project
text that the packaged file does not show. The authority is the rewriter itself:
packaging the restored text again must give the packaged file back. That needs a
parse, and most records only spell out module paths that packaging shortened, so
the lines a record replaces are first compared token by token (``tokenize``, no
parse), each replaced range against its replacement:

* each token is compared with the text before it, so equal token lists mean equal
  text;
* in the restored text, a dotted name that starts a reference (not after a ``.``)
  and spells one of the micro-package's own paths (``project.module``,
  ``tests.module``) counts as its packaged name; so does the one import form that
  packaging turns around (``from project.parent import last`` is ``import name``);
* a string literal whose whole value is such a path counts as its packaged value.

Anything else is "not proven", and the caller asks the rewriter. The caller also
checks that the pull moved every path spelt out (none is left in the installed
text), which catches a range whose context makes it a string rather than code. So
a reference to ``os.system`` that stands as an attribute of something else
(``subprocess.os.system``) is never taken for a reference to the micro-package,
whatever the record says.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Sequence
from typing import NamedTuple

# Prefixes of literals whose value is their text between the quotes.
_PLAIN_PREFIXES = frozenset({"", "r", "u", "R", "U"})
# What may follow ``import <last>`` for the import to be the whole statement.
_STATEMENT_ENDS = frozenset({tokenize.NEWLINE, tokenize.COMMENT, tokenize.ENDMARKER})


class Tok(NamedTuple):
    gap: str  # the text between the previous token and this one
    type: int
    string: str


def tokens(text: str) -> list[Tok] | None:
    """The tokens of ``text`` with the text before each; None when it does not tokenize."""
    starts = [0]
    for line in io.StringIO(text):
        starts.append(starts[-1] + len(line))
    out: list[Tok] = []
    end = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            row = token.start[0] - 1
            start = starts[row] + token.start[1] if row < len(starts) else len(text)
            out.append(Tok(text[end:start], token.type, token.string))
            end = max(end, start + len(token.string))
    except (tokenize.TokenError, SyntaxError, IndexError):
        return None
    if "".join(t.gap + t.string for t in out) != text:
        return None  # some text is in no token or gap (a shape this check does not know): not proven
    return out


def _dotted_at(toks: Sequence[Tok], i: int, parts: Sequence[str]) -> bool:
    """True when ``toks[i:]`` spells the dotted name ``parts`` with nothing between its pieces."""
    for n, part in enumerate(parts):
        k = i + 2 * n
        if k >= len(toks) or toks[k].type != tokenize.NAME or toks[k].string != part or (n and toks[k].gap):
            return False
        if n + 1 < len(parts) and (k + 1 >= len(toks) or toks[k + 1].string != "." or toks[k + 1].gap):
            return False
    return True


def _string_value(string: str) -> tuple[str, str, str] | None:
    """``(prefix, quote, value)`` of a plain one-part string literal."""
    head = len(string) - len(string.lstrip("rRuUbBfF"))
    prefix, rest = string[:head], string[head:]
    if prefix not in _PLAIN_PREFIXES:
        return None
    quote = rest[:3] if rest[:3] in ('"""', "'''") else rest[:1]
    if len(rest) < 2 * len(quote) or not rest.endswith(quote):
        return None
    return prefix, quote, rest[len(quote) : -len(quote)]


def _shortened_string(string: str, own: Sequence[tuple[str, str]]) -> str:
    found = _string_value(string)
    if found is None:
        return string
    prefix, quote, value = found
    for full, short in own:
        if value == full or value.startswith(full + "."):
            return f"{prefix}{quote}{short}{value[len(full):]}{quote}"
    return string


def shorten(toks: Sequence[Tok], own: Sequence[tuple[str, str]]) -> list[Tok]:
    """``toks`` with every reference to an ``own`` full path (``(full, short)`` pairs) in its
    packaged form, as packaging writes it."""
    owned = [(full.split("."), short) for full, short in own]
    out: list[Tok] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        after_dot = bool(out) and out[-1].string == "."
        if tok.type == tokenize.NAME and not after_dot:
            turned = _from_import(toks, i, owned) if tok.string == "from" else None
            if turned is not None:
                replacement, i = turned
                out.extend(replacement)
                continue
            match = next((m for m in owned if _dotted_at(toks, i, m[0])), None)
            if match is not None:
                out.append(Tok(tok.gap, tokenize.NAME, match[1]))
                i += 2 * len(match[0]) - 1
                continue
        if tok.type == tokenize.STRING:
            tok = Tok(tok.gap, tok.type, _shortened_string(tok.string, own))
        out.append(tok)
        i += 1
    return out


def _from_import(toks: Sequence[Tok], i: int, owned: Sequence[tuple[list[str], str]]) -> tuple[list[Tok], int] | None:
    """``from <parent> import <last> [as x]`` naming an own path, as packaging writes it:
    ``import <short> [as x]`` (``import <short> as <last>`` when the names differ)."""
    for parts, short in owned:
        if len(parts) < 2:
            continue
        k = i + 1 + 2 * (len(parts) - 1) - 1  # the token after the parent's last part
        if not (_dotted_at(toks, i + 1, parts[:-1]) and k + 2 < len(toks)):
            continue
        keyword, last = toks[k], toks[k + 1]
        if keyword.string != "import" or last.type != tokenize.NAME or last.string != parts[-1]:
            continue
        follower = toks[k + 2]
        if follower.string == "as":
            return [Tok(toks[i].gap, tokenize.NAME, "import"), Tok(last.gap, tokenize.NAME, short)], k + 2
        if follower.type in _STATEMENT_ENDS or follower.string == ";":
            turned = [Tok(toks[i].gap, tokenize.NAME, "import"), Tok(last.gap, tokenize.NAME, short)]
            if short != last.string:
                turned += [Tok(" ", tokenize.NAME, "as"), Tok(" ", tokenize.NAME, last.string)]
            return turned, k + 2
    return None
