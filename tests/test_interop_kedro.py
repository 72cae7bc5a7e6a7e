"""Interop with real Kedro 0.19 (SPEC §3, §6): Kedro pulls our sdists, and we pull Kedro's.

Kedro runs from its own cached venv (``tests/kedro_env.py``), never from ours;
every test is skipped when that venv cannot be made. Kedro-built sdists are
made once per session. The tests that a pull installs are then run with *our*
venv's python and ``PYTHONPATH=src`` inside the pulled-into project.

Known differences, asserted exactly rather than ignored:

- Kedro's ``micropkg package`` leaves the micro-package's ``requirements.txt``
  out of the sdist (its MANIFEST.in takes only parameters; the requirements
  travel as ``Requires-Dist``), so a round trip through a Kedro sdist loses
  that one file.
- Kedro rewrites import statements but not string literals, in either
  direction. Our sdists carry string references already made top-level
  (``mock.patch("data_cleaning.nodes.f")``, §4), and Kedro's pull leaves them
  so; a string that names the original project's module path survives Kedro's
  packaging unchanged.
- Kedro's alias renames parameter *files* whose name holds the old name, never
  folders (``parameters/<old name>/...`` keeps its name).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

import micropkg_tasks
from tests.conftest import EXAMPLE_MONOREPO, kedro_project, run_micropkg
from tests.helpers import build_file_tree, read_tree
from tests.kedro_env import kedro_bin, run_kedro  # noqa: F401  (kedro_bin is a fixture)

pytestmark = pytest.mark.interop

SUBPROCESS_TIMEOUT = 180


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _check_kedro(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 0, f"{what} exited {result.returncode}\n{result.stdout}\n{result.stderr}"


def _run_pulled_tests(project: Path, tests: str, passed: int, failed: tuple[str, ...] = ()) -> str:
    """Run the pulled tests with our venv's python and PYTHONPATH=src.

    Exactly ``passed`` tests must pass, and exactly the tests named in
    ``failed`` (known Kedro limitations) must fail.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(project / "src"), PYTHONDONTWRITEBYTECODE="1")
    command = [
        sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "--rootdir", str(project),
        "-o", "addopts=", tests,
    ]
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == (1 if failed else 0), f"pulled tests in {project}:\n{output}"
    summary = output.strip().splitlines()[-1]
    expected = (f"{len(failed)} failed, " if failed else "") + f"{passed} passed"
    assert summary.startswith(expected + " in "), output
    assert sorted(re.findall(r"^FAILED (\S+)", output, re.MULTILINE)) == sorted(failed), output
    return output


def _tree_changes(before: dict[str, bytes], after: dict[str, bytes]) -> tuple[set[str], set[str], set[str]]:
    """(created, changed, deleted) relative paths."""
    created = set(after) - set(before)
    deleted = set(before) - set(after)
    changed = {path for path in set(before) & set(after) if before[path] != after[path]}
    return created, changed, deleted


# ============================================================ Kedro pulls our sdists

CORE = "projects/core"
CORE_SRC = "src/core"
CORE_FILES = {
    path: content
    for path, content in read_tree(EXAMPLE_MONOREPO / CORE).items()
    if "__pycache__" not in path.split("/") and not path.startswith("dist/")
}


@pytest.fixture(scope="session")
def our_sdists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``data_cleaning`` built with ``micropkg_tasks.package``; ``io_utils`` with the CLI's ``package --all``.

    The CLI build of ``data_cleaning`` must be byte-identical to the API build (§3 reproducible).
    """
    monorepo = tmp_path_factory.mktemp("ours") / "monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, monorepo, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    core = monorepo / CORE
    api_dist = monorepo / "api-dist"
    result = micropkg_tasks.package(core, "pipelines.data_cleaning", destination=api_dist)
    assert Path(result.path).name == "data_cleaning-0.3.0.tar.gz"

    cli = run_micropkg(["package", "--all"], cwd=core)
    assert cli.exit_code == 0, cli.stdout + cli.stderr
    assert sorted(p.name for p in (core / "dist").iterdir()) == ["data_cleaning-0.3.0.tar.gz", "io_utils-0.2.0.tar.gz"]
    assert (core / "dist" / "data_cleaning-0.3.0.tar.gz").read_bytes() == Path(result.path).read_bytes()
    return {"data_cleaning": Path(result.path), "io_utils": core / "dist" / "io_utils-0.2.0.tar.gz"}


def _fresh_kedro_project(root: Path) -> tuple[Path, dict[str, bytes]]:
    project = kedro_project(root, "newproj", extra={"requirements.txt": "kedro~=0.19.15\n"})
    return project, read_tree(project)


def _expected_after_kedro_pull(original: str, old: str, packaged: str, new: str) -> str:
    """What Kedro's pull of our sdist makes of an original source file of ``core``.

    Our packaging made every reference to ``old`` top-level (``packaged``),
    strings included (§4); Kedro's pull rewrites the import statements to
    ``new`` but leaves string literals at ``packaged``.
    """
    strings = re.sub(r"([\"'])" + re.escape(old) + r"\.", lambda m: m.group(1) + packaged + ".", original)
    return strings.replace(old, new)


def _assert_code_and_tests(
    project: Path,
    *,
    old_module: str,
    packaged: str,
    new_module: str,
    code_dir: str,
    tests_dir: str,
    source_code_dir: str,
    source_tests_dir: str,
) -> None:
    """Every code and test file of the original arrived, identical but for the import paths."""
    after = read_tree(project)
    compared = 0
    for original_path, content in CORE_FILES.items():
        for source_dir, target_dir in ((source_code_dir, code_dir), (source_tests_dir, tests_dir)):
            if original_path.startswith(source_dir + "/"):
                target = target_dir + original_path[len(source_dir):]
                if target.endswith(".py"):
                    expected = _expected_after_kedro_pull(content.decode(), old_module, packaged, new_module)
                    assert after[target].decode() == expected, target
                else:
                    assert after[target] == content, target
                compared += 1
    assert compared >= 5


def test_kedro_pulls_our_data_cleaning(kedro_bin: Path, our_sdists: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    project, before = _fresh_kedro_project(tmp_path / "newproj")

    result = run_kedro(kedro_bin, ["micropkg", "pull", str(our_sdists["data_cleaning"])], cwd=project)
    _check_kedro(result, "kedro micropkg pull data_cleaning")
    assert "pulled and unpacked" in result.stdout

    after = read_tree(project)
    created, changed, deleted = _tree_changes(before, after)
    assert created == {
        "src/newproj/data_cleaning/__init__.py",
        "src/newproj/data_cleaning/nodes.py",
        "src/newproj/data_cleaning/pipeline.py",
        "src/newproj/data_cleaning/requirements.txt",
        "tests/data_cleaning/__init__.py",
        "tests/data_cleaning/test_nodes.py",
        "conf/base/parameters_data_cleaning.yml",
        "conf/base/parameters/data_cleaning/thresholds.yml",
    }
    assert changed == set() and deleted == set()  # no requirements: requirements.txt untouched

    # Imports in code and tests now point at newproj.data_cleaning; nothing else changed.
    _assert_code_and_tests(
        project,
        old_module="core.pipelines.data_cleaning",
        packaged="data_cleaning",
        new_module="newproj.data_cleaning",
        code_dir="src/newproj/data_cleaning",
        tests_dir="tests/data_cleaning",
        source_code_dir=f"{CORE_SRC}/pipelines/data_cleaning",
        source_tests_dir="tests/pipelines/data_cleaning",
    )
    assert "from newproj.data_cleaning.pipeline import create_pipeline" in after[
        "src/newproj/data_cleaning/__init__.py"
    ].decode()
    assert "from newproj.data_cleaning import nodes" in after["src/newproj/data_cleaning/pipeline.py"].decode()
    test_code = after["tests/data_cleaning/test_nodes.py"].decode()
    assert "import newproj.data_cleaning.nodes as nodes_module" in test_code
    assert "from newproj.data_cleaning.nodes import clean, drop_columns, missing_share" in test_code
    # Known Kedro limitation: the string stays at the top-level name our sdist carries.
    assert 'mock.patch("data_cleaning.nodes.rename_columns"' in test_code

    # Parameters landed in conf/base unchanged.
    for name in ("parameters_data_cleaning.yml", "parameters/data_cleaning/thresholds.yml"):
        assert after[f"conf/base/{name}"] == CORE_FILES[f"conf/base/{name}"]

    # The pulled tests pass, except the one whose mock.patch string Kedro cannot rewrite.
    output = _run_pulled_tests(
        project, "tests/data_cleaning", passed=3,
        failed=("tests/data_cleaning/test_nodes.py::test_clean_uses_rename_columns",),
    )
    assert "No module named 'data_cleaning'" in output


def test_kedro_pulls_our_data_cleaning_with_alias_and_destination(
    kedro_bin: Path, our_sdists: dict[str, Path], tmp_path: Path  # noqa: F811
) -> None:
    project, before = _fresh_kedro_project(tmp_path / "newproj")
    args = ["micropkg", "pull", str(our_sdists["data_cleaning"]), "--destination", "pipelines", "--alias", "cleaning"]
    result = run_kedro(kedro_bin, args, cwd=project)
    _check_kedro(result, "kedro micropkg pull --destination pipelines --alias cleaning")

    after = read_tree(project)
    created, changed, deleted = _tree_changes(before, after)
    assert created == {
        "src/newproj/pipelines/cleaning/__init__.py",
        "src/newproj/pipelines/cleaning/nodes.py",
        "src/newproj/pipelines/cleaning/pipeline.py",
        "src/newproj/pipelines/cleaning/requirements.txt",
        "tests/pipelines/cleaning/__init__.py",
        "tests/pipelines/cleaning/test_nodes.py",
        # Kedro's alias renames parameter files, not folders.
        "conf/base/parameters_cleaning.yml",
        "conf/base/parameters/data_cleaning/thresholds.yml",
    }
    assert changed == set() and deleted == set()
    _assert_code_and_tests(
        project,
        old_module="core.pipelines.data_cleaning",
        packaged="data_cleaning",
        new_module="newproj.pipelines.cleaning",
        code_dir="src/newproj/pipelines/cleaning",
        tests_dir="tests/pipelines/cleaning",
        source_code_dir=f"{CORE_SRC}/pipelines/data_cleaning",
        source_tests_dir="tests/pipelines/data_cleaning",
    )
    assert "from newproj.pipelines.cleaning import nodes" in after["src/newproj/pipelines/cleaning/pipeline.py"].decode()
    assert after["conf/base/parameters_cleaning.yml"] == CORE_FILES["conf/base/parameters_data_cleaning.yml"]
    _run_pulled_tests(
        project, "tests/pipelines/cleaning", passed=3,
        failed=("tests/pipelines/cleaning/test_nodes.py::test_clean_uses_rename_columns",),
    )


def test_kedro_pulls_our_aliased_io_utils_with_requirements(
    kedro_bin: Path, our_sdists: dict[str, Path], tmp_path: Path  # noqa: F811
) -> None:
    project, before = _fresh_kedro_project(tmp_path / "newproj")
    result = run_kedro(
        kedro_bin, ["micropkg", "pull", str(our_sdists["io_utils"]), "--destination", "utils"], cwd=project
    )
    _check_kedro(result, "kedro micropkg pull io_utils --destination utils")

    after = read_tree(project)
    created, changed, deleted = _tree_changes(before, after)
    # Kedro adds no __init__.py to the new ``utils`` folders: they are namespace packages.
    assert created == {
        "src/newproj/utils/io_utils/__init__.py",
        "src/newproj/utils/io_utils/readers.py",
        "src/newproj/utils/io_utils/writers.py",
        "src/newproj/utils/io_utils/requirements.txt",
        "tests/utils/io_utils/__init__.py",
        "tests/utils/io_utils/test_readers.py",
    }
    assert changed == {"requirements.txt"} and deleted == set()
    requirements = after["requirements.txt"].decode()
    assert requirements.startswith(before["requirements.txt"].decode())
    assert _requirement_lines(requirements) == ["kedro~=0.19.15", "pyyaml>=6.0"]

    _assert_code_and_tests(
        project,
        old_module="core.utils.io",
        packaged="io_utils",
        new_module="newproj.utils.io_utils",
        code_dir="src/newproj/utils/io_utils",
        tests_dir="tests/utils/io_utils",
        source_code_dir=f"{CORE_SRC}/utils/io",
        source_tests_dir="tests/utils/io",
    )
    assert "from newproj.utils.io_utils.readers import read_records" in after[
        "src/newproj/utils/io_utils/__init__.py"
    ].decode()
    assert "from newproj.utils.io_utils import read_records, write_records" in after[
        "tests/utils/io_utils/test_readers.py"
    ].decode()
    _run_pulled_tests(project, "tests/utils/io_utils", passed=2)


# ============================================================ We pull Kedro's sdists

ORIGIN_MODULE_DIR = "src/origin/pipelines/feature_eng"
ORIGIN_TESTS_DIR = "tests/pipelines/feature_eng"
ORIGIN_PARAMS = ("conf/base/parameters_feature_eng.yml", "conf/base/parameters/feature_eng/columns.yml")
ORIGIN_LOGGER = 'logging.getLogger("origin.pipelines.feature_eng.nodes")'

ORIGIN: dict[str, str] = {
    "pyproject.toml": (
        "[tool.kedro]\n"
        'package_name = "origin"\n'
        'project_name = "origin"\n'
        'kedro_init_version = "0.19.15"\n'
    ),
    "requirements.txt": "kedro~=0.19.15\n",
    "src/origin/__init__.py": '__version__ = "0.1"\n',
    "src/origin/pipelines/__init__.py": "",
    f"{ORIGIN_MODULE_DIR}/__init__.py": (
        '"""Feature engineering shared between projects."""\n'
        "\n"
        "from origin.pipelines.feature_eng.nodes import scale  # re-exported\n"
        "\n"
        '__all__ = ["scale"]\n'
        '__version__ = "0.7.1"\n'
    ),
    f"{ORIGIN_MODULE_DIR}/nodes.py": (
        '"""Nodes: plain functions, no Kedro needed."""\n'
        "\n"
        "from __future__ import annotations\n"
        "\n"
        "import logging\n"
        "\n"
        "import origin.pipelines.feature_eng.helpers as h\n"
        "from origin.pipelines.feature_eng.sub.ops import clip\n"
        "from origin.pipelines.feature_eng import helpers\n"
        "from .helpers import double\n"
        "\n"
        f"logger = {ORIGIN_LOGGER}\n"
        "\n"
        "\n"
        "def scale(values: list[float], params: dict) -> list[float]:\n"
        '    """Multiply, then clip to ``params["bounds"]``."""\n'
        '    factor = params["factor"]\n'
        '    low, high = params["bounds"]["low"], params["bounds"]["high"]\n'
        '    logger.debug("scaling %d values", len(values))\n'
        "    return [clip(h.times(v, factor), low, high) for v in values]\n"
        "\n"
        "\n"
        "def twice(values: list[float]) -> list[float]:\n"
        "    return [double(v) for v in helpers.identity(values)]\n"
    ),
    f"{ORIGIN_MODULE_DIR}/helpers.py": (
        "def times(value: float, factor: float) -> float:\n"
        "    return value * factor\n"
        "\n"
        "\n"
        "def double(value: float) -> float:\n"
        "    return value * 2\n"
        "\n"
        "\n"
        "def identity(values):\n"
        "    return list(values)\n"
    ),
    f"{ORIGIN_MODULE_DIR}/sub/__init__.py": "",
    f"{ORIGIN_MODULE_DIR}/sub/ops.py": (
        "from packaging.version import Version  # the micro-package's own requirement\n"
        "\n"
        "\n"
        "def clip(value: float, low: float, high: float) -> float:\n"
        "    return max(low, min(high, value))\n"
        "\n"
        "\n"
        "def newer(a: str, b: str) -> bool:\n"
        "    return Version(a) > Version(b)\n"
    ),
    f"{ORIGIN_MODULE_DIR}/requirements.txt": "# What the nodes need\npackaging>=23\n",
    "tests/__init__.py": "",
    "tests/pipelines/__init__.py": "",
    f"{ORIGIN_TESTS_DIR}/__init__.py": "",
    f"{ORIGIN_TESTS_DIR}/test_nodes.py": (
        "from unittest import mock\n"
        "\n"
        "import origin.pipelines.feature_eng.nodes as n\n"
        "from origin.pipelines.feature_eng import helpers\n"
        "from origin.pipelines.feature_eng.sub.ops import newer\n"
        "\n"
        "\n"
        "def test_scale_clips():\n"
        '    params = {"factor": 10, "bounds": {"low": 0, "high": 25}}\n'
        "    assert n.scale([1, 2, 3], params) == [10, 20, 25]\n"
        "\n"
        "\n"
        "def test_twice_uses_helpers():\n"
        '    with mock.patch.object(helpers, "identity", wraps=helpers.identity) as spy:\n'
        "        assert n.twice([1, 2]) == [2, 4]\n"
        "    spy.assert_called_once()\n"
        "\n"
        "\n"
        "def test_newer():\n"
        '    assert newer("1.10", "1.9")\n'
    ),
    ORIGIN_PARAMS[0]: "feature_eng:\n  factor: 10\n  bounds:\n    low: 0\n    high: 25\n",
    ORIGIN_PARAMS[1]: "feature_eng:\n  columns:\n    numeric: [age, income]\n",
    "conf/base/parameters.yml": "seed: 1\n",
    "conf/base/catalog.yml": "features:\n  type: MemoryDataset\n",
    "conf/local/.gitkeep": "",
}
MICROPKG_FILES = {
    path for path in ORIGIN if path.startswith((ORIGIN_MODULE_DIR + "/", ORIGIN_TESTS_DIR + "/")) or path in ORIGIN_PARAMS
}
ORIGIN_TEST_COUNT = 3


def _kedro_package(kedro_bin: Path, tmp_path_factory: pytest.TempPathFactory, alias: str | None) -> Path:
    origin = build_file_tree(tmp_path_factory.mktemp("origin") / "origin", ORIGIN, dedent=False)
    dist = origin.parent / "kedro-dist"
    args = ["micropkg", "package", "pipelines.feature_eng", "--destination", str(dist)]
    if alias:
        args += ["--alias", alias]
    result = run_kedro(kedro_bin, args, cwd=origin, env={"PYTHONPATH": str(origin / "src")})
    _check_kedro(result, f"kedro {' '.join(args)}")
    sdist = dist / f"{alias or 'feature_eng'}-0.7.1.tar.gz"
    assert sdist.is_file(), result.stdout + result.stderr
    return sdist


@pytest.fixture(scope="session")
def kedro_sdist(kedro_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """``feature_eng-0.7.1.tar.gz`` built once per session by real ``kedro micropkg package``."""
    return _kedro_package(kedro_bin, tmp_path_factory, alias=None)


@pytest.fixture(scope="session")
def kedro_alias_sdist(kedro_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """``fe-0.7.1.tar.gz``: ``kedro micropkg package pipelines.feature_eng --alias fe``."""
    return _kedro_package(kedro_bin, tmp_path_factory, alias="fe")


def _read_lock(project: Path) -> dict:
    return tomlkit.parse((project / "micropkg.lock").read_text(encoding="utf-8")).unwrap()


def _assert_pulled_into_fresh_project(project: Path, sdist: Path, name: str, before: dict[str, bytes]) -> None:
    after = read_tree(project)
    created, changed, deleted = _tree_changes(before, after)
    code, tests = f"src/spaceflights/{name}", f"tests/{name}"
    param_file = "parameters_fe.yml" if name == "fe" else "parameters_feature_eng.yml"
    installed = {
        f"{code}/__init__.py",
        f"{code}/nodes.py",
        f"{code}/helpers.py",
        f"{code}/sub/__init__.py",
        f"{code}/sub/ops.py",
        f"{tests}/__init__.py",
        f"{tests}/test_nodes.py",
        f"conf/base/{param_file}",
        # Kedro's alias kept the folder name, so this file keeps it too.
        "conf/base/parameters/feature_eng/columns.yml",
    }
    assert created == installed | {"micropkg.lock", "requirements.in"}
    assert changed == set() and deleted == set()

    # Code and tests: imports point at spaceflights.<name>, everything else as in the original.
    new = f"spaceflights.{name}"
    for relative in ("__init__.py", "nodes.py", "helpers.py", "sub/__init__.py", "sub/ops.py"):
        original = ORIGIN[f"{ORIGIN_MODULE_DIR}/{relative}"]
        # Kedro does not rewrite strings: the logger name keeps the original project's path.
        expected = original.replace("origin.pipelines.feature_eng", new).replace(
            f'getLogger("{new}.nodes")', 'getLogger("origin.pipelines.feature_eng.nodes")'
        )
        assert after[f"{code}/{relative}"].decode() == expected, relative
    expected_tests = ORIGIN[f"{ORIGIN_TESTS_DIR}/test_nodes.py"].replace("origin.pipelines.feature_eng", new)
    assert after[f"{tests}/test_nodes.py"].decode() == expected_tests
    nodes = after[f"{code}/nodes.py"].decode()
    assert f"import {new}.helpers as h\n" in nodes
    assert f"from {new}.sub.ops import clip\n" in nodes
    assert f"from {new} import helpers\n" in nodes
    assert "from .helpers import double\n" in nodes
    assert ORIGIN_LOGGER in nodes
    assert f"import {new}.nodes as n\n" in expected_tests

    # Nested parameters, byte for byte.
    assert after[f"conf/base/{param_file}"] == ORIGIN[ORIGIN_PARAMS[0]].encode()
    assert after["conf/base/parameters/feature_eng/columns.yml"] == ORIGIN[ORIGIN_PARAMS[1]].encode()

    # requirements.in: made from requirements.txt, plus the sdist's Requires-Dist.
    assert _requirement_lines(after["requirements.in"].decode()) == ["pyyaml>=6.0", "packaging>=23"]

    # The lock records the sdist and every installed file with its digest.
    lock = _read_lock(project)
    assert set(lock["micropkg"]) == {name}
    entry = lock["micropkg"][name]
    assert entry["name"] == name
    assert entry["version"] == "0.7.1"
    assert entry["sdist-sha256"] == _sha256(sdist)
    assert entry["requirements"] == ["packaging>=23"]
    assert entry["options"].get("env") == "base"
    assert Path(project, entry["source"]).resolve() == sdist.resolve()
    assert entry["files"] == {path: _sha256(project / path) for path in installed}

    _run_pulled_tests(project, tests, passed=ORIGIN_TEST_COUNT)


def test_we_pull_kedros_sdist(kedro_sdist: Path, tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "spaceflights")
    before = read_tree(project)
    result = micropkg_tasks.pull(project, str(kedro_sdist))
    assert result.applied and result.module == "feature_eng" and result.version == "0.7.1"
    assert result.requirements_added == ("packaging>=23",)
    _assert_pulled_into_fresh_project(project, kedro_sdist, "feature_eng", before)

    # Pulling it again changes nothing.
    installed = read_tree(project)
    again = micropkg_tasks.pull(project, str(kedro_sdist))
    assert again.unchanged
    assert read_tree(project) == installed


def test_we_pull_kedros_aliased_sdist(kedro_alias_sdist: Path, tmp_path: Path) -> None:
    project = kedro_project(tmp_path / "spaceflights")
    before = read_tree(project)
    result = micropkg_tasks.pull(project, str(kedro_alias_sdist))
    assert result.applied and result.module == "fe" and result.name == "fe"
    _assert_pulled_into_fresh_project(project, kedro_alias_sdist, "fe", before)


def test_round_trip_through_kedros_sdist(kedro_sdist: Path, tmp_path: Path) -> None:
    """Original project minus the micro-package + our pull of Kedro's sdist at the same path == original,
    except for requirements.txt, which Kedro leaves out of the sdist."""
    without = {path: content for path, content in ORIGIN.items() if path not in MICROPKG_FILES}
    project = build_file_tree(tmp_path / "origin", without, dedent=False)

    result = micropkg_tasks.pull(project, str(kedro_sdist), destination="pipelines")
    assert result.applied and result.module == "pipelines.feature_eng"

    after = read_tree(project)
    original = {path: content.encode() for path, content in ORIGIN.items()}
    kedro_dropped = {f"{ORIGIN_MODULE_DIR}/requirements.txt"}
    ours_added = {"micropkg.lock", "requirements.in"}
    assert set(after) == (set(original) - kedro_dropped) | ours_added
    differing = sorted(path for path in set(original) & set(after) if original[path] != after[path])
    assert differing == []
    # The string literal with the original module path survived Kedro's packaging unchanged.
    assert ORIGIN_LOGGER in after[f"{ORIGIN_MODULE_DIR}/nodes.py"].decode()
    # The dropped requirements.txt lives on as Requires-Dist, merged into requirements.in.
    assert _requirement_lines(after["requirements.in"].decode()) == ["kedro~=0.19.15", "packaging>=23"]
    _run_pulled_tests(project, ORIGIN_TESTS_DIR, passed=ORIGIN_TEST_COUNT)


# ============================================================ micro-packages with dependencies


def test_kedro_pulls_our_sdist_that_records_a_dependency(kedro_bin: Path, tmp_path: Path) -> None:  # noqa: F811
    """The dependency lives in our own metadata only: Kedro 0.19 pulls the sdist as before, and
    the import of the dependency stays as packaging left it."""
    from tests.test_micropkg_deps import CORE_FILES as DEPS_FILES
    from tests.test_micropkg_deps import MANIFEST as DEPS_MANIFEST

    core = kedro_project(tmp_path / "core", "core_pkg", pyproject_extra=DEPS_MANIFEST, extra=DEPS_FILES)
    packaged = run_micropkg(["package", "--all"], cwd=core)
    assert packaged.exit_code == 0, packaged.stdout + packaged.stderr
    project, before = _fresh_kedro_project(tmp_path / "newproj")

    result = run_kedro(kedro_bin, ["micropkg", "pull", str(core / "dist/p0-0.2.tar.gz")], cwd=project)
    _check_kedro(result, "kedro micropkg pull p0")

    after = read_tree(project)
    created, changed, deleted = _tree_changes(before, after)
    assert created == {
        "src/newproj/p0/__init__.py",
        "src/newproj/p0/helpers.py",
        "tests/p0/__init__.py",
        "tests/p0/test_helpers.py",
    }
    assert changed == set() and deleted == set()
    assert after["src/newproj/p0/helpers.py"] == DEPS_FILES["src/core_pkg/pipelines/p0/helpers.py"].encode()
    assert after["tests/p0/test_helpers.py"].decode().startswith("from newproj.p0.helpers import tidy\n")
