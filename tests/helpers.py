"""Small helpers that keep test fixtures readable."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import textwrap
from pathlib import Path
from typing import Mapping, Union

FileTree = Mapping[str, Union[str, bytes]]


def build_file_tree(root: Path, spec: FileTree, *, dedent: bool = True) -> Path:
    """Write ``{relative path: content}`` under ``root``.

    Text content is dedented so fixtures can be written as indented
    triple-quoted strings; bytes are written as they are.
    """
    root = Path(root)
    for relative, content in spec.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            text = textwrap.dedent(content) if dedent else content
            path.write_text(text.lstrip("\n") if dedent else text, encoding="utf-8")
    return root


def is_lock_file(path: Path) -> bool:
    """The project lock's own file: ``.micropkg/lock``, always empty; or the ``.gitignore``
    (``*``) that the state folder is created with."""
    if path.name == ".gitignore" and path.parent.name == ".micropkg":
        assert path.read_text(encoding="utf-8").splitlines()[-1] == "*", f"{path} does not ignore everything"
        return True
    if path.name != "lock" or path.parent.name != ".micropkg":
        return False
    assert path.is_file() and not path.is_symlink() and path.stat().st_size == 0, f"{path} is not an empty lock file"
    return True


def snapshot_tree(root: Path) -> dict[str, tuple[str, int, int]]:
    """Record every file and folder below ``root`` with its content hash, mode and mtime.

    Two equal snapshots mean the tree is byte-for-byte unchanged and nothing
    was rewritten, not even with the same bytes. The one exception is the
    empty lock file ``.micropkg/lock`` (and its folder): taking the project's
    lock creates it with the folder's own ``.gitignore``, neither is ever part of the
    project's content, and the lock is checked to be empty. Anything else in
    ``.micropkg/``, a journal above all, is recorded.
    """
    root = Path(root)
    snapshot: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames:
            path = Path(dirpath, name)
            if name != ".micropkg":
                snapshot[path.relative_to(root).as_posix() + "/"] = ("dir", 0, 0)
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if is_lock_file(path):
                continue
            stat = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "other"
            snapshot[path.relative_to(root).as_posix()] = (digest, stat.st_mode, stat.st_mtime_ns)
    return snapshot


def read_tree(root: Path) -> dict[str, bytes]:
    """Map each file's relative posix path to its bytes (the empty lock file aside, as above)."""
    root = Path(root)
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not is_lock_file(path)
    }


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` as a fixed author, with no user or system configuration; its output."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull}
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def commit_all(repo: Path, message: str) -> str:
    """Commit every change in ``repo``; the new commit's id."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def as_foreground() -> None:
    """``preexec_fn`` for a child that a test stops with SIGINT, as Ctrl-C would stop a command in
    the foreground: a suite started in the background by a shell runs with SIGINT ignored, and
    its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
