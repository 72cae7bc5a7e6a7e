"""The three-way merge building block (core/merge.py): blob ids, clean merges, conflicts, bytes kept."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from micropkg_tasks.core.merge import git_blob_id, has_conflict_markers, is_text, merge_three

BASE = b"".join(b"line %d\n" % number for number in range(1, 41))


def replace_line(text: bytes, number: int, new: bytes) -> bytes:
    lines = text.splitlines(keepends=True)
    lines[number - 1] = new
    return b"".join(lines)


@pytest.mark.parametrize("data", [b"", b"hello\n", b"\x00\x01binary", "naïve\r\n".encode(), BASE])
def test_blob_id_is_the_one_git_computes(data):
    done = subprocess.run(["git", "hash-object", "--stdin"], input=data, capture_output=True, check=True)
    assert git_blob_id(data) == done.stdout.decode().strip()


def test_edits_on_different_lines_merge_cleanly():
    local = replace_line(BASE, 3, b"line 3, tuned locally\n")
    upstream = replace_line(BASE, 30, b"line 30, changed upstream\n")
    merged = merge_three(BASE, local, upstream)
    assert merged.conflicts == 0
    assert merged.content == replace_line(local, 30, b"line 30, changed upstream\n")
    assert not has_conflict_markers(merged.content)


def test_edits_of_the_same_line_conflict_with_the_base_section():
    local = replace_line(BASE, 30, b"line 30, local\n")
    upstream = replace_line(BASE, 30, b"line 30, upstream\n")
    merged = merge_three(BASE, local, upstream)
    assert merged.conflicts == 1
    region = (
        b"<<<<<<< local\nline 30, local\n"
        b"||||||| base (as installed)\nline 30\n"
        b"=======\nline 30, upstream\n>>>>>>> upstream\n"
    )
    assert merged.content == BASE.replace(b"line 30\n", region)
    assert has_conflict_markers(merged.content)


def test_line_endings_and_a_missing_final_newline_are_kept():
    base = b"a\r\nb\r\nc\r\nd\r\ne"
    local = b"A\r\nb\r\nc\r\nd\r\ne"
    upstream = b"a\r\nb\r\nc\r\nd\r\nE"
    assert merge_three(base, local, upstream) == type(merge_three(base, local, upstream))(b"A\r\nb\r\nc\r\nd\r\nE", 0)


def test_a_conflict_on_a_last_line_without_newline_still_puts_markers_on_their_own_lines():
    merged = merge_three(b"x = 1", b"x = 2", b"x = 3")
    assert merged.content.splitlines() == [
        b"<<<<<<< local", b"x = 2", b"||||||| base (as installed)", b"x = 1", b"=======", b"x = 3",
        b">>>>>>> upstream",
    ]


@pytest.mark.parametrize(("data", "text"), [(b"plain\n", True), (b"\x00", False), (b"\xff\xfe", False), (b"", True)])
def test_only_utf8_without_nul_is_text(data, text):
    assert is_text(data) is text


# -- properties ------------------------------------------------------------------------------------

LINE_COUNT = 30


@st.composite
def disjoint_edits(draw):
    """Two sets of line numbers with at least one untouched line between any two of them."""
    chosen = draw(st.lists(st.integers(0, LINE_COUNT - 1), min_size=2, max_size=12, unique=True))
    spaced: list[int] = []
    for number in sorted(chosen):
        if not spaced or number - spaced[-1] >= 2:
            spaced.append(number)
    sides = draw(st.lists(st.booleans(), min_size=len(spaced), max_size=len(spaced)))
    return [n for n, side in zip(spaced, sides) if side], [n for n, side in zip(spaced, sides) if not side]


@given(disjoint_edits())
def test_non_overlapping_edits_keep_both_sides(edits):
    local_lines, upstream_lines = edits
    base = [b"base %d\n" % n for n in range(LINE_COUNT)]
    local = [b"local %d\n" % n if n in local_lines else line for n, line in enumerate(base)]
    upstream = [b"upstream %d\n" % n if n in upstream_lines else line for n, line in enumerate(base)]
    expected = [
        b"local %d\n" % n if n in local_lines else b"upstream %d\n" % n if n in upstream_lines else line
        for n, line in enumerate(base)
    ]
    merged = merge_three(b"".join(base), b"".join(local), b"".join(upstream))
    assert merged.conflicts == 0
    assert merged.content == b"".join(expected)


# A small alphabet, so that both sides often touch the same lines and repeat lines.
lines_of = st.lists(st.sampled_from([b"a\n", b"b\n", b"c\n", b"d\n", b"e\n", b"f\n"]), max_size=12)


@given(lines_of, lines_of, lines_of)
def test_no_local_line_is_lost_without_a_marker(base, local, upstream):
    merged = merge_three(b"".join(base), b"".join(local), b"".join(upstream))
    kept = Counter(merged.content.splitlines(keepends=True))
    added_locally = Counter(local) - Counter(base)
    # Every line the local side added is still there: merged in, or inside a conflict region.
    for line, count in added_locally.items():
        assert kept[line] >= count, (base, local, upstream, merged)
    assert (merged.conflicts > 0) == has_conflict_markers(merged.content)
    if merged.conflicts == 0 and local == base:
        assert merged.content == b"".join(upstream)
