"""Real servers for the remote-source tests, each on 127.0.0.1 with a free port.

- ``moto_s3``: moto's S3 server (``ThreadedMotoServer``) in this process; s3fs
  talks to it over real HTTP. Its request lines are recorded so tests can count GETs.
- ``auth_http``: a small threaded HTTP server that serves files only to
  ``Authorization: token <token>`` (401 without the header, 403 with a wrong
  one), answers HEAD with ETag/Last-Modified/Content-Length, counts GETs per
  path, and has a ``/slow/`` prefix that stalls, for timeout tests.
- ``pypi_server``: ``pypiserver`` as a subprocess serving a folder (no
  fallback to pypi.org); ``pip_env`` points pip at it and nothing else.

Every start-up wait is bounded; servers are session-scoped and stopped at the end.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

START_TIMEOUT = 20.0  # seconds a server may take to answer its first request
SLOW_SECONDS = 3.0  # how long /slow/ paths stall before answering


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = START_TIMEOUT, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers (any HTTP status), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server process exited with code {process.returncode} before answering {url}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server at {url} did not answer within {timeout:g} s")
        time.sleep(0.05)


# -- S3 (moto) ------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _RequestLog(logging.Handler):
    """Keeps werkzeug's request lines ("GET /bucket/key HTTP/1.1") instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        line = _ANSI.sub("", str(args[0])) if args else record.getMessage()
        with self._lock:
            self.lines.append(line)


@dataclass
class MotoS3:
    endpoint: str
    log: _RequestLog

    def count(self, method: str, path: str) -> int:
        """Requests with ``method`` for exactly ``path`` (``/bucket/key``), query ignored."""
        pattern = re.compile(rf"^{method} {re.escape(path)}(\?\S*)? HTTP")
        with self.log._lock:
            return sum(1 for line in self.log.lines if pattern.match(line))


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    from moto.server import ThreadedMotoServer

    werkzeug = logging.getLogger("werkzeug")
    log = _RequestLog()
    previous = (werkzeug.level, werkzeug.propagate)
    werkzeug.addHandler(log)  # werkzeug only adds its own stderr handler when none exists
    werkzeug.setLevel(logging.INFO)
    werkzeug.propagate = False
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        wait_until_up(f"http://127.0.0.1:{port}/")
        yield MotoS3(f"http://127.0.0.1:{port}", log)
    finally:
        server.stop()
        werkzeug.removeHandler(log)
        werkzeug.setLevel(previous[0])
        werkzeug.propagate = previous[1]


# -- HTTPS-style auth server ----------------------------------------------------------------------


@dataclass
class AuthHttpServer:
    base: str
    token: str
    files: dict[str, bytes] = field(default_factory=dict)
    gets: dict[str, int] = field(default_factory=dict)
    requests: int = 0  # every request received, answered or refused
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path`` (``/x/y.tar.gz``) and return its URL."""
        with self.lock:
            self.files[path] = data
        return self.base + path

    def get_count(self, path: str) -> int:
        with self.lock:
            return self.gets.get(path, 0)


def _auth_handler(state: AuthHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            with state.lock:
                state.requests += 1
            path = self.path.split("?", 1)[0]
            if path.startswith("/slow/"):
                time.sleep(SLOW_SECONDS)
            given = self.headers.get("Authorization")
            if given is None:
                return self._reply(401, b"authentication required\n", {"WWW-Authenticate": "token"})
            if given != f"token {state.token}":
                return self._reply(403, b"forbidden\n")
            with state.lock:
                data = state.files.get(path)
                if data is not None and self.command == "GET":
                    state.gets[path] = state.gets.get(path, 0) + 1
            if data is None:
                return self._reply(404, b"not found\n")
            import hashlib

            headers = {
                "Content-Type": "application/gzip",
                "ETag": '"' + hashlib.sha256(data).hexdigest()[:32] + '"',
                "Last-Modified": formatdate(0, usegmt=True),
            }
            return self._reply(200, data, headers)

        do_GET = _serve
        do_HEAD = _serve

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (a timeout test) makes the late reply fail; printing that
        # to stderr would land in the output of whatever CLI run is captured at the time.
        pass


@pytest.fixture(scope="session")
def auth_http() -> Iterator[AuthHttpServer]:
    import secrets

    state = AuthHttpServer(base="", token="tok_" + secrets.token_hex(16))
    server = _QuietServer(("127.0.0.1", 0), _auth_handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        wait_until_up(state.base + "/")
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- package index (pypiserver) -------------------------------------------------------------------


@dataclass
class PypiServer:
    index_url: str
    packages: Path

    def add(self, filename: str, data: bytes) -> None:
        (self.packages / filename).write_bytes(data)


@pytest.fixture(scope="session")
def pypi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PypiServer]:
    root = tmp_path_factory.mktemp("pypiserver")
    packages = root / "packages"
    packages.mkdir()
    port = free_port()
    command = [
        sys.executable, "-m", "pypiserver", "run", "-p", str(port), "-i", "127.0.0.1",
        "-a", ".", "-P", ".", "--disable-fallback", "--backend", "simple-dir", "--server", "wsgiref",
        str(packages),
    ]
    with open(root / "server.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", process=process)
        yield PypiServer(f"http://127.0.0.1:{port}/simple/", packages)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def pip_env(monkeypatch: pytest.MonkeyPatch, pypi_server: PypiServer, tmp_path: Path) -> PypiServer:
    """pip sees only the test index: every PIP_* variable of this machine is cleared and its
    config files are replaced by an empty one (as pip-tools' own tests do)."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", pypi_server.index_url)
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return pypi_server


# -- a private package index behind HTTP basic auth -------------------------------------------------


@dataclass
class BasicAuthIndex:
    """A PEP 503 index at ``<base>/simple/`` whose pages *and* files need basic auth, like a
    private index (devpi, Artifactory, a CodeArtifact proxy). ``json_pages`` makes project pages
    answer as PEP 691 JSON with ``json_body`` as the body, so a malformed one can be served.
    ``/huge/<n>`` answers with ``n`` bytes of zeros and a matching Content-Length, written in
    chunks; ``/undeclared/<n>`` the same without Content-Length; ``sent`` counts the bytes
    actually written for each."""

    base: str
    user: str
    password: str
    files: dict[str, bytes] = field(default_factory=dict)
    json_body: bytes | None = None
    redirect_host: str | None = None  # set: file links answer 302 to /foreign/ on this host name
    foreign_auth: list[str | None] = field(default_factory=list)  # Authorization seen on /foreign/
    sent: dict[str, int] = field(default_factory=dict)
    unauthorised: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def index_url(self) -> str:
        """The index URL with the credentials in it, as users put it in PIP_INDEX_URL."""
        host = self.base.partition("://")[2]
        return f"http://{self.user}:{self.password}@{host}/simple/"

    def add(self, filename: str, data: bytes) -> None:
        with self.lock:
            self.files[filename] = data


def _basic_index_handler(state: BasicAuthIndex) -> type[BaseHTTPRequestHandler]:
    import base64
    import hashlib

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"", content_type: str = "text/html") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _huge(self, size: int, *, declared: bool = True) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            if declared:
                self.send_header("Content-Length", str(size))
            else:  # the body ends when the connection closes: its size is unknown beforehand
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command == "HEAD":
                return
            chunk = b"\0" * (1024 * 1024)
            written = 0
            try:
                while written < size:
                    piece = chunk[: min(len(chunk), size - written)]
                    self.wfile.write(piece)
                    written += len(piece)
                    with state.lock:
                        state.sent[self.path] = written
            except OSError:  # the client stopped reading: that is what the test wants
                pass

        def _serve(self) -> None:
            path = self.path.split("?", 1)[0]
            if path.startswith("/huge/"):
                return self._huge(int(path.rsplit("/", 1)[1]))
            if path.startswith("/undeclared/"):
                return self._huge(int(path.rsplit("/", 1)[1]), declared=False)
            if path.startswith("/foreign/"):  # another origin: serves anyone, records what it was sent
                with state.lock:
                    state.foreign_auth.append(self.headers.get("Authorization"))
                    data = state.files.get(path[len("/foreign/"):])
                return self._reply(200, data, "application/gzip") if data is not None else self._reply(404)
            token = base64.b64encode(f"{state.user}:{state.password}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {token}":
                with state.lock:
                    state.unauthorised.append(path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with state.lock:
                files = dict(state.files)
                json_body = state.json_body
            if path.startswith("/simple/"):
                name = path[len("/simple/"):].strip("/")
                if json_body is not None:
                    return self._reply(200, json_body, "application/vnd.pypi.simple.v1+json")
                links = "".join(
                    f'<a href="/packages/{filename}#sha256={hashlib.sha256(data).hexdigest()}">{filename}</a>'
                    for filename, data in sorted(files.items())
                    if filename.replace("-", "_").lower().startswith(name.replace("-", "_"))
                )
                return self._reply(200, f"<html><body>{links}</body></html>".encode())
            if path.startswith("/packages/") and path[len("/packages/"):] in files:
                if state.redirect_host:
                    port = self.server.server_address[1]
                    self.send_response(302)
                    self.send_header("Location", f"http://{state.redirect_host}:{port}/foreign/{path[10:]}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                return self._reply(200, files[path[len("/packages/"):]], "application/gzip")
            return self._reply(404, b"not found\n")

        do_GET = _serve
        do_HEAD = _serve

    return Handler


@pytest.fixture
def basic_auth_index() -> Iterator[BasicAuthIndex]:
    import secrets

    state = BasicAuthIndex(base="", user="ci-bot", password="pw_" + secrets.token_hex(12))
    server = _QuietServer(("127.0.0.1", 0), _basic_index_handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        wait_until_up(state.base + "/")
        state.unauthorised.clear()  # the start-up probe carried no credentials
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
