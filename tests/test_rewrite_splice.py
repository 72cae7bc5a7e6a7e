"""Rewriting once and splicing each project's package name in gives the same bytes as rewriting
for each project (core/rewrite/splice.py), on the example monorepo, the benchmark generator's
projects and hypothesis-generated micro-packages."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import micropkg_tasks.ops.install.files as install_files
from micropkg_tasks import package_all
from micropkg_tasks.core.project.project import load_project
from micropkg_tasks.core.rewrite.splice import PLACEHOLDER, SplicedRewrites
from micropkg_tasks.core.runs import new_run
from micropkg_tasks.core.sdist.read import read_sdist
from tests.conftest import EXAMPLE_MONOREPO, kedro_project
from tests.hypothesis_profiles import examples
from tests.test_properties import NAMES, build_sdist, trees

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import generate_project  # noqa: E402


class Direct:
    """What installing did before splicing: rewrite for the project's own name every time."""

    def rewrite(self, key, files, rewrite, package_name):
        return rewrite(files, package_name)


def placed(project, sdist, module, install_name, splicer) -> dict[Path, bytes]:
    with mock.patch.object(install_files, "_SPLICED", splicer):
        return install_files.target_files(
            project, sdist, module=module, env="base", install_name=install_name, run="one run"
        )


def assert_spliced_equals_direct(sdist, projects, module: str, install_name: str) -> int:
    """Install ``sdist`` into every project both ways; return how many files the rewriter changed."""
    splicer = SplicedRewrites()
    rewritten = 0
    for project in projects:
        direct = placed(project, sdist, module, install_name, Direct())
        spliced = placed(project, sdist, module, install_name, splicer)
        assert spliced == direct, f"{project.package_name}: spliced files differ from a direct rewrite"
        original = {**sdist.package_files(), **sdist.test_files()}
        rewritten += sum(1 for content in direct.values() if content not in original.values())
    return rewritten


@pytest.fixture(scope="module")
def targets(tmp_path_factory) -> list:
    """Projects whose package names collide with names the sources use, and plain ones."""
    root = tmp_path_factory.mktemp("targets")
    names = ["churn", "core", "data_cleaning", "tests", "pipelines", "io_utils", "bench_project", "p00", "a", "x" * 60]
    return [load_project(kedro_project(root / f"t{index}", name)) for index, name in enumerate(names)]


def test_example_monorepo_micropackages(targets, tmp_path):
    batch = package_all(EXAMPLE_MONOREPO / "projects" / "core", destination=str(tmp_path))
    assert batch.results
    for result in batch.results:
        sdist = read_sdist(Path(result.path).read_bytes(), source=result.path)
        for destination in ("", "pipelines.", "shared.steps."):
            module = f"{destination}{sdist.name}"
            assert assert_spliced_equals_direct(sdist, targets, module, sdist.name) > 0


def test_benchmark_generator_projects(targets, tmp_path):
    generated = generate_project(tmp_path / "source", 4, 12, seed=7)
    batch = package_all(generated.root, destination=str(tmp_path / "dist"))
    for result in batch.results:
        sdist = read_sdist(Path(result.path).read_bytes(), source=result.path)
        assert assert_spliced_equals_direct(sdist, targets, f"pipelines.{sdist.name}", sdist.name) > 0


@settings(max_examples=examples("tree"))
@given(tree=trees(), names=st.lists(NAMES, min_size=1, max_size=3, unique=True), alias=st.none() | NAMES)
def test_generated_micropackages(tree, names, alias):
    with tempfile.TemporaryDirectory(prefix="micropkg-splice-") as folder:
        workdir = Path(folder)
        sdist = read_sdist(build_sdist(tree, workdir).read_bytes(), source="generated")
        # The source project's own name and the names its modules use are the hardest targets.
        candidates = dict.fromkeys([tree.project, *tree.parents, *names])
        projects = [load_project(kedro_project(workdir / f"t{i}", name)) for i, name in enumerate(candidates)]
        install_name = alias or sdist.name
        module = ".".join((*tree.parents, install_name))
        assert_spliced_equals_direct(sdist, projects, module, install_name)


def test_a_source_that_already_holds_the_placeholder_is_rewritten_directly():
    calls = []

    def rewrite(files, name):
        calls.append(name)
        return {path: content + name.encode() for path, content in files.items()}

    splicer = SplicedRewrites()
    files = {"a.py": f"X = '{PLACEHOLDER}'\n".encode()}
    assert splicer.rewrite("k", files, rewrite, "churn") == {"a.py": files["a.py"] + b"churn"}
    assert calls == ["churn"]


def test_each_file_set_is_rewritten_once_and_the_cache_is_bounded():
    calls = []

    def rewrite(files, name):
        calls.append(name)
        return {path: content.replace(b"NAME", name.encode()) for path, content in files.items()}

    splicer = SplicedRewrites(max_entries=2)
    files = {"a.py": b"import NAME.x\n"}
    for name in ("alpha", "beta", "gamma"):
        assert splicer.rewrite("k1", files, rewrite, name) == {"a.py": f"import {name}.x\n".encode()}
    assert calls == [PLACEHOLDER]
    splicer.rewrite("k2", files, rewrite, "alpha")
    splicer.rewrite("k3", files, rewrite, "alpha")  # evicts k1, the least recently used
    splicer.rewrite("k1", files, rewrite, "alpha")
    assert calls == [PLACEHOLDER] * 4


def test_a_run_rewrites_an_sdist_once_for_every_project_and_a_new_run_rewrites_it_again(targets, tmp_path,
                                                                                         monkeypatch):
    batch = package_all(EXAMPLE_MONOREPO / "projects" / "core", destination=str(tmp_path))
    sdist = read_sdist(Path(batch.results[0].path).read_bytes(), source=batch.results[0].path)
    rewrites = []
    real = install_files._rewrite_files
    monkeypatch.setattr(install_files, "_rewrite_files", lambda *args: rewrites.append(args[2]) or real(*args))
    projects = [project for project in targets if project.package_name != "core"][:3]

    def install(project, run):
        return install_files.target_files(project, sdist, module=sdist.name, env="base", install_name=sdist.name,
                                          run=run)

    first, second = new_run(), new_run()
    placed = [install(project, first) for project in projects]
    assert len(rewrites) == 2  # the code and the tests, once for all three projects
    assert install(projects[0], second) == placed[0]
    assert len(rewrites) == 4  # another run never gets the first one's rewrites
    assert install(projects[1], None) == placed[1]
    assert len(rewrites) == 6  # no run named: nothing kept
