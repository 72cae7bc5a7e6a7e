"""One monorepo, one truth: tasks run from the root, each installed copy has one owner,
sibling sources need no ``dist/``, requirements are never dropped, and one edited
micro-package does not hold back the others.

Every test runs on a scratch copy of ``examples/monorepo`` through the real CLI
(in-process ``micropkg``, or the ``invoke`` and ``micropkg`` console scripts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from micropkg_tasks.core.lock.lockfile import read_lock
from tests.conftest import run_micropkg
from tests.helpers import snapshot_tree
from tests.wheelhouse import write_pip_conf, write_wheel

CORE, CHURN, FORECAST = "projects/core", "projects/churn", "projects/forecast"
CLEANING_SOURCE = "projects/core/src/core/pipelines/data_cleaning"
CHURN_CLEANING = "projects/churn/src/churn/pipelines/data_cleaning"


def micropkg(args: list[str], cwd: Path):
    return run_micropkg(args, cwd)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def console(venv_bin: Path, tool: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    executable = venv_bin / tool
    if not executable.exists():
        pytest.skip(f"{executable} is not installed")
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "TERM")}
    return subprocess.run(
        [str(executable), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )


# -- acceptance 1: the root is a first-class place ---------------------------------------------------


@pytest.mark.parametrize("tool", ["invoke", "micropkg"])
def test_package_compile_and_pull_act_on_every_project_from_the_root(monorepo, venv_bin, offline_pip, tool):
    for requirements in ("projects/churn/requirements.txt", "projects/forecast/src/requirements.txt"):
        (monorepo / requirements).write_text("small-c\n")
    (monorepo / CLEANING_SOURCE / "requirements.txt").write_text("small-b\n")
    (monorepo / "projects/core/src/core/utils/io/requirements.txt").write_text("small-c\n")

    packaged = console(venv_bin, tool, ["package", "--all"], monorepo)
    assert packaged.returncode == 0, packaged.stderr
    assert sorted(p.name for p in (monorepo / CORE / "dist").iterdir()) == [
        "data_cleaning-0.3.0.tar.gz", "io_utils-0.2.0.tar.gz",
    ]
    assert "projects/churn: no package manifest, skipped" in packaged.stdout
    assert "projects/core:" in packaged.stdout

    pulled = console(venv_bin, tool, ["pull", "--all", "--no-compile"], monorepo)
    assert pulled.returncode == 0, pulled.stderr
    assert "projects/churn:\npulled ../core#pipelines.data_cleaning" in pulled.stdout
    assert read_lock(monorepo / FORECAST / "micropkg.lock").entries.keys() == {"pipelines.cleaning", "utils.io"}

    compiled = console(venv_bin, tool, ["compile-reqs"], monorepo)
    assert compiled.returncode == 0, compiled.stderr
    assert "projects/churn: compiled requirements.txt" in compiled.stdout
    assert "projects/forecast: compiled src/requirements.txt" in compiled.stdout
    assert "small-b==1.1" in (monorepo / CHURN / "requirements.txt").read_text()


def test_inside_a_project_or_with_project_a_task_acts_on_that_project_alone(monorepo, cli):
    inside = cli(["package", "--all"], monorepo / CORE / "src")
    assert inside.exit_code == 0, inside.stderr
    assert "projects/churn" not in inside.stdout
    (monorepo / CORE / "dist").rename(monorepo / "first-dist")
    chosen = cli(["package", "--all", "--project", "projects/core"], monorepo)
    assert chosen.exit_code == 0, chosen.stderr
    assert "no package manifest" not in chosen.stdout
    pulled = cli(["pull", "--all", "--project", "projects/churn", "--no-compile"], monorepo)
    assert pulled.exit_code == 0, pulled.stderr
    assert not (monorepo / FORECAST / "micropkg.lock").exists()
    every = cli(["status", "--monorepo", "--json"], monorepo / CHURN)
    assert json.loads(every.stdout)["projects"] == [CHURN, CORE, FORECAST]


@pytest.mark.parametrize(
    "args", [["package", "pipelines.data_cleaning"], ["pull", "x-0.1.tar.gz"]], ids=["package MODULE", "pull LOCATION"]
)
def test_a_task_that_cannot_apply_at_the_root_says_why_and_how_to_narrow_it(monorepo, cli, args):
    before = snapshot_tree(monorepo)
    result = cli(args, monorepo)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "acts on one project" in result.stderr and "--project DIR" in result.stderr
    assert snapshot_tree(monorepo) == before


# -- acceptance 2: one owner per installed copy ------------------------------------------------------


def _old_style_churn_manifest(monorepo: Path) -> None:
    """What the example used to ship: churn pulls core's built sdist, while sync-shared also fills that copy."""
    edit(monorepo / CHURN / "pyproject.toml", '"../core#pipelines.data_cleaning" = {',
         '"../core/dist/data_cleaning-0.3.0.tar.gz" = {')


def test_pull_all_refuses_to_replace_a_synced_copy_and_force_switches_the_source(monorepo, cli):
    assert cli(["package", "--all"], monorepo / CORE).exit_code == 0
    _old_style_churn_manifest(monorepo)
    edit(monorepo / CLEANING_SOURCE / "nodes.py", "Remove the given keys", "Drop the given keys")
    synced = cli(["sync-shared", "--no-compile"], monorepo)
    assert synced.exit_code == 0, synced.stderr
    nodes = monorepo / CHURN_CLEANING / "nodes.py"
    assert "Drop the given keys" in nodes.read_text()
    before = snapshot_tree(monorepo / CHURN)

    # core's own build in its dist/ and core#pipelines.data_cleaning are one source: the stale
    # build is refused as an older build under the same version, never as a second owner.
    refused = cli(["pull-all", "--no-compile"], monorepo)

    assert refused.exit_code == 1
    assert (
        "../core/dist/data_cleaning-0.3.0.tar.gz is a different build of pipelines.data_cleaning 0.3.0 than the "
        "one installed from ../core#pipelines.data_cleaning (same version, other content)"
    ) in refused.stderr
    assert snapshot_tree(monorepo / CHURN) == before  # the edit survives
    assert "Drop the given keys" in nodes.read_text()

    forced = cli(["pull-all", "--force", "--no-compile"], monorepo)
    assert forced.exit_code == 0, forced.stderr
    entry = read_lock(monorepo / CHURN / "micropkg.lock").entries["pipelines.data_cleaning"]
    assert entry.source == "../core/dist/data_cleaning-0.3.0.tar.gz"
    # The copy is now simply behind its source, and sync-shared brings it back: there is a way out.
    check = cli(["sync-shared", "--check"], monorepo)
    assert check.exit_code == 1
    assert (
        "projects/churn: pipelines.data_cleaning (from projects/core#pipelines.data_cleaning): upstream moved"
    ) in check.stdout
    back = cli(["sync-shared", "--no-compile"], monorepo)
    assert back.exit_code == 0, back.stderr
    assert "Drop the given keys" in nodes.read_text()
    entry = read_lock(monorepo / CHURN / "micropkg.lock").entries["pipelines.data_cleaning"]
    assert entry.source == "../core#pipelines.data_cleaning"


def test_a_different_build_with_the_same_version_is_refused(monorepo, cli):
    assert cli(["package", "--all"], monorepo / CORE).exit_code == 0
    assert cli(["pull", "../core/dist/data_cleaning-0.3.0.tar.gz", "--destination", "pipelines", "--no-compile"],
               monorepo / CHURN).exit_code == 0
    edit(monorepo / CLEANING_SOURCE / "nodes.py", "Remove the given keys", "Drop the given keys")
    assert cli(["package", "--all"], monorepo / CORE).exit_code == 0  # same version, new bytes
    before = snapshot_tree(monorepo / CHURN)
    result = cli(["pull", "../core/dist/data_cleaning-0.3.0.tar.gz", "--destination", "pipelines", "--no-compile"],
                 monorepo / CHURN)
    assert result.exit_code == 1
    assert "is a different build of pipelines.data_cleaning 0.3.0 than the one installed" in result.stderr
    assert snapshot_tree(monorepo / CHURN) == before


def test_the_example_monorepo_has_one_owner_per_copy(monorepo, cli):
    for args in (["pull-all", "--no-compile"], ["sync-shared", "--no-compile"], ["pull-all", "--no-compile"]):
        result = cli(args, monorepo)
        assert result.exit_code == 0, (args, result.stderr)
    assert cli(["sync-shared", "--check"], monorepo).exit_code == 0
    for project in (CHURN, FORECAST):
        for entry in read_lock(monorepo / project / "micropkg.lock").entries.values():
            assert entry.source.startswith("../core#"), entry


# -- acceptance 3: sibling sources work in a fresh clone ---------------------------------------------


def test_a_sibling_source_pulls_in_a_fresh_git_clone_where_dist_is_ignored(monorepo, tmp_path, cli):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (monorepo / ".gitignore").write_text("dist/\n__pycache__/\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=monorepo, check=True)
    assert cli(["package", "--all"], monorepo / CORE).exit_code == 0  # ignored: never committed
    subprocess.run([*git, "add", "-A"], cwd=monorepo, check=True)
    subprocess.run([*git, "commit", "-qm", "monorepo"], cwd=monorepo, check=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(monorepo), str(clone)], check=True)
    assert not (clone / CORE / "dist").exists()

    result = cli(["pull", "--all", "--no-compile"], clone / CHURN)

    assert result.exit_code == 0, result.stderr
    assert (clone / "projects/churn/src/churn/pipelines/data_cleaning/nodes.py").is_file()
    lock = read_lock(clone / CHURN / "micropkg.lock")
    assert lock.entries["pipelines.data_cleaning"].source == "../core#pipelines.data_cleaning"
    assert not (clone / CORE / "dist").exists()


def test_a_sibling_source_that_is_not_a_project_is_one_clear_error(monorepo, cli):
    edit(monorepo / CHURN / "pyproject.toml", '"../core#pipelines', '"../nowhere#pipelines')
    before = snapshot_tree(monorepo / CHURN)
    result = cli(["pull", "--all", "--no-compile"], monorepo / CHURN)
    assert result.exit_code == 2
    assert "nowhere#pipelines.data_cleaning: " in result.stderr and "nowhere is not a project folder" in result.stderr
    assert snapshot_tree(monorepo / CHURN) == before


# -- acceptance 4: requirements are never dropped ---------------------------------------------------


def test_requirements_that_cannot_both_hold_refuse_that_target_and_the_others_sync(monorepo, cli):
    (monorepo / CLEANING_SOURCE / "requirements.txt").write_text("pyyaml<6\n")
    (monorepo / "projects/core/src/core/utils/io/requirements.txt").write_text("")
    churn_before = snapshot_tree(monorepo / CHURN)  # churn lists pyyaml>=6.0; forecast lists no pyyaml

    result = cli(["sync-shared", "--no-compile"], monorepo)

    assert result.exit_code == 1
    assert "projects/churn: refused: sync refused: 1 requirement(s) cannot hold together" in result.stderr
    assert "pyyaml: requirements.in has 'pyyaml>=6.0', pipelines.data_cleaning needs 'pyyaml<6'" in result.stderr
    assert snapshot_tree(monorepo / CHURN) == churn_before
    assert "projects/forecast: updated" in result.stdout
    assert "  requirement added: pipelines.cleaning: pyyaml<6" in result.stdout
    assert "pyyaml<6" in (monorepo / FORECAST / "src/requirements.in").read_text()
    check = cli(["sync-shared", "--check", "--json"], monorepo)
    states = {(s["project"], s["module"]): s["state"] for t in json.loads(check.stdout)["targets"] for s in t["states"]}
    assert states[(CHURN, "pipelines.data_cleaning")] == "not installed"
    assert states[(FORECAST, "pipelines.cleaning")] == "in sync"


def test_an_impossible_requirement_only_refuses_the_target_it_lands_in(monorepo, cli):
    (monorepo / "projects/forecast/src/requirements.txt").write_text("pyyaml<6\n")
    (monorepo / "projects/core/src/core/utils/io/requirements.txt").write_text("pyyaml>=6.0\n")
    forecast_before = snapshot_tree(monorepo / FORECAST)

    result = cli(["sync-shared", "--no-compile"], monorepo)

    assert result.exit_code == 1
    assert "projects/forecast: refused" in result.stderr
    assert "pyyaml: requirements.in has 'pyyaml<6', utils.io needs 'pyyaml>=6.0'" in result.stderr
    assert snapshot_tree(monorepo / FORECAST) == forecast_before
    assert "projects/churn: updated" in result.stdout
    assert (monorepo / CHURN_CLEANING / "nodes.py").is_file()


def test_every_addition_and_overlap_is_reported_under_sync_shared_and_in_json(monorepo, cli):
    (monorepo / "projects/churn/requirements.txt").write_text("pandas\npyyaml>=6.0\n")
    (monorepo / CLEANING_SOURCE / "requirements.txt").write_text("pandas>=2\n")

    result = cli(["sync-shared", "--no-compile", "--json"], monorepo)

    assert result.exit_code == 0, result.stderr
    targets = {t["project"]: t for t in json.loads(result.stdout)["targets"]}
    assert targets[CHURN]["requirements_added"] == ["pipelines.data_cleaning: pandas>=2"]
    assert targets[CHURN]["requirements_overlaps"] == [
        "pandas: requirements.in has 'pandas'; 'pandas>=2' added for pipelines.data_cleaning "
        "(pip-compile intersects them)"
    ]
    assert "pipelines.cleaning: pandas>=2" in targets[FORECAST]["requirements_added"]
    assert (monorepo / CHURN / "requirements.in").read_text() == (
        "pandas\npyyaml>=6.0\n# Added by micropkg-tasks for pipelines.data_cleaning\npandas>=2\n"
    )
    readable = cli(["sync-shared", "--no-compile", "--force"], monorepo)  # in sync now: nothing to add
    assert readable.exit_code == 0 and "requirement" not in readable.stdout


def test_an_overlap_is_compiled_to_a_pin_that_satisfies_both_lines(monorepo, cli, offline_pip, tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for version in ("1.5.3", "2.1.0"):
        write_wheel(wheels, "pandas", version)
    os.environ["PIP_CONFIG_FILE"] = str(write_pip_conf(tmp_path / "pandas-pip.conf", wheels))  # restored by monkeypatch
    churn = monorepo / CHURN
    (churn / "requirements.txt").write_text("pandas\n")
    (monorepo / FORECAST / "src/requirements.txt").write_text("pandas\n")
    (monorepo / "projects/core/src/core/utils/io/requirements.txt").write_text("")
    (churn / "requirements.in").write_text("pandas\n")
    (churn / "requirements.txt").write_text("pandas==1.5.3\n")  # as compiled before the micro-package came
    (monorepo / CLEANING_SOURCE / "requirements.txt").write_text("pandas>=2\n")

    result = cli(["sync-shared"], monorepo)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "requirement overlap: pandas: requirements.in has 'pandas'; 'pandas>=2' added" in result.stdout
    requirements_in = (churn / "requirements.in").read_text()
    assert requirements_in.startswith("pandas\n") and requirements_in.endswith("\npandas>=2\n")
    pins = [line for line in (churn / "requirements.txt").read_text().splitlines() if line.startswith("pandas==")]
    assert pins == ["pandas==2.1.0"]


# -- acceptance 6: one edited micro-package does not hold back the others -----------------------------


def test_a_local_edit_in_one_micro_package_does_not_stop_an_update_of_another(monorepo, cli):
    assert cli(["sync-shared", "--no-compile"], monorepo).exit_code == 0
    edited = monorepo / CHURN / "src/churn/utils/io/readers.py"
    edited.write_text(edited.read_text() + "# a local tweak\n")
    edit(monorepo / CLEANING_SOURCE / "nodes.py", "Remove the given keys", "Drop the given keys")
    edited_before = edited.read_bytes()
    churn_lock_before = read_lock(monorepo / CHURN / "micropkg.lock").entries["utils.io"]

    result = cli(["sync-shared", "--no-compile"], monorepo)

    assert result.exit_code == 1  # something was refused, and said so
    assert "projects/churn: updated" in result.stdout
    assert "refused: utils.io: 1 file(s) would be overwritten" in result.stderr
    assert "Drop the given keys" in (monorepo / CHURN_CLEANING / "nodes.py").read_text()
    assert edited.read_bytes() == edited_before
    assert read_lock(monorepo / CHURN / "micropkg.lock").entries["utils.io"] == churn_lock_before
    check = cli(["sync-shared", "--check"], monorepo)
    assert check.exit_code == 3
    assert "projects/churn: pipelines.data_cleaning (from projects/core#pipelines.data_cleaning): in sync" in check.stdout


# -- progress through compiles ------------------------------------------------------------------------


def test_each_running_compile_is_announced_and_projects_compile_side_by_side(monorepo, venv_bin, offline_pip):
    for requirements in ("projects/churn/requirements.in", "projects/forecast/src/requirements.in",
                         "projects/core/requirements.in"):
        (monorepo / requirements).write_text("small-a\n")
    result = console(venv_bin, "micropkg", ["compile-reqs", "--jobs", "2"], monorepo)
    assert result.returncode == 0, result.stderr
    started = re.findall(r"^\[\d+\] compiling (projects/\w+)$", result.stderr, flags=re.MULTILINE)
    assert sorted(started) == [CHURN, CORE, FORECAST]
    for project, requirements_txt in ((CHURN, "requirements.txt"), (CORE, "requirements.txt"),
                                      (FORECAST, "src/requirements.txt")):
        assert f"{project}: compiled {requirements_txt}" in result.stdout
        assert "small-a==2.0" in (monorepo / project / requirements_txt).read_text()


def test_status_sees_a_sibling_source_move_for_a_copy_pulled_from_a_manifest(monorepo, cli):
    edit(monorepo / "pyproject.toml", 'targets = ["projects/churn"]', 'targets = ["projects/forecast"]\nalias = "again"')
    assert cli(["pull", "--all", "--no-compile"], monorepo / CHURN).exit_code == 0
    rows = {(r["project"], r["module"]): r for r in json.loads(cli(["status", "--json"], monorepo).stdout)["rows"]}
    assert rows[(CHURN, "pipelines.data_cleaning")]["state"] == "in sync"
    edit(monorepo / CLEANING_SOURCE / "nodes.py", "Remove the given keys", "Drop the given keys")
    rows = {(r["project"], r["module"]): r for r in json.loads(cli(["status", "--json"], monorepo).stdout)["rows"]}
    assert rows[(CHURN, "pipelines.data_cleaning")]["state"] == "upstream moved"


def test_on_a_terminal_each_running_compile_has_a_live_line_with_its_elapsed_time(monorepo, venv_bin, offline_pip):
    from tests.test_prerelease import _environment, _run_on_a_terminal

    executable = venv_bin / "micropkg"
    if not executable.exists():
        pytest.skip(f"{executable} is not installed")
    for requirements in ("projects/churn/requirements.in", "projects/forecast/src/requirements.in"):
        (monorepo / requirements).write_text("small-a\n")
    shown = _run_on_a_terminal([str(executable), "compile-reqs", "--jobs", "2"], monorepo, _environment(TERM="xterm"))
    live = set(re.findall(r"compiling (projects/\w+) \(\d+ s\)", shown))
    assert {CHURN, FORECAST} <= live  # core has nothing to compile: its line comes and goes
    assert "projects/churn: compiled requirements.txt" in shown
