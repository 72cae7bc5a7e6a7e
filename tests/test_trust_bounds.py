"""Bounded work and exact bytes on hostile input, through the real CLI.

* Every newline convention (LF, CRLF, CR-only, mixed, BOM, form feeds) survives
  package and pull byte-for-byte, apart from the rewritten import.
* A download from any location is capped before it is read in full.
* A private index with basic auth: files on the index's own host get its credentials.
* A malformed JSON page from an index is one sentence.
* One failing ``[[tool.micropkg.shared]]`` entry never stops the others.

The corpus cases of the same kind (nesting, FIFOs, ``/dev/zero``, metadata) live in
``tests/test_hostile_inputs.py``.
"""

from __future__ import annotations

import os
import tarfile

import pytest

from micropkg_tasks.core.change.bounded import MAX_SDIST_BYTES
from micropkg_tasks.core.lock.lockfile import read_lock
from tests.conftest import kedro_project, run_micropkg
from tests.helpers import snapshot_tree
from tests.hostile_archives import valid_sdist
from tests.servers import basic_auth_index  # noqa: F401 (fixture)

PACKAGE = "spaceflights"
IMPORT = b"from spaceflights.pipelines.x.helpers import f"
PACKAGED_IMPORT = b"from x.helpers import f"


def _module(newline: bytes, *, bom: bool = False, form_feeds: bool = False) -> bytes:
    lines = [b"import os", IMPORT, b"", b"", b"def g():", b"    return f()", b"VALUE = 'a'"]
    if form_feeds:
        lines[2:4] = [b"\x0c", b"\x0c# section two"]
    return (b"\xef\xbb\xbf" if bom else b"") + newline.join(lines) + newline


NEWLINE_FILES = {
    "lf.py": _module(b"\n"),
    "crlf.py": _module(b"\r\n"),
    "cr.py": _module(b"\r"),
    "cr_no_final_newline.py": _module(b"\r")[:-1],
    "mixed.py": b"import os\r\n" + IMPORT + b"\ndef g():\r    return f()\r\nVALUE = 1\n",
    "bom_crlf.py": _module(b"\r\n", bom=True),
    "bom_cr.py": _module(b"\r", bom=True),
    "form_feeds.py": _module(b"\n", form_feeds=True),
    "form_feeds_crlf.py": _module(b"\r\n", form_feeds=True),
}


def test_every_newline_convention_survives_package_and_pull_byte_for_byte(tmp_path):
    source_files = {f"src/{PACKAGE}/pipelines/x/{name}": data for name, data in NEWLINE_FILES.items()}
    source = kedro_project(tmp_path / "source", extra={
        f"src/{PACKAGE}/pipelines/x/__init__.py": "",
        f"src/{PACKAGE}/pipelines/x/helpers.py": "def f():\n    return 1\n",
        **source_files,
    })
    packaged = run_micropkg(["package", "pipelines.x"], source)
    assert packaged.exit_code == 0, packaged.stderr
    with tarfile.open(source / "dist/x-0.1.tar.gz") as archive:
        for name, original in NEWLINE_FILES.items():
            inside = archive.extractfile(f"x-0.1/x/{name}").read()
            assert inside == original.replace(IMPORT, PACKAGED_IMPORT), name

    target = kedro_project(tmp_path / "target")
    pulled = run_micropkg(
        ["pull", str(source / "dist/x-0.1.tar.gz"), "--destination", "pipelines", "--no-compile"], target
    )
    assert pulled.exit_code == 0, pulled.stderr
    for name, original in NEWLINE_FILES.items():
        assert (target / f"src/{PACKAGE}/pipelines/x/{name}").read_bytes() == original, name


def test_a_huge_http_download_is_refused_before_it_is_read(basic_auth_index, tmp_path):
    project = kedro_project(tmp_path / "project")
    before = snapshot_tree(project)
    size = 400 * 1024 * 1024
    url = f"{basic_auth_index.base}/huge/{size}"

    result = run_micropkg(["pull", url, "--no-compile"], project)

    assert result.exit_code == 1, result.stdout + result.stderr
    assert f"is larger than {MAX_SDIST_BYTES // (1024 * 1024)} MiB" in result.stderr
    assert "Traceback" not in result.stderr
    assert basic_auth_index.sent.get(f"/huge/{size}", 0) < 64 * 1024 * 1024
    assert snapshot_tree(project) == before


def test_a_huge_http_download_of_unknown_size_stops_at_the_cap(basic_auth_index, tmp_path):
    project = kedro_project(tmp_path / "project")
    before = snapshot_tree(project)
    size = 400 * 1024 * 1024
    url = f"{basic_auth_index.base}/undeclared/{size}"

    result = run_micropkg(["pull", url, "--no-compile"], project)

    assert result.exit_code == 1, result.stdout + result.stderr
    assert f"is larger than {MAX_SDIST_BYTES // (1024 * 1024)} MiB" in result.stderr
    # Read in chunks up to one byte past the cap, then the connection is dropped.
    assert basic_auth_index.sent.get(f"/undeclared/{size}", 0) < MAX_SDIST_BYTES + 32 * 1024 * 1024
    assert snapshot_tree(project) == before


@pytest.fixture
def private_index(basic_auth_index, monkeypatch):
    """pip sees only the basic-auth index, with the credentials in PIP_INDEX_URL."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", basic_auth_index.index_url)
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    return basic_auth_index


def test_index_credentials_go_with_file_downloads_from_the_same_host(private_index, tmp_path):
    private_index.add("data_cleaning-0.1.tar.gz", valid_sdist())
    project = kedro_project(tmp_path / "project")

    result = run_micropkg(["pull", "data_cleaning==0.1", "--no-compile"], project)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert (project / f"src/{PACKAGE}/data_cleaning/nodes.py").is_file()
    assert private_index.unauthorised == []
    lock_text = (project / "micropkg.lock").read_text(encoding="utf-8")
    for output in (result.stdout, result.stderr, lock_text):
        assert private_index.password not in output


def test_index_credentials_never_follow_a_redirect_to_another_host(private_index, tmp_path):
    private_index.add("data_cleaning-0.1.tar.gz", valid_sdist())
    private_index.redirect_host = "localhost"  # same server, another origin than 127.0.0.1
    project = kedro_project(tmp_path / "project")

    result = run_micropkg(["pull", "data_cleaning==0.1", "--no-compile"], project)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert private_index.foreign_auth == [None]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"files": [{"filename": 3}]}', b'{"files": 7}'])
def test_a_malformed_json_page_from_an_index_is_one_sentence(private_index, tmp_path, body):
    private_index.json_body = body
    project = kedro_project(tmp_path / "project")
    before = snapshot_tree(project)

    result = run_micropkg(["pull", "data_cleaning==0.1", "--no-compile"], project)

    assert result.exit_code == 1, result.stdout + result.stderr
    assert "is not valid PEP 691 JSON" in result.stderr
    assert "Traceback" not in result.stderr
    assert private_index.password not in result.stderr
    assert snapshot_tree(project) == before


def test_one_failing_shared_entry_never_stops_the_others(monorepo):
    """core's utils.io holds a module too deeply nested to rewrite: its targets fail with one
    sentence, while pipelines.data_cleaning is still installed everywhere."""
    io_dir = monorepo / "projects/core/src/core/utils/io"
    (io_dir / "deep.py").write_text("import core.utils.io\ny = core.utils.io" + ".b" * 1500 + "\n", encoding="utf-8")
    source_before = snapshot_tree(monorepo / "projects/core")

    result = run_micropkg(["sync-shared", "--no-compile"], monorepo)

    assert result.exit_code == 1, result.stdout + result.stderr
    assert "deep.py is nested too deeply to rewrite its imports" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for target, module, installed in (
        ("churn", "pipelines.data_cleaning", "src/churn/pipelines/data_cleaning/nodes.py"),
        ("forecast", "pipelines.cleaning", "src/forecast/pipelines/cleaning/nodes.py"),
    ):
        root = monorepo / "projects" / target
        assert (root / installed).is_file(), target
        entries = read_lock(root / "micropkg.lock").entries
        assert module in entries and "utils.io" not in entries, target
        assert not (root / f"src/{target}/utils/io").exists()
    assert snapshot_tree(monorepo / "projects/core") == source_before



@pytest.mark.parametrize("text", ["ab\x7fcd", "\x1b[31mred\x1b[0m", "line\nbreak\ttab", "zero\u200bwidth", "\U0001f600"])
def test_the_lock_stays_readable_whatever_text_it_records(tmp_path, text):
    """Defence in depth behind the metadata checks: the lock writer escapes what TOML forbids."""
    from micropkg_tasks.core.lock.lockfile import Lock, LockEntry, render_lock

    entry = LockEntry(module="m", name="n", source=f"dist/{text}.tar.gz", version="0.1", sdist_sha256="0" * 64,
                      source_sha256=text, requirements=[f"pkg; extra == '{text}'"], files={f"src/{text}.py": "0" * 64})
    (tmp_path / "micropkg.lock").write_text(render_lock(Lock({"m": entry})), encoding="utf-8")
    assert read_lock(tmp_path / "micropkg.lock").entries["m"] == entry


def test_a_dangling_parameter_symlink_is_reported_not_skipped_silently(tmp_path):
    project = kedro_project(tmp_path / "project", extra={
        f"src/{PACKAGE}/pipelines/x/__init__.py": "VALUE = 1\n",
        "conf/base/parameters_x.yml": "rate: 1\n",
    })
    (project / "conf/base/parameters").mkdir()
    (project / "conf/base/parameters/x.yml").symlink_to(tmp_path / "gone.yml")

    result = run_micropkg(["package", "pipelines.x"], project)

    assert result.exit_code == 0, result.stderr
    assert "conf/base/parameters/x.yml: symlink skipped" in result.stderr
    with tarfile.open(project / "dist/x-0.1.tar.gz") as archive:
        assert "x-0.1/x/config/parameters_x.yml" in archive.getnames()
        assert not any(name.endswith("parameters/x.yml") for name in archive.getnames())
