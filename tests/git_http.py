"""A real git server over HTTP on 127.0.0.1: git's own ``git http-backend`` (CGI) behind a
small threaded ``http.server``, serving the repositories of one folder only to HTTP basic
auth with one user and token (401 without it, so git asks its credential helpers).

Started and stopped by the ``git_http`` fixture, with a bounded wait for start-up and for
each CGI call. :meth:`GitHttp.stall` makes it wait before answering (at most
``MAX_STALL`` seconds, and no longer than the test: the wait ends when the server stops).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from tests.servers import free_port, wait_until_up

USER = "builder"
TOKEN = "ghp_s3cretT0kenValue1234"
CGI_TIMEOUT = 60.0  # seconds one git http-backend call may take
MAX_STALL = 30.0  # seconds a stalled request may wait


def _http_backend() -> str | None:
    found = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, timeout=30)
    path = Path(found.stdout.strip()) / "git-http-backend"
    return str(path) if found.returncode == 0 and path.is_file() else None


class _Handler(BaseHTTPRequestHandler):
    server_version = "git-http-test"
    root: Path
    backend: str

    def log_message(self, *args: object) -> None:  # quiet: the test output stays readable
        pass

    def _authorised(self) -> bool:
        expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()
        return self.headers.get("Authorization") == expected

    def _serve(self) -> None:
        server = self.server
        if server.stall_seconds:  # type: ignore[attr-defined]
            server.stopping.wait(server.stall_seconds)  # type: ignore[attr-defined]
        if not self._authorised():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": USER, "REMOTE_ADDR": "127.0.0.1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),  # git gzips larger requests
        }
        done = subprocess.run([self.backend], input=body, capture_output=True, env=env, timeout=CGI_TIMEOUT)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve


@dataclass
class GitHttp:
    root: Path  # bare repositories served as http://127.0.0.1:<port>/<name>
    port: int
    server: ThreadingHTTPServer

    def stall(self, seconds: float) -> None:
        """Wait ``seconds`` (bounded by ``MAX_STALL``) before answering each request."""
        self.server.stall_seconds = min(seconds, MAX_STALL)  # type: ignore[attr-defined]

    def url(self, name: str, *, token: bool = True) -> str:
        credentials = f"{USER}:{TOKEN}@" if token else ""
        return f"http://{credentials}127.0.0.1:{self.port}/{name}"

    def publish(self, repo: Path, name: str) -> None:
        """Serve a bare copy of ``repo`` (every branch and tag) as ``name``."""
        target = self.root / name
        if target.exists():
            shutil.rmtree(target)
        subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(target)], check=True, timeout=60,
                       env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull})
        for key in ("uploadpack.allowFilter", "uploadpack.allowAnySHA1InWant"):  # as hosts that serve partial clones
            subprocess.run(["git", "-C", str(target), "config", key, "true"], check=True, timeout=60)


@pytest.fixture
def git_http(tmp_path: Path) -> Iterator[GitHttp]:
    backend = _http_backend()
    if backend is None:
        pytest.skip("git http-backend is not installed")
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"root": root, "backend": backend})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    server.stall_seconds = 0.0  # type: ignore[attr-defined]
    server.stopping = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_until_up(f"http://127.0.0.1:{server.server_address[1]}/")
        yield GitHttp(root, server.server_address[1], server)
    finally:
        server.stopping.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
