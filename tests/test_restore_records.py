"""Restore records are archive data: what the archive shows is what lands in the project."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import tomlkit

from micropkg_tasks.core.rewrite.restore import record_edits
from micropkg_tasks.core.rewrite.restore_tokens import shorten, tokens
from micropkg_tasks.core.rewrite.rewriter import ModuleMove, rewrite_module
from tests.conftest import kedro_project
from tests.helpers import snapshot_tree
from tests.hostile_archives import archive

NODES = 'import subprocess\n\n\ndef run():\n    subprocess.a("touch owned")\n'
MANIFEST = '\n[tool.kedro.micropkg.package]\n"pipelines.a" = {}\n'


def members_of(sdist: Path) -> dict[str, bytes]:
    with tarfile.open(sdist) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def tampered(sdist: Path, out: Path, tool: dict[str, str], restored: dict[str, str]) -> Path:
    """``sdist`` with ``[tool.micropkg]`` keys set to ``tool`` and records that restore the files
    of ``restored`` (sdist path -> text) from their packaged text, made as packaging makes them."""
    members = members_of(sdist)
    pyproject = tomlkit.parse(members["pyproject.toml"].decode())
    pyproject["tool"]["micropkg"].update(tool)  # type: ignore[index, union-attr]
    members["pyproject.toml"] = tomlkit.dumps(pyproject).encode()
    records = json.loads(members["micropkg-restore.json"])
    for path, text in restored.items():
        records["files"][path] = record_edits(text, members[path].decode())
    members["micropkg-restore.json"] = json.dumps(records).encode()
    out.write_bytes(archive(members, sdist.name[: -len(".tar.gz")]))
    return out


@pytest.fixture
def packaged(tmp_path, cli) -> Path:
    files = {"src/source_pkg/pipelines/a/__init__.py": "", "src/source_pkg/pipelines/a/nodes.py": NODES}
    source = kedro_project(tmp_path / "source", "source_pkg", pyproject_extra=MANIFEST, extra=files)
    result = cli(["package", "--all"], source)
    assert result.exit_code == 0, result.stderr
    sdist = source / "dist/a-0.1.tar.gz"
    assert members_of(sdist)["a/nodes.py"].decode() == NODES  # what a reviewer reads
    return sdist


def pull_refused(cli, target: Path, sdist: Path) -> str:
    before = snapshot_tree(target)
    result = cli(["pull", str(sdist), "--no-compile"], target)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot_tree(target) == before
    assert len(result.stderr.strip().splitlines()) == 1
    return result.stderr


def test_a_record_naming_another_module_is_refused(packaged, tmp_path, cli):
    # The archive shows ``subprocess.a(...)``; the record would install ``subprocess.os.system(...)``.
    attack = NODES.replace("subprocess.a(", "subprocess.os.system(")
    sdist = tampered(packaged, tmp_path / "a-0.1.tar.gz", {"project": "os", "module": "system"}, {"a/nodes.py": attack})
    target = kedro_project(tmp_path / "target", "target_pkg")
    message = pull_refused(cli, target, sdist)
    assert "a-0.1.tar.gz" in message and "[tool.micropkg] module 'system'" in message


@pytest.mark.parametrize("tool", [
    {"project": "os", "module": "system", "alias": "a"},  # claims to be os.system packaged as ``a``
    {"project": "subprocess", "module": "os.a"},  # the module's last part is the sdist's name
])
def test_a_record_that_turns_an_attribute_into_a_reference_is_refused(tool, packaged, tmp_path, cli):
    # Consistent metadata, but ``subprocess.os.system`` is an attribute of ``subprocess``, not a
    # reference to the micro-package, so packaging it again would not give ``subprocess.a``.
    full = f"{tool['project']}.{tool['module']}"
    attack = NODES.replace("subprocess.a(", f"subprocess.{full}(")
    sdist = tampered(packaged, tmp_path / "a-0.1.tar.gz", tool, {"a/nodes.py": attack})
    target = kedro_project(tmp_path / "target", "target_pkg")
    message = pull_refused(cli, target, sdist)
    assert "a-0.1.tar.gz" in message and "micropkg-restore.json" in message and "a/nodes.py" in message


def test_a_record_that_spells_the_packaged_name_as_another_module_lands_as_the_micro_package(tmp_path, cli):
    # Packaged ``run(...)`` with project ``subprocess`` and module ``run``: the record spells it
    # ``subprocess.run(...)``. Whatever the record says, what lands is the archive's ``run``,
    # moved to the micro-package's place in the target; never a call of ``subprocess.run``.
    files = {
        "src/source_pkg/pipelines/run/__init__.py": "",
        "src/source_pkg/pipelines/run/nodes.py": 'import subprocess\n\nrun("touch owned")\n',
    }
    manifest = '\n[tool.kedro.micropkg.package]\n"pipelines.run" = {}\n'
    source = kedro_project(tmp_path / "source", "source_pkg", pyproject_extra=manifest, extra=files)
    assert cli(["package", "--all"], source).exit_code == 0
    attack = 'import subprocess\n\nsubprocess.run("touch owned")\n'
    sdist = tampered(source / "dist/run-0.1.tar.gz", tmp_path / "run-0.1.tar.gz",
                     {"project": "subprocess", "module": "run"}, {"run/nodes.py": attack})
    target = kedro_project(tmp_path / "target", "target_pkg")
    result = cli(["pull", str(sdist), "--no-compile"], target)
    assert result.exit_code == 0, result.stderr
    landed = (target / "src/target_pkg/run/nodes.py").read_text()
    assert landed == 'import subprocess\n\ntarget_pkg.run("touch owned")\n'


def test_a_record_spelling_a_path_that_no_pull_moves_is_refused(tmp_path, cli):
    # Docstrings are never rewritten: packaging would not have shortened this one, and a pull
    # would not move it, so a record that spells it out shows text the archive does not.
    nodes = '"""run"""\nimport subprocess\n'
    files = {"src/source_pkg/pipelines/run/__init__.py": "", "src/source_pkg/pipelines/run/nodes.py": nodes}
    manifest = '\n[tool.kedro.micropkg.package]\n"pipelines.run" = {}\n'
    source = kedro_project(tmp_path / "source", "source_pkg", pyproject_extra=manifest, extra=files)
    assert cli(["package", "--all"], source).exit_code == 0
    attack = nodes.replace('"""run"""', '"""subprocess.run"""')
    sdist = tampered(source / "dist/run-0.1.tar.gz", tmp_path / "run-0.1.tar.gz",
                     {"project": "subprocess", "module": "run"}, {"run/nodes.py": attack})
    target = kedro_project(tmp_path / "target", "target_pkg")
    message = pull_refused(cli, target, sdist)
    assert "run-0.1.tar.gz" in message and "micropkg-restore.json" in message and "run/nodes.py" in message


@pytest.mark.parametrize("project", ["os.path", "\uff53ubprocess"])  # dotted; another spelling of subprocess
def test_a_project_that_is_not_a_package_name_is_refused(project, packaged, tmp_path, cli):
    sdist = tampered(packaged, tmp_path / "a-0.1.tar.gz", {"project": project}, {})
    target = kedro_project(tmp_path / "target", "target_pkg")
    message = pull_refused(cli, target, sdist)
    assert "a-0.1.tar.gz" in message and f"[tool.micropkg] project {project!r}" in message


def test_an_aliased_package_records_its_alias_and_comes_back_exactly(tmp_path, cli):
    files = {
        "src/source_pkg/pipelines/ab/__init__.py": "",
        "src/source_pkg/pipelines/ab/nodes.py": "def run():\n    return 1\n",
        "src/source_pkg/pipelines/ab/more.py": (
            "from source_pkg.pipelines import ab\nfrom source_pkg.pipelines.ab.nodes import run\n"
            'NAME = "source_pkg.pipelines.ab.nodes"\nVALUE = (ab, run)\n'
        ),
    }
    manifest = '\n[tool.kedro.micropkg.package]\n"pipelines.ab" = {alias = "steps"}\n'
    source = kedro_project(tmp_path / "source", "source_pkg", pyproject_extra=manifest, extra=files)
    assert cli(["package", "--all"], source).exit_code == 0, "package"
    sdist = source / "dist/steps-0.1.tar.gz"
    table = tomlkit.parse(members_of(sdist)["pyproject.toml"].decode())["tool"]["micropkg"]  # type: ignore[index]
    assert table["alias"] == "steps" and table["module"] == "pipelines.ab"  # type: ignore[index]
    target = kedro_project(tmp_path / "target", "source_pkg")
    result = cli(["pull", str(sdist), "--alias", "ab", "--destination", "pipelines", "--no-compile"], target)
    assert result.exit_code == 0, result.stderr
    pulled = target / "src/source_pkg/pipelines/ab/more.py"
    assert pulled.read_text() == files["src/source_pkg/pipelines/ab/more.py"]


SOURCE = '''"""Docstring naming pkg.pipelines.p3.nodes stays."""
import pkg.pipelines.p3
import pkg.pipelines.p3 as whole
from pkg.pipelines import p3 as also_whole
from pkg.pipelines.p3 import nodes
from pkg.pipelines import p3

LONG = "pkg.pipelines.p3.nodes"
CALL = pkg.pipelines.p3.nodes.run
'''
TEST_SOURCE = "import tests.pipelines.p3.x\nfrom tests.pipelines.p3 import y\nfrom tests.pipelines import p3\n"


@pytest.mark.parametrize("text", [SOURCE, TEST_SOURCE])
def test_the_usual_records_are_proven_from_tokens_alone(text):
    # The common import forms need no second parse: the token check reads them as the
    # rewriter writes them. (A regression here costs speed, not safety.)
    own = [("pkg.pipelines.p3", "p3"), ("tests.pipelines.p3", "tests")]
    packaged = rewrite_module(text, [ModuleMove(old, new) for old, new in own], project_package="pkg").code
    assert packaged != text
    assert shorten(tokens(text), own) == tokens(packaged)
    # ...and an attribute of something else is not one of them.
    assert shorten(tokens("x.pkg.pipelines.p3.nodes\n"), own) != tokens("x.p3.nodes\n")
