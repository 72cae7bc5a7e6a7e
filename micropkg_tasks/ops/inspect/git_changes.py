"""What git says about the working tree: where the repository starts and what changed since a ref.

git is run as a subprocess with a bounded wait; nothing is written.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from micropkg_tasks.core.errors import MicropkgError, UsageError

GIT_TIMEOUT = 60  # seconds for one git command


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        return subprocess.run(
            [git, "-C", str(folder), *args], capture_output=True, text=True, timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def repository_root(folder: Path) -> Path | None:
    """The top folder of the git work tree holding ``folder``, or None outside one (or without git)."""
    done = _git(folder, "rev-parse", "--show-toplevel")
    if done is None or done.returncode != 0 or not done.stdout.strip():
        return None
    return Path(done.stdout.strip()).resolve()


def changed_since(folder: Path, ref: str) -> tuple[Path, ...]:
    """Every file that differs between ``ref`` and the working tree, as absolute paths.

    The comparison starts at the merge base of ``ref`` and ``HEAD``, as a pull request's
    diff does, so commits made on ``ref`` since the branch left it are not counted.
    Uncommitted and untracked (not ignored) files count as changed. Both sides of a
    rename are listed.
    """
    if ref.startswith("-") or not ref.strip():
        raise UsageError(f"--since takes a git ref such as HEAD~1 or origin/main, not {ref!r}")
    top = repository_root(folder)
    if top is None:
        raise UsageError(f"--since needs a git repository, and {folder} is not in one (or git is not installed)")
    resolved = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if resolved is None or resolved.returncode != 0:
        raise UsageError(
            f"--since {ref}: no such commit in {top}; in CI, fetch the history first (actions/checkout with "
            "fetch-depth: 0)"
        )
    base = _git(top, "merge-base", resolved.stdout.strip(), "HEAD")
    start = base.stdout.strip() if base is not None and base.returncode == 0 and base.stdout.strip() else resolved.stdout.strip()
    names: set[str] = set()
    for args in (("diff", "--name-only", "--no-renames", "-z", start, "--"),
                 ("ls-files", "--others", "--exclude-standard", "-z")):
        done = _git(top, *args)
        if done is None or done.returncode != 0:
            raise MicropkgError(f"git {args[0]} failed in {top}: {(done.stderr.strip() if done else 'git did not run')}")
        names.update(name for name in done.stdout.split("\0") if name)
    return tuple(sorted(top / name for name in names))
