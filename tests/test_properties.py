"""Property tests (hypothesis): generated micro-packages survive package → pull.

Each example is a micro-package with random but valid module names, nesting
and import forms (absolute, aliased, from-imports of values and of modules,
attribute chains, dotted string paths, relative imports), its tests and its
parameters, written into a real project on disk. It is packaged with
``package`` and pulled with ``pull``:

* under the same project package and module path, every code, test and
  parameter file comes back byte-for-byte identical (SPEC §4, round trip);
* into another project under an alias and a destination, no reference to the
  old path is left, every generated reference (including the dotted strings)
  resolves to the new path, ``compileall`` succeeds, and every module and test
  module imports in a fresh interpreter, where each module's asserts, values
  and ``mock.patch`` targets are checked.

A third property runs the import rewriter alone on single generated modules,
many more times, as a cheap check of the same round trip.

Example counts come from ``tests/hypothesis_profiles.py``: the bounded "ci"
profile by default, ``HYPOTHESIS_PROFILE=thorough`` for a larger run.

The generator stays inside the forms SPEC §4 lists and outside the
asymmetries ``core/rewrite/rewriter.py`` documents (importing the micro-package root
itself with ``import``, a string equal to the root alone).
"""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import string
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

from micropkg_tasks import package, pull
from micropkg_tasks.core.rewrite.rewriter import ModuleMove, rewrite_module
from micropkg_tasks.ops.install.files import _top_level_names
from tests.conftest import kedro_project
from tests.helpers import read_tree
from tests.hypothesis_profiles import examples

# Names a generated module, package or project may not take: they would shadow
# something the generated code or the interpreter needs, or mean something to
# the micro-package layout (``config/`` holds parameters, ``tests`` the tests).
RESERVED = (
    set(keyword.kwlist)
    | set(getattr(keyword, "softkwlist", []))
    | set(sys.stdlib_module_names)
    | set(dir(builtins))
    | {"tests", "test", "config", "conftest", "helpers", "values", "target", "mock", "src", "conf", "lib"}
)

NAMES = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(string.ascii_lowercase),
        st.text(alphabet=string.ascii_lowercase + "_", max_size=6),
        st.sampled_from(string.ascii_lowercase),
    ),
).filter(lambda n: n not in RESERVED and not n.startswith("test"))

CODE_FORMS = (
    "from_value",  # from proj.pkg.mp.a import VALUE as v0
    "import_as",  # import proj.pkg.mp.a as m0
    "import_chain",  # import proj.pkg.mp.a ... proj.pkg.mp.a.VALUE
    "import_multi",  # import proj.pkg.mp.a as m0, proj.pkg.mp.b as n0
    "from_module",  # from proj.pkg.mp import a as m0
    "from_module_plain",  # from proj.pkg.mp import a ... a.VALUE
    "string_attr",  # s0 = "proj.pkg.mp.a.VALUE"
    "string_module",  # s0 = "proj.pkg.mp.a"
    "relative_value",  # from .a import VALUE as r0
    "relative_module",  # from . import a as r0
    "root_from",  # from proj.pkg import mp as q0
    "root_from_plain",  # from proj.pkg import mp ... mp.VALUE
)
STYLES = ("plain", "paren", "comment")


@dataclass
class Tree:
    """A generated micro-package: its place in the project and every file's text."""

    project: str
    parents: tuple[str, ...]
    name: str
    code: dict[str, str] = field(default_factory=dict)  # relative to the micro-package folder
    tests: dict[str, str] = field(default_factory=dict)  # relative to its tests folder
    params: dict[str, str] = field(default_factory=dict)  # relative to conf/base
    modules: tuple[tuple[str, ...], ...] = ()
    checks: int = 0  # how many values, strings and test functions the import child must check

    @property
    def module_path(self) -> str:
        return ".".join((*self.parents, self.name))

    @property
    def dotted(self) -> str:
        return ".".join((self.project, *self.parents, self.name))


class _Module:
    """Builds one generated module: imports with their checks, strings, values."""

    def __init__(self, tree: Tree, path: tuple[str, ...], value: int, *, identity: bool) -> None:
        self.tree, self.path, self.value = tree, path, value
        # For the byte-for-byte round trip, avoid the one pair of forms that package to the
        # same text: ``from proj.pkg import mp`` next to ``import proj.pkg.mp.sub`` comes back
        # as ``import proj.pkg.mp`` with its uses spelled ``proj.pkg.mp.X`` (equivalent code).
        self.identity = identity
        self.lines: list[str] = []
        self.checks: list[tuple[str, int]] = []  # (expression, expected VALUE)
        self.strings: list[tuple[str, int, str]] = []  # (variable, expected VALUE, kind)
        self.bound: dict[str, str] = {}  # plain names bound by imports -> what they are
        self.forms: list[str] = []  # the forms used, for hypothesis' statistics
        self.count = 0

    def _from(self, module: str, name: str, asname: str | None, style: str) -> str:
        item = f"{name} as {asname}" if asname else name
        if style == "paren":
            return f"from {module} import (\n    {item},\n)"
        if style == "comment":
            return f"from {module} import {item}  # generated reference {self.count}"
        return f"from {module} import {item}"

    def _bind_plain(self, name: str, meaning: str) -> bool:
        """A plain binding is only used when nothing else in the module binds that name."""
        if self.bound.get(name, meaning) != meaning:
            return False
        self.bound[name] = meaning
        return True

    def add(
        self, form: str, target: tuple[str, ...] | None, value: int, style: str,
        second: tuple[tuple[str, ...], int] | None = None,
    ) -> None:
        lines_before = len(self.lines)
        self._add(form, target, value, style, second)
        first = self.lines[lines_before]
        used = "relative" if first.startswith("from .") else first.split()[0].rstrip("0123456789")
        self.forms.append(f"{form} ({used}, {style})")

    def _add(
        self, form: str, target: tuple[str, ...] | None, value: int, style: str,
        second: tuple[tuple[str, ...], int] | None,
    ) -> None:
        tree, k = self.tree, self.count
        self.count += 1
        checks_before = len(self.checks)
        if target is None:  # the micro-package root (its __init__.py)
            parent = ".".join((tree.project, *tree.parents))
            # Packaged, this is ``import <name> [as x]``; parentheses cannot survive that
            # (core/rewrite/rewriter.py documents the form coming back as a plain ``from`` import).
            style = "plain" if style == "paren" else style
            chained = self.identity and tree.project in self.bound
            if form == "root_from_plain" and not chained and self._bind_plain(tree.name, tree.dotted):
                self.lines.append(self._from(parent, tree.name, None, style))
                self.checks.append((f"{tree.name}.VALUE", value))
            else:
                self.lines.append(self._from(parent, tree.name, f"q{k}", style))
                self.checks.append((f"q{k}.VALUE", value))
            self.lines.append(f"assert {self.checks[-1][0]} == {value}")
            return
        full = ".".join((tree.dotted, *target))
        parent, last = full.rsplit(".", 1)
        if form == "from_value":
            self.lines.append(self._from(full, "VALUE", f"v{k}", style))
            self.checks.append((f"v{k}", value))
        elif form == "import_multi" and second is not None:
            other = ".".join((tree.dotted, *second[0]))
            self.lines.append(f"import {full} as m{k}, {other} as n{k}")
            self.checks.append((f"m{k}.VALUE", value))
            self.lines.append(f"assert m{k}.VALUE == {value}")
            self.checks.append((f"n{k}.VALUE", second[1]))
        elif form in ("import_as", "import_multi") or (
            form == "import_chain" and self.identity and tree.name in self.bound
        ):
            self.lines.append(f"import {full} as m{k}")
            self.checks.append((f"m{k}.VALUE", value))
        elif form == "import_chain" and self.bound.get(tree.project, tree.project) != tree.project:
            # The project's name is bound to something else here: bind the module by alias instead.
            self.lines.append(f"import {full} as m{k}")
            self.checks.append((f"m{k}.VALUE", value))
        elif form == "import_chain":
            self.bound[tree.project] = tree.project
            self.lines.append(f"import {full}")
            self.checks.append((f"{full}.VALUE", value))
        elif form == "from_module_plain" and self._bind_plain(last, full):
            self.lines.append(self._from(parent, last, None, style))
            self.checks.append((f"{last}.VALUE", value))
        elif form in ("from_module", "from_module_plain"):
            self.lines.append(self._from(parent, last, f"m{k}", style))
            self.checks.append((f"m{k}.VALUE", value))
        elif form in ("string_attr", "string_module"):
            text = f"{full}.VALUE" if form == "string_attr" else full
            self.lines.append(f's{k} = "{text}"')
            self.strings.append((f"s{k}", value, "attr" if form == "string_attr" else "module"))
        elif form in ("relative_value", "relative_module"):
            package = self.path[:-1]
            common = 0
            while common < min(len(package), len(target) - 1) and package[common] == target[common]:
                common += 1
            dots = "." * (len(package) - common + 1)
            rest = target[common:]
            if form == "relative_value":
                self.lines.append(self._from(dots + ".".join(rest), "VALUE", f"r{k}", style))
                self.checks.append((f"r{k}", value))
            else:
                self.lines.append(self._from(dots + ".".join(rest[:-1]), rest[-1], f"r{k}", style))
                self.checks.append((f"r{k}.VALUE", value))
        else:  # pragma: no cover - a form the generator does not know
            raise AssertionError(form)
        if len(self.checks) > checks_before:  # check the binding at import time too
            expression, expected = self.checks[-1]
            self.lines.append(f"assert {expression} == {expected}")

    def code(self, docstring: str) -> str:
        strings = ", ".join(f"({name}, {value}, {kind!r})" for name, value, kind in self.strings)
        values = "".join(f"        {expression},\n" for expression, _ in self.checks)
        return (
            f'"""{docstring}"""\n'
            + "".join(line + "\n" for line in self.lines)
            + f"\nVALUE = {self.value}\n\n\n"
            + f"def values():\n    return [\n{values}    ]\n\n\n"
            + f"EXPECTED = {[expected for _, expected in self.checks]!r}\n"
            + f"STRINGS = [{strings}]\n"
        )


@st.composite
def trees(draw: st.DrawFn, *, identity: bool = True) -> Tree:
    """A micro-package with 1-6 modules up to 3 folders deep, its tests and parameters."""
    project = draw(NAMES)
    parents = tuple(draw(st.lists(NAMES, max_size=2, unique=True)))
    name = draw(NAMES)
    modules = draw(
        st.lists(st.lists(NAMES, min_size=1, max_size=3).map(tuple), min_size=1, max_size=6, unique=True)
    )
    packages = {module[:depth] for module in modules for depth in range(1, len(module))}
    assume(not packages & set(modules))
    # Module names may repeat the project's, the parents' or the micro-package's own name
    # (``mp/mp.py``, ``proj/pipelines/proj``): only the project and the micro-package differ.
    assume(project != name)
    tree = Tree(project, parents, name, modules=tuple(modules))
    values = {module: 100 + index for index, module in enumerate(modules)}

    for index, module in enumerate(modules):
        builder = _Module(tree, module, values[module], identity=identity)
        if index:  # only earlier modules are imported, so there is never a cycle
            choices = draw(
                st.lists(
                    st.tuples(st.integers(0, index - 1), st.sampled_from(CODE_FORMS), st.sampled_from(STYLES)),
                    max_size=5,
                )
            )
            for target_index, form, style in choices:
                if form.startswith("root_"):
                    builder.add(form, None, 1, style)
                else:
                    second = modules[(target_index + 1) % index]
                    builder.add(
                        form, modules[target_index], values[modules[target_index]], style, (second, values[second])
                    )
        tree.code["/".join(module) + ".py"] = builder.code(f"Generated module {'.'.join(module)}.")
        for form in builder.forms:
            event(f"reference form: {form}")
        tree.checks += len(builder.checks) + len(builder.strings)
    first = ".".join((tree.dotted, *modules[0]))
    init_import = draw(st.sampled_from(["", f"from {first} import VALUE as FIRST\n", "relative"]))
    if init_import == "relative":
        init_import = f"from .{'.'.join(modules[0])} import VALUE as FIRST\n"
    tree.code["__init__.py"] = f'"""Micro-package {name}."""\n\nVALUE = 1\n{init_import}'
    event(f"modules: {len(modules)}, deepest: {max(len(m) for m in modules)}, parents: {len(parents)}")
    for package_path in sorted(packages):
        tree.code["/".join(package_path) + "/__init__.py"] = ""

    # Tests: a helper module and test files referring to the code and to the helper.
    tree.tests["__init__.py"] = ""
    tree.tests["helpers.py"] = "HELPER = 7\n"
    tests_dotted = ".".join(("tests", *parents, name))
    for index in draw(st.lists(st.integers(0, len(modules) - 1), min_size=1, max_size=3, unique=True)):
        module = modules[index]
        builder = _Module(tree, ("test_x",), 0, identity=identity)
        forms = draw(st.lists(st.sampled_from(CODE_FORMS[:8]), min_size=1, max_size=3))
        for form in forms:
            builder.add(form, module, values[module], draw(st.sampled_from(STYLES)), (modules[0], values[modules[0]]))
        full = ".".join((tree.dotted, *module))
        body = builder.code(f"Tests for generated module {index}.")
        tree.checks += len(builder.checks) + len(builder.strings) + 2  # and its two test functions
        body += textwrap.dedent(
            f"""

            from unittest import mock

            from {tests_dotted}.helpers import HELPER


            def test_values():
                assert HELPER == 7
                assert values() == EXPECTED


            def test_patch():
                with mock.patch("{full}.VALUE", -1):
                    import {full} as target

                    assert target.VALUE == -1
            """
        )
        tree.tests[f"test_{index}.py"] = body
    tree.params[f"parameters_{name}.yml"] = f"{name}:\n  threshold: 3\n"
    if draw(st.booleans()):
        tree.params[f"parameters/{name}/extra.yml"] = "extra: true\n"
    return tree


def write_source_project(root: Path, tree: Tree) -> Path:
    files: dict[str, str | bytes] = {}
    package_dir = f"src/{tree.project}"
    for depth in range(1, len(tree.parents) + 1):
        files[f"{package_dir}/{'/'.join(tree.parents[:depth])}/__init__.py"] = ""
        files[f"tests/{'/'.join(tree.parents[:depth])}/__init__.py"] = ""
    code_dir = "/".join((package_dir, *tree.parents, tree.name))
    tests_dir = "/".join(("tests", *tree.parents, tree.name))
    files.update({f"{code_dir}/{path}": text for path, text in tree.code.items()})
    files.update({f"{tests_dir}/{path}": text for path, text in tree.tests.items()})
    files.update({f"conf/base/{path}": text for path, text in tree.params.items()})
    return kedro_project(root, tree.project, extra=files)


def build_sdist(tree: Tree, workdir: Path) -> Path:
    source = write_source_project(workdir / "source", tree)
    result = package(source, tree.module_path, destination=str(workdir / "dist"))
    note(f"outside imports reported: {[str(o) for o in result.outside_imports]}")
    assert not result.outside_imports
    return Path(result.path)


def subtree(files: dict[str, bytes], prefix: str) -> dict[str, bytes]:
    return {path[len(prefix) :]: data for path, data in files.items() if path.startswith(prefix)}


@settings(max_examples=examples("tree"))
@given(tree=trees())
def test_package_then_pull_under_the_same_path_gives_back_identical_files(tree: Tree) -> None:
    with tempfile.TemporaryDirectory(prefix="micropkg-prop-") as folder:
        workdir = Path(folder)
        sdist = build_sdist(tree, workdir)
        target = kedro_project(workdir / "target", tree.project)
        pull(target, str(sdist), destination=".".join(tree.parents) or None)

        source, pulled = read_tree(workdir / "source"), read_tree(target)
        code_dir = "/".join(("src", tree.project, *tree.parents, tree.name)) + "/"
        tests_dir = "/".join(("tests", *tree.parents, tree.name)) + "/"
        assert subtree(pulled, code_dir) == subtree(source, code_dir)
        assert subtree(pulled, tests_dir) == subtree(source, tests_dir)
        for path in tree.params:
            assert pulled[f"conf/base/{path}"] == source[f"conf/base/{path}"]


# Run in a fresh interpreter inside the pulled project: compile everything, import
# every module, check each module's values and strings, and run the test functions.
CHILD = r"""
import compileall, importlib, json, sys, traceback
from pathlib import Path

root = Path(sys.argv[1]); code_package, tests_package = sys.argv[2], sys.argv[3]
sys.path[:0] = [str(root / "src"), str(root)]
errors = []
for folder in (root / "src", root / "tests"):
    if not compileall.compile_dir(str(folder), quiet=1):
        errors.append(f"compileall failed in {folder}")


def modules(base, dotted):
    folder = base.joinpath(*dotted.split("."))
    for path in sorted(folder.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts)


checked = 0
for name in [*modules(root / "src", code_package), *modules(root, tests_package)]:
    try:
        module = importlib.import_module(name)
        if hasattr(module, "values"):
            assert module.values() == module.EXPECTED, (name, module.values(), module.EXPECTED)
            checked += len(module.EXPECTED)
        for text, value, kind in getattr(module, "STRINGS", []):
            if kind == "attr":
                owner, _, attribute = text.rpartition(".")
                got = getattr(importlib.import_module(owner), attribute)
            else:
                got = importlib.import_module(text).VALUE
            assert got == value, (name, text, got, value)
            checked += 1
        for attribute in sorted(vars(module)):
            if attribute.startswith("test_"):
                getattr(module, attribute)()
                checked += 1
    except BaseException:
        errors.append(f"{name}: {traceback.format_exc()}")
print(json.dumps({"errors": errors, "checked": checked}))
"""


def absolute_references(text: str) -> list[str]:
    """Every absolute import target and every dotted string literal that is not a docstring."""
    tree = ast.parse(text)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value.count(".") and all(part.isidentifier() for part in node.value.split(".")):
                found.append(node.value)
    return found


@st.composite
def aliased(draw: st.DrawFn) -> tuple[Tree, str, tuple[str, ...], str]:
    tree = draw(trees(identity=False))
    taken = {tree.project, tree.name}
    other = draw(NAMES.filter(lambda n: n not in taken))
    destination = tuple(draw(st.lists(NAMES.filter(lambda n: n not in taken | {other}), max_size=2, unique=True)))
    alias = draw(NAMES.filter(lambda n: n not in taken | {other, *destination}))
    return tree, other, destination, alias


@settings(max_examples=examples("alias"))
@given(case=aliased())
def test_pull_under_an_alias_points_every_reference_at_the_new_path_and_imports(case) -> None:
    tree, other, destination, alias = case
    with tempfile.TemporaryDirectory(prefix="micropkg-prop-") as folder:
        workdir = Path(folder)
        sdist = build_sdist(tree, workdir)
        target = kedro_project(workdir / "target", other)
        result = pull(target, str(sdist), alias=alias, destination=".".join(destination) or None)
        new_code = ".".join((other, *destination, alias))
        new_tests = ".".join(("tests", *destination, alias))
        assert result.module == ".".join((*destination, alias))

        # Statically: every absolute reference is to the new place or to the standard library.
        pulled = read_tree(target)
        code_dir = "/".join(("src", other, *destination, alias)) + "/"
        tests_dir = "/".join(("tests", *destination, alias)) + "/"
        python = {p: d for p, d in pulled.items() if p.endswith(".py") and p.startswith((code_dir, tests_dir))}
        assert len(python) == len(tree.code) + len(tree.tests)
        for path, data in python.items():
            for reference in absolute_references(data.decode("utf-8")):
                head = reference.split(".", 1)[0]
                if head in sys.stdlib_module_names:
                    continue
                assert reference.startswith((new_code + ".", new_tests + ".")) or reference == new_code, (
                    path,
                    reference,
                )
        renamed = f"parameters_{tree.name}.yml".replace(tree.name, alias)
        assert pulled[f"conf/base/{renamed}"] == tree.params[f"parameters_{tree.name}.yml"].encode()

        # Dynamically: compileall, import every module, check values, strings and tests.
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(target), new_code, new_tests],
            cwd=target, capture_output=True, text=True, timeout=120,
        )
        assert child.returncode == 0, child.stderr
        report = json.loads(child.stdout.strip().splitlines()[-1])
        assert report["errors"] == [], "\n".join(report["errors"])
        assert report["checked"] == tree.checks


# -- the rewriter alone: many more examples, in memory ---------------------------------------------


@settings(max_examples=examples("source"))
@given(tree=trees(), index=st.integers(0, 5))
def test_rewriting_one_module_out_and_back_is_the_identity(tree: Tree, index: int) -> None:
    sources = [text for path, text in sorted(tree.code.items())] + [text for _, text in sorted(tree.tests.items())]
    source = sources[index % len(sources)]
    outward = [
        ModuleMove(tree.dotted, tree.name),
        ModuleMove(".".join(("tests", *tree.parents, tree.name)), "tests"),
    ]
    packaged = rewrite_module(source, outward).code
    assert tree.dotted not in packaged
    package_files = {path: text.encode() for path, text in tree.code.items()}
    test_files = {path: text.encode() for path, text in tree.tests.items()}
    back = [
        ModuleMove(tree.name, tree.dotted, string_roots=_top_level_names(package_files)),
        ModuleMove("tests", ".".join(("tests", *tree.parents, tree.name)), string_roots=_top_level_names(test_files)),
    ]
    assert rewrite_module(packaged, back).code == source
