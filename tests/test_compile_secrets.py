"""No credential, index or find-links location of this machine reaches a compiled file.

Credentials are planted everywhere pip reads them from (``PIP_INDEX_URL``,
``PIP_EXTRA_INDEX_URL``, a ``pip.conf`` named by ``PIP_CONFIG_FILE``, the
project's own compile arguments), then the real ``micropkg compile-reqs`` runs
real pip-compile. The indexes are a closed port on 127.0.0.1, so pip finds
nothing there and resolves from the local wheelhouse alone. Every file of the
project, and everything printed, is then searched for the planted values.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest

from micropkg_tasks.core.redaction import strip_url_credentials
from micropkg_tasks.core.requirements.compile_output import scrubbed
from micropkg_tasks.core.requirements.compile_settings import CompileSettings, parse_pins
from tests.conftest import kedro_project
from tests.helpers import snapshot_tree
from tests.servers import free_port


def _secret(label: str) -> str:
    return f"{label}{secrets.token_hex(8)}"


class Planted:
    """Distinctive credentials and the closed-port index URLs that carry them."""

    def __init__(self, wheelhouse: Path) -> None:
        self.port = free_port()  # nothing listens there: every request is refused at once
        self.values = {label: _secret(label) for label in (
            "envuser", "envpass", "envtoken", "envquery", "confuser", "confpass", "conftoken", "linkuser", "linkpass",
            "argpass",
        )}
        v = self.values
        host = f"127.0.0.1:{self.port}"
        self.env_index = f"http://{v['envuser']}:{v['envpass']}@{host}/simple"
        self.env_extra = f"http://{v['envtoken']}@{host}/extra/?token={v['envquery']}"
        self.conf_index = f"http://{v['confuser']}:{v['confpass']}@{host}/conf-simple"
        self.conf_extra = f"http://{v['conftoken']}@{host}/conf-extra/"
        self.conf_links = f"http://{v['linkuser']}:{v['linkpass']}@{host}/links/"
        self.arg_index = f"http://ci:{v['argpass']}@{host}/arg-extra/"
        self.wheelhouse = wheelhouse

    def pip_conf(self, path: Path) -> Path:
        path.write_text(
            "[global]\n"
            f"index-url = {self.conf_index}\n"
            f"extra-index-url = {self.conf_extra}\n"
            f"find-links =\n    {self.wheelhouse}\n    {self.conf_links}\n",
            encoding="utf-8",
        )
        return path

    def found_in(self, data: bytes | str) -> list[str]:
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        return [value for value in self.values.values() if value in text]


@pytest.fixture
def planted(offline_pip: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Planted:
    """``offline_pip`` has cleared every PIP_* variable; plant credentials in pip's sources."""
    plant = Planted(offline_pip)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(plant.pip_conf(tmp_path / "pip.conf")))
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    return plant


def _project(tmp_path: Path, compile_table: str, plant: Planted) -> Path:
    table = f'\n[tool.micropkg.compile]\nargs = ["--extra-index-url", "{plant.arg_index}"]\n{compile_table}'
    return kedro_project(
        tmp_path / "project", extra={"requirements.in": "small-a>=2\n"}, pyproject_extra=table,
    )


def _leaks(root: Path, plant: Planted, pyproject: bytes) -> dict[str, list[str]]:
    """Every file of the project holding a planted value. ``pyproject.toml`` holds the compile
    argument planted there by hand: it must be exactly as it was written."""
    assert (root / "pyproject.toml").read_bytes() == pyproject
    found: dict[str, list[str]] = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            if path == root / "pyproject.toml":
                continue
            if path.is_file() and (hits := plant.found_in(path.read_bytes())):
                found[path.relative_to(root).as_posix()] = hits
    return found


def _option_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("--index-url", "--extra-index-url", "--find-links",
                                                                   "--trusted-host", "-i ", "-f "))]


@pytest.mark.parametrize("source", ["environment", "pip.conf"])
def test_no_secret_and_no_index_line_reaches_any_file(planted, tmp_path, monkeypatch, cli, source):
    if source == "environment":  # PIP_* beat pip.conf; its find-links (wheelhouse and a link page) still apply
        monkeypatch.setenv("PIP_INDEX_URL", planted.env_index)
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", planted.env_extra)
    root = _project(tmp_path, "", planted)
    pyproject = (root / "pyproject.toml").read_bytes()
    result = cli(["compile-reqs", "--verbose"], root)
    assert result.exit_code == 0, result.stderr
    text = (root / "requirements.txt").read_text()
    assert parse_pins(text) == {"small-a": "2.0", "small-b": "1.1"}
    assert _option_lines(text) == []  # no index, extra index, find-links or trusted host: nothing of this machine
    assert str(planted.wheelhouse) not in text
    assert [line for line in text.splitlines() if "127.0.0.1" in line and not line.startswith("#")] == []
    assert _leaks(root, planted, pyproject) == {}
    assert planted.found_in(result.stdout + result.stderr) == []


@pytest.mark.parametrize("source", ["environment", "pip.conf"])
def test_opted_in_index_lines_are_written_without_credentials(planted, tmp_path, monkeypatch, cli, source):
    if source == "environment":
        monkeypatch.setenv("PIP_INDEX_URL", planted.env_index)
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", planted.env_extra)
    root = _project(tmp_path, "emit_index_url = true\nemit_find_links = true\n", planted)
    pyproject = (root / "pyproject.toml").read_bytes()
    result = cli(["compile-reqs", "--verbose"], root)
    assert result.exit_code == 0, result.stderr
    text = (root / "requirements.txt").read_text()
    host = f"127.0.0.1:{planted.port}"
    index = "/simple" if source == "environment" else "/conf-simple"
    assert f"--index-url http://{host}{index}" in text.splitlines()
    assert f"--extra-index-url http://{host}/arg-extra/" in text.splitlines()
    assert f"--find-links {planted.wheelhouse}" in text.splitlines()
    assert f"--find-links http://{host}/links/" in text.splitlines()
    assert parse_pins(text) == {"small-a": "2.0", "small-b": "1.1"}
    assert _leaks(root, planted, pyproject) == {}
    assert planted.found_in(result.stdout + result.stderr) == []


def test_a_credential_the_scrub_would_keep_is_refused(planted, tmp_path, monkeypatch, cli):
    """The last check: a value from PIP_EXTRA_INDEX_URL's query that looks harmless by name is
    still a value from the environment, so the file is not written."""
    secret = planted.values["envquery"]
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", f"http://127.0.0.1:{planted.port}/extra/?version={secret}")
    root = _project(tmp_path, "emit_index_url = true\n", planted)
    (root / "requirements.txt").write_text("small-a==2.0\n")
    before = snapshot_tree(root)
    result = cli(["compile-reqs"], root)
    assert result.exit_code == 1
    assert "refusing to write the compile of requirements.in" in result.stderr
    assert "$PIP_EXTRA_INDEX_URL" in result.stderr and "requirements.txt was left as it was" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot_tree(root) == before
    assert planted.found_in(result.stdout + result.stderr) == []


# -- the scrub itself, on text shaped like pip-compile's ---------------------------------------------

COMPILED = """#
#    pip-compile --extra-index-url=https://bot:pw-123456789@idx.example/simple --output-file=requirements.txt
#
--index-url https://user:pw-abcdefghi@idx.example/simple
--extra-index-url https://tok-0123456789@idx.example/extra?token=q-0123456789&version=2
--trusted-host idx.example
--find-links /home/someone/wheels
-f https://links.example/x
--no-index

small-a==2.0
    # via -r requirements.in
small-c @ https://user:pw-zyxwvutsr@files.example/small_c-0.5.whl#sha256=abc
"""


def test_scrub_drops_lines_not_asked_for_and_every_credential():
    text = scrubbed(COMPILED, CompileSettings())
    assert _option_lines(text) == []
    assert "--no-index" in text.splitlines()
    assert "small-c @ https://files.example/small_c-0.5.whl#sha256=abc" in text.splitlines()
    assert "#    pip-compile --extra-index-url=https://idx.example/simple --output-file=requirements.txt" in text
    for secret in ("pw-123456789", "pw-abcdefghi", "tok-0123456789", "q-0123456789", "pw-zyxwvutsr"):
        assert secret not in text


def test_scrub_keeps_asked_for_lines_without_credentials():
    text = scrubbed(COMPILED, CompileSettings(emit_index_url=True, emit_find_links=True))
    assert _option_lines(text) == [
        "--index-url https://idx.example/simple",
        "--extra-index-url https://idx.example/extra?version=2",
        "--trusted-host idx.example",
        "--find-links /home/someone/wheels",
        "-f https://links.example/x",
    ]
    only_index = scrubbed(COMPILED, CompileSettings(emit_index_url=True))
    assert [line.split()[0] for line in _option_lines(only_index)] == ["--index-url", "--extra-index-url", "--trusted-host"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p@h/simple", "https://h/simple"),
        ("https://token@h:8080/simple/", "https://h:8080/simple/"),
        ("https://${PIP_USER}:${PIP_PASSWORD}@h/simple", "https://${PIP_USER}:${PIP_PASSWORD}@h/simple"),
        ("https://${PIP_USER}:hardcoded@h/simple", "https://h/simple"),
        ("https://h/x.whl?sig=abc&version=1#sha256=ff", "https://h/x.whl?version=1#sha256=ff"),
        ("https://h/x.whl?sig=abc", "https://h/x.whl"),
        ("s3://key:secret@bucket/wheels", "s3://bucket/wheels"),
        ("/local/path", "/local/path"),
        # No path after the host: the authority runs to the end.
        ("https://u:p@h", "https://h"),
        # The authority ends at the first of / ? #, not the last.
        ("https://u:p@h/a/b/c?sig=1#frag/x", "https://h/a/b/c#frag/x"),
        # A password may hold an @: the host follows the last one.
        ("https://u:p@ss@h/simple", "https://h/simple"),
        # A user and password that are references stay, also with a ':' inside the second part.
        ("https://${A}:${B}@h/s", "https://${A}:${B}@h/s"),
        ("https://${A}:${B}:x@h/s", "https://h/s"),
        ("https://${A}@h/s", "https://${A}@h/s"),
        # Harmless query pairs keep their order and separator; a value may hold '='.
        ("https://h/x.whl?version=1&sig=a&generation=2", "https://h/x.whl?version=1&generation=2"),
        ("https://h/x.whl?version=a=b", "https://h/x.whl?version=a=b"),
        ("https://h/x?sig=a#sha256=ff", "https://h/x#sha256=ff"),
        # An '@' after the authority is part of the path, wherever the authority ends.
        ("https://h/pkg@1.0/x.whl", "https://h/pkg@1.0/x.whl"),
        ("file:///srv/wheels@2024/x.whl", "file:///srv/wheels@2024/x.whl"),
        ("https://USERX:p@h/s", "https://h/s"),
        # Only a user and a password can be references: a third part makes it a credential.
        ("https://${A}:${B}:${C}@h/s", "https://h/s"),
        # A second scheme inside the query is text, not the start of the URL.
        ("https://u:p@h/x?next=https://other", "https://h/x"),
    ],
)
def test_strip_url_credentials(url, expected):
    assert strip_url_credentials(url) == expected


# -- an unusable pip configuration file ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "fifo", "unreadable"])
def test_unusable_pip_config_is_one_sentence(offline_pip, tmp_path, monkeypatch, cli, kind):
    config = tmp_path / "bad-pip.conf"
    if kind == "folder":
        config.mkdir()
    elif kind == "fifo":
        os.mkfifo(config)  # pip would wait on it for ever
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads a file of mode 000")
        config.write_text("[global]\n")
        config.chmod(0)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    # Should pip ever be started on the FIFO, it waits there: the timeout turns that into a failure.
    root = kedro_project(tmp_path / "project", extra={"requirements.in": "small-c\n"},
                         pyproject_extra="\n[tool.micropkg.compile]\ntimeout = 60\n")
    before = snapshot_tree(root)
    result = cli(["compile-reqs"], root)
    config.chmod(stat.S_IRWXU)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if "compile failed" in line]
    assert len(lines) == 1, result.stderr
    assert f"cannot compile requirements.in: the pip configuration file {config} (PIP_CONFIG_FILE)" in lines[0]
    assert "Traceback" not in result.stderr
    assert snapshot_tree(root) == before
