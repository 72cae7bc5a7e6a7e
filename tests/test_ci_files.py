"""The repository's CI files, run by the real tools: ``.pre-commit-hooks.yaml`` through
``pre-commit``, ``action.yml`` and every workflow in ``docs/ci.md`` through ``actionlint``.

pre-commit installs this project into an environment of its own, from the package index
pip is configured with: that test skips only when no index can be reached.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from micropkg_tasks._version import __version__
from tests.conftest import EXAMPLE_MONOREPO, REPO_ROOT, kedro_project, run_micropkg
from tests.helpers import commit_all, git

DOCS = REPO_ROOT / "docs" / "ci.md"
ACTION_USES = f"OWNER/micropkg-tasks@v{__version__}"
# What pre-commit needs of this repository to install it as a hook repository.
HOOK_REPO_FILES = ("micropkg_tasks", "pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "action.yml")
TOOL_TIMEOUT = 600  # seconds for one pre-commit run, which may install an environment


def snippets(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOCS.read_text(), flags=re.S | re.M)


def workflows() -> dict[str, str]:
    """The copy-paste workflows of docs/ci.md, by the file name each says it goes in."""
    found = {}
    for text in snippets("yaml"):
        first = text.splitlines()[0]
        if first.startswith("# .github/workflows/"):
            found[first.removeprefix("# .github/workflows/")] = text
    return found




# -- the gate is one command line, the same in the hook, the action and the docs ------------------


def test_the_hook_the_action_and_the_docs_run_the_same_gate():
    hooks = {hook["id"]: hook for hook in yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())}
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    gate = action["inputs"]["task"]["default"]
    assert hooks["micropkg-check"]["entry"] == f"micropkg {gate}"
    assert hooks["micropkg-check"]["pass_filenames"] is False
    assert f"micropkg {gate}" in snippets("bash")[0]
    assert re.search(hooks["micropkg-lock"]["files"], "projects/churn/micropkg.lock")
    assert not re.search(hooks["micropkg-lock"]["files"], "projects/churn/micropkg.lock.bak")
    assert "[docs/ci.md](docs/ci.md)" in (REPO_ROOT / "README.md").read_text()


def test_the_gate_passes_in_sync_and_fails_on_drift_or_a_broken_lock(monorepo):
    gate = yaml.safe_load((REPO_ROOT / "action.yml").read_text())["inputs"]["task"]["default"].split()
    assert run_micropkg(["sync-shared", "--no-compile"], monorepo).exit_code == 0
    assert run_micropkg(gate, monorepo).exit_code == 0
    lock = monorepo / "projects/forecast/micropkg.lock"
    lock.write_text(lock.read_text().replace("[", "[[", 1))
    broken = run_micropkg(gate, monorepo)
    assert broken.exit_code == 1
    assert "micropkg.lock" in broken.stderr
    # The lock hook's command alone says the same.
    lock_hook = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())[1]["entry"].split()[1:]
    assert run_micropkg(lock_hook, monorepo).exit_code == 1



def test_the_lock_hook_checks_a_single_project_too(tmp_path):
    solo = kedro_project(tmp_path / "solo", "solo")
    lock_hook = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())[1]["entry"].split()[1:]
    assert run_micropkg(lock_hook, solo).exit_code == 0  # no lock yet: nothing to fault
    (solo / "micropkg.lock").write_text("[entries.x\n")
    broken = run_micropkg(lock_hook, solo)
    assert broken.exit_code == 1
    assert "micropkg.lock" in broken.stderr and "Traceback" not in broken.stderr


# -- actionlint ---------------------------------------------------------------------------------


def actionlint(folder: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert binary, "actionlint is installed with the test extra (pip install -e '.[test]')"
    files = sorted(str(p) for p in (folder / ".github/workflows").iterdir())
    return subprocess.run([binary, "-no-color", *files], cwd=folder, capture_output=True, text=True, timeout=120)


@pytest.fixture
def workflow_repo(tmp_path: Path) -> Path:
    """A git repository holding this project's action.yml at its root, as ``uses: ./`` sees it."""
    folder = tmp_path / "repo"
    (folder / ".github/workflows").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "action.yml", folder / "action.yml")
    git(folder, "init", "-q")
    return folder


def test_every_workflow_in_the_docs_passes_actionlint_as_written_and_with_the_local_action(workflow_repo):
    found = workflows()
    assert sorted(found) == ["micropkg-check.yml", "micropkg-prerelease.yml", "micropkg-sync.yml"]
    for name, text in found.items():
        assert ACTION_USES in text, name
        (workflow_repo / ".github/workflows" / name).write_text(text)
        # The same workflow on this repository's own action.yml: actionlint then checks the inputs given.
        local = workflow_repo / ".github/workflows" / f"local-{name}"
        local.write_text(text.replace(ACTION_USES, "./"))
    done = actionlint(workflow_repo)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_does_read_the_local_action(workflow_repo):
    # Without this, a passing run above could mean the local action was never looked at.
    (workflow_repo / ".github/workflows/wrong.yml").write_text(
        "on: push\njobs:\n  check:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - uses: ./\n        with:\n          no-such-input: x\n"
    )
    done = actionlint(workflow_repo)
    assert done.returncode != 0
    assert "no-such-input" in done.stdout


# -- pre-commit ---------------------------------------------------------------------------------


def tool_environment(tmp_path: Path) -> dict[str, str]:
    """pip as the machine configures it (the tests otherwise forbid any index), and pre-commit's
    cache in a scratch folder."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PIP_NO_INDEX", "PIP_FIND_LINKS", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    if os.environ.get("PIP_FIND_LINKS"):
        env["PIP_FIND_LINKS"] = os.environ["PIP_FIND_LINKS"]
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def require_an_index(env: dict[str, str], tmp_path: Path) -> None:
    """Skip when pip cannot fetch one of our own dependencies within a minute."""
    import invoke

    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(tmp_path / "probe"),
             f"invoke=={invoke.__version__}"],
            env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("no package index answered within 60 s; pre-commit could not install the hook")
    if done.returncode != 0:
        pytest.skip(f"no package index is reachable; pre-commit could not install the hook ({done.stderr.strip()[-200:]})")


def hook_repository(tmp_path: Path) -> tuple[Path, str]:
    """This project as pre-commit fetches it: a committed git repository, made from the working files."""
    repo = tmp_path / "micropkg-tasks"
    repo.mkdir()
    for name in HOOK_REPO_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, repo / name)
    git(repo, "init", "-q")
    return repo, commit_all(repo, "micropkg-tasks")


@pytest.mark.slow
def test_pre_commit_runs_the_hooks_from_this_repository(tmp_path):
    env = tool_environment(tmp_path)
    require_an_index(env, tmp_path)
    hooks, rev = hook_repository(tmp_path)
    monorepo = tmp_path / "monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, monorepo, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    assert run_micropkg(["sync-shared", "--no-compile"], monorepo).exit_code == 0
    git(monorepo, "init", "-q")
    commit_all(monorepo, "in sync")

    def pre_commit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=monorepo, env=env,
                              capture_output=True, text=True, timeout=TOOL_TIMEOUT, stdin=subprocess.DEVNULL)

    passed = pre_commit("try-repo", str(hooks), "micropkg-check", "--ref", rev, "--all-files")
    assert passed.returncode == 0, passed.stdout + passed.stderr

    readers = monorepo / "projects/core/src/core/utils/io/readers.py"
    readers.write_text(readers.read_text() + "\n# upstream moves\n")
    commit_all(monorepo, "an upstream edit")
    failed = pre_commit("try-repo", str(hooks), "micropkg-check", "--ref", rev, "--all-files")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "projects/churn: utils.io (from projects/core#utils.io): upstream moved" in failed.stdout
    assert "upstream moved: run sync-shared" in failed.stdout

    # The docs' .pre-commit-config.yaml, pointed at the same repository and commit.
    [config] = [text for text in snippets("yaml") if text.startswith("repos:")]
    config = config.replace("https://github.com/OWNER/micropkg-tasks", str(hooks)).replace(f"v{__version__}", rev)
    (monorepo / ".pre-commit-config.yaml").write_text(config)
    commit_all(monorepo, "pre-commit configured")
    configured = pre_commit("run", "--all-files")
    assert configured.returncode == 1, configured.stdout + configured.stderr
    assert re.search(r"^micropkg check\.+Failed$", configured.stdout, flags=re.M), configured.stdout
    assert re.search(r"^micropkg lock\.+Passed$", configured.stdout, flags=re.M), configured.stdout
    assert "upstream moved: run sync-shared" in configured.stdout
