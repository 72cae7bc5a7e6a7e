"""``package``: Kedro-compatible, reproducible sdists from real project trees."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from micropkg_tasks import package, package_all
from micropkg_tasks.core.errors import MicropkgError, UsageError
from tests.conftest import kedro_project
from tests.helpers import build_file_tree, snapshot_tree

CORE = "projects/core"


def members(sdist: Path) -> dict[str, bytes]:
    with tarfile.open(sdist, "r:gz") as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


def unpack(sdist: Path, target: Path) -> Path:
    with tarfile.open(sdist, "r:gz") as archive:
        archive.extractall(target, filter="data")
    (root,) = list(target.iterdir())
    return root


# -- the example monorepo: acceptance 2 ---------------------------------------------------------


def test_package_all_cli_writes_one_sdist_per_manifest_entry(monorepo, cli):
    project = monorepo / CORE
    result = cli(["package", "--all"], project)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (project / "dist").iterdir()) == [
        "data_cleaning-0.3.0.tar.gz",
        "io_utils-0.2.0.tar.gz",
    ]
    assert "packaged pipelines.data_cleaning -> dist/data_cleaning-0.3.0.tar.gz" in result.stdout
    assert "version 0.3.0 (from micro-package __version__ (src/core/pipelines/data_cleaning/__init__.py))" in result.stdout


def test_sdist_has_the_kedro_layout(monorepo):
    batch = package_all(monorepo / CORE)
    by_name = {r.name: Path(r.path) for r in batch.results}
    assert set(members(by_name["data_cleaning"])) == {
        "data_cleaning-0.3.0/PKG-INFO",
        "data_cleaning-0.3.0/pyproject.toml",
        "data_cleaning-0.3.0/micropkg-restore.json",  # our own metadata: how to pull it back exactly
        "data_cleaning-0.3.0/data_cleaning/__init__.py",
        "data_cleaning-0.3.0/data_cleaning/nodes.py",
        "data_cleaning-0.3.0/data_cleaning/pipeline.py",
        "data_cleaning-0.3.0/data_cleaning/requirements.txt",
        "data_cleaning-0.3.0/data_cleaning/config/parameters_data_cleaning.yml",
        "data_cleaning-0.3.0/data_cleaning/config/parameters/data_cleaning/thresholds.yml",
        "data_cleaning-0.3.0/tests/__init__.py",
        "data_cleaning-0.3.0/tests/test_nodes.py",
    }
    io_files = members(by_name["io_utils"])
    assert io_files["io_utils-0.2.0/PKG-INFO"].decode() == (
        "Metadata-Version: 2.1\n"
        "Name: io_utils\n"
        "Version: 0.2.0\n"
        "Summary: Micro-package `io_utils`\n"
        "Requires-Dist: pyyaml>=6.0\n"
    )
    # The catalog is never packaged, even though conf/base holds one.
    assert not any("catalog" in name for name in members(by_name["data_cleaning"]))


def test_sdist_code_and_tests_hold_no_old_dotted_path(monorepo):
    batch = package_all(monorepo / CORE)
    for result in batch.results:
        for name, content in members(Path(result.path)).items():
            if name.endswith(".py"):
                text = content.decode()
                assert "core.pipelines" not in text and "core.utils" not in text, name
    nodes_test = members(Path(batch.results[0].path))["data_cleaning-0.3.0/tests/test_nodes.py"].decode()
    assert "import data_cleaning.nodes as nodes_module" in nodes_test
    assert 'mock.patch("data_cleaning.nodes.rename_columns"' in nodes_test


def test_sdist_imports_from_the_unpacked_folder(monorepo, tmp_path):
    batch = package_all(monorepo / CORE)
    for result in batch.results:
        root = unpack(Path(result.path), tmp_path / result.name)
        completed = subprocess.run(
            [sys.executable, "-c", f"import {result.name}; print({result.name}.__version__)"],
            cwd=root, capture_output=True, text=True, timeout=60,
        )
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout.strip() == result.version
        # The packaged tests pass against the packaged code, before any pull.
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
            cwd=root, capture_output=True, text=True, timeout=120,
        )
        assert tests.returncode == 0, tests.stdout + tests.stderr


def test_pip_wheel_builds_the_sdist(monorepo, tmp_path):
    batch = package_all(monorepo / CORE)
    for result in batch.results:
        wheels = tmp_path / f"wheels-{result.name}"
        completed = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
             "-q", "-w", str(wheels), result.path],
            capture_output=True, text=True, timeout=180,
        )
        assert completed.returncode == 0, completed.stderr
        (wheel,) = wheels.glob("*.whl")
        names = zipfile.ZipFile(wheel).namelist()
        assert f"{result.name}/__init__.py" in names
    cleaning_wheel = next((tmp_path / "wheels-data_cleaning").glob("*.whl"))
    assert "data_cleaning/config/parameters_data_cleaning.yml" in zipfile.ZipFile(cleaning_wheel).namelist()


# -- reproducibility: acceptance 3 ---------------------------------------------------------------


@pytest.fixture
def nested_project(tmp_path):
    """Nested parameter folders, an alias and a non-default env."""
    return kedro_project(
        tmp_path / "proj",
        extra={
            "src/spaceflights/pipelines/reporting/__init__.py": '__version__ = "1.4"\n',
            "src/spaceflights/pipelines/reporting/nodes.py": (
                "from spaceflights.pipelines.reporting.helpers import fmt\n\n\ndef report(x):\n    return fmt(x)\n"
            ),
            "src/spaceflights/pipelines/reporting/helpers/__init__.py": "def fmt(x):\n    return str(x)\n",
            "src/spaceflights/pipelines/reporting/requirements.txt": 'pyyaml>=6; python_version >= "3.8"\n',
            "tests/pipelines/reporting/__init__.py": "",
            "tests/pipelines/reporting/test_nodes.py": (
                "from spaceflights.pipelines.reporting.nodes import report\n\n\n"
                "def test_report():\n    assert report(1) == '1'\n"
            ),
            "conf/uat/parameters_reporting.yml": "reporting:\n  level: 2\n",
            "conf/uat/parameters/reporting/deep/er/charts.yml": "charts: [a, b]\n",
            "conf/uat/reporting/extra.yml": "extra: true\n",
            "conf/uat/catalog_reporting.yml": "never: packaged\n",
        },
    )


def test_packaging_twice_gives_identical_bytes(nested_project, tmp_path):
    first = package(nested_project, "pipelines.reporting", alias="charts", env="uat", destination=tmp_path / "a")
    second = package(nested_project, "pipelines.reporting", alias="charts", env="uat", destination=tmp_path / "b")
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    assert first.sha256 == second.sha256
    names = set(members(Path(first.path)))
    assert "charts-1.4/charts/config/parameters_charts.yml" in names  # renamed for the alias
    assert "charts-1.4/charts/config/parameters/reporting/deep/er/charts.yml" in names  # folders keep names
    assert "charts-1.4/charts/config/reporting/extra.yml" in names
    assert "charts-1.4/charts/helpers/__init__.py" in names
    assert not any("catalog" in name for name in names)
    assert first.config_files == 3
    assert first.requirements == ('pyyaml>=6; python_version >= "3.8"',)


def test_source_date_epoch_is_used_and_changes_the_bytes(nested_project, tmp_path, monkeypatch):
    default = package(nested_project, "pipelines.reporting", destination=tmp_path / "a")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    stamped = package(nested_project, "pipelines.reporting", destination=tmp_path / "b")
    assert Path(default.path).read_bytes() != Path(stamped.path).read_bytes()
    with tarfile.open(stamped.path, "r:gz") as archive:
        assert {m.mtime for m in archive.getmembers()} == {1700000000}
    again = package(nested_project, "pipelines.reporting", destination=tmp_path / "c")
    assert Path(again.path).read_bytes() == Path(stamped.path).read_bytes()


def test_parallel_package_all_equals_serial(monorepo, tmp_path):
    parallel = package_all(monorepo / CORE, jobs=2)
    blobs = {r.name: Path(r.path).read_bytes() for r in parallel.results}
    serial = package_all(monorepo / CORE, jobs=1)
    assert {r.name: Path(r.path).read_bytes() for r in serial.results} == blobs


def test_version_source_is_reported(nested_project, tmp_path):
    (nested_project / "src/spaceflights/pipelines/reporting/__init__.py").write_text("")
    result = package(nested_project, "pipelines.reporting", destination=tmp_path)
    assert result.version == "0.1"
    assert result.version_source == "project package __version__ (src/spaceflights/__init__.py)"


# -- imports that reach outside the micro-package -----------------------------------------------


def test_outside_imports_are_listed_and_warned(tmp_path, cli):
    project = kedro_project(
        tmp_path / "proj",
        extra={
            "src/spaceflights/utils/__init__.py": "",
            "src/spaceflights/utils/cleaning.py": "def strip(x):\n    return x\n",
            "src/spaceflights/pipelines/x/__init__.py": "",
            "src/spaceflights/pipelines/x/nodes.py": (
                "import os\n"
                "from spaceflights.utils.cleaning import strip\n"
                "from ...utils import cleaning\n"
                "\n\ndef f(v):\n    return strip(v)\n"
            ),
        },
    )
    result = package(project, "pipelines.x")
    assert [(o.file, o.line, o.name) for o in result.outside_imports] == [
        ("src/spaceflights/pipelines/x/nodes.py", 2, "spaceflights.utils.cleaning"),
        ("src/spaceflights/pipelines/x/nodes.py", 3, "...utils"),
    ]
    run = cli(["package", "pipelines.x"], project)
    assert run.exit_code == 0
    assert (
        "warning: src/spaceflights/pipelines/x/nodes.py:2: spaceflights.utils.cleaning is outside the "
        "micro-package and will not resolve after a pull"
    ) in run.stderr


# -- validation errors: acceptance 7 -------------------------------------------------------------


@pytest.fixture
def small_project(tmp_path):
    return kedro_project(
        tmp_path / "proj",
        extra={
            "src/spaceflights/pipelines/x/__init__.py": "",
            "src/spaceflights/pipelines/x/nodes.py": "def f():\n    return 1\n",
            "src/spaceflights/pipelines/empty/__init__.py": "",
            "src/spaceflights/utils/io/__init__.py": "",
            "src/spaceflights/utils/io/read.py": "def r():\n    return 1\n",
            "a_file.txt": "not a folder\n",
        },
    )


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["package", "pipelines.x", "--alias", "1abc"], 2, "--alias '1abc' is not a valid Python package name"),
        (["package", "pipelines.x", "--alias", "class"], 2, "--alias 'class' is not a valid Python package name"),
        (["package", "pipelines.nope"], 2,
         "micro-package 'pipelines.nope' does not exist: src/spaceflights/pipelines/nope is not a folder"),
        (["package", "pipelines.x", "--env", "uat"], 2, "env 'uat' does not exist: conf/uat is not a folder"),
        (["package", "pipelines.x", "--destination", "a_file.txt"], 2, "is a file, not a folder"),
        (["package", "utils.io"], 2, "micro-package name 'io' would shadow the standard library module 'io'"),
        (["package", "pipelines..x"], 2, "module path 'pipelines..x' is not a dotted Python module path"),
        (["package", "pipelines.x", "--all"], 2, "give a module path (or a comma-separated list) or --all"),
        (["package", "--all"], 2, "has no [tool.micropkg.package] manifest"),
        (["package", "pipelines.x", "--bogus"], 2, "No idea what '--bogus' is!"),
    ],
)
def test_validation_errors_are_one_clear_line_and_write_nothing(small_project, cli, argv, code, message):
    before = snapshot_tree(small_project)
    result = cli(argv, small_project)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert snapshot_tree(small_project) == before


def test_several_modules_comma_separated_and_one_bad_writes_nothing(small_project, cli):
    before = snapshot_tree(small_project)
    result = cli(["package", "pipelines.x,pipelines.nope"], small_project)
    assert result.exit_code == 2
    assert "micro-package 'pipelines.nope' does not exist" in result.stderr
    assert snapshot_tree(small_project) == before
    ok = cli(["package", "pipelines.x,utils.io", "--destination", "out"], small_project)
    assert ok.exit_code == 2  # utils.io shadows the standard library
    ok = cli(["package", "pipelines.x", "--destination", "out"], small_project)
    assert ok.exit_code == 0, ok.stderr
    assert (small_project / "out" / "x-0.1.tar.gz").is_file()


def test_build_failure_writes_nothing(small_project, cli):
    # A file that must be rewritten but cannot be parsed stops the build.
    (small_project / "src/spaceflights/pipelines/x/broken.py").write_text(
        "from spaceflights.pipelines.x.nodes import f\ndef (:\n"
    )
    before = snapshot_tree(small_project)
    result = cli(["package", "pipelines.x"], small_project)
    assert result.exit_code == 1
    assert "src/spaceflights/pipelines/x/broken.py" in result.stderr
    assert snapshot_tree(small_project) == before


def test_malformed_requirement_names_file_and_line(small_project):
    (small_project / "src/spaceflights/pipelines/x/requirements.txt").write_text("pyyaml>=6\nfoo >= \n")
    with pytest.raises(MicropkgError) as raised:
        package(small_project, "pipelines.x")
    assert "src/spaceflights/pipelines/x/requirements.txt:2" in str(raised.value)


def test_relative_cli_destination_is_relative_to_current_folder(small_project, cli):
    elsewhere = small_project / "src"
    result = cli(["package", "pipelines.x", "--destination", "here", "--project", str(small_project)], elsewhere)
    assert result.exit_code == 0, result.stderr
    assert (elsewhere / "here" / "x-0.1.tar.gz").is_file()


def test_manifest_destination_is_relative_to_project_root(small_project, cli):
    with open(small_project / "pyproject.toml", "a") as handle:
        handle.write('\n[tool.kedro.micropkg.package]\n"pipelines.x" = {destination = "shared/dist", alias = "ex"}\n')
    result = cli(["package", "--all"], small_project / "src")
    assert result.exit_code == 0, result.stderr
    assert (small_project / "shared" / "dist" / "ex-0.1.tar.gz").is_file()


def test_legacy_layout_packages_tests_from_src_tests(tmp_path):
    project = kedro_project(
        tmp_path / "legacy",
        legacy=True,
        extra={
            "src/spaceflights/pipelines/x/__init__.py": "",
            "src/spaceflights/pipelines/x/nodes.py": "def f():\n    return 1\n",
            "src/tests/pipelines/x/test_nodes.py": "from spaceflights.pipelines.x.nodes import f\n",
        },
    )
    result = package(project, "pipelines.x")
    assert members(Path(result.path))["x-0.1/tests/test_nodes.py"] == b"from x.nodes import f\n"


def test_symlinks_are_not_followed(small_project, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password\n")
    (small_project / "src/spaceflights/pipelines/x/leak.txt").symlink_to(secret)
    result = package(small_project, "pipelines.x")
    assert not any(name.endswith("leak.txt") for name in members(Path(result.path)))
    assert any("leak.txt: symlink skipped" in w for w in result.warnings)


def test_package_function_rejects_bad_alias_before_writing(small_project):
    with pytest.raises(UsageError):
        package(small_project, "pipelines.x", alias="not-valid")
    assert not (small_project / "dist").exists()


def test_pkg_info_is_a_valid_core_metadata_file(monorepo):
    from email.parser import HeaderParser

    result = package_all(monorepo / CORE).results[1]
    headers = HeaderParser().parse(io.StringIO(members(Path(result.path))["io_utils-0.2.0/PKG-INFO"].decode()))
    assert headers["Name"] == "io_utils" and headers.get_all("Requires-Dist") == ["pyyaml>=6.0"]


def test_name_that_its_own_code_imports_is_refused(tmp_path, cli):
    # Packaged as top-level `yaml`, `import yaml` could no longer be told apart from the package itself.
    project = kedro_project(
        tmp_path / "proj",
        extra={
            "src/spaceflights/pipelines/yaml/__init__.py": "import yaml\n\n\ndef load(text):\n    return yaml.safe_load(text)\n",
        },
    )
    before = snapshot_tree(project)
    result = cli(["package", "pipelines.yaml"], project)
    assert result.exit_code == 2
    assert (
        "micro-package name 'yaml' is also a module that its code imports "
        "(src/spaceflights/pipelines/yaml/__init__.py:1); package it under another name with --alias"
    ) in result.stderr
    assert snapshot_tree(project) == before
    assert cli(["package", "pipelines.yaml", "--alias", "yaml_tools"], project).exit_code == 0
