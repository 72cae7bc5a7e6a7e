"""libcst parses only the lines of the statements to rewrite (core/rewrite/regions.py): the bytes
are the same as from parsing the whole file, on the example monorepo, the benchmark generator's
projects, the sdists pulled back from them, and hypothesis-generated files full of the layouts
that could tell the two apart."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import micropkg_tasks.core.rewrite.cst as rewrite_cst
from micropkg_tasks import package_all
from micropkg_tasks.core.errors import ProjectError
from micropkg_tasks.core.rewrite.regions import regions
from micropkg_tasks.core.rewrite.rewriter import ModuleMove, rewrite_module
from micropkg_tasks.core.sdist.read import read_sdist
from tests.conftest import EXAMPLE_MONOREPO
from tests.hypothesis_profiles import examples

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import generate_project  # noqa: E402

OLD = "spaceflights.pipelines.data_cleaning"
PACKAGE_MOVES = [ModuleMove(OLD, "data_cleaning"), ModuleMove("tests.pipelines.data_cleaning", "tests")]
PULL_MOVES = [
    ModuleMove("data_cleaning", "consumer.shared.data_cleaning", frozenset({"nodes", "sub", "pipeline"})),
    ModuleMove("tests", "tests.shared.data_cleaning", frozenset({"test_nodes"})),
]


def outcome(source: str, moves, **options) -> tuple[str, str]:
    """The rewritten text, or the error, as one comparable value."""
    try:
        return "ok", rewrite_module(source, moves, **options).code
    except ProjectError as exc:
        return "error", str(exc)


def assert_same_both_ways(source: str, moves, **options) -> bool:
    """Rewrite ``source`` by regions and by the whole file; True when regions were used."""
    used: list[bool] = []
    real = rewrite_cst._rewrite_regions

    def spy(*args):
        result = real(*args)
        used.append(result is not None)
        return result

    with mock.patch.object(rewrite_cst, "_rewrite_regions", spy):
        by_regions = outcome(source, moves, **options)
    with mock.patch.object(rewrite_cst, "regions", lambda *args: None):
        whole = outcome(source, moves, **options)
    assert by_regions == whole
    return any(used)


def python_files(files: dict[str, bytes]) -> dict[str, str]:
    return {name: content.decode("utf-8") for name, content in sorted(files.items()) if name.endswith(".py")}


@pytest.fixture(scope="module")
def benchmark_sdists(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    generated = generate_project(root / "source", 4, 12, seed=11)
    batch = package_all(generated.root, destination=str(root / "dist"))
    return generated, [read_sdist(Path(r.path).read_bytes(), source=r.path) for r in batch.results]


def test_benchmark_sources_package_the_same_and_use_regions(benchmark_sdists):
    generated, _ = benchmark_sdists
    sources = sorted((generated.root / "src").rglob("*.py")) + sorted((generated.root / "tests").rglob("*.py"))
    by_regions = 0
    for path in sources:
        parts = path.relative_to(generated.root).parts
        if "pipelines" not in parts or parts.index("pipelines") + 1 >= len(parts) - 1:
            continue
        name = parts[parts.index("pipelines") + 1]
        moves = [
            ModuleMove(f"{generated.package_name}.pipelines.{name}", name),
            ModuleMove(f"tests.pipelines.{name}", "tests"),
        ]
        by_regions += assert_same_both_ways(path.read_text(encoding="utf-8"), moves, project_package=generated.package_name)
    assert by_regions > 40  # the fast path is what runs on ordinary pipeline code


def test_benchmark_sdists_pull_the_same(benchmark_sdists):
    _, sdists = benchmark_sdists
    by_regions = 0
    for sdist in sdists:
        code, tests = python_files(sdist.package_files()), python_files(sdist.test_files())
        roots = frozenset(name.split("/")[0].removesuffix(".py") for name in code)
        moves = [
            ModuleMove(sdist.name, f"consumer.pipelines.{sdist.name}", roots),
            ModuleMove("tests", f"tests.pipelines.{sdist.name}", frozenset()),
        ]
        for text in [*code.values(), *tests.values()]:
            by_regions += assert_same_both_ways(text, moves)
    assert by_regions > 20


def test_example_monorepo_both_ways(tmp_path):
    batch = package_all(EXAMPLE_MONOREPO / "projects" / "core", destination=str(tmp_path))
    checked = 0
    for result in batch.results:
        sdist = read_sdist(Path(result.path).read_bytes(), source=result.path)
        moves = [ModuleMove(sdist.name, f"churn.shared.{sdist.name}"), ModuleMove("tests", "tests.shared")]
        for text in python_files({**sdist.package_files(), **sdist.test_files()}).values():
            assert_same_both_ways(text, moves)
            checked += 1
    sources = sorted((EXAMPLE_MONOREPO / "projects").rglob("*.py"))
    for path in sources:
        assert_same_both_ways(path.read_text(encoding="utf-8"), [ModuleMove("core.pipelines", "elsewhere")])
        checked += 1
    assert checked > 10


# Top-level pieces a file is made of: imports in every form, statements sharing a line,
# continuations inside and around hot statements, decorators, nested imports, strings,
# docstrings, comments and statements with nothing to rewrite.
PIECES = (
    "import {old}.nodes\n",
    "import {old}.nodes as n\n",
    "from {old}.nodes import f, g\n",
    "from {old} import (\n    nodes,  # the nodes\n    pipeline,\n)\n",
    "from {parent} import {last}\n",
    "from {parent} import {last}, other\n",
    "from {parent} import other, {last} as dc  # trailing\n",
    "x = 1; import {old}.sub\n",
    "import os; from {old}.nodes import f; y = 2\n",
    "import {old}.nodes, \\\n    os\n",
    "total = 2 \\\n    + 3\n",
    "z = 1; \\\nimport {old}.sub\n",
    "z = 1; \\\nfrom {parent} import {last}, other\n",
    "import {old}.sub; \\\nw = 4\n",
    "@decorate({old}.nodes.f)\n# between\n@other\ndef h():\n    return {old}.nodes.g()\n",
    "def k():\n    import {old}.pipeline\n    return 1\n",
    "def tabbed():\n\tfrom {old}.nodes import f\n\treturn f\n",
    'class C:\n    path = "{old}.nodes.f"\n\n    def m(self):\n        return "{old}.sub:thing"\n',
    '"""Docstring naming {old}.nodes."""\n',
    "# a comment about {old}\n",
    "\n",
    "\n\n",
    "if True:\n    from {old}.nodes import f\nelse:\n    pass\n",
    "try:\n    import {old}.nodes as n\nexcept ImportError:  # c\n    n = None\n",
    "value = {old}.nodes.f(1)  # trailing\n",
    "plain = 1\n",
    "def plain_function(a, b):\n    return a + b\n\n    # indented comment after the body\n",
    "items = [\n    1,\n    2,\n]\n",
    "import {old}.nodes; import {old}.sub as s\n",
    "patched = patch('{old}.nodes.f')\n",
    "uses = {root}.nodes.f() + {root}.sub.g\n",
    "import {root}.nodes\n",
    "import {root}\n",
    "def shadow({root}):\n    return {root}.nodes\n",
    "s = '''text\n{old}.nodes\n'''\n",
    "from tests.pipelines.data_cleaning.test_nodes import check\n",
    "from tests import test_nodes\n",
    "async def a():\n    async with x as {root}:\n        pass\n",
)


@st.composite
def files(draw: st.DrawFn, *, old: str, root: str) -> str:
    parent, _, last = old.rpartition(".")
    pieces = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12))
    # Each piece gets its own line ending, so files with one kind and files mixing kinds both come up.
    endings = draw(st.sampled_from([("\n",), ("\r\n",), ("\r",), ("\n", "\r\n")]))
    text = ""
    for piece in pieces:
        text += piece.format(old=old, parent=parent or "pkg", last=last, root=root).replace(
            "\n", draw(st.sampled_from(endings))
        )
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    if draw(st.integers(0, 9)) == 0:
        text = "\ufeff" + text
    if draw(st.integers(0, 9)) == 0:
        text = text.replace("plain = 1", "\fplain = 1")
    return text


@settings(max_examples=examples("source"))
@given(text=files(old=OLD, root="data_cleaning"))
def test_package_side_regions_match_the_whole_file(text: str) -> None:
    assert_same_both_ways(text, PACKAGE_MOVES, project_package="spaceflights", package_depth=0)


@settings(max_examples=examples("source"))
@given(text=files(old="data_cleaning", root="data_cleaning"))
def test_pull_side_regions_match_the_whole_file(text: str) -> None:
    assert_same_both_ways(text, PULL_MOVES)


def hot_statements(text: str, *numbers: int) -> tuple[ast.Module, frozenset[int]]:
    return ast.parse(text), frozenset(numbers)


def test_regions_cover_whole_lines_and_group_neighbours():
    text = "import a\nimport b  # c\n\n# note\nimport c\nx = 1\ny = 2; import d\n"
    tree, hot = hot_statements(text, 0, 1, 2, 5)
    found = regions(text, tree, hot)
    assert [(text[r.start : r.end], r.first, r.count, sorted(r.hot)) for r in found] == [
        ("import a\nimport b  # c\n\n# note\nimport c\n", 0, 3, [0, 1, 2]),
        ("y = 2; import d\n", 4, 2, [1]),
    ]


def test_a_decorated_definition_starts_at_its_first_decorator():
    text = "x = 1\n\n@first\n@second(2)\ndef f():\n    return a.b\n"
    tree, hot = hot_statements(text, 1)
    (region,) = regions(text, tree, hot)
    assert text[region.start : region.end] == "@first\n@second(2)\ndef f():\n    return a.b\n"


@pytest.mark.parametrize(
    "text",
    [
        "x = 1\r\nimport a\n",  # two kinds of line ending
        "x = 1\rimport a\r",  # old Mac line endings
        "x = 1\n\fimport a\n",  # a form feed
        "x = 1; \\\nimport a\n",  # joined to the line before
        "import a; \\\nx = 1\n",  # joined to the line after
    ],
)
def test_layouts_a_region_cannot_stand_alone_in_go_to_the_whole_file(text):
    tree = ast.parse(text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", ""))
    hot = frozenset(i for i, s in enumerate(tree.body) if isinstance(s, ast.Import))
    assert regions(text, ast.parse(text) if "\r" not in text else tree, hot) is None


def test_a_statement_libcst_cannot_parse_does_not_matter_when_nothing_in_it_moves():
    """libcst recurses once per attribute; a 1,500-long chain that names nothing moved is never given to it."""
    deep = "y = data_cleaning" + ".b" * 1500 + "\n"
    text = "import data_cleaning\n" + deep
    result = rewrite_module(text, PULL_MOVES)
    assert result.code == "from consumer.shared import data_cleaning\n" + deep
    with mock.patch.object(rewrite_cst, "regions", lambda *args: None), pytest.raises(ProjectError, match="too deeply"):
        rewrite_module(text, PULL_MOVES)


def test_the_shared_walk_visits_what_ast_walk_visits_in_the_same_order(benchmark_sdists):
    from micropkg_tasks.core.rewrite.pysource import breadth_first

    generated, _ = benchmark_sdists
    sources = sorted(generated.root.rglob("*.py")) + sorted(EXAMPLE_MONOREPO.rglob("*.py"))
    sources += sorted(Path(rewrite_cst.__file__).parent.parent.rglob("*.py"))  # our own, every construct we use
    assert len(sources) > 50
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for statement in tree.body:
            assert breadth_first(statement) == tuple(ast.walk(statement)), path
