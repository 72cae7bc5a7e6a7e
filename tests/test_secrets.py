"""No output shows a planted secret: messages, warnings, ``--json`` and ``--debug`` logs.

Each scenario plants one or more secrets where a user or an archive may put them
(a URL's query string, the user info of a URL that does not parse, a
``Requires-Dist`` URL, the project's own ``requirements.in``, an
``Authorization`` header in ``--fs-args``, index credentials in
``PIP_INDEX_URL``) and runs the real CLI three ways: in-process, in-process
with ``--json``, and as the installed ``micropkg`` script with ``--debug``,
where invoke, fsspec and aiohttp log to stderr. No secret may appear in any of
them, and each run must have reached the code that handles the secret (a
fragment of the expected output proves it), so a scenario cannot pass by
failing early.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import kedro_project, run_micropkg
from tests.hostile_archives import valid_sdist
from tests.servers import AuthHttpServer, BasicAuthIndex, auth_http, basic_auth_index  # noqa: F401 (fixtures)

SECRET = "s3cr3t-Planted-"  # every planted secret starts with this; the rest is per scenario


@dataclass
class Run:
    cwd: Path
    argv: list[str]
    secrets: list[str]
    fragment: str  # shows the run got to where the secret is handled
    exit_code: int
    env: dict[str, str] | None = None


Scenario = Callable[[Path, AuthHttpServer, BasicAuthIndex], Run]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str):
    def register(build: Scenario) -> Scenario:
        SCENARIOS[name] = build
        return build

    return register


def _project(tmp_path: Path, **extra: str) -> Path:
    return kedro_project(tmp_path / "project", extra=extra or None)


@scenario("query-string-credential")
def _(tmp_path, http, index):
    secret = SECRET + "query"
    url = f"{http.base}/missing/data_cleaning-0.1.tar.gz?auth={secret}&ref=main"
    return Run(_project(tmp_path), ["pull", url, "--no-compile"], [secret], "auth=***", 1)


@scenario("userinfo-in-a-url-that-does-not-parse")
def _(tmp_path, http, index):
    secret = SECRET + "userinfo"
    url = f"https://deploy:{secret}@[not-an-ip/data_cleaning-0.1.tar.gz"
    return Run(_project(tmp_path), ["pull", url, "--no-compile"], [secret], "https://***@", 1)


@scenario("password-in-a-requires-dist-url")
def _(tmp_path, http, index):
    secret = SECRET + "requires"
    requirement = f"evil @ https://bot:{secret}@packages.example.invalid/evil-1.0.tar.gz"
    sdist = tmp_path / "data_cleaning-0.1.tar.gz"
    sdist.write_bytes(valid_sdist(requires=("numpy", requirement)))
    return Run(_project(tmp_path), ["pull", str(sdist), "--no-compile"], [secret], "https://***@packages", 0)


@scenario("password-in-the-projects-requirements-in")
def _(tmp_path, http, index):
    secret = SECRET + "requirements-in"
    existing = f"evil @ https://bot:{secret}@packages.example.invalid/evil-1.0.tar.gz\n"
    sdist = tmp_path / "data_cleaning-0.1.tar.gz"
    sdist.write_bytes(valid_sdist(requires=("evil>=2",)))
    project = _project(tmp_path, **{"requirements.in": existing})
    return Run(project, ["pull", str(sdist), "--no-compile"], [secret], "https://***@packages", None)  # type: ignore[arg-type]


@scenario("authorization-header-in-fs-args")
def _(tmp_path, http, index):
    secret = SECRET + "header"
    args = tmp_path / "args.yml"
    args.write_text(f"headers:\n  Authorization: token {secret}\n", encoding="utf-8")
    url = f"{http.base}/x/data_cleaning-0.1.tar.gz"
    return Run(_project(tmp_path), ["pull", url, "--fs-args", str(args), "--no-compile"], [secret], "access denied", 1)


@scenario("index-credentials-in-pip-index-url")
def _(tmp_path, http, index):
    index.add("data_cleaning-0.1.tar.gz", valid_sdist())
    env = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": index.index_url, "PIP_EXTRA_INDEX_URL": ""}
    return Run(_project(tmp_path), ["pull", "data_cleaning==0.1", "--no-compile"], [index.password], "pulled", 0, env)


@pytest.fixture
def clean_pip_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    return monkeypatch


def _run(run: Run, mode: str, venv_bin: Path, monkeypatch) -> tuple[int, str]:
    for name, value in (run.env or {}).items():
        monkeypatch.setenv(name, value)
    if mode == "debug":
        completed = subprocess.run(
            [str(venv_bin / "micropkg"), "--debug", *run.argv], cwd=run.cwd, capture_output=True, text=True,
            timeout=120, stdin=subprocess.DEVNULL,
        )
        return completed.returncode, completed.stdout + completed.stderr
    argv = [*run.argv, "--json"] if mode == "json" else run.argv
    result = run_micropkg(argv, run.cwd)
    return result.exit_code, result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["plain", "json", "debug"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_no_output_contains_a_planted_secret(
    name, mode, tmp_path, auth_http, basic_auth_index, clean_pip_env, venv_bin
):
    run = SCENARIOS[name](tmp_path, auth_http, basic_auth_index)
    code, output = _run(run, mode, venv_bin, clean_pip_env)

    for secret in run.secrets:
        assert secret not in output, f"{name} ({mode}) printed a secret:\n{output}"
    if run.exit_code is not None:
        assert code == run.exit_code, output
    if mode == "debug":
        assert "invoke." in output  # the --debug log lines were there to be checked
    if mode != "json" or code != 0:
        assert run.fragment in output, output
    assert "Traceback" not in output or mode == "debug"
