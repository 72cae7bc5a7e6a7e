"""Micro-packages that use other micro-packages: recorded at package time, resolved on pull."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from micropkg_tasks.core.lock.lockfile import read_lock
from tests.conftest import kedro_project
from tests.helpers import build_file_tree, read_tree, snapshot_tree
from tests.servers import moto_s3, pip_env, pypi_server  # noqa: F401 (fixtures)

MANIFEST = '\n[tool.kedro.micropkg.package]\n"pipelines.p0" = {}\n"utils.cleaning" = {}\n'

CORE_FILES = {
    "src/core_pkg/utils/__init__.py": "",
    "src/core_pkg/utils/cleaning/__init__.py": '__version__ = "0.3"\n\nfrom core_pkg.utils.cleaning.ops import clean\n',
    "src/core_pkg/utils/cleaning/ops.py": "def clean(text):\n    return text.strip()\n",
    "tests/utils/__init__.py": "",
    "tests/utils/cleaning/__init__.py": "",
    "tests/utils/cleaning/test_ops.py": (
        "from core_pkg.utils.cleaning.ops import clean\n\n\ndef test_clean():\n    assert clean(' a ') == 'a'\n"
    ),
    "src/core_pkg/pipelines/p0/__init__.py": '__version__ = "0.2"\n',
    "src/core_pkg/pipelines/p0/helpers.py": (
        "from core_pkg.utils.cleaning import clean\n\n\ndef tidy(text):\n    return clean(text).upper()\n"
    ),
    "tests/pipelines/__init__.py": "",
    "tests/pipelines/p0/__init__.py": "",
    "tests/pipelines/p0/test_helpers.py": (
        "from core_pkg.pipelines.p0.helpers import tidy\n\n\ndef test_tidy():\n    assert tidy(' a ') == 'A'\n"
    ),
}


def run_pytest(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project, capture_output=True, text=True, timeout=180,
        env={"PYTHONPATH": str(project / "src"), "PATH": "/usr/bin:/bin"},
    )


def sdist_metadata(path: Path) -> dict:
    with tarfile.open(path) as archive:
        root = path.name[: -len(".tar.gz")]
        member = archive.extractfile(f"{root}/pyproject.toml")
        assert member is not None
        return tomllib.loads(member.read().decode())["tool"]["micropkg"]


@pytest.fixture
def s3(moto_s3, tmp_path, monkeypatch):  # noqa: F811
    """A fresh bucket on the moto server and fs-args whose key and secret come from the environment."""
    import os
    import uuid

    import fsspec

    for name, value in {
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
        "TEST_S3_KEY": "AKIAMICROPKGTEST", "TEST_S3_SECRET": "s3-secret-" + uuid.uuid4().hex,
        "MICROPKG_CACHE_DIR": str(tmp_path / "micropkg-cache"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"bucket-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem(
        "s3", key="AKIAMICROPKGTEST", secret="x", client_kwargs={"endpoint_url": moto_s3.endpoint},
        skip_instance_cache=True,
    ).mkdir(bucket)
    text = "key: ${TEST_S3_KEY}\nsecret: ${TEST_S3_SECRET}\n" f"client_kwargs:\n  endpoint_url: {moto_s3.endpoint}\n"
    return {"bucket": bucket, "yaml": text, "secret": os.environ["TEST_S3_SECRET"]}


@pytest.fixture
def core(tmp_path) -> Path:
    return kedro_project(tmp_path / "core", "core_pkg", pyproject_extra=MANIFEST, extra=CORE_FILES)


@pytest.fixture
def dist(core, cli) -> Path:
    result = cli(["package", "--all"], core)
    assert result.exit_code == 0, result.stderr
    return core / "dist"


# -- 1: package --all records the dependency -----------------------------------------------------


def test_package_all_records_the_dependency_without_warning(core, cli):
    result = cli(["package", "--all"], core)
    assert result.exit_code == 0, result.stderr
    assert "helpers.py" not in result.stderr and "outside the micro-package" not in result.stderr
    recorded = sdist_metadata(core / "dist/p0-0.2.tar.gz")
    [dependency] = recorded["dependencies"]
    assert dependency["module"] == "utils.cleaning"
    assert dependency["name"] == "cleaning"
    assert dependency["version"] == "0.3"
    # The content hash is the one the dependency's own sdist records for its sources.
    assert dependency["sha256"] == sdist_metadata(core / "dist/cleaning-0.3.tar.gz")["source-sha256"]
    # The reference itself stays as it is, so other tools can still pull the sdist.
    with tarfile.open(core / "dist/p0-0.2.tar.gz") as archive:
        helpers = archive.extractfile("p0-0.2/p0/helpers.py").read().decode()  # type: ignore[union-attr]
    assert helpers.startswith("from core_pkg.utils.cleaning import clean\n")


def test_alias_of_a_dependency_is_its_recorded_sdist_name(tmp_path, cli):
    manifest = '\n[tool.kedro.micropkg.package]\n"pipelines.p0" = {}\n"utils.cleaning" = {alias = "clean_utils"}\n'
    core = kedro_project(tmp_path / "core", "core_pkg", pyproject_extra=manifest, extra=CORE_FILES)
    assert cli(["package", "--all"], core).exit_code == 0
    [dependency] = sdist_metadata(core / "dist/p0-0.2.tar.gz")["dependencies"]
    assert (dependency["module"], dependency["name"]) == ("utils.cleaning", "clean_utils")


def test_import_of_a_package_that_is_not_a_micro_package_stays_a_warning_with_file_and_line(core, cli):
    build_file_tree(core, {
        "src/core_pkg/settings.py": "LEVEL = 1\n",
        "src/core_pkg/pipelines/p0/uses_settings.py": "import os\nfrom core_pkg.settings import LEVEL\n",
    })
    result = cli(["package", "pipelines.p0"], core)
    assert result.exit_code == 0, result.stderr
    assert "src/core_pkg/pipelines/p0/uses_settings.py:2" in result.stderr
    assert "core_pkg.settings" in result.stderr
    assert "helpers.py" not in result.stderr


def test_with_deps_makes_an_unlisted_package_a_dependency(tmp_path, cli):
    core = kedro_project(tmp_path / "core", "core_pkg", extra=CORE_FILES)
    plain = cli(["package", "pipelines.p0"], core)
    assert "helpers.py:1" in plain.stderr  # not a micro-package of this project: a warning
    assert "dependencies" not in sdist_metadata(core / "dist/p0-0.2.tar.gz")
    result = cli(["package", "pipelines.p0", "--with-deps", "utils.cleaning"], core)
    assert result.exit_code == 0, result.stderr
    assert "helpers.py" not in result.stderr
    assert sdist_metadata(core / "dist/p0-0.2.tar.gz")["dependencies"][0]["module"] == "utils.cleaning"


def test_mark_micropackages_is_the_name_and_with_deps_on_package_is_deprecated(tmp_path, cli):
    core = kedro_project(tmp_path / "core", "core_pkg", extra=CORE_FILES)
    result = cli(["package", "pipelines.p0", "--mark-micropackages", "utils.cleaning"], core)
    assert result.exit_code == 0, result.stderr
    assert "helpers.py" not in result.stderr and "deprecated" not in result.stderr
    marked = (core / "dist/p0-0.2.tar.gz").read_bytes()
    assert sdist_metadata(core / "dist/p0-0.2.tar.gz")["dependencies"][0]["module"] == "utils.cleaning"

    old = cli(["package", "pipelines.p0", "--with-deps", "utils.cleaning", "--json"], core)
    assert old.exit_code == 0, old.stderr
    assert "--with-deps is deprecated" in old.stderr and "--mark-micropackages" in old.stderr
    assert json.loads(old.stdout)["results"][0]["dependencies"][0]["module"] == "utils.cleaning"
    assert (core / "dist/p0-0.2.tar.gz").read_bytes() == marked  # the same sdist: the same meaning

    before = snapshot_tree(core)
    both = cli(["package", "pipelines.p0", "--with-deps", "utils.cleaning", "--mark-micropackages", "utils.cleaning"],
               core)
    assert both.exit_code == 2
    assert "give --mark-micropackages only" in both.stderr and "Traceback" not in both.stderr
    assert snapshot_tree(core) == before


# -- 2: pull refuses a missing dependency; --with-deps fetches it from the same dist/ ------------


def test_pull_without_the_dependency_is_refused_and_changes_nothing(dist, tmp_path, cli):
    target = kedro_project(tmp_path / "target", "target_pkg")
    before = snapshot_tree(target)
    result = cli(["pull", str(dist / "p0-0.2.tar.gz"), "--no-compile"], target)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "utils.cleaning" in result.stderr and "0.3" in result.stderr
    assert f"micropkg pull {dist / 'cleaning-0.3.tar.gz'} --destination utils" in result.stderr
    assert "--with-deps" in result.stderr
    assert snapshot_tree(target) == before


def test_pull_with_deps_installs_both_and_points_the_import_at_the_target(dist, tmp_path, cli):
    target = kedro_project(tmp_path / "target", "target_pkg")
    result = cli(["pull", str(dist / "p0-0.2.tar.gz"), "--destination", "pipelines", "--with-deps", "--no-compile"],
                 target)
    assert result.exit_code == 0, result.stderr
    assert "installed as a dependency of pipelines.p0" in result.stdout
    helpers = (target / "src/target_pkg/pipelines/p0/helpers.py").read_text()
    assert helpers.startswith("from target_pkg.utils.cleaning import clean\n")
    assert (target / "src/target_pkg/utils/cleaning/ops.py").is_file()
    lock = read_lock(target / "micropkg.lock")
    assert lock.entries["pipelines.p0"].depends_on == ["utils.cleaning"]
    assert lock.entries["utils.cleaning"].origin == "core_pkg#utils.cleaning"
    tests = run_pytest(target)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_with_deps_names_the_missing_sibling_sdist_and_writes_nothing(dist, tmp_path, cli):
    (dist / "cleaning-0.3.tar.gz").unlink()
    target = kedro_project(tmp_path / "target", "target_pkg")
    before = snapshot_tree(target)
    result = cli(["pull", str(dist / "p0-0.2.tar.gz"), "--with-deps", "--no-compile"], target)
    assert result.exit_code != 0
    assert "utils.cleaning" in result.stderr and "cleaning-0.3.tar.gz" in result.stderr
    assert snapshot_tree(target) == before


# -- 3: the dependency installed elsewhere, under an alias ---------------------------------------


def test_dependency_under_another_destination_and_alias(dist, tmp_path, cli):
    target = kedro_project(tmp_path / "target", "target_pkg")
    first = cli(["pull", str(dist / "cleaning-0.3.tar.gz"), "--destination", "shared", "--alias", "clean_utils",
                 "--no-compile"], target)
    assert first.exit_code == 0, first.stderr
    second = cli(["pull", str(dist / "p0-0.2.tar.gz"), "--destination", "pipelines", "--no-compile"], target)
    assert second.exit_code == 0, second.stderr
    helpers = (target / "src/target_pkg/pipelines/p0/helpers.py").read_text()
    assert helpers.startswith("from target_pkg.shared.clean_utils import clean\n")
    tests = run_pytest(target)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_dependency_installed_at_another_version_is_a_warning(dist, core, tmp_path, cli):
    target = kedro_project(tmp_path / "target", "target_pkg")
    assert cli(["pull", str(dist / "cleaning-0.3.tar.gz"), "--destination", "utils", "--no-compile"],
               target).exit_code == 0
    (core / "src/core_pkg/utils/cleaning/__init__.py").write_text(
        '__version__ = "0.4"\n\nfrom core_pkg.utils.cleaning.ops import clean\n'
    )
    assert cli(["package", "--all"], core).exit_code == 0
    result = cli(["pull", str(dist / "p0-0.2.tar.gz"), "--no-compile"], target)
    assert result.exit_code == 0, result.stderr
    assert "utils.cleaning 0.4" in result.stderr and "0.3" in result.stderr


# -- 6: cycles are refused -----------------------------------------------------------------------


def test_import_cycle_between_micro_packages_is_refused_naming_both(tmp_path, cli):
    manifest = '\n[tool.kedro.micropkg.package]\n"pipelines.a" = {}\n"pipelines.b" = {}\n'
    project = kedro_project(tmp_path / "cyc", "cyc_pkg", pyproject_extra=manifest, extra={
        "src/cyc_pkg/pipelines/a/__init__.py": "from cyc_pkg.pipelines.b import g\n\ndef f():\n    return g\n",
        "src/cyc_pkg/pipelines/b/__init__.py": "def g():\n    from cyc_pkg.pipelines.a import f\n    return f\n",
    })
    before = snapshot_tree(project)
    result = cli(["package", "--all"], project)
    assert result.exit_code != 0
    assert "pipelines.a -> pipelines.b -> pipelines.a" in result.stderr
    assert "pipelines.b -> pipelines.a -> pipelines.b" in result.stderr
    assert snapshot_tree(project) == before


# -- 8: our own sdists come back exactly ---------------------------------------------------------

P3_MODULE = '''"""Module docstring naming fixture_pkg.pipelines.p3.nodes stays."""
import fixture_pkg.pipelines.p3
import fixture_pkg.pipelines.p3 as whole
from fixture_pkg.pipelines import p3 as also_whole
from fixture_pkg.pipelines.p3 import nodes

SHORT = "p3.nodes"
LONG = "fixture_pkg.pipelines.p3.nodes"
ROOT = "fixture_pkg.pipelines.p3"
NAMESPACE = "p3"
CALL = fixture_pkg.pipelines.p3.nodes.run


def both():
    return "p3.nodes", "fixture_pkg.pipelines.p3.nodes", whole, also_whole, nodes
'''


P3_MORE = """from fixture_pkg.pipelines import p3, other
import fixture_pkg.pipelines.p3.nodes

VALUE = (p3, other, fixture_pkg.pipelines.p3.nodes.run)
"""


def test_package_then_pull_under_the_same_name_and_path_is_byte_identical(tmp_path, cli):
    manifest = '\n[tool.kedro.micropkg.package]\n"pipelines.p3" = {}\n'
    files = {
        "src/fixture_pkg/pipelines/other.py": "",
        "src/fixture_pkg/pipelines/p3/more.py": P3_MORE,
        "src/fixture_pkg/pipelines/p3/__init__.py": "",
        "src/fixture_pkg/pipelines/p3/nodes.py": "def run():\n    return 1\n",
        "src/fixture_pkg/pipelines/p3/names.py": P3_MODULE,
        "tests/pipelines/__init__.py": "",
        "tests/pipelines/p3/__init__.py": "",
        "tests/pipelines/p3/test_names.py": (
            "from fixture_pkg.pipelines.p3 import names\n\n\ndef test_short():\n"
            '    assert names.SHORT == "p3.nodes"\n    assert names.CALL() == 1\n'
        ),
    }
    source = kedro_project(tmp_path / "source", "fixture_pkg", pyproject_extra=manifest, extra=files)
    assert cli(["package", "--all"], source).exit_code == 0
    target = kedro_project(tmp_path / "target", "fixture_pkg")
    result = cli(["pull", str(source / "dist/p3-0.1.tar.gz"), "--destination", "pipelines", "--no-compile"], target)
    assert result.exit_code == 0, result.stderr
    original, pulled = read_tree(source), read_tree(target)
    for folder in ("src/fixture_pkg/pipelines/p3/", "tests/pipelines/p3/"):
        assert {k: v for k, v in pulled.items() if k.startswith(folder)} == {
            k: v for k, v in original.items() if k.startswith(folder)
        }
    tests = run_pytest(target)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_a_restore_record_that_adds_code_is_refused_and_nothing_is_written(tmp_path, cli):
    # The records are archive data: one that would put text into the project that the packaged
    # file does not show (here, a line of code) must never be applied.
    import io
    import json
    import tarfile

    from tests.helpers import snapshot_tree
    from tests.hostile_archives import archive

    manifest = '\n[tool.kedro.micropkg.package]\n"pipelines.p3" = {}\n'
    files = {
        "src/fixture_pkg/pipelines/p3/__init__.py": "",
        "src/fixture_pkg/pipelines/p3/nodes.py": "def run():\n    return 1\n",
        "src/fixture_pkg/pipelines/p3/names.py": P3_MODULE,
    }
    source = kedro_project(tmp_path / "source", "fixture_pkg", pyproject_extra=manifest, extra=files)
    assert cli(["package", "--all"], source).exit_code == 0
    with tarfile.open(source / "dist/p3-0.1.tar.gz") as tar:
        members = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    records = json.loads(members["micropkg-restore.json"])
    edit = records["files"]["p3/names.py"]["edits"][0]
    edit["text"] = "import os; os.system('echo owned')\n" + edit["text"]
    members["micropkg-restore.json"] = json.dumps(records).encode()
    tampered = tmp_path / "p3-0.1.tar.gz"
    tampered.write_bytes(archive(members, "p3-0.1"))

    target = kedro_project(tmp_path / "target", "fixture_pkg")
    before = snapshot_tree(target)
    result = cli(["pull", str(tampered), "--destination", "pipelines", "--no-compile"], target)
    assert result.exit_code == 1
    assert "the restore record of p3/names.py in micropkg-restore.json changes more than the module references" \
        in result.stderr
    assert snapshot_tree(target) == before


def test_pull_under_another_name_moves_full_paths_and_leaves_short_strings(tmp_path, cli):
    manifest = '\n[tool.kedro.micropkg.package]\n"pipelines.p3" = {}\n'
    files = {
        "src/fixture_pkg/pipelines/p3/__init__.py": "",
        "src/fixture_pkg/pipelines/p3/nodes.py": "def run():\n    return 1\n",
        "src/fixture_pkg/pipelines/p3/names.py": P3_MODULE,
    }
    source = kedro_project(tmp_path / "source", "fixture_pkg", pyproject_extra=manifest, extra=files)
    assert cli(["package", "--all"], source).exit_code == 0
    target = kedro_project(tmp_path / "target", "other_pkg")
    result = cli(["pull", str(source / "dist/p3-0.1.tar.gz"), "--alias", "steps", "--no-compile"], target)
    assert result.exit_code == 0, result.stderr
    text = (target / "src/other_pkg/steps/names.py").read_text()
    assert 'SHORT = "p3.nodes"' in text
    assert 'LONG = "other_pkg.steps.nodes"' in text
    assert "from other_pkg.steps import nodes" in text
    assert "fixture_pkg" not in text.split('"""', 2)[2]  # only the docstring keeps the old name


def test_edited_file_inside_our_sdist_falls_back_to_the_ordinary_rules(tmp_path):
    from micropkg_tasks.core.rewrite.restore import record_edits, restore

    record = record_edits('X = "pkg.p3.nodes"\n', 'X = "p3.nodes"\n')
    assert restore('X = "p3.nodes"\n', record) == 'X = "pkg.p3.nodes"\n'
    assert restore('X = "p3.nodes"  # edited\n', record) is None


# -- 4: sync-shared installs the closure ---------------------------------------------------------

MONOREPO_ROOT = (
    '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n\n'
    '[[tool.micropkg.shared]]\nmicropkg = "pipelines.p0"\nsource = "projects/core"\ntargets = ["projects/app"]\n'
)


@pytest.fixture
def deps_monorepo(tmp_path) -> Path:
    root = build_file_tree(tmp_path / "mono", {"pyproject.toml": MONOREPO_ROOT})
    kedro_project(root / "projects/core", "core_pkg", pyproject_extra=MANIFEST, extra=CORE_FILES)
    kedro_project(root / "projects/app", "app_pkg")
    return root


def test_sync_shared_installs_the_dependency_and_checks_it(deps_monorepo, cli):
    app = deps_monorepo / "projects/app"
    result = cli(["sync-shared", "--no-compile"], deps_monorepo)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "utils.cleaning not installed, installed as a dependency of pipelines.p0" in result.stdout
    helpers = (app / "src/app_pkg/pipelines/p0/helpers.py").read_text()
    assert helpers.startswith("from app_pkg.utils.cleaning import clean\n")
    tests = run_pytest(app)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
    assert cli(["sync-shared", "--check"], deps_monorepo).exit_code == 0

    ops = deps_monorepo / "projects/core/src/core_pkg/utils/cleaning/ops.py"
    ops.write_text("def clean(text):\n    return text.strip(' ')\n")
    before = snapshot_tree(app)
    check = cli(["sync-shared", "--check"], deps_monorepo)
    assert check.exit_code == 1, check.stdout + check.stderr
    assert "utils.cleaning" in check.stdout and "upstream moved (a dependency of pipelines.p0)" in check.stdout
    assert snapshot_tree(app) == before
    assert cli(["sync-shared", "--no-compile"], deps_monorepo).exit_code == 0
    assert "text.strip(' ')" in (app / "src/app_pkg/utils/cleaning/ops.py").read_text()


def test_a_shared_entry_for_the_dependency_decides_where_it_goes(deps_monorepo, cli):
    config = deps_monorepo / "pyproject.toml"
    config.write_text(config.read_text() + (
        '\n[[tool.micropkg.shared]]\nmicropkg = "utils.cleaning"\nsource = "projects/core"\n'
        'targets = ["projects/app"]\ndestination = "shared"\nalias = "clean_utils"\n'
    ))
    result = cli(["sync-shared", "--no-compile"], deps_monorepo)
    assert result.exit_code == 0, result.stdout + result.stderr
    app = deps_monorepo / "projects/app"
    assert not (app / "src/app_pkg/utils").exists()
    helpers = (app / "src/app_pkg/pipelines/p0/helpers.py").read_text()
    assert helpers.startswith("from app_pkg.shared.clean_utils import clean\n")
    assert run_pytest(app).returncode == 0


# -- 5: prerelease pulls each sdist with its dependencies ----------------------------------------


def test_prerelease_round_trip_passes_with_the_dependency(deps_monorepo, cli):
    assert cli(["sync-shared", "--no-compile"], deps_monorepo).exit_code == 0
    result = cli(["prerelease", "--json"], deps_monorepo)
    report = json.loads(result.stdout)
    checks = {(c["project"], c["check"]): c for c in report["checks"]}
    assert result.exit_code == 0, [c for c in report["checks"] if c["status"] != "pass"]
    assert report["ok"] is True
    assert "tests passed for 2" in checks[("projects/core", "round-trip")]["reason"]
    assert checks[("projects/app", "in sync")]["status"] == "pass"


def test_prerelease_round_trip_still_fails_on_a_sibling_that_is_not_a_micro_package(tmp_path, cli):
    project = kedro_project(tmp_path / "solo", "core_pkg", pyproject_extra=MANIFEST, extra={
        **CORE_FILES,
        "src/core_pkg/settings.py": "LEVEL = 1\n",
        "src/core_pkg/pipelines/p0/uses_settings.py": "from core_pkg.settings import LEVEL\n",
        "tests/pipelines/p0/test_settings.py": (
            "from core_pkg.pipelines.p0.uses_settings import LEVEL\n\n\ndef test_level():\n    assert LEVEL == 1\n"
        ),
    })
    packaged = cli(["package", "pipelines.p0"], project)
    assert "src/core_pkg/pipelines/p0/uses_settings.py:1" in packaged.stderr
    result = cli(["prerelease", "--json"], project)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    [round_trip] = [c for c in report["checks"] if c["check"] == "round-trip"]
    assert round_trip["status"] == "fail"
    # The pull into the scratch project refuses the copy, naming the import, file and line.
    said = " ".join([round_trip["reason"], *round_trip["details"]])
    assert "core_pkg.settings" in said
    assert "uses_settings.py:1" in said


# -- status: what each installed micro-package depends on and what needs it ----------------------


def test_status_and_json_show_dependencies_both_ways(dist, tmp_path, cli):
    target = kedro_project(tmp_path / "target", "target_pkg")
    assert cli(["pull", str(dist / "p0-0.2.tar.gz"), "--with-deps", "--no-compile"], target).exit_code == 0
    shown = cli(["status"], target)
    assert shown.exit_code == 0, shown.stderr
    assert "p0 depends on utils.cleaning" in shown.stdout
    assert "utils.cleaning is needed by p0" in shown.stdout
    report = json.loads(cli(["status", "--json"], target).stdout)
    by_module = {package["module"]: package for package in report["packages"]}
    assert by_module["p0"]["depends_on"] == ["utils.cleaning"] and by_module["p0"]["needed_by"] == []
    assert by_module["utils.cleaning"]["needed_by"] == ["p0"]


def test_monorepo_status_json_shows_dependencies(deps_monorepo, cli):
    assert cli(["sync-shared", "--no-compile"], deps_monorepo).exit_code == 0
    report = json.loads(cli(["status", "--json"], deps_monorepo).stdout)
    rows = {(row["project"], row["module"]): row for row in report["rows"]}
    assert rows[("projects/app", "pipelines.p0")]["depends_on"] == ["utils.cleaning"]
    assert rows[("projects/app", "utils.cleaning")]["needed_by"] == ["pipelines.p0"]
    ops = deps_monorepo / "projects/core/src/core_pkg/utils/cleaning/ops.py"
    ops.write_text("def clean(text):\n    return text.strip(' ')\n")
    moved = json.loads(cli(["status", "--json"], deps_monorepo).stdout)
    states = {(row["project"], row["module"]): row["state"] for row in moved["rows"]}
    assert states[("projects/app", "utils.cleaning")] == "upstream moved"
    assert states[("projects/app", "pipelines.p0")] == "in sync"


# -- 2 (other locations): --with-deps looks in the same index and the same bucket ----------------


def test_with_deps_fetches_from_the_same_index(pip_env, dist, tmp_path, cli):
    for sdist in dist.iterdir():
        pip_env.add(sdist.name, sdist.read_bytes())
    target = kedro_project(tmp_path / "target", "target_pkg")
    refused = cli(["pull", "p0==0.2", "--no-compile"], target)
    assert refused.exit_code == 1
    assert "`micropkg pull cleaning==0.3 --destination utils`" in refused.stderr
    result = cli(["pull", "p0==0.2", "--with-deps", "--no-compile"], target)
    assert result.exit_code == 0, result.stderr
    lock = read_lock(target / "micropkg.lock")
    assert lock.entries["utils.cleaning"].source == "cleaning==0.3"
    assert (target / "src/target_pkg/p0/helpers.py").read_text().startswith(
        "from target_pkg.utils.cleaning import clean\n"
    )
    assert run_pytest(target).returncode == 0


def test_with_deps_fetches_from_the_same_bucket(s3, core, tmp_path, cli):
    fs_args = tmp_path / "s3.yml"
    fs_args.write_text(s3["yaml"])
    prefix = f"s3://{s3['bucket']}/micropkgs"
    packaged = cli(["package", "--all", "--destination", prefix, "--fs-args", str(fs_args)], core)
    assert packaged.exit_code == 0, packaged.stderr
    target = kedro_project(tmp_path / "target", "target_pkg")
    result = cli(["pull", f"{prefix}/p0-0.2.tar.gz", "--fs-args", str(fs_args), "--with-deps", "--no-compile"],
                 target)
    assert result.exit_code == 0, result.stderr
    assert read_lock(target / "micropkg.lock").entries["utils.cleaning"].source == f"{prefix}/cleaning-0.3.tar.gz"
    assert s3["secret"] not in result.stdout + result.stderr
    assert run_pytest(target).returncode == 0


def test_with_deps_fetches_from_the_same_sibling_project(tmp_path, cli):
    root = build_file_tree(tmp_path / "mono", {"pyproject.toml": '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n'})
    aliased = MANIFEST.replace('"utils.cleaning" = {}', '"utils.cleaning" = {alias = "clean_utils"}')
    kedro_project(root / "projects/core", "core_pkg", pyproject_extra=aliased, extra=CORE_FILES)
    app = kedro_project(root / "projects/app", "app_pkg")
    before = snapshot_tree(app)
    refused = cli(["pull", "../core#pipelines.p0", "--no-compile"], app)
    assert refused.exit_code == 1
    assert "`micropkg pull ../core#utils.cleaning --destination utils" in refused.stderr
    assert snapshot_tree(app) == before
    result = cli(["pull", "../core#pipelines.p0", "--with-deps", "--no-compile"], app)
    assert result.exit_code == 0, result.stderr
    assert read_lock(app / "micropkg.lock").entries["utils.cleaning"].source == "../core#utils.cleaning"
    assert (app / "src/app_pkg/p0/helpers.py").read_text().startswith("from app_pkg.utils.cleaning import clean\n")
    assert run_pytest(app).returncode == 0


@pytest.mark.parametrize("command", [["pull", "--all"], ["pull-all"]])
def test_with_deps_at_the_monorepo_root_installs_the_missing_dependency(tmp_path, cli, command):
    root = build_file_tree(tmp_path / "mono", {"pyproject.toml": '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n'})
    kedro_project(root / "projects/core", "core_pkg", pyproject_extra=MANIFEST, extra=CORE_FILES)
    app = kedro_project(
        root / "projects/app", "app_pkg", pyproject_extra='\n[tool.micropkg.pull]\n"../core#pipelines.p0" = {}\n'
    )
    before = snapshot_tree(app)
    refused = cli([*command, "--no-compile"], root)
    assert refused.exit_code == 1
    assert "--with-deps" in refused.stderr
    assert snapshot_tree(app) == before

    result = cli([*command, "--with-deps", "--no-compile"], root)

    assert result.exit_code == 0, result.stderr
    entries = read_lock(app / "micropkg.lock").entries
    assert entries["utils.cleaning"].source == "../core#utils.cleaning"
    assert entries["p0"].depends_on == ["utils.cleaning"]
    assert (app / "src/app_pkg/p0/helpers.py").read_text().startswith("from app_pkg.utils.cleaning import clean\n")
    assert run_pytest(app).returncode == 0


# -- bad records in an sdist: one clear error, nothing written -----------------------------------


def _with_member(sdist: Path, out: Path, member: str, change) -> Path:
    """A copy of ``sdist`` with one member's text changed by ``change``."""
    import io

    buffer = io.BytesIO()
    with tarfile.open(sdist) as source, tarfile.open(fileobj=buffer, mode="w:gz") as target:
        for info in source.getmembers():
            data = source.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
            if info.name.endswith("/" + member):
                data = change(data.decode()).encode()
                info.size = len(data)
            target.addfile(info, io.BytesIO(data) if data is not None else None)
    out.write_bytes(buffer.getvalue())
    return out


@pytest.mark.parametrize("member, change, expected", [
    ("pyproject.toml", lambda text: text.replace('name = "cleaning"\n', ""), "[[tool.micropkg.dependencies]]"),
    ("micropkg-restore.json", lambda text: text[: len(text) // 2], "micropkg-restore.json"),
    # Found by its sdist name in the target, so the module path would become a rewrite.
    ("pyproject.toml", lambda text: text.replace('module = "utils.cleaning"', 'module = "utils-cleaning"'),
     "module 'utils-cleaning' is not a dotted module path"),
])
def test_broken_records_in_our_sdist_are_one_clear_error(member, change, expected, dist, tmp_path, cli):
    broken = _with_member(dist / "p0-0.2.tar.gz", tmp_path / "p0-0.2.tar.gz", member, change)
    target = kedro_project(tmp_path / "target", "target_pkg")
    assert cli(["pull", str(dist / "cleaning-0.3.tar.gz"), "--destination", "utils", "--no-compile"],
               target).exit_code == 0
    before = snapshot_tree(target)
    result = cli(["pull", str(broken), "--no-compile"], target)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert expected in result.stderr and "p0-0.2.tar.gz" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot_tree(target) == before


@pytest.mark.parametrize("old, new, expected", [
    ('name = "cleaning"', 'name = "../outside/evil"', "name '../outside/evil'"),
    ('version = "0.3"', 'version = "0.3/../../outside/evil"', "version '0.3/../../outside/evil'"),
    ('module = "utils.cleaning"', 'module = "utils/../cleaning"', "module 'utils/../cleaning'"),
    ('module = "utils.cleaning"', 'module = "utils..cleaning"', "module 'utils..cleaning'"),
])
def test_a_dependency_record_that_is_not_a_name_is_refused_before_anything_is_fetched(old, new, expected, dist,
                                                                                      tmp_path, cli):
    # Next to the folder the dependent comes from, an sdist that a fetch built from the
    # record would find: it must never be read, let alone installed.
    (tmp_path / "outside").mkdir()
    (tmp_path / "in/cleaning-0.3").mkdir(parents=True)
    for name in ("evil-0.3.tar.gz", "evil.tar.gz"):
        (tmp_path / "outside" / name).write_bytes((dist / "cleaning-0.3.tar.gz").read_bytes())
    broken = _with_member(dist / "p0-0.2.tar.gz", tmp_path / "in/p0-0.2.tar.gz", "pyproject.toml",
                          lambda text: text.replace(old, new, 1))
    assert new in tarfile.open(broken).extractfile("p0-0.2/pyproject.toml").read().decode()  # type: ignore[union-attr]
    target = kedro_project(tmp_path / "target", "target_pkg")
    before = snapshot_tree(target)
    result = cli(["pull", str(broken), "--with-deps", "--no-compile"], target)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert expected in result.stderr and "p0-0.2.tar.gz" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert snapshot_tree(target) == before


# -- chains: A -> B -> C, and dependencies found only through dotted strings ---------------------

CHAIN_MANIFEST = (
    '\n[tool.kedro.micropkg.package]\n"pipelines.a" = {}\n"pipelines.s" = {}\n"utils.b" = {}\n"utils.c" = {}\n'
)
CHAIN_FILES = {
    "src/chain_pkg/utils/__init__.py": "",
    "src/chain_pkg/utils/c/__init__.py": '__version__ = "0.3"\n',
    "src/chain_pkg/utils/c/ops.py": "def base(x):\n    return x + 1\n",
    "src/chain_pkg/utils/b/__init__.py": '__version__ = "0.2"\n',
    "src/chain_pkg/utils/b/ops.py": "from chain_pkg.utils.c.ops import base\n\n\ndef mid(x):\n    return base(x) * 2\n",
    "src/chain_pkg/pipelines/a/__init__.py": '__version__ = "0.1"\n',
    "src/chain_pkg/pipelines/a/nodes.py": "from chain_pkg.utils.b.ops import mid\n\n\ndef top(x):\n    return mid(x)\n",
    # ``s`` reaches ``utils.c`` only through a dotted string.
    "src/chain_pkg/pipelines/s/__init__.py": '__version__ = "0.1"\n',
    "src/chain_pkg/pipelines/s/nodes.py": (
        'import importlib\n\nOPS = "chain_pkg.utils.c.ops"\n\n\ndef load():\n    return importlib.import_module(OPS).base(1)\n'
    ),
    "tests/pipelines/__init__.py": "",
    "tests/pipelines/a/__init__.py": "",
    "tests/pipelines/a/test_nodes.py": (
        "from chain_pkg.pipelines.a.nodes import top\n\n\ndef test_top():\n    assert top(1) == 4\n"
    ),
    "tests/pipelines/s/__init__.py": "",
    "tests/pipelines/s/test_nodes.py": (
        "from chain_pkg.pipelines.s.nodes import load\n\n\ndef test_load():\n    assert load() == 2\n"
    ),
}


@pytest.fixture
def chain(tmp_path, cli) -> Path:
    """A project whose pipelines.a needs utils.b, which needs utils.c; its sdists in dist/."""
    project = kedro_project(tmp_path / "chain", "chain_pkg", pyproject_extra=CHAIN_MANIFEST, extra=CHAIN_FILES)
    result = cli(["package", "--all"], project)
    assert result.exit_code == 0, result.stderr
    return project


def test_each_link_of_a_chain_and_a_dotted_string_is_recorded(chain):
    recorded = {
        name: [dep["module"] for dep in sdist_metadata(chain / f"dist/{name}.tar.gz").get("dependencies", [])]
        for name in ("a-0.1", "b-0.2", "c-0.3", "s-0.1")
    }
    assert recorded == {"a-0.1": ["utils.b"], "b-0.2": ["utils.c"], "c-0.3": [], "s-0.1": ["utils.c"]}


def test_with_deps_fetches_the_whole_chain(chain, tmp_path, cli):
    target = kedro_project(tmp_path / "target", "target_pkg")
    result = cli(["pull", str(chain / "dist/a-0.1.tar.gz"), "--with-deps", "--no-compile"], target)
    assert result.exit_code == 0, result.stderr
    entries = read_lock(target / "micropkg.lock").entries
    assert {"a", "utils.b", "utils.c"} <= set(entries)
    assert (target / "src/target_pkg/utils/b/ops.py").read_text().startswith(
        "from target_pkg.utils.c.ops import base\n"
    )
    tests = run_pytest(target)
    assert tests.returncode == 0 and "1 passed" in tests.stdout, tests.stdout + tests.stderr


def test_a_dependency_found_only_in_a_dotted_string_is_fetched_and_pointed_at(chain, tmp_path, cli):
    target = kedro_project(tmp_path / "target", "target_pkg")
    before = snapshot_tree(target)
    refused = cli(["pull", str(chain / "dist/s-0.1.tar.gz"), "--no-compile"], target)
    assert refused.exit_code == 1 and "utils.c" in refused.stderr
    assert snapshot_tree(target) == before
    result = cli(["pull", str(chain / "dist/s-0.1.tar.gz"), "--with-deps", "--no-compile"], target)
    assert result.exit_code == 0, result.stderr
    assert "utils.c" in read_lock(target / "micropkg.lock").entries
    assert 'OPS = "target_pkg.utils.c.ops"' in (target / "src/target_pkg/s/nodes.py").read_text()
    tests = run_pytest(target)
    assert tests.returncode == 0 and "1 passed" in tests.stdout, tests.stdout + tests.stderr


def test_sync_shared_brings_the_whole_chain(tmp_path, cli):
    root = build_file_tree(tmp_path / "mono", {"pyproject.toml": (
        '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n\n[[tool.micropkg.shared]]\n'
        'micropkg = "pipelines.a"\nsource = "projects/core"\ntargets = ["projects/app"]\n'
    )})
    kedro_project(root / "projects/core", "chain_pkg", pyproject_extra=CHAIN_MANIFEST, extra=CHAIN_FILES)
    app = kedro_project(root / "projects/app", "app_pkg")
    result = cli(["sync-shared", "--no-compile"], root)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert (app / "src/app_pkg/utils/b/ops.py").read_text().startswith("from app_pkg.utils.c.ops import base\n")
    assert (app / "src/app_pkg/utils/c/ops.py").is_file()
    tests = run_pytest(app)
    assert tests.returncode == 0 and "1 passed" in tests.stdout, tests.stdout + tests.stderr
    assert cli(["sync-shared", "--check"], root).exit_code == 0
    rows = {row["module"]: row for row in json.loads(cli(["status", "--json"], root).stdout)["rows"]
            if row["project"] == "projects/app"}
    assert rows["utils.b"]["depends_on"] == ["utils.c"] and rows["utils.c"]["needed_by"] == ["utils.b"]


def test_status_at_the_root_reads_each_link_of_a_long_chain_once(tmp_path, cli, monkeypatch):
    # A chain m00 -> m01 -> ... -> m11 shared from its head and from m04: the closures are the
    # rest of the chain, and working them out must read each link once in the run, not once
    # for every link or entry above it.
    from micropkg_tasks.ops.package import dependencies as package_deps

    depth = 12
    files = {"src/core_pkg/chain/__init__.py": ""}
    for i in range(depth):
        files[f"src/core_pkg/chain/m{i:02d}/__init__.py"] = '__version__ = "0.1"\n'
        files[f"src/core_pkg/chain/m{i:02d}/ops.py"] = (
            f"from core_pkg.chain.m{i + 1:02d}.ops import step\n" if i + 1 < depth else "def step():\n    return 1\n"
        )
    manifest = "\n[tool.kedro.micropkg.package]\n" + "".join(f'"chain.m{i:02d}" = {{}}\n' for i in range(depth))
    root = build_file_tree(tmp_path / "mono", {"pyproject.toml": (
        '[tool.micropkg.monorepo]\nprojects = ["projects/*"]\n\n[[tool.micropkg.shared]]\n'
        'micropkg = "chain.m00"\nsource = "projects/core"\ntargets = ["projects/app"]\n\n'
        '[[tool.micropkg.shared]]\nmicropkg = "chain.m04"\nsource = "projects/core"\ntargets = ["projects/app"]\n'
    )})
    kedro_project(root / "projects/core", "core_pkg", pyproject_extra=manifest, extra=files)
    kedro_project(root / "projects/app", "app_pkg")
    reads: list[str] = []
    needs = package_deps._needs
    monkeypatch.setattr(package_deps, "_needs", lambda project, module, known: (reads.append(module),
                                                                                needs(project, module, known))[1])
    result = cli(["status", "--json"], root)
    assert result.exit_code == 0, result.stderr
    rows = [row for row in json.loads(result.stdout)["rows"] if row["project"] == "projects/app"]
    assert sorted(row["module"] for row in rows) == [f"chain.m{i:02d}" for i in range(depth)]
    assert sorted(reads) == sorted(set(reads)) and len(reads) == depth - 1
