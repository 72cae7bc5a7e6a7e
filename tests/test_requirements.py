"""Tests for reading micro-package requirements and merging them into ``requirements.in``."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.requirements.merge import MergeResult, RequirementConflict, merge_requirements
from micropkg_tasks.core.requirements.read import ParsedRequirements, parse_requirements_text, read_requirements_file
from micropkg_tasks.core.requirements.specifiers import can_both_hold

SRC = "src/x/requirements.txt"


def parse(text: str) -> ParsedRequirements:
    return parse_requirements_text(text, source=SRC)


# --- parsing ---------------------------------------------------------------------------------


def test_comments_blank_lines_and_inline_comments_are_skipped_silently() -> None:
    text = "# a comment\n\npandas>=2  # pinned for parquet\n   \n  # indented comment\nnumpy\n"
    assert parse(text) == ParsedRequirements(("pandas>=2", "numpy"), ())


def test_hash_without_whitespace_before_it_is_kept_as_part_of_a_url() -> None:
    text = "pkg @ https://example.com/pkg.tar.gz#sha256=abc # comment\n"
    assert parse(text).requirements == ("pkg @ https://example.com/pkg.tar.gz#sha256=abc",)


def test_requirements_are_normalised_and_keep_markers_and_extras() -> None:
    text = (
        "pandas>=2; python_version >= '3.10'\n"
        "s3fs[boto3]>=2023\n"
        "Foo_Bar >= 1.0 , < 2\n"
        "pkg @ https://example.com/pkg.tar.gz\n"
        "pkg @ file:///opt/wheels/pkg.tar.gz\n"
    )
    assert parse(text) == ParsedRequirements(
        (
            'pandas>=2; python_version >= "3.10"',
            "s3fs[boto3]>=2023",
            "Foo_Bar<2,>=1.0",
            "pkg @ https://example.com/pkg.tar.gz",
            "pkg @ file:///opt/wheels/pkg.tar.gz",
        ),
        (),
    )


def test_duplicates_are_kept_in_file_order() -> None:
    assert parse("foo>=1\nbar\nFoo>=2\n").requirements == ("foo>=1", "bar", "Foo>=2")


def test_backslash_continuations_are_joined() -> None:
    text = "foo>=1,\\\n    <2\nbar \\\n  ; python_version < '3.12'\n"
    assert parse(text).requirements == ("foo<2,>=1", 'bar; python_version < "3.12"')


def test_continuation_error_reports_the_first_physical_line() -> None:
    text = "ok\nfoo >= \\\n  \\\n\n"
    with pytest.raises(ProjectError) as info:
        parse(text)
    assert str(info.value).startswith(f"{SRC}:2: 'foo >=' is not a valid requirement (")


def test_continuation_at_end_of_file_is_harmless() -> None:
    assert parse("foo \\").requirements == ("foo",)


@pytest.mark.parametrize(
    "option",
    [
        "-r other.txt",
        "--requirement other.txt",
        "-c constraints.txt",
        "-e .",
        "--editable ./libs/foo",
        "--index-url https://pypi.example.com/simple",
        "-i https://pypi.example.com/simple",
        "--extra-index-url https://pypi.example.com/simple",
        "--find-links ./wheels",
        "-f ./wheels",
        "--hash=sha256:abc",
        "--pre",
    ],
)
def test_each_option_line_is_skipped_with_a_warning_naming_file_and_line(option: str) -> None:
    result = parse(f"foo\n\n{option}\nbar\n")
    assert result == ParsedRequirements(("foo", "bar"), (f"{SRC}:3: skipped option line '{option}'",))


def test_indented_option_line_and_option_with_comment() -> None:
    result = parse("   -r base.txt  # shared pins\n")
    assert result == ParsedRequirements((), (f"{SRC}:1: skipped option line '-r base.txt'",))


def test_per_requirement_hash_is_dropped_with_a_warning() -> None:
    text = "foo==1.0 --hash=sha256:aaa\nbar==2.0 \\\n    --hash=sha256:bbb \\\n    --hash=sha256:ccc\n"
    assert parse(text) == ParsedRequirements(
        ("foo==1.0", "bar==2.0"),
        (
            f"{SRC}:1: dropped option '--hash=sha256:aaa' from requirement 'foo==1.0'",
            f"{SRC}:2: dropped option '--hash=sha256:bbb     --hash=sha256:ccc' from requirement 'bar==2.0'",
        ),
    )


def test_credentials_in_option_urls_are_not_repeated_in_warnings() -> None:
    result = parse("--extra-index-url https://user:s3cret@pypi.example.com/simple\n")
    assert result.warnings == (f"{SRC}:1: skipped option line '--extra-index-url https://***@pypi.example.com/simple'",)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("https://example.com/y.tar.gz", "a bare URL needs a name: write 'name @ URL'"),
        ("./libs/foo", "local paths cannot be packaged as requirements"),
        ("/opt/libs/foo", "local paths cannot be packaged as requirements"),
        ("foo-1.0.tar.gz", "local archives cannot be packaged as requirements"),
        ("foo @ ./libs/foo", "the URL after '@' must be absolute, such as https://... or file:///..."),
    ],
)
def test_non_requirements_are_rejected_with_file_line_and_reason(line: str, reason: str) -> None:
    with pytest.raises(ProjectError) as info:
        parse(f"# header\nfoo\n{line}\n")
    assert str(info.value) == f"{SRC}:3: '{line}' is not a valid requirement ({reason})"


# The reason for these comes from packaging, whose wording (and, for 'foo===', whether
# it rejects the line itself or leaves it to us) changes between releases: assert only
# what we own, the file, the line number, the offending text and a one-line reason.
@pytest.mark.parametrize(
    "line", ["foo >=", "foo==1 bar", "!!garbage", "foo>=1.*", "pandas>=2; python_version >>> '3'", "foo==="]
)
def test_invalid_specifiers_and_garbage_are_rejected(line: str) -> None:
    with pytest.raises(ProjectError) as info:
        parse(f"{line}  # why\n")
    message = str(info.value)
    assert message.startswith(f"{SRC}:1: '{line}' is not a valid requirement (")
    # The reason is one short line, not packaging's caret diagram.
    assert message.endswith(")") and "\n" not in message


def test_bare_url_with_credentials_is_redacted_in_the_error() -> None:
    with pytest.raises(ProjectError) as info:
        parse("https://tok@example.com/y.tar.gz\n")
    assert "tok" not in str(info.value)
    assert str(info.value).startswith(f"{SRC}:1: 'https://***@example.com/y.tar.gz' is not a valid requirement")


def test_crlf_line_endings_are_accepted() -> None:
    assert parse("foo>=1\r\n# c\r\nbar\r\n").requirements == ("foo>=1", "bar")


def test_read_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_requirements_file(tmp_path / "requirements.txt") == ParsedRequirements((), ())


def test_read_file_uses_display_name_in_warnings(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("\ufeff-r base.txt\nkedro~=0.19\n", encoding="utf-8")
    result = read_requirements_file(path, display="src/pkg/pipelines/x/requirements.txt")
    assert result == ParsedRequirements(
        ("kedro~=0.19",), ("src/pkg/pipelines/x/requirements.txt:1: skipped option line '-r base.txt'",)
    )


def test_read_file_defaults_display_to_the_path(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("foo\nfoo >=\n", encoding="utf-8")
    with pytest.raises(ProjectError, match=f"^{path}:2: 'foo >=' is not a valid requirement"):
        read_requirements_file(path)


def test_read_file_with_non_utf8_bytes_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"foo\ncaf\xe9\n")
    with pytest.raises(ProjectError) as info:
        read_requirements_file(path, display="src/x/requirements.txt")
    assert str(info.value) == "src/x/requirements.txt: requirements file is not valid UTF-8 (byte 7)"


def test_read_directory_is_a_project_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="^reqs: cannot read requirements file"):
        read_requirements_file(tmp_path, display="reqs")


# --- merging ---------------------------------------------------------------------------------

HEADER = "# Added by micropkg-tasks for pipelines.x"


def merge(existing: str, incoming: list[str], remove: tuple[str, ...] = ()) -> MergeResult:
    return merge_requirements(existing, incoming, origin="pipelines.x", remove=remove)


def test_merge_into_empty_text_creates_just_the_block() -> None:
    result = merge("", ["pandas>=2", "s3fs[boto3]>=2023"])
    assert result.text == f"{HEADER}\npandas>=2\ns3fs[boto3]>=2023\n"
    assert result.added == ("pandas>=2", "s3fs[boto3]>=2023")
    assert (result.already_present, result.conflicts, result.removed) == ((), (), ())
    assert result.changed


def test_merge_appends_new_requirements_and_keeps_everything_else_verbatim() -> None:
    existing = (
        "# project pins\n"
        "-r base.in\n"
        "-e ./libs/helpers\n"
        "--extra-index-url https://pypi.example.com/simple\n"
        "https://example.com/bare.tar.gz\n"
        "kedro~=0.19   # framework\n"
        "foo==1.0 \\\n"
        "    --hash=sha256:aaa\n"
        "\n"
    )
    result = merge(existing, ["kedro~=0.19", "requests"])
    assert result.text == existing + f"{HEADER}\nrequests\n"
    assert result.added == ("requests",)
    assert result.already_present == ("kedro~=0.19",)


def test_merge_adds_trailing_newline_when_input_lacks_one() -> None:
    result = merge("kedro~=0.19", ["pandas>=2"])
    assert result.text == f"kedro~=0.19\n{HEADER}\npandas>=2\n"


def test_merge_without_changes_returns_input_untouched() -> None:
    result = merge("kedro~=0.19\n\n\n", ["Kedro~=0.19"])
    assert result.text == "kedro~=0.19\n\n\n"
    assert not result.changed
    assert result.already_present == ("Kedro~=0.19",)


@pytest.mark.parametrize("incoming", ["Foo_Bar>=1", "foo-bar>=1", "FOO.bar>=1", "foo__bar >= 1"])
def test_merge_dedups_by_canonical_name(incoming: str) -> None:
    result = merge("foo.bar>=1\n", [incoming])
    assert result.text == "foo.bar>=1\n"
    assert result.added == ()
    assert result.already_present == (str(incoming).replace(" ", ""),)


def test_name_only_incoming_is_satisfied_by_any_pin() -> None:
    result = merge("pandas==2.1.4\n", ["pandas"])
    assert (result.text, result.already_present) == ("pandas==2.1.4\n", ("pandas",))


def test_specifier_sets_compare_as_sets() -> None:
    result = merge("foo>=1,<2\n", ["foo<2,>=1"])
    assert (result.already_present, result.conflicts) == (("foo<2,>=1",), ())


def test_conflicting_pin_is_reported_and_not_appended() -> None:
    existing = "Pandas==1.5.3  # legacy\n"
    result = merge(existing, ["pandas>=2", "numpy"])
    assert result.text == f"{existing}{HEADER}\nnumpy\n"
    assert result.conflicts == (RequirementConflict("pandas", "Pandas==1.5.3", "pandas>=2"),)
    assert result.added == ("numpy",)


def test_same_name_with_different_markers_are_separate_entries() -> None:
    existing = "pandas>=1.5; python_version < '3.10'\n"
    result = merge(existing, ['pandas>=2; python_version >= "3.10"'])
    assert result.text == f'{existing}{HEADER}\npandas>=2; python_version >= "3.10"\n'
    assert result.conflicts == ()


def test_same_marker_written_differently_matches() -> None:
    result = merge("pandas>=2;python_version>='3.10'\n", ['pandas>=2; python_version >= "3.10"'])
    assert not result.changed
    assert result.already_present == ('pandas>=2; python_version >= "3.10"',)


def test_extras_subset_is_present_but_superset_is_added_as_an_overlap() -> None:
    existing = "s3fs[boto3,Other]>=2023\n"
    subset = merge(existing, ["s3fs[boto3]>=2023", "s3fs"])
    assert (subset.text, subset.already_present) == (existing, ("s3fs[boto3]>=2023", "s3fs"))
    superset = merge("s3fs>=2023\n", ["s3fs[boto3]>=2023"])
    assert superset.text == f"s3fs>=2023\n{HEADER}\ns3fs[boto3]>=2023\n"
    assert superset.overlaps == (RequirementConflict("s3fs", "s3fs>=2023", "s3fs[boto3]>=2023"),)
    assert superset.conflicts == ()


def test_a_stricter_requirement_is_added_under_the_header_and_reported_as_an_overlap() -> None:
    result = merge("pandas\nkedro~=0.19\n", ["pandas>=2"])
    assert result.text == f"pandas\nkedro~=0.19\n{HEADER}\npandas>=2\n"
    assert result.added == ("pandas>=2",)
    assert result.overlaps == (RequirementConflict("pandas", "pandas", "pandas>=2"),)
    assert result.conflicts == ()
    again = merge(result.text, ["pandas>=2"])
    assert not again.changed
    assert again.overlaps == ()


@pytest.mark.parametrize(
    ("existing", "incoming"),
    [("pyyaml>=6.0", "pyyaml<6"), ("numpy==1.26", "numpy>=2"), ("foo~=1.4.2", "foo>=1.5"), ("x==1.*", "x>=2")],
)
def test_requirements_that_cannot_both_hold_are_conflicts_and_not_added(existing: str, incoming: str) -> None:
    result = merge(f"{existing}\n", [incoming])
    assert result.text == f"{existing}\n"
    assert result.conflicts == (RequirementConflict(_name(incoming), existing, str(Requirement(incoming))),)
    assert result.added == ()


@pytest.mark.parametrize(
    ("left", "right"),
    [("pandas", "pandas>=2"), ("a>=1,<2", "a>1.5"), ("a!=1.0", "a<=1.0"), ("a~=1.4.2", "a<1.4.3"), ("a==1.*", "a>1.9"),
     ("a>1.0", "a<1.0.1"), ("a===weird", "a>=1")],
)
def test_requirements_that_can_both_hold(left: str, right: str) -> None:
    assert can_both_hold(Requirement(left), Requirement(right))


def _name(text: str) -> str:
    return Requirement(text).name


def test_different_url_conflicts() -> None:
    result = merge("pkg @ https://example.com/a.tar.gz\n", ["pkg @ https://example.com/b.tar.gz", "pkg"])
    assert result.conflicts == (
        RequirementConflict("pkg", "pkg @ https://example.com/a.tar.gz", "pkg @ https://example.com/b.tar.gz"),
    )
    assert result.already_present == ("pkg",)
    assert not result.changed


def test_incoming_duplicates_are_collapsed() -> None:
    result = merge("", ["requests>=2", "Requests>=2", "requests >= 2", "requests<3"])
    assert result.text == f"{HEADER}\nrequests>=2\nrequests<3\n"
    assert result.added == ("requests>=2", "requests<3")
    assert (result.already_present, result.overlaps, result.conflicts) == ((), (), ())


def test_merging_many_lines_keeps_every_line_and_reports_each_overlap() -> None:
    existing = "".join(f"pkg{i}>=1\n" for i in range(3000))
    incoming = [f"pkg{i}>=1" for i in range(0, 3000, 2)] + [f"pkg{i}<5" for i in range(1, 3000, 2)]
    result = merge(existing, incoming)
    assert len(result.already_present) == 1500
    assert len(result.overlaps) == len(result.added) == 1500
    assert result.text == existing + HEADER + "\n" + "".join(f"pkg{i}<5\n" for i in range(1, 3000, 2))


def test_merge_is_idempotent() -> None:
    first = merge("kedro~=0.19\n", ["pandas>=2", "numpy"])
    second = merge(first.text, ["pandas>=2", "numpy"])
    assert second.text == first.text
    assert not second.changed
    assert second.added == ()
    assert second.already_present == ("pandas>=2", "numpy")


def test_new_requirements_go_into_the_existing_origin_block() -> None:
    existing = f"kedro~=0.19\n{HEADER}\npandas>=2\n\n# Added by micropkg-tasks for utils.y\nrequests\n"
    result = merge(existing, ["pandas>=2", "numpy"])
    assert result.text == (
        f"kedro~=0.19\n{HEADER}\npandas>=2\nnumpy\n\n# Added by micropkg-tasks for utils.y\nrequests\n"
    )


def test_removal_of_previously_added_lines_and_header_cleanup() -> None:
    existing = f"kedro~=0.19\n{HEADER}\npandas>=2\nnumpy\n# Added by micropkg-tasks for utils.y\nrequests\n"
    result = merge(existing, [], remove=("Pandas >= 2", "numpy"))
    assert result.text == "kedro~=0.19\n# Added by micropkg-tasks for utils.y\nrequests\n"
    assert result.removed == ("Pandas>=2", "numpy")
    assert result.changed


def test_removal_keeps_header_while_requirements_remain() -> None:
    existing = f"{HEADER}\npandas>=2\nnumpy\n"
    result = merge(existing, ["numpy"], remove=("pandas>=2", "scipy"))
    assert result.text == f"{HEADER}\nnumpy\n"
    assert result.removed == ("pandas>=2",)


@pytest.mark.parametrize(
    "before", ["# pinned for the x pipeline", "-r extra.txt", "./vendor/local-package", "--hash=sha256:aaa"],
    ids=["comment", "option", "path", "bare-option"],
)
def test_removal_keeps_the_header_when_a_requirement_remains_below_other_lines(before: str) -> None:
    """Comments, options and paths under the header are no requirement, but one further down keeps it."""
    existing = f"{HEADER}\n{before}\nnumpy\npandas>=2\n"
    result = merge(existing, [], remove=("pandas>=2",))
    assert result.text == f"{HEADER}\n{before}\nnumpy\n"


def test_removal_drops_a_header_left_with_only_comments_options_and_paths() -> None:
    existing = f"kedro\n{HEADER}\n# pinned\n-r extra.txt\n./vendor/local-package\npandas>=2\n"
    result = merge(existing, [], remove=("pandas>=2",))
    assert result.text == "kedro\n# pinned\n-r extra.txt\n./vendor/local-package\n"


def test_the_same_name_under_different_markers_is_a_separate_entry() -> None:
    existing = "pandas>=2; os_name == 'nt'\n"
    result = merge(existing, ["pandas<2; os_name != 'nt'", "pandas>=2.1"])
    assert result.conflicts == ()
    assert result.added == ('pandas<2; os_name != "nt"', "pandas>=2.1")
    assert result.overlaps == ()


def test_an_invalid_incoming_or_removed_requirement_names_the_origin_and_the_parser_reason() -> None:
    from packaging.requirements import InvalidRequirement

    try:
        Requirement("pandas >>> 2")
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]  # the parser's own first line, passed on as it is
    for incoming, remove in ((["pandas >>> 2"], ()), ([], ("pandas >>> 2",))):
        with pytest.raises(ProjectError) as caught:
            merge("numpy\n", incoming, remove=remove)
        assert str(caught.value) == f"pipelines.x: 'pandas >>> 2' is not a valid requirement ({reason})"


def test_removal_goes_on_past_a_requirement_that_is_still_incoming() -> None:
    existing = f"{HEADER}\nnumpy\npandas>=2\nscipy\n"
    result = merge(existing, ["numpy"], remove=("numpy", "pandas>=2", "scipy"))
    assert result.text == f"{HEADER}\nnumpy\n"
    assert result.removed == ("pandas>=2", "scipy")


def test_new_lines_go_right_under_an_existing_header_with_nothing_below_it() -> None:
    result = merge(f"kedro\n{HEADER}\n\n# Added by micropkg-tasks for utils.y\nrequests\n", ["numpy"])
    assert result.text == f"kedro\n{HEADER}\nnumpy\n\n# Added by micropkg-tasks for utils.y\nrequests\n"
    result = merge(f"kedro\n{HEADER}\n", ["numpy"])
    assert result.text == f"kedro\n{HEADER}\nnumpy\n"


def test_removal_only_matches_equal_requirements() -> None:
    existing = f"{HEADER}\npandas>=2.1\npandas>=2; os_name == 'nt'\n"
    result = merge(existing, [], remove=("pandas>=2",))
    assert result.text == existing
    assert result.removed == ()
    assert not result.changed


def test_removing_everything_yields_empty_text() -> None:
    result = merge(f"{HEADER}\npandas>=2\n", [], remove=("pandas>=2",))
    assert result.text == ""
    assert result.removed == ("pandas>=2",)


def test_removal_drops_trailing_blank_lines_and_continuation_lines() -> None:
    existing = f"kedro\n\n{HEADER}\nfoo==1.0 \\\n    --hash=sha256:aaa\n"
    result = merge(existing, [], remove=("foo==1.0",))
    assert result.text == "kedro\n"


def test_requirement_both_removed_and_incoming_stays() -> None:
    existing = f"{HEADER}\npandas>=2\n"
    result = merge(existing, ["pandas>=2"], remove=("pandas>=2",))
    assert result.text == existing
    assert result.removed == ()
    assert result.already_present == ("pandas>=2",)
    assert not result.changed


def test_updated_pin_replaces_the_old_line_in_place() -> None:
    existing = f"kedro\n{HEADER}\npandas>=2\nnumpy\n"
    result = merge(existing, ["pandas>=2.2", "numpy"], remove=("pandas>=2",))
    assert result.text == f"kedro\n{HEADER}\nnumpy\npandas>=2.2\n"
    assert (result.added, result.removed, result.conflicts) == (("pandas>=2.2",), ("pandas>=2",), ())


def test_sole_updated_pin_keeps_its_header() -> None:
    result = merge(f"kedro\n{HEADER}\npandas>=2\n", ["pandas>=2.2"], remove=("pandas>=2",))
    assert result.text == f"kedro\n{HEADER}\npandas>=2.2\n"


def test_crlf_files_get_crlf_for_new_lines() -> None:
    result = merge("kedro\r\n", ["numpy"])
    assert result.text == f"kedro\r\n{HEADER}\r\nnumpy\r\n"


def test_invalid_incoming_requirement_is_a_project_error() -> None:
    with pytest.raises(ProjectError, match=r"^pipelines\.x: 'foo >=' is not a valid requirement"):
        merge("", ["foo >="])
