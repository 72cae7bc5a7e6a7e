"""Synthetic Kedro 0.19-layout projects for the micropkg benchmarks.

``generate_project`` writes a producer project whose package manifest
(``[tool.kedro.micropkg.package]``) lists ``pipelines.p00 .. pipelines.pNN``.
Each micro-package holds ``files_per_micropkg`` Python modules of roughly 40 to
80 lines that import each other in every form the import rewriter handles:

* ``from <pkg>.pipelines.pXX.mod import f``
* ``import <pkg>.pipelines.pXX.mod as m``
* ``import <pkg>.pipelines.pXX.mod`` followed by attribute chains
* ``from <pkg>.pipelines.pXX import mod``
* relative imports (``from .mod import f``, ``from ..mod import f``)

plus an ``__init__.py`` with ``__version__``, a ``requirements.txt`` with one or
two requirements, one or two test files (one with a
``mock.patch("<pkg>.pipelines.pXX.mod.f")`` string), and the parameter files
``conf/base/parameters_pXX.yml`` and ``conf/base/parameters/pXX/extra.yml``.
The generated code is valid Python and its tests pass.

``generate_consumer`` writes a fresh project whose pull manifest
(``[tool.kedro.micropkg.pull]``) lists the given sdists, each with
``destination = "pipelines"``.

Output is deterministic: every micro-package is drawn from its own seeded
random generator, so ``p03`` is the same whether 5 or 50 are generated.

Run as a script to write one project::

    python benchmarks/generate.py /tmp/bench --micropkgs 20 --files 10
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

KEDRO_VERSION = "0.19.15"

# One consistent specifier per requirement, so pulling many micro-packages into
# one project merges them without conflicts.
REQUIREMENTS = (
    "pandas>=2.0",
    "numpy>=1.24",
    "scikit-learn>=1.3",
    "pyyaml>=6.0",
    "requests>=2.31",
    "scipy>=1.11",
    "pyarrow>=14.0",
    "python-dateutil>=2.8",
    "jinja2>=3.1",
    "attrs>=23.1",
)

MODULE_NAMES = (
    "nodes",
    "cleaning",
    "features",
    "validation",
    "metrics",
    "transforms",
    "aggregations",
    "schema",
    "sampling",
    "scoring",
    "encoding",
    "splitting",
    "reporting",
    "outliers",
    "joins",
    "windows",
)

NOUNS = ("amount", "score", "ratio", "weight", "count", "margin", "rate", "volume", "price", "tenure")
VERBS = ("scale", "clip", "shift", "round", "normalise", "fill", "flag", "cap", "smooth", "rank")
METRICS = ("mean", "spread", "share", "total", "peak")


@dataclass
class GeneratedProject:
    """What ``generate_project`` wrote."""

    root: Path
    package_name: str
    module_paths: list[str]
    versions: dict[str, str]  # module path -> __version__
    code_files: dict[str, int] = field(default_factory=dict)  # module path -> files in the code folder
    test_files: dict[str, int] = field(default_factory=dict)  # module path -> files in the tests folder
    config_files: dict[str, int] = field(default_factory=dict)  # module path -> parameter files

    def files_packaged(self, module_path: str) -> int:
        """Files the sdist of ``module_path`` should carry: code, tests and parameters."""
        return self.code_files[module_path] + self.test_files[module_path] + self.config_files[module_path]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@dataclass
class _Module:
    """One generated module: where it sits and which functions it defines."""

    stem: str
    subpackage: str | None  # "helpers" or None
    transforms: list[str]
    metrics: list[str]

    @property
    def dotted(self) -> str:
        return f"{self.subpackage}.{self.stem}" if self.subpackage else self.stem


def _transform_body(rng: random.Random, name: str, verb: str, noun: str) -> list[str]:
    factor = round(rng.uniform(0.5, 3.0), 2)
    variant = rng.randrange(3)
    lines = [
        f'def {name}(records: list[Record], column: str = "{noun}") -> list[Record]:',
        f'    """{verb.capitalize()} ``column`` of every record; records without it are kept as they are."""',
        "    result = []",
        "    for record in records:",
        "        value = record.get(column)",
        "        if value is None:",
        "            result.append(dict(record))",
        "            continue",
    ]
    if variant == 0:
        lines += [f"        result.append({{**record, column: value * {factor}}})"]
    elif variant == 1:
        limit = round(factor * 100, 1)
        lines += [
            f"        bounded = min(max(value, -{limit}), {limit})",
            "        result.append({**record, column: bounded})",
        ]
    else:
        lines += [
            f"        shifted = round(value + {factor}, 3)",
            "        result.append({**record, column: shifted})",
        ]
    lines += ["    return result", "", ""]
    return lines


def _metric_body(rng: random.Random, name: str, kind: str, noun: str) -> list[str]:
    lines = [
        f'def {name}(records: list[Record], column: str = "{noun}") -> float:',
        f'    """The {kind} of ``column`` over the records that have it (0.0 when none do)."""',
        "    values = [record[column] for record in records if record.get(column) is not None]",
        "    if not values:",
        "        return 0.0",
    ]
    if kind == "mean":
        lines += ["    return sum(values) / len(values)"]
    elif kind == "spread":
        lines += ["    return float(max(values) - min(values))"]
    elif kind == "share":
        lines += ["    return len(values) / len(records)"]
    elif kind == "total":
        lines += ["    return float(math.fsum(values))"]
    else:
        lines += ["    return float(max(values))"]
    lines += ["", ""]
    return lines


def _import_lines(
    rng: random.Random, pkg: str, mp: str, me: _Module, earlier: Sequence[_Module]
) -> tuple[list[str], list[str]]:
    """Imports of earlier modules of the same micro-package, and the calls that use them."""
    base = f"{pkg}.pipelines.{mp}"
    imports: list[str] = []
    calls: list[str] = []
    chosen = rng.sample(list(earlier), k=min(len(earlier), rng.randint(1, 3)))
    for index, other in enumerate(chosen):
        func = rng.choice(other.transforms)
        form = (len(earlier) + index) % 5 if me.subpackage is None else rng.choice((0, 1, 2, 3, 5))
        if form == 0:
            imports.append(f"from {base}.{other.dotted} import {func}")
            calls.append(f"{func}(records)")
        elif form == 1:
            alias = f"{other.stem}_mod"
            imports.append(f"import {base}.{other.dotted} as {alias}")
            calls.append(f"{alias}.{func}(records)")
        elif form == 2:
            imports.append(f"import {base}.{other.dotted}")
            calls.append(f"{base}.{other.dotted}.{func}(records)")
        elif form == 3 and other.subpackage is None:
            imports.append(f"from {base} import {other.stem}")
            calls.append(f"{other.stem}.{func}(records)")
        elif me.subpackage == other.subpackage:
            imports.append(f"from .{other.stem} import {func}")
            calls.append(f"{func}(records)")
        elif me.subpackage is not None and other.subpackage is None:
            imports.append(f"from ..{other.stem} import {func}")
            calls.append(f"{func}(records)")
        else:  # top-level module importing from the helpers subpackage
            imports.append(f"from .{other.dotted} import {func}")
            calls.append(f"{func}(records)")
    return imports, calls


def _module_source(rng: random.Random, pkg: str, mp: str, me: _Module, earlier: Sequence[_Module]) -> str:
    imports, calls = _import_lines(rng, pkg, mp, me, earlier) if earlier else ([], [])
    lines = [
        f'"""{me.stem.replace("_", " ").capitalize()} steps of the {mp} pipeline, as pure functions on records."""',
        "",
        "from __future__ import annotations",
        "",
        "import logging",
        "import math",
        "from typing import Any",
        "",
    ]
    if imports:
        lines += sorted(set(imports)) + [""]
    lines += [
        "logger = logging.getLogger(__name__)",
        "",
        "Record = dict[str, Any]",
        "",
        f"DEFAULT_THRESHOLD = {round(rng.uniform(0.05, 0.95), 3)}",
        "",
        "",
    ]
    for name in me.transforms:
        verb, noun = name.split("_", 1)
        lines += _transform_body(rng, name, verb, noun.rsplit("_", 1)[0])
    for name in me.metrics:
        kind, noun = name.split("_", 1)
        lines += _metric_body(rng, name, kind, noun.rsplit("_", 1)[0])
    lines += [
        "def run_all(records: list[Record]) -> list[Record]:",
        f'    """Apply every {me.stem} step in order and log a summary."""',
        "    current = list(records)",
    ]
    for name in me.transforms:
        lines.append(f"    current = {name}(current)")
    lines.append('    logger.debug("%s: %d records", __name__, len(current))')
    lines += ["    return current", "", ""]
    lines += [
        "def combined(records: list[Record]) -> list[list[Record]]:",
        '    """Results of the upstream steps this module builds on, for side-by-side checks."""',
        "    return [",
    ]
    lines += [f"        {call}," for call in calls] or ["        list(records),"]
    lines += ["    ]", ""]
    return "\n".join(lines)


def _plan_modules(rng: random.Random, files: int, index: int) -> list[_Module]:
    """``files`` modules: the last is ``pipeline``; about a quarter sit in a ``helpers`` subpackage."""
    stems = [MODULE_NAMES[k] if k < len(MODULE_NAMES) else f"module_{k:02d}" for k in range(max(files - 1, 0))]
    helpers = files // 4 if files >= 4 else 0
    modules = []
    for k, stem in enumerate(stems):
        subpackage = "helpers" if k >= len(stems) - helpers else None
        nouns = rng.sample(NOUNS, k=rng.randint(2, 3))
        transforms = [f"{rng.choice(VERBS)}_{noun}_{k}" for noun in nouns]
        metrics = [f"{rng.choice(METRICS)}_{noun}_{k}" for noun in rng.sample(NOUNS, k=1)]
        modules.append(_Module(stem, subpackage, transforms, metrics))
    return modules


def _pipeline_source(pkg: str, mp: str, modules: Sequence[_Module]) -> str:
    top = [m for m in modules if m.subpackage is None]
    lines = [
        f'"""The Kedro pipeline wiring for {mp}."""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if top:
        lines.append(f"from {pkg}.pipelines.{mp} import {top[0].stem}")
    for module in top[1:3]:
        lines.append(f"from .{module.stem} import run_all as {module.stem}_run_all")
    for module in top[3:]:
        lines.append(f"import {pkg}.pipelines.{mp}.{module.stem} as {module.stem}_mod")
    lines += [
        "",
        "",
        "def create_pipeline(**kwargs):",
        "    # Imported here so the nodes can be used and tested without Kedro installed.",
        "    from kedro.pipeline import node, pipeline",
        "",
        "    return pipeline(",
        "        [",
    ]
    previous = f"{mp}_raw"
    for k, module in enumerate(top):
        if k == 0:
            func = f"{module.stem}.run_all"
        elif k < 3:
            func = f"{module.stem}_run_all"
        else:
            func = f"{module.stem}_mod.run_all"
        output = f"{mp}_{module.stem}"
        lines += [
            "            node(",
            f"                {func},",
            f'                inputs="{previous}",',
            f'                outputs="{output}",',
            f'                name="{module.stem}",',
            "            ),",
        ]
        previous = output
    lines += [
        "        ],",
        f'        namespace="{mp}",',
        "    )",
        "",
    ]
    return "\n".join(lines)


def _test_source(pkg: str, mp: str, module: _Module, patch: bool) -> str:
    first, second = module.transforms[0], module.transforms[1]
    lines = [
        f'"""Tests for {mp}.{module.dotted}."""',
        "",
        "from unittest import mock",
        "",
        "import pytest",
        "",
        f"import {pkg}.pipelines.{mp}.{module.dotted} as module_under_test",
        f"from {pkg}.pipelines.{mp}.{module.dotted} import {first}, {second}, {module.metrics[0]}",
        "",
        "",
        "@pytest.fixture",
        "def records():",
        "    return [",
    ]
    for k in range(4):
        values = ", ".join(f'"{noun}": {k * 3 + j}' for j, noun in enumerate(NOUNS))
        lines.append(f"        {{{values}}},")
    lines += [
        "        {},",
        "    ]",
        "",
        "",
        f"def test_{first}_keeps_every_record(records):",
        f"    assert len({first}(records)) == len(records)",
        "",
        "",
        f"def test_{second}_leaves_missing_values_alone(records):",
        f"    assert {second}(records)[-1] == {{}}",
        "",
        "",
        f"def test_{module.metrics[0]}_is_a_float(records):",
        f"    assert isinstance({module.metrics[0]}(records), float)",
        "",
        "",
        "def test_run_all_returns_new_records(records):",
        "    assert module_under_test.run_all(records) is not records",
        "",
    ]
    if patch:
        lines += [
            "",
            f"def test_run_all_calls_{first}(records):",
            f'    with mock.patch("{pkg}.pipelines.{mp}.{module.dotted}.{first}", return_value=[]) as patched:',
            "        module_under_test.run_all(records)",
            "    patched.assert_called_once()",
            "",
        ]
    return "\n".join(lines)


def _project_skeleton(root: Path, package_name: str, manifest: str, requirements: Sequence[str]) -> None:
    pyproject = f"""[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{package_name}"
readme = "README.md"
dynamic = ["dependencies", "version"]

[project.scripts]
{package_name} = "{package_name}.__main__:main"

[tool.setuptools.dynamic]
dependencies = {{file = "requirements.txt"}}
version = {{attr = "{package_name}.__version__"}}

[tool.setuptools.packages.find]
where = ["src"]
namespaces = false

[tool.kedro]
package_name = "{package_name}"
project_name = "{package_name}"
kedro_init_version = "{KEDRO_VERSION}"
tools = ["Testing"]
example_pipeline = "False"
source_dir = "src"

[tool.pytest.ini_options]
addopts = "--import-mode=importlib"

{manifest}"""
    _write(root / "pyproject.toml", pyproject)
    _write(root / "README.md", f"# {package_name}\n\nA synthetic Kedro project for the micropkg benchmarks.\n")
    _write(root / "requirements.txt", "".join(f"{line}\n" for line in requirements))
    _write(root / ".gitignore", "__pycache__/\n/dist/\nconf/local/**\n!conf/local/.gitkeep\n")
    src = root / "src" / package_name
    _write(src / "__init__.py", f'"""{package_name}"""\n\n__version__ = "0.1"\n')
    _write(
        src / "__main__.py",
        f'"""{package_name} file for ensuring the package is executable as `python -m {package_name}`."""\n\n'
        "import sys\n\n\ndef main(*args, **kwargs):\n"
        "    from kedro.framework.cli.utils import find_run_command\n\n"
        f'    run = find_run_command("{package_name}")\n    return run(*args, **kwargs)\n\n\n'
        'if __name__ == "__main__":\n    sys.exit(main())\n',
    )
    _write(src / "settings.py", '"""Project settings."""\n\nCONF_SOURCE = "conf"\n')
    _write(
        src / "pipeline_registry.py",
        '"""Project pipelines."""\n\nfrom kedro.framework.project import find_pipelines\n\n\n'
        "def register_pipelines():\n    pipelines = find_pipelines()\n"
        '    pipelines["__default__"] = sum(pipelines.values())\n    return pipelines\n',
    )
    _write(src / "pipelines" / "__init__.py", "")
    _write(root / "tests" / "__init__.py", "")
    _write(root / "tests" / "pipelines" / "__init__.py", "")
    _write(root / "conf" / "base" / "catalog.yml", "# Here you can define all your datasets.\n")
    _write(root / "conf" / "base" / "parameters.yml", "# Parameters shared by every pipeline.\nrandom_state: 42\n")
    _write(root / "conf" / "local" / ".gitkeep", "")
    _write(root / "conf" / "README.md", "# What is this for?\n\nThe project configuration.\n")


def generate_micropkg(
    root: Path, package_name: str, index: int, files: int, *, seed: int = 0
) -> tuple[str, str, int, int, int, list[str]]:
    """Write micro-package ``pipelines.p<index>``; return (module path, version, code, tests, config, reqs)."""
    rng = random.Random(f"micropkg-bench:{seed}:{index}:{files}")
    mp = f"p{index:02d}"
    base = root / "src" / package_name / "pipelines" / mp
    modules = _plan_modules(rng, files, index)
    code_files = 0
    for k, module in enumerate(modules):
        folder = base / module.subpackage if module.subpackage else base
        _write(folder / f"{module.stem}.py", _module_source(rng, package_name, mp, module, modules[:k]))
        code_files += 1
    if any(m.subpackage for m in modules):
        _write(base / "helpers" / "__init__.py", f'"""Helper steps of the {mp} pipeline."""\n')
        code_files += 1
    if files >= 1:
        _write(base / "pipeline.py", _pipeline_source(package_name, mp, modules))
        code_files += 1
    version = f"0.{index % 7}.{rng.randint(0, 9)}"
    exported = "create_pipeline" if files >= 1 else None
    init = [f'"""The {mp} pipeline: synthetic steps for the micropkg benchmarks."""', ""]
    if exported:
        init += [f"from {package_name}.pipelines.{mp}.pipeline import {exported}", "", f'__all__ = ["{exported}"]']
    init += [f'__version__ = "{version}"', ""]
    _write(base / "__init__.py", "\n".join(init))
    code_files += 1
    requirements = rng.sample(REQUIREMENTS, k=rng.randint(1, 2))
    _write(base / "requirements.txt", "".join(f"{req}\n" for req in requirements))
    code_files += 1

    tests = root / "tests" / "pipelines" / mp
    _write(tests / "__init__.py", "")
    test_files = 1
    tested = [m for m in modules if len(m.transforms) >= 2][: rng.randint(1, 2)]
    for k, module in enumerate(tested):
        _write(tests / f"test_{module.stem}.py", _test_source(package_name, mp, module, patch=k == 0))
        test_files += 1

    conf = root / "conf" / "base"
    threshold = round(rng.uniform(0.05, 0.5), 2)
    _write(
        conf / f"parameters_{mp}.yml",
        f"{mp}:\n  threshold: {threshold}\n  columns: [{', '.join(rng.sample(NOUNS, k=3))}]\n"
        f"  window_days: {rng.randint(7, 90)}\n",
    )
    _write(
        conf / "parameters" / mp / "extra.yml",
        f"{mp}:\n  extra:\n    max_missing_share: {round(rng.uniform(0.05, 0.3), 2)}\n"
        f"    sample_size: {rng.randint(100, 10000)}\n",
    )
    return f"pipelines.{mp}", version, code_files, test_files, 2, requirements


def generate_project(
    root: str | Path,
    n_micropkgs: int,
    files_per_micropkg: int = 10,
    *,
    package_name: str = "bench_project",
    seed: int = 0,
) -> GeneratedProject:
    """Write a Kedro 0.19-layout project at ``root`` with ``n_micropkgs`` micro-packages.

    ``files_per_micropkg`` is the number of Python modules in each micro-package
    (``pipeline.py`` included, ``__init__.py`` files not).
    """
    root = Path(root)
    if n_micropkgs < 1 or n_micropkgs > 100:
        raise ValueError("n_micropkgs must be between 1 and 100 (names are p00 .. p99)")
    if files_per_micropkg < 3:
        raise ValueError("files_per_micropkg must be at least 3")
    entries = [f'"pipelines.p{index:02d}" = {{}}' for index in range(n_micropkgs)]
    manifest = "[tool.kedro.micropkg.package]\n" + "\n".join(entries) + "\n"
    _project_skeleton(root, package_name, manifest, ["ipython>=8.10", "kedro~=" + KEDRO_VERSION, "pytest~=7.2"])
    generated = GeneratedProject(root, package_name, [], {})
    for index in range(n_micropkgs):
        module_path, version, code, tests, config, _ = generate_micropkg(
            root, package_name, index, files_per_micropkg, seed=seed
        )
        generated.module_paths.append(module_path)
        generated.versions[module_path] = version
        generated.code_files[module_path] = code
        generated.test_files[module_path] = tests
        generated.config_files[module_path] = config
    return generated


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generate_consumer(root: str | Path, sdists: Sequence[str | Path], *, package_name: str = "consumer") -> Path:
    """Write a fresh project at ``root`` whose pull manifest lists ``sdists`` (destination ``pipelines``)."""
    root = Path(root)
    entries = [f'{_toml_string(str(sdist))} = {{destination = "pipelines"}}' for sdist in sdists]
    manifest = "[tool.kedro.micropkg.pull]\n" + "\n".join(entries) + "\n"
    _project_skeleton(root, package_name, manifest, ["ipython>=8.10", "kedro~=" + KEDRO_VERSION, "pytest~=7.2"])
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder to write the project into")
    parser.add_argument("--micropkgs", type=int, default=20)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    project = generate_project(args.root, args.micropkgs, args.files, seed=args.seed)
    total = sum(project.files_packaged(m) for m in project.module_paths)
    print(f"wrote {project.root}: {len(project.module_paths)} micro-packages, {total} files to package")


if __name__ == "__main__":
    main()
