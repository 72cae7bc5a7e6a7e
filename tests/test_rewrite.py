"""Tests for micropkg_tasks.core.rewrite.rewriter: import rewriting for package and pull (SPEC §4)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.rewrite.rewriter import ModuleMove, OutsideReference, RewriteResult, rewrite_module
from tests.helpers import build_file_tree

OLD = "spaceflights.pipelines.data_cleaning"
ROOTS = frozenset({"nodes", "pipeline", "sub"})
TEST_ROOTS = frozenset({"test_nodes", "helpers"})


def package_moves(alias: str = "data_cleaning") -> list[ModuleMove]:
    """What packaging ``pipelines.data_cleaning`` (as ``alias``) applies to code and tests."""
    return [ModuleMove(OLD, alias), ModuleMove("tests.pipelines.data_cleaning", "tests")]


def pull_moves(alias: str = "data_cleaning") -> list[ModuleMove]:
    """The reverse: pulling ``alias`` back to ``spaceflights.pipelines.data_cleaning``."""
    return [
        ModuleMove(alias, OLD, ROOTS),
        ModuleMove("tests", "tests.pipelines.data_cleaning", TEST_ROOTS),
    ]


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def package(text: str, alias: str = "data_cleaning", depth: int | None = 0) -> RewriteResult:
    return rewrite_module(
        text, package_moves(alias), project_package="spaceflights", package_depth=depth, filename="x.py"
    )


def pull(text: str, alias: str = "data_cleaning") -> RewriteResult:
    return rewrite_module(text, pull_moves(alias), filename="x.py")


def assert_package(before: str, after: str, alias: str = "data_cleaning") -> RewriteResult:
    result = package(src(before), alias)
    assert result.code == src(after)
    assert result.changed == (src(before) != src(after))
    compile(result.code, "x.py", "exec")
    return result


# ---------------------------------------------------------------- package side forms


def test_from_import_of_submodules_keeps_formatting_and_comments() -> None:
    result = assert_package(
        """
        from spaceflights.pipelines.data_cleaning.nodes import (  # the nodes
            clean,   # cleans
            drop as   dropped ,
        )
        from spaceflights.pipelines.data_cleaning import nodes, pipeline as pl
        from  spaceflights.pipelines.data_cleaning.sub.helpers  import  *
        """,
        """
        from data_cleaning.nodes import (  # the nodes
            clean,   # cleans
            drop as   dropped ,
        )
        from data_cleaning import nodes, pipeline as pl
        from  data_cleaning.sub.helpers  import  *
        """,
    )
    assert result.outside == ()


def test_import_as_and_alias_name() -> None:
    assert_package(
        """
        import spaceflights.pipelines.data_cleaning.nodes as n
        import spaceflights.pipelines.data_cleaning as dc
        """,
        """
        import cleaning.nodes as n
        import cleaning as dc
        """,
        alias="cleaning",
    )


def test_plain_import_rewrites_attribute_chains_everywhere() -> None:
    assert_package(
        """
        import spaceflights.pipelines.data_cleaning.nodes


        @spaceflights.pipelines.data_cleaning.nodes.register
        def run(f=spaceflights.pipelines.data_cleaning.nodes.clean):
            out = spaceflights.pipelines.data_cleaning.nodes.clean(x)  # call
            spaceflights.pipelines.data_cleaning.nodes.CACHE = {}
            return (spaceflights.pipelines.data_cleaning).nodes, f"{spaceflights.pipelines.data_cleaning.nodes.X}"
        """,
        """
        import cleaning.nodes


        @cleaning.nodes.register
        def run(f=cleaning.nodes.clean):
            out = cleaning.nodes.clean(x)  # call
            cleaning.nodes.CACHE = {}
            return (cleaning).nodes, f"{cleaning.nodes.X}"
        """,
        alias="cleaning",
    )


def test_multi_name_import_rewrites_only_affected_names() -> None:
    assert_package(
        """
        import os, spaceflights.pipelines.data_cleaning.nodes, sys as system
        os.path, spaceflights.pipelines.data_cleaning.nodes.clean
        """,
        """
        import os, data_cleaning.nodes, sys as system
        os.path, data_cleaning.nodes.clean
        """,
    )


def test_from_parent_import_module_becomes_import() -> None:
    assert_package(
        """
        from spaceflights.pipelines import data_cleaning
        from spaceflights.pipelines import data_cleaning as dc
        data_cleaning.nodes.clean(dc)
        """,
        """
        import data_cleaning
        import data_cleaning as dc
        data_cleaning.nodes.clean(dc)
        """,
    )


def test_from_parent_import_module_with_alias_keeps_local_name() -> None:
    assert_package(
        """
        from spaceflights.pipelines import data_cleaning
        from spaceflights.pipelines import data_cleaning as cleaning
        """,
        """
        import cleaning as data_cleaning
        import cleaning
        """,
        alias="cleaning",
    )


def test_from_parent_import_with_dotted_new_name() -> None:
    moves = [ModuleMove(OLD, "newpkg.utils.cleaning")]
    text = src(
        """
        from spaceflights.pipelines import data_cleaning
        from spaceflights.pipelines import data_cleaning as cleaning
        from spaceflights.pipelines import data_cleaning as dc
        import spaceflights.pipelines.data_cleaning.nodes
        spaceflights.pipelines.data_cleaning.nodes.clean()
        """
    )
    assert rewrite_module(text, moves).code == src(
        """
        from newpkg.utils import cleaning as data_cleaning
        from newpkg.utils import cleaning
        from newpkg.utils import cleaning as dc
        import newpkg.utils.cleaning.nodes
        newpkg.utils.cleaning.nodes.clean()
        """
    )


def test_from_parent_import_is_split_and_sibling_reported() -> None:
    result = assert_package(
        """
        def load():
            # comment stays
            from spaceflights.pipelines import other, data_cleaning  # noqa: F401
            return data_cleaning, other


        from spaceflights.pipelines import (
            data_cleaning,
            other,
        )
        if True: from spaceflights.pipelines import data_cleaning, other
        """,
        """
        def load():
            # comment stays
            from spaceflights.pipelines import other  # noqa: F401
            import data_cleaning
            return data_cleaning, other


        from spaceflights.pipelines import (
            other,
        )
        import data_cleaning
        if True: from spaceflights.pipelines import other; import data_cleaning
        """,
    )
    assert result.outside == (
        OutsideReference(3, "spaceflights.pipelines.other", "import"),
        OutsideReference(9, "spaceflights.pipelines.other", "import"),
        OutsideReference(11, "spaceflights.pipelines.other", "import"),
    )


def test_star_import_from_parent_is_left_alone_and_reported() -> None:
    result = assert_package(
        "from spaceflights.pipelines import *\n", "from spaceflights.pipelines import *\n"
    )
    assert result.outside == (OutsideReference(1, "spaceflights.pipelines", "import"),)


def test_mock_patch_and_other_dotted_strings() -> None:
    assert_package(
        """
        @mock.patch("spaceflights.pipelines.data_cleaning.nodes.load")
        def test_clean(mocker):
            mocker.patch('spaceflights.pipelines.data_cleaning.nodes.clean', return_value=1)
            mocker.patch(r"tests.pipelines.data_cleaning.helpers.make", u'spaceflights.pipelines.data_cleaning')
            importlib.import_module(\"\"\"spaceflights.pipelines.data_cleaning.sub\"\"\")
            entry = "spaceflights.pipelines.data_cleaning.pipeline:create_pipeline"
            __all__ = ["spaceflights.pipelines.data_cleaning.nodes", "clean"]
        """,
        """
        @mock.patch("cleaning.nodes.load")
        def test_clean(mocker):
            mocker.patch('cleaning.nodes.clean', return_value=1)
            mocker.patch(r"tests.helpers.make", u'cleaning')
            importlib.import_module(\"\"\"cleaning.sub\"\"\")
            entry = "cleaning.pipeline:create_pipeline"
            __all__ = ["cleaning.nodes", "clean"]
        """,
        alias="cleaning",
    )


def test_strings_that_are_not_plain_dotted_paths_stay() -> None:
    text = src(
        '''
        """Docstring: spaceflights.pipelines.data_cleaning.nodes"""
        import spaceflights.pipelines.data_cleaning.nodes
        "spaceflights.pipelines.data_cleaning.nodes"
        a = f"spaceflights.pipelines.data_cleaning.nodes"
        b = b"spaceflights.pipelines.data_cleaning.nodes"
        c = "spaceflights.pipelines.data_cleaning\\x2enodes"
        d = "see spaceflights.pipelines.data_cleaning.nodes"
        g = "spaceflights/pipelines/data_cleaning"
        h = "spaceflights.pipelines.data_cleaning." "nodes"
        '''
    )
    result = package(text)
    expected = text.replace(
        "import spaceflights.pipelines.data_cleaning.nodes\n", "import data_cleaning.nodes\n"
    )
    assert result.code == expected != text
    assert result.outside == ()


def test_test_files_use_both_moves() -> None:
    assert_package(
        """
        import pytest
        from spaceflights.pipelines.data_cleaning.nodes import clean
        from tests.pipelines.data_cleaning.helpers import make_frame
        from tests.pipelines.data_cleaning import helpers
        import tests.pipelines.data_cleaning.helpers as h
        from tests.conftest import shared


        def test_clean(mocker):
            mocker.patch("tests.pipelines.data_cleaning.helpers.make_frame")
            assert clean(make_frame()) == 1
        """,
        """
        import pytest
        from data_cleaning.nodes import clean
        from tests.helpers import make_frame
        from tests import helpers
        import tests.helpers as h
        from tests.conftest import shared


        def test_clean(mocker):
            mocker.patch("tests.helpers.make_frame")
            assert clean(make_frame()) == 1
        """,
    )


def test_relative_imports_are_never_rewritten() -> None:
    text = src(
        """
        from . import nodes
        from .nodes import clean
        from .. import data_cleaning
        from ..data_cleaning.nodes import clean as c2
        """
    )
    assert rewrite_module(text, package_moves()).code == text
    assert rewrite_module(text, pull_moves()).code == text


def test_escaping_relative_imports_are_reported_with_lines() -> None:
    text = src(
        """
        from . import nodes
        from ..utils.io import load
        from .. import settings


        def f():
            from ...x import y
        """
    )
    at_root = package(text, depth=0)
    assert at_root.code == text
    assert at_root.outside == (
        OutsideReference(2, "..utils.io", "relative-import"),
        OutsideReference(3, "..", "relative-import"),
        OutsideReference(7, "...x", "relative-import"),
    )
    assert package(text, depth=1).outside == (OutsideReference(7, "...x", "relative-import"),)
    assert package(text, depth=None).outside == ()


def test_outside_absolute_references_are_reported_with_lines() -> None:
    result = assert_package(
        """
        from spaceflights.utils.io import load, save
        import spaceflights.settings, os
        from spaceflights import pipelines
        from spaceflights.pipelines.data_cleaning.nodes import clean


        def f():
            return "spaceflights.utils.io:load", "spaceflights.pipelines.data_cleaning_v2"
        """,
        """
        from spaceflights.utils.io import load, save
        import spaceflights.settings, os
        from spaceflights import pipelines
        from data_cleaning.nodes import clean


        def f():
            return "spaceflights.utils.io:load", "spaceflights.pipelines.data_cleaning_v2"
        """,
    )
    assert result.outside == (
        OutsideReference(1, "spaceflights.utils.io", "import"),
        OutsideReference(2, "spaceflights.settings", "import"),
        OutsideReference(3, "spaceflights.pipelines", "import"),
        OutsideReference(8, "spaceflights.utils.io:load", "string"),
        OutsideReference(8, "spaceflights.pipelines.data_cleaning_v2", "string"),
    )


def test_outside_references_need_project_package() -> None:
    text = "from spaceflights.utils.io import load\n"
    assert rewrite_module(text, package_moves()).outside == ()


def test_component_boundaries() -> None:
    text = src(
        """
        from spaceflights.pipelines.data_cleaning_v2.nodes import clean
        import spaceflights.pipelines.data_cleaning_v2
        from spaceflights.pipelines import data_cleaning_v2
        spaceflights.pipelines.data_cleaning_v2.nodes.clean()
        mocker.patch("spaceflights.pipelines.data_cleaning_v2.nodes.clean")
        """
    )
    result = package(text)
    assert result.code == text
    assert not result.changed
    assert [(ref.line, ref.name) for ref in result.outside] == [
        (1, "spaceflights.pipelines.data_cleaning_v2.nodes"),
        (2, "spaceflights.pipelines.data_cleaning_v2"),
        (3, "spaceflights.pipelines.data_cleaning_v2"),
        (5, "spaceflights.pipelines.data_cleaning_v2.nodes.clean"),
    ]


def test_longest_move_wins() -> None:
    moves = [
        ModuleMove("spaceflights.pipelines", "pipes"),
        ModuleMove(OLD, "cleaning"),
        ModuleMove("spaceflights", "sf"),
    ]
    text = src(
        """
        from spaceflights.pipelines.data_cleaning.nodes import a
        from spaceflights.pipelines.other import b
        from spaceflights.utils import c
        from spaceflights.pipelines import data_cleaning, other
        import spaceflights.pipelines.data_cleaning.nodes
        spaceflights.pipelines.data_cleaning.nodes.f(spaceflights.pipelines.other.g)
        x = "spaceflights.pipelines.data_cleaning.nodes.f", "spaceflights.settings"
        """
    )
    assert rewrite_module(text, moves).code == src(
        """
        from cleaning.nodes import a
        from pipes.other import b
        from sf.utils import c
        from pipes import other
        import cleaning as data_cleaning
        import cleaning.nodes
        cleaning.nodes.f(pipes.other.g)
        x = "cleaning.nodes.f", "sf.settings"
        """
    )


# ---------------------------------------------------------------- pull side


def test_pull_rewrites_from_imports_and_strings_within_roots() -> None:
    text = src(
        """
        from data_cleaning.nodes import clean
        from tests.helpers import make_frame
        from tests.conftest import shared


        def create_pipeline():
            mocker.patch("data_cleaning.nodes.clean")
            mocker.patch("tests.helpers.make_frame")
            return pipeline(
                [node(clean, "data_cleaning.raw", "data_cleaning.clean")],
                namespace="data_cleaning",
                tags=["data_cleaning.nodes_tag", "tests.conftest"],
            )
        """
    )
    assert pull(text).code == src(
        """
        from spaceflights.pipelines.data_cleaning.nodes import clean
        from tests.pipelines.data_cleaning.helpers import make_frame
        from tests.pipelines.data_cleaning.conftest import shared


        def create_pipeline():
            mocker.patch("spaceflights.pipelines.data_cleaning.nodes.clean")
            mocker.patch("tests.pipelines.data_cleaning.helpers.make_frame")
            return pipeline(
                [node(clean, "data_cleaning.raw", "data_cleaning.clean")],
                namespace="data_cleaning",
                tags=["data_cleaning.nodes_tag", "tests.conftest"],
            )
        """
    )


def test_pull_chain_mode_rewrites_load_names_only() -> None:
    text = src(
        """
        import data_cleaning
        import data_cleaning.nodes


        class data_cleaning_holder:
            def run(self, data_cleaning=None, *, key=data_cleaning):
                result = data_cleaning.nodes.clean(key, data_cleaning=1)
                other.data_cleaning = data_cleaning
                for data_cleaning in []:
                    pass
                return result, self.data_cleaning
        """
    )
    assert pull(text).code == src(
        """
        import spaceflights.pipelines.data_cleaning
        import spaceflights.pipelines.data_cleaning.nodes


        class data_cleaning_holder:
            def run(self, data_cleaning=None, *, key=spaceflights.pipelines.data_cleaning):
                result = spaceflights.pipelines.data_cleaning.nodes.clean(key, data_cleaning=1)
                other.data_cleaning = spaceflights.pipelines.data_cleaning
                for data_cleaning in []:
                    pass
                return result, self.data_cleaning
        """
    )


def test_pull_without_chain_mode_keeps_bound_names() -> None:
    text = src(
        """
        import data_cleaning, os
        import data_cleaning as dc
        data_cleaning.nodes.clean(dc.nodes)
        """
    )
    assert pull(text).code == src(
        """
        import os
        from spaceflights.pipelines import data_cleaning
        from spaceflights.pipelines import data_cleaning as dc
        data_cleaning.nodes.clean(dc.nodes)
        """
    )
    # With an alias the local name is kept through ``as``.
    assert pull("import cleaning\ncleaning.f()\n", "cleaning").code == (
        "from spaceflights.pipelines import data_cleaning as cleaning\ncleaning.f()\n"
    )


def test_pull_to_single_identifier_keeps_binding() -> None:
    moves = [ModuleMove("cleaning", "data_cleaning")]
    assert rewrite_module("import cleaning\ncleaning.f()\n", moves).code == (
        "import data_cleaning as cleaning\ncleaning.f()\n"
    )


# ---------------------------------------------------------------- round trip

ROUND_TRIP_SOURCES = {
    "from_submodules": """
        from spaceflights.pipelines.data_cleaning.nodes import (  # comment
            clean,  # inside
            drop as dropped,   # trailing comma next
        )
        from spaceflights.pipelines.data_cleaning import nodes , pipeline
        """,
    "import_as": """
        import spaceflights.pipelines.data_cleaning.nodes as n
        import os, spaceflights.pipelines.data_cleaning.sub.helpers as h ; import sys
        n.clean(h)
        """,
    "plain_import_chains": """
        import spaceflights.pipelines.data_cleaning
        import spaceflights.pipelines.data_cleaning.nodes


        def run(x):
            spaceflights.pipelines.data_cleaning.LOADED = True
            return spaceflights.pipelines.data_cleaning.nodes.clean(x)
        """,
    "from_parent": """
        from spaceflights.pipelines import data_cleaning
        from spaceflights.pipelines import data_cleaning as dc


        def run():
            return data_cleaning.nodes.clean(dc.nodes)
        """,
    "mock_patch": """
        from unittest import mock

        from spaceflights.pipelines.data_cleaning.nodes import clean
        from tests.pipelines.data_cleaning.helpers import make_frame


        @mock.patch("spaceflights.pipelines.data_cleaning.nodes.load")
        def test_clean(load, mocker):
            mocker.patch('spaceflights.pipelines.data_cleaning.pipeline.create_pipeline')
            mocker.patch("tests.pipelines.data_cleaning.helpers.make_frame")
            pipeline(namespace="data_cleaning", inputs="data_cleaning.raw")
        """,
    "relative_and_odd_formatting": '''
        """Module docstring mentioning spaceflights.pipelines.data_cleaning."""
        # spaceflights.pipelines.data_cleaning in a comment
        from . import nodes
        from .nodes import(clean ,
            drop)
        from ..data_cleaning import pipeline
        import   spaceflights.pipelines.data_cleaning.nodes   # odd
        x = spaceflights.pipelines.data_cleaning.nodes .clean
        if x: import spaceflights.pipelines.data_cleaning.nodes as n3
        ''',
}


@pytest.mark.parametrize("alias", ["data_cleaning", "cleaning"])
@pytest.mark.parametrize("case", sorted(ROUND_TRIP_SOURCES))
def test_round_trip(case: str, alias: str) -> None:
    original = src(ROUND_TRIP_SOURCES[case])
    packaged = package(original, alias, depth=None)
    assert packaged.changed
    # Only the docstring and the comment may still mention the old path.
    assert all(line.startswith(('"""', "#")) for line in packaged.code.splitlines() if OLD in line)
    compile(packaged.code, "packaged.py", "exec")
    pulled = pull(packaged.code, alias)
    assert pulled.code == original


def test_round_trip_of_plain_root_import_is_equivalent(tmp_path: Path) -> None:
    """The documented asymmetry: ``import pkg.x`` alone comes back as ``from pkg import x``."""
    original = src(
        """
        import spaceflights.pipelines.data_cleaning


        def run():
            return spaceflights.pipelines.data_cleaning.nodes.clean(" a ")
        """
    )
    packaged = package(original)
    assert packaged.code == src(
        """
        import data_cleaning


        def run():
            return data_cleaning.nodes.clean(" a ")
        """
    )
    pulled = pull(packaged.code)
    assert pulled.code == src(
        """
        from spaceflights.pipelines import data_cleaning


        def run():
            return data_cleaning.nodes.clean(" a ")
        """
    )
    build_file_tree(
        tmp_path,
        {
            "spaceflights/__init__.py": "",
            "spaceflights/pipelines/__init__.py": "",
            "spaceflights/pipelines/data_cleaning/__init__.py": "from . import nodes\n",
            "spaceflights/pipelines/data_cleaning/nodes.py": "def clean(x):\n    return x.strip()\n",
            "original.py": original,
            "pulled.py": pulled.code,
        },
    )
    script = (
        "import original, pulled, spaceflights.pipelines.data_cleaning as m\n"
        "assert original.spaceflights.pipelines.data_cleaning is m is pulled.data_cleaning\n"
        "print(original.run(), pulled.run())\n"
    )
    assert run_python(script, tmp_path) == "a a"


# ---------------------------------------------------------------- mechanics


def test_fast_path_returns_source_without_parsing() -> None:
    text = "def broken(:\n    from . import x\n"  # invalid, but nothing to rewrite
    result = rewrite_module(text, package_moves(), project_package="spaceflights")
    assert result.code is text
    assert result == RewriteResult(text, False, ())


def test_unchanged_file_reports_changed_false() -> None:
    text = "from .nodes import clean\nimport spaceflights_tools\n"
    result = package(text)
    assert result == RewriteResult(text, False, ())


def test_line_endings_byte_order_mark_and_missing_final_newline_are_kept() -> None:
    text = "\ufeffimport spaceflights.pipelines.data_cleaning.nodes\r\nfrom spaceflights.pipelines import data_cleaning, x"
    packaged = package(text)
    assert packaged.code == (
        "\ufeffimport data_cleaning.nodes\r\nfrom spaceflights.pipelines import x\r\nimport data_cleaning"
    )
    assert pull("\ufeffimport data_cleaning.nodes\r\nx = 1").code == (
        "\ufeffimport spaceflights.pipelines.data_cleaning.nodes\r\nx = 1"
    )


def test_syntax_error_raises_project_error_naming_file_and_line() -> None:
    text = "import spaceflights.pipelines.data_cleaning\n\ndef f(:\n    pass\n"
    with pytest.raises(ProjectError) as caught:
        rewrite_module(text, package_moves(), filename="src/data_cleaning/nodes.py")
    message = str(caught.value)
    assert "src/data_cleaning/nodes.py" in message and "line 3" in message
    assert "\n" not in message


def test_invalid_move_names_are_rejected() -> None:
    with pytest.raises(ValueError):
        ModuleMove("spaceflights.pipelines.", "x")


def test_a_realistic_mix_rewrites_only_the_files_that_refer_to_the_package() -> None:
    """A quarter of the files need libcst, the rest are probed or scanned. How fast this
    runs is measured by ``benchmarks/rewrite.py``, not here."""
    body = "\n".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(40))
    needs_rewrite = "from spaceflights.pipelines.data_cleaning.nodes import clean\n" + body
    scanned_only = "from .nodes import clean\nfrom ..utils import io\n" + body
    probed_only = "import os\nfrom .nodes import clean\n" + body
    files = [needs_rewrite] * 50 + [scanned_only] * 50 + [probed_only] * 100
    results = [package(text) for text in files]
    assert sum(result.changed for result in results) == 50
    assert sum(bool(result.outside) for result in results) == 50
    assert all(result.code == probed_only for result in results[100:])
    assert results[0].code == "from data_cleaning.nodes import clean\n" + body


def run_python(script: str, path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(path), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


PACKAGE_TREE = {
    "__init__.py": '"""Data cleaning."""\nfrom .pipeline import create_pipeline\n\n__all__ = ["create_pipeline"]\n',
    "nodes.py": "def clean(x):\n    return x.strip()\n",
    "pipeline.py": """
        import importlib

        import spaceflights.pipelines.data_cleaning.nodes
        import spaceflights.pipelines.data_cleaning.nodes as n
        from spaceflights.pipelines.data_cleaning.nodes import clean
        from spaceflights.pipelines.data_cleaning import sub

        from .sub import helpers


        def create_pipeline():
            mod = importlib.import_module("spaceflights.pipelines.data_cleaning.nodes")
            return [
                spaceflights.pipelines.data_cleaning.nodes.clean(" a "),
                n.clean(" b "),
                clean(" c "),
                mod.__name__,
                helpers.shout("d"),
                sub.helpers.shout("e"),
            ]
        """,
    "sub/__init__.py": "from . import helpers\n",
    "sub/helpers.py": """
        from ..nodes import clean


        def shout(x):
            from spaceflights.pipelines import data_cleaning
            return clean(x).upper() + data_cleaning.__name__
        """,
}


def test_packaged_tree_imports_resolve(tmp_path: Path) -> None:
    source_root = build_file_tree(tmp_path / "src/spaceflights/pipelines/data_cleaning", PACKAGE_TREE)
    dist = tmp_path / "dist"
    for path in sorted(source_root.rglob("*.py")):
        relative = path.relative_to(source_root)
        result = rewrite_module(
            path.read_text(),
            package_moves("cleaning"),
            project_package="spaceflights",
            package_depth=len(relative.parts) - 1,
            filename=str(relative),
        )
        assert result.outside == ()
        build_file_tree(dist / "cleaning", {str(relative): result.code}, dedent=False)
        back = rewrite_module(result.code, pull_moves("cleaning"))
        assert back.code == path.read_text(), relative
    # Only the packaged tree is importable: any leftover ``spaceflights`` import fails.
    output = run_python("import cleaning; print(cleaning.create_pipeline())", dist)
    assert output == "['a', 'b', 'c', 'cleaning.nodes', 'Dcleaning', 'Ecleaning']"
