"""One check for every path the tool reads from, writes to or deletes in a project.

A project folder can hold symlinks: ``src/<pkg>/pipelines`` linked to a folder
elsewhere, ``conf/base`` or ``tests/`` shared with another checkout, a file
replaced by a link to ``/etc/passwd``. Writing "into the project" through such
a link writes outside it, and reading through it shows another file's content
in a diff. So before touching a path its parent folders are resolved, and a
symlink in its own place is followed, and the result must stay inside the
project's real root.
"""

from __future__ import annotations

import os
from pathlib import Path

from micropkg_tasks.core.errors import ProjectError


def _within(real_root: str, real: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def real_location(path: Path) -> str:
    """Where ``path`` really is: its folders resolved, and itself too if it is a symlink."""
    parent = os.path.realpath(path.parent)
    candidate = os.path.join(parent, path.name)
    return os.path.realpath(candidate) if os.path.islink(candidate) else candidate


def guard(root: Path, path: Path, action: str = "write") -> None:
    """Refuse, in one sentence, to ``action`` ``path`` unless it really lies inside ``root``."""
    real_root = os.path.realpath(root)
    if not os.path.isabs(path) or ".." in Path(path).parts:
        raise ProjectError(f"refusing to {action} {path}: it is not a plain path inside the project {root}")
    real = real_location(Path(path))
    if not _within(real_root, real) or real == real_root:
        raise ProjectError(
            f"refusing to {action} {path}: it resolves to {real}, outside the project {root} "
            "(a symlinked folder or file points out of it)"
        )
