"""Remote sources and destinations: fsspec URLs (memory, file, S3, HTTPS) and package indexes.

S3 runs against moto's server, HTTPS against a local server that wants a token,
and the index against pypiserver, all over real HTTP on 127.0.0.1 (see tests/servers.py).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import fsspec
import pytest

from micropkg_tasks import package, pull
from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.fs_args import load_fs_args, parse_fs_args, redact_url, redact_urls_in
from micropkg_tasks.core.lock.lockfile import read_lock, sha256_bytes
from micropkg_tasks.ops.sources import remote
from micropkg_tasks.ops.sources.cache import SdistCache, cache_dir
from micropkg_tasks.ops.sources.destinations import write_artifact
from micropkg_tasks.ops.sources.locations import INDEX, PATH, URL, fetch_sdist, location_kind
from tests.conftest import kedro_project, run_micropkg
from tests.helpers import read_tree, snapshot_tree
from tests.hostile_archives import valid_sdist
from tests.servers import SLOW_SECONDS, auth_http, moto_s3, pip_env, pypi_server  # noqa: F401 (fixtures)

SDIST = valid_sdist("data_cleaning", "0.1")
SDIST_V2 = valid_sdist("data_cleaning", "0.1", requires=("numpy",))
NAME = "data_cleaning-0.1.tar.gz"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "micropkg-cache"
    monkeypatch.setenv("MICROPKG_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return kedro_project(tmp_path / "consumer")


@pytest.fixture
def memory_root() -> str:
    root = f"memory://micropkg-{uuid.uuid4().hex[:10]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def write_yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def lock_text(project: Path) -> str:
    return (project / "micropkg.lock").read_text(encoding="utf-8")


def everything_in(project: Path) -> str:
    return "\n".join(data.decode("utf-8", "replace") for data in read_tree(project).values())


# -- fs-args, redaction, location kinds (pure) ----------------------------------------------------


def test_fs_args_expand_env_vars_and_every_value_is_a_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "abc123secret")
    args = load_fs_args(write_yaml(
        tmp_path / "fs.yml", "headers:\n  Authorization: token ${MY_TOKEN}\nclient_kwargs:\n  endpoint_url: http://x:9\n"
    ))
    assert args.args == {"headers": {"Authorization": "token abc123secret"}, "client_kwargs": {"endpoint_url": "http://x:9"}}
    assert {"abc123secret", "token abc123secret", "http://x:9"} <= args.secrets
    assert args.redact("bad header token abc123secret; raw abc123secret") == "bad header ***; raw ***"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("key: ${MICROPKG_TEST_UNSET_VAR}\n", "environment variable MICROPKG_TEST_UNSET_VAR is not set"),
        ("key: ${UNCLOSED\n", "unterminated"),
        ("key: [unclosed\n", "is not valid YAML at line"),
        ("- a\n- b\n", "must hold a mapping"),
    ],
)
def test_bad_fs_args_are_usage_errors_naming_the_file(text, fragment, monkeypatch):
    monkeypatch.delenv("MICROPKG_TEST_UNSET_VAR", raising=False)
    with pytest.raises(UsageError, match="fs-args.yml") as caught:
        parse_fs_args(text, "fs-args.yml")
    assert fragment in str(caught.value)


def test_missing_fs_args_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_fs_args(tmp_path / "nope.yml")


def test_url_credentials_are_redacted():
    assert redact_url("https://alice:pa55word@host/x.tar.gz") == "https://***@host/x.tar.gz"
    signed = redact_url("https://b.s3.amazonaws.com/x.tar.gz?X-Amz-Signature=abcd&X-Amz-Expires=60")
    assert "abcd" not in signed and "X-Amz-Expires=60" in signed
    assert redact_url("s3://bucket/x.tar.gz") == "s3://bucket/x.tar.gz"
    assert redact_urls_in("Looking in https://u:p@idx/simple now") == "Looking in https://***@idx/simple now"


def test_location_kinds(tmp_path):
    (tmp_path / "mypkg").write_bytes(b"")
    assert location_kind("s3://b/x.tar.gz") == URL
    assert location_kind("dist/x-0.1.tar.gz") == PATH
    assert location_kind("mypkg==0.2", tmp_path) == INDEX
    assert location_kind("mypkg", tmp_path) == PATH  # an existing file wins over a package name


def test_error_reasons_map_to_one_clear_phrase():
    assert remote.reason("s3://nob/x", FileNotFoundError("The specified bucket does not exist")) == "bucket 'nob' does not exist"
    assert remote.reason("s3://b/x", PermissionError("Forbidden")) == "access denied"
    assert remote.reason("s3://b/x", FileNotFoundError("b/x")) == "not found"
    wrapped = FileNotFoundError("https://h/x")
    wrapped.__cause__ = TimeoutError()
    assert remote.reason("https://h/x", wrapped) == "timed out"


# -- memory:// and file:// (fast tests of the seam) -----------------------------------------------


def test_memory_upload_is_atomic_and_fetch_reads_it_back(memory_root):
    target = write_artifact(f"{memory_root}/micropkgs/", NAME, SDIST)
    assert target == f"{memory_root}/micropkgs/{NAME}"
    fs = fsspec.filesystem("memory")
    assert [Path(p).name for p in fs.ls(f"{memory_root}/micropkgs", detail=False)] == [NAME]
    fetched = fetch_sdist(target)
    assert (fetched.data, fetched.location, fetched.kind) == (SDIST, target, URL)


def test_remote_sdist_is_left_alone_when_identical_and_reported_when_overwritten(memory_root):
    from micropkg_tasks.ops.sources.destinations import write_artifact_once

    folder = f"{memory_root}/micropkgs"
    assert write_artifact_once(folder, NAME, SDIST) == (f"{folder}/{NAME}", "created")
    fs = fsspec.filesystem("memory")
    stamp = fs.info(f"{folder}/{NAME}")["created"]
    assert write_artifact_once(folder, NAME, SDIST) == (f"{folder}/{NAME}", "unchanged")
    assert fs.info(f"{folder}/{NAME}")["created"] == stamp  # not written again
    assert write_artifact_once(folder, NAME, SDIST + b"x") == (f"{folder}/{NAME}", "overwritten")
    assert fs.cat_file(f"{folder}/{NAME}") == SDIST + b"x"


def test_file_url_upload_and_fetch(tmp_path):
    url = f"file://{tmp_path}/out/dist"
    target = write_artifact(url, NAME, SDIST)
    assert (tmp_path / "out/dist" / NAME).read_bytes() == SDIST
    assert os.listdir(tmp_path / "out/dist") == [NAME]
    assert fetch_sdist(target).data == SDIST


def test_cache_serves_unchanged_files_and_notices_changes(memory_root, _own_cache, monkeypatch):
    url = f"{memory_root}/{NAME}"
    fs = fsspec.filesystem("memory")
    fs.pipe_file(url, SDIST)
    reads = []
    real = type(fs).cat_file
    monkeypatch.setattr(type(fs), "cat_file", lambda self, path, *a, **k: reads.append(path) or real(self, path, *a, **k))
    assert fetch_sdist(url).data == SDIST
    assert fetch_sdist(url).data == SDIST
    assert len(reads) == 1
    assert (_own_cache / "sdists" / f"{sha256_bytes(SDIST)}.tar.gz").read_bytes() == SDIST
    time.sleep(0.002)
    fs.pipe_file(url, SDIST_V2)  # a new object: new fingerprint
    assert fetch_sdist(url).data == SDIST_V2
    assert len(reads) == 2
    assert fetch_sdist(url, use_cache=False).data == SDIST_V2
    assert len(reads) == 3


def test_no_cache_neither_reads_nor_writes_the_cache(memory_root, _own_cache):
    url = f"{memory_root}/{NAME}"
    fsspec.filesystem("memory").pipe_file(url, SDIST)
    assert fetch_sdist(url, use_cache=False).data == SDIST
    assert not _own_cache.exists()


def test_corrupt_cache_blob_is_dropped_and_downloaded_again(memory_root, _own_cache):
    url = f"{memory_root}/{NAME}"
    fsspec.filesystem("memory").pipe_file(url, SDIST)
    fetch_sdist(url)
    blob = SdistCache().blob_path(sha256_bytes(SDIST))
    blob.write_bytes(b"garbage")
    assert fetch_sdist(url).data == SDIST
    assert blob.read_bytes() == SDIST


def test_size_alone_is_too_weak_a_fingerprint():
    from micropkg_tasks.ops.sources.cache import fingerprint

    assert fingerprint({"size": 10, "name": "x"}) is None
    assert fingerprint({"size": 10, "ETag": '"abc"'}) == fingerprint({"ETag": '"abc"', "size": 10, "type": "file"})
    assert fingerprint({"size": 10, "ETag": '"abc"'}) != fingerprint({"size": 11, "ETag": '"abc"'})


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("MICROPKG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "micropkg-tasks"


def test_pull_from_memory_records_location_and_sha_but_never_fs_args(project, memory_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMORY_SECRET", "s3cr3t-memory-value")
    args = write_yaml(tmp_path / "mem.yml", "some_option: ${MEMORY_SECRET}\n")
    url = f"{memory_root}/{NAME}"
    fsspec.filesystem("memory").pipe_file(url, SDIST)
    result = pull(project, url, fs_args=str(args))
    assert result.location == url
    entry = read_lock(project / "micropkg.lock").entries["data_cleaning"]
    assert (entry.source, entry.sdist_sha256) == (url, sha256_bytes(SDIST))
    text = lock_text(project)
    assert "s3cr3t-memory-value" not in text and "mem.yml" not in text and "fs-args" not in text
    assert pull(project, url, fs_args=str(args)).unchanged


def test_fs_args_go_to_the_local_filesystem_for_local_files_and_are_refused_for_index_specs(tmp_path):
    # Kedro 0.19 passed --fs-args to fsspec's local filesystem for a local sdist; so do we.
    args = str(write_yaml(tmp_path / "fs.yml", "auto_mkdir: true\n"))
    (tmp_path / NAME).write_bytes(SDIST)
    fetched = fetch_sdist(NAME, base=tmp_path, fs_args=args)
    assert (fetched.location, fetched.data) == (NAME, SDIST)
    with pytest.raises(UsageError, match="package index"):
        fetch_sdist("mypkg==0.2", base=tmp_path, fs_args=args)


def test_invalid_package_spec_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not a local file, an fsspec URL or a package spec"):
        fetch_sdist("not a spec!!", base=tmp_path)


# -- errors through the CLI: one line, right exit code, project untouched -------------------------


def test_unknown_protocol_is_a_usage_error(project):
    before = snapshot_tree(project)
    result = run_micropkg(["pull", "--no-compile", "nosuch://bucket/x-0.1.tar.gz"], project)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: nosuch://bucket/x-0.1.tar.gz: unknown protocol 'nosuch' (not an fsspec filesystem)"
    assert snapshot_tree(project) == before


def test_missing_optional_filesystem_library_names_the_package(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if gcsfs were not installed
    monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, "gs", raising=False)
    before = snapshot_tree(project)
    result = run_micropkg(["pull", "--no-compile", "gs://bucket/x-0.1.tar.gz"], project)
    assert result.exit_code == 1
    assert "gs://bucket/x-0.1.tar.gz" in result.stderr and "install gcsfs" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot_tree(project) == before


# -- S3 through s3fs and moto's server ------------------------------------------------------------


@pytest.fixture
def s3(moto_s3, tmp_path, monkeypatch):
    """A fresh bucket, and an fs-args file whose key and secret come from the environment."""
    for name, value in {
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
        "TEST_S3_KEY": "AKIAMICROPKGTEST", "TEST_S3_SECRET": "s3-secret-" + uuid.uuid4().hex,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"bucket-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem(
        "s3", key="AKIAMICROPKGTEST", secret="x", client_kwargs={"endpoint_url": moto_s3.endpoint},
        skip_instance_cache=True,
    )
    fs.mkdir(bucket)
    text = (
        "key: ${TEST_S3_KEY}\nsecret: ${TEST_S3_SECRET}\n"
        f"client_kwargs:\n  endpoint_url: {moto_s3.endpoint}\n"
    )
    return {"bucket": bucket, "fs": fs, "yaml": text, "secret": os.environ["TEST_S3_SECRET"], "server": moto_s3}


@pytest.fixture
def producer(tmp_path):
    return kedro_project(tmp_path / "producer", extra={
        "src/spaceflights/pipelines/cleaning/__init__.py": "",
        "src/spaceflights/pipelines/cleaning/nodes.py": "def clean(x):\n    return x\n",
    })


def test_package_to_s3_then_pull_back(s3, producer, project, tmp_path):
    args = write_yaml(tmp_path / "s3.yml", s3["yaml"])
    destination = f"s3://{s3['bucket']}/micropkgs/"
    result = package(producer, "pipelines.cleaning", destination=destination, fs_args=str(args))
    url = f"s3://{s3['bucket']}/micropkgs/cleaning-0.1.tar.gz"
    assert result.path == url
    assert s3["fs"].ls(f"{s3['bucket']}/micropkgs/", detail=False) == [f"{s3['bucket']}/micropkgs/cleaning-0.1.tar.gz"]
    assert sha256_bytes(s3["fs"].cat_file(url)) == result.sha256
    assert not (producer / "dist").exists()
    pulled = pull(project, url, fs_args=str(args))
    assert pulled.module == "cleaning" and pulled.sha256 == result.sha256
    assert (project / "src/spaceflights/cleaning/nodes.py").read_text() == "def clean(x):\n    return x\n"
    entry = read_lock(project / "micropkg.lock").entries["cleaning"]
    assert (entry.source, entry.sdist_sha256) == (url, result.sha256)


def test_package_all_and_pull_all_through_manifests_on_s3(s3, tmp_path):
    bucket = s3["bucket"]
    producer = kedro_project(tmp_path / "producer", extra={
        "src/spaceflights/pipelines/cleaning/__init__.py": "",
        "src/spaceflights/pipelines/cleaning/nodes.py": "def clean(x):\n    return x\n",
        "conf/s3.yml": s3["yaml"],
    }, pyproject_extra=(
        "\n[tool.kedro.micropkg.package]\n"
        f'"pipelines.cleaning" = {{destination = "s3://{bucket}/micropkgs/", fs-args = "conf/s3.yml"}}\n'
    ))
    url = f"s3://{bucket}/micropkgs/cleaning-0.1.tar.gz"
    consumer = kedro_project(tmp_path / "consumer", extra={"conf/s3.yml": s3["yaml"]}, pyproject_extra=(
        "\n[tool.kedro.micropkg.pull]\n"
        f'"{url}" = {{destination = "shared", fs-args = "conf/s3.yml"}}\n'
    ))
    packaged = run_micropkg(["package", "--all"], producer)
    assert packaged.exit_code == 0, packaged.stderr
    assert s3["fs"].ls(f"{bucket}/micropkgs/", detail=False) == [f"{bucket}/micropkgs/cleaning-0.1.tar.gz"]
    # Run from elsewhere: the manifest's fs-args path is relative to the project root.
    pulled = run_micropkg(["pull", "--no-compile", "--all", "--project", str(consumer)], tmp_path)
    assert pulled.exit_code == 0, pulled.stderr
    assert (consumer / "src/spaceflights/shared/cleaning/nodes.py").is_file()
    assert read_lock(consumer / "micropkg.lock").entries["shared.cleaning"].source == url
    for output in (packaged.stdout, packaged.stderr, pulled.stdout, pulled.stderr, lock_text(consumer)):
        assert s3["secret"] not in output


def test_s3_repull_downloads_once_then_is_a_no_op(s3, project, tmp_path):
    args = str(write_yaml(tmp_path / "s3.yml", s3["yaml"]))
    key = f"/{s3['bucket']}/{NAME}"
    s3["fs"].pipe_file(f"s3:/{key}", SDIST)
    first = run_micropkg(["pull", "--no-compile", f"s3:/{key}", "--fs-args", args], project)
    assert first.exit_code == 0, first.stderr
    before = snapshot_tree(project)
    second = run_micropkg(["pull", "--no-compile", f"s3:/{key}", "--fs-args", args], project)
    assert second.exit_code == 0, second.stderr
    assert s3["server"].count("GET", key) == 1
    assert snapshot_tree(project) == before


@pytest.mark.parametrize("what", ["missing key", "missing bucket"])
def test_s3_missing_key_or_bucket_is_one_clear_line(what, s3, project, tmp_path):
    args = str(write_yaml(tmp_path / "s3.yml", s3["yaml"]))
    bucket = s3["bucket"] if what == "missing key" else f"nobucket-{uuid.uuid4().hex[:8]}"
    url = f"s3://{bucket}/micropkgs/{NAME}"
    expected = f"error: {url}: not found" if what == "missing key" else f"error: {url}: bucket '{bucket}' does not exist"
    before = snapshot_tree(project)
    result = run_micropkg(["pull", "--no-compile", url, "--fs-args", args], project)
    assert (result.exit_code, result.stderr.strip()) == (1, expected)
    assert s3["secret"] not in result.stdout + result.stderr
    assert snapshot_tree(project) == before


def test_package_to_a_missing_bucket_fails_clearly_and_leaves_nothing(s3, producer, tmp_path):
    args = str(write_yaml(tmp_path / "s3.yml", s3["yaml"]))
    bucket = f"nobucket-{uuid.uuid4().hex[:8]}"
    result = run_micropkg(
        ["package", "pipelines.cleaning", "--destination", f"s3://{bucket}/m/", "--fs-args", args], producer
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: s3://{bucket}/m/cleaning-0.1.tar.gz: bucket '{bucket}' does not exist"
    assert not s3["fs"].exists(bucket)


# -- HTTPS with a token header --------------------------------------------------------------------


@pytest.fixture
def served(auth_http, monkeypatch, tmp_path):
    """An sdist on the auth server, and an fs-args file that reads the token from the environment."""
    path = f"/{uuid.uuid4().hex[:8]}/{NAME}"
    url = auth_http.publish(path, SDIST)
    monkeypatch.setenv("MICROPKG_TEST_TOKEN", auth_http.token)
    args = write_yaml(tmp_path / "auth.yml", "headers:\n  Authorization: token ${MICROPKG_TEST_TOKEN}\n")
    return {"url": url, "path": path, "args": str(args), "server": auth_http}


def test_https_pull_with_token_from_env_never_shows_the_token(served, project, _own_cache):
    token = served["server"].token
    runs = [
        run_micropkg(["pull", "--no-compile", served["url"], "--fs-args", served["args"]], project),
        run_micropkg(["pull", "--no-compile", served["url"], "--fs-args", served["args"], "--json"], project),
        run_micropkg(["status", "--json"], project),
    ]
    assert [run.exit_code for run in runs] == [0, 0, 0], runs[0].stderr
    entry = read_lock(project / "micropkg.lock").entries["data_cleaning"]
    assert (entry.source, entry.sdist_sha256) == (served["url"], sha256_bytes(SDIST))
    for run in runs:
        assert token not in run.stdout and token not in run.stderr
    assert token not in everything_in(project)
    assert (_own_cache / "index").is_dir() and token not in everything_in(_own_cache)


@pytest.mark.parametrize("fs_args, expected", [
    (None, "access denied: the server wants credentials (HTTP 401)"),
    ("headers:\n  Authorization: token wrong-token-value-123\n", "access denied (HTTP 403)"),
])
def test_https_without_the_right_token_fails_clearly(fs_args, expected, served, project, tmp_path):
    argv = ["pull", "--no-compile", served["url"]]
    if fs_args:
        argv += ["--fs-args", str(write_yaml(tmp_path / "wrong.yml", fs_args))]
    before = snapshot_tree(project)
    result = run_micropkg(argv, project)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {served['url']}: {expected}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "wrong-token-value-123" not in result.stdout + result.stderr
    assert snapshot_tree(project) == before


def test_https_repull_downloads_once_and_no_cache_downloads_again(served, project):
    argv = ["pull", "--no-compile", served["url"], "--fs-args", served["args"]]
    assert run_micropkg(argv, project).exit_code == 0
    before = snapshot_tree(project)
    again = run_micropkg(argv, project)
    assert again.exit_code == 0 and served["server"].get_count(served["path"]) == 1
    assert snapshot_tree(project) == before
    fresh = run_micropkg([*argv, "--no-cache"], project)
    assert fresh.exit_code == 0 and served["server"].get_count(served["path"]) == 2
    assert snapshot_tree(project) == before


def test_https_unset_token_variable_is_a_usage_error_naming_it(served, project, monkeypatch):
    monkeypatch.delenv("MICROPKG_TEST_TOKEN")
    before = snapshot_tree(project)
    result = run_micropkg(["pull", "--no-compile", served["url"], "--fs-args", served["args"]], project)
    assert result.exit_code == 2
    assert "environment variable MICROPKG_TEST_TOKEN is not set" in result.stderr
    assert snapshot_tree(project) == before


def test_https_missing_file_and_url_credentials_are_redacted(served, tmp_path):
    base = served["server"].base
    with pytest.raises(MicropkgError) as caught:
        fetch_sdist(f"{base}/nothing/here.tar.gz", fs_args=served["args"])
    assert str(caught.value) == f"{base}/nothing/here.tar.gz: not found"
    with_userinfo = base.replace("http://", "http://alice:hunter2pass@") + "/x.tar.gz"
    with pytest.raises(MicropkgError) as caught:
        fetch_sdist(with_userinfo)
    assert "hunter2pass" not in str(caught.value) and "http://***@127.0.0.1" in str(caught.value)


@pytest.mark.parametrize("headers", [
    "headers:\n  Authorization: token ${MICROPKG_TEST_TOKEN}\n",
    "client_kwargs:\n  headers:\n    authorization: token ${MICROPKG_TEST_TOKEN}\n",
])
def test_url_credentials_and_an_authorization_header_cannot_be_combined(headers, served, project, tmp_path):
    """The HTTP client refuses to send both; that is said before any request, not read as "not found"."""
    args = write_yaml(tmp_path / "both.yml", headers)
    url = served["url"].replace("http://", "http://alice:hunter2pass@")
    before = snapshot_tree(project)
    result = run_micropkg(["pull", "--no-compile", url, "--fs-args", str(args)], project)
    shown = served["url"].replace("http://", "http://***@")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {shown}: credentials in the URL and an Authorization header in fs-args file {args} cannot be "
        "combined; give one or the other\n"
    )
    assert "hunter2pass" not in result.stderr and served["server"].token not in result.stderr
    assert served["server"].get_count(served["path"]) == 0
    assert snapshot_tree(project) == before


@pytest.mark.parametrize("use_cache", [True, False])
def test_https_waits_are_bounded(use_cache, served, tmp_path):
    url = served["server"].publish("/slow/" + NAME, SDIST)
    args = write_yaml(tmp_path / "slow.yml", "headers:\n  Authorization: token ${MICROPKG_TEST_TOKEN}\n"
                      "client_kwargs:\n  timeout: 0.3\n")
    started = time.monotonic()
    with pytest.raises(MicropkgError, match="timed out"):
        fetch_sdist(url, fs_args=str(args), use_cache=use_cache)
    # Time is the behaviour under test here: the 0.3 s timeout fires (the server would answer
    # after SLOW_SECONDS), and retries do not add up to an unbounded wait. The bound is 100
    # times the timeout, so a loaded CI machine cannot miss it.
    assert time.monotonic() - started < 30


# -- package index (pypiserver, read through its simple API) -------------------------------------


def test_pull_by_name_and_version_from_the_index(pip_env, project):
    pip_env.add("mypkg-0.2.tar.gz", valid_sdist("mypkg", "0.2"))
    result = run_micropkg(["pull", "--no-compile", "mypkg==0.2"], project)
    assert result.exit_code == 0, result.stderr
    assert (project / "src/spaceflights/mypkg/nodes.py").is_file()
    entry = read_lock(project / "micropkg.lock").entries["mypkg"]
    assert (entry.source, entry.sdist_sha256) == ("mypkg==0.2", sha256_bytes(valid_sdist("mypkg", "0.2")))


@pytest.mark.parametrize("spec, expected", [
    ("nosuchpkg-micropkg", "no distribution named nosuchpkg-micropkg on the index"),
    ("mypkg==9.9", "no sdist of mypkg matching the spec on the index (versions there: 0.2)"),
])
def test_index_misses_fail_clearly(spec, expected, pip_env, project):
    pip_env.add("mypkg-0.2.tar.gz", valid_sdist("mypkg", "0.2"))
    before = snapshot_tree(project)
    result = run_micropkg(["pull", "--no-compile", spec], project)
    assert (result.exit_code, result.stderr.strip()) == (1, f"error: {spec}: {expected}")
    assert snapshot_tree(project) == before


# -- the lock and output never hold URL credentials ----------------------------------------------


def test_url_credentials_never_reach_the_lock_or_output(project, memory_root):
    url = memory_root.replace("memory://", "memory://alice:pw-s3cret-42@") + "/" + NAME
    fsspec.filesystem("memory").pipe_file(url, SDIST)
    result = run_micropkg(["pull", "--no-compile", url], project)
    assert result.exit_code == 0, result.stderr
    assert "pw-s3cret-42" not in result.stdout + result.stderr + lock_text(project)
    assert read_lock(project / "micropkg.lock").entries["data_cleaning"].source == redact_url(url)


# -- command-line overrides and where the lock records index specs -------------------------------


def test_package_all_cli_destination_and_fs_args_override_the_manifest(s3, producer, tmp_path):
    args = str(write_yaml(tmp_path / "s3.yml", s3["yaml"]))
    with (producer / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.kedro.micropkg.package]\n"pipelines.cleaning" = {}\n')
    result = run_micropkg(
        ["package", "--all", "--destination", f"s3://{s3['bucket']}/micropkgs/", "--fs-args", args], producer
    )
    assert result.exit_code == 0, result.stderr
    assert s3["fs"].exists(f"{s3['bucket']}/micropkgs/cleaning-0.1.tar.gz")


def test_index_spec_is_recorded_as_given_from_any_folder(pip_env, project, tmp_path):
    pip_env.add("mypkg-0.2.tar.gz", valid_sdist("mypkg", "0.2"))
    result = run_micropkg(["pull", "--no-compile", "mypkg==0.2", "--project", str(project)], tmp_path)
    assert result.exit_code == 0, result.stderr
    assert read_lock(project / "micropkg.lock").entries["mypkg"].source == "mypkg==0.2"


def _sdist_with_setup_py(marker: Path, version: str) -> bytes:
    """A well-formed sdist that also carries a setup.py which, if anything ran it, would leave a file."""
    from tests.hostile_archives import archive, sdist_files

    files = dict(sdist_files("mypkg", version, ()))
    files["setup.py"] = f"open({str(marker)!r}, 'w').write('executed')\nfrom setuptools import setup\nsetup()\n"
    return archive(files, f"mypkg-{version}")


def test_pulling_from_the_index_never_runs_the_sdist(pip_env, project, tmp_path):
    # pip download would prepare metadata, running setup.py: we read the index ourselves instead.
    marker = tmp_path / "setup-py-was-run"
    pip_env.add("mypkg-0.4.tar.gz", _sdist_with_setup_py(marker, "0.4"))
    result = run_micropkg(["pull", "--no-compile", "mypkg==0.4"], project)
    assert result.exit_code == 0, result.stderr
    assert not marker.exists()
    assert (project / "src/spaceflights/mypkg/__init__.py").is_file()


def test_index_picks_the_newest_matching_sdist(pip_env, project):
    from micropkg_tasks.ops.sources.index import fetch_from_index

    for version in ("0.5", "0.7", "1.0rc1"):
        pip_env.add(f"mypkg-{version}.tar.gz", valid_sdist("mypkg", version))
    assert fetch_from_index("mypkg>=0.5")[0] == "mypkg-0.7.tar.gz"  # pre-releases only when asked for
    assert fetch_from_index("mypkg<0.7")[0] == "mypkg-0.5.tar.gz"
    assert fetch_from_index("mypkg==1.0rc1")[0] == "mypkg-1.0rc1.tar.gz"
    assert fetch_from_index("MyPkg>=0.5")[0] == "mypkg-0.7.tar.gz"  # names compare canonically


def test_no_index_configured_is_a_clear_usage_error(monkeypatch, project):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    result = run_micropkg(["pull", "--no-compile", "mypkg==0.2"], project)
    assert result.exit_code == 2
    assert "pip is configured with no-index" in result.stderr


def test_unreadable_pip_config_stops_a_pull_by_name_without_any_request(monkeypatch, project, tmp_path, auth_http):
    # If pip's own configuration cannot be read, the index the user configured is unknown:
    # falling back to the default (public) index would leak a private package name.
    from micropkg_tasks.ops.sources import index

    broken = tmp_path / "pip.conf"
    broken.write_text("this is not ini\n[global\nindex-url = https://alice:s3cret-pw@private.example/simple\n")
    for name in [name for name in os.environ if name.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(broken))
    # Were the default index used anyway, the request would land on this local server.
    monkeypatch.setattr(index, "DEFAULT_INDEX", auth_http.base + "/simple/")
    requests_before = auth_http.requests
    before = snapshot_tree(project)
    result = run_micropkg(["pull", "--no-compile", "mypkg==0.2"], project)
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert message.startswith("error: could not read pip's configuration to find the package index")
    assert str(broken) in message and "PIP_INDEX_URL" in message
    assert len(message.splitlines()) == 1 and "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert auth_http.requests == requests_before
    assert snapshot_tree(project) == before


def test_unreachable_index_is_one_clear_line(monkeypatch, project):
    from tests.servers import free_port

    monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://alice:s3cret-pw@127.0.0.1:{free_port()}/simple/")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    result = run_micropkg(["pull", "--no-compile", "mypkg==0.2"], project)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: could not reach the package index http://***@127.0.0.1:")
    assert "s3cret-pw" not in result.stderr


def test_a_local_folder_index_works_like_pip_s(monkeypatch, project, tmp_path):
    # pip accepts a file:// index whose project pages are plain folders of files.
    index = tmp_path / "simple"
    (index / "mypkg").mkdir(parents=True)
    (index / "mypkg" / "mypkg-0.3.tar.gz").write_bytes(valid_sdist("mypkg", "0.3"))
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", index.as_uri())
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    result = run_micropkg(["pull", "--no-compile", "mypkg>=0.3"], project)
    assert result.exit_code == 0, result.stderr
    assert read_lock(project / "micropkg.lock").entries["mypkg"].version == "0.3"
