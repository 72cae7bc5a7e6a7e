"""Write a file whole or not at all: a temporary sibling, then a rename over the target.

Readers (and a run killed half-way) see the old file or the new one, never a part. The
one place that writes a file this way; a caller that only moves an already-written file
(the transaction's moves aside and back) renames it itself.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def write_atomically(
    path: Path,
    data: bytes,
    *,
    temp: Path | None = None,
    mode: int | None = None,
    durable: bool = False,
    move: Callable[[Any, Any], Any] | None = None,
) -> None:
    """Write ``data`` to a temporary sibling of ``path``, then rename it over ``path``.

    ``temp`` names the temporary (default: a fresh ``.<name>.*.tmp`` next to ``path``, readable
    by its owner only). ``mode`` sets the new file's permissions before it takes ``path``'s place.
    ``durable`` syncs the data to disk before the rename (syncing the folder is the caller's).
    ``move`` renames (default ``os.replace``). The folder must exist; on any failure the
    temporary is removed and the error passes through.
    """
    written = temp
    try:
        if written is None:
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            written = Path(name)
            stream = os.fdopen(handle, "wb")
        else:
            stream = open(written, "wb")
        with stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(written, mode)
        (move or os.replace)(written, path)
    except BaseException:
        if written is not None:
            with contextlib.suppress(OSError):
                os.unlink(written)
        raise
