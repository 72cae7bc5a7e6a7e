"""Where packaged sdists are written: a local folder, or any fsspec URL.

Writes are atomic: the bytes go to a temporary name first and are moved into
place, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.manifest import is_url


def write_artifact(destination: str, filename: str, data: bytes, *, fs_args: str | None = None) -> str:
    """Write ``data`` as ``destination/filename`` and return where it went."""
    if is_url(destination):
        from micropkg_tasks.ops.remote import upload_atomically

        return upload_atomically(destination, filename, data, fs_args=fs_args)
    folder = Path(destination)
    target = folder / filename
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temp, 0o644)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
    except OSError as exc:
        raise MicropkgError(f"could not write {target}: {exc.strerror or exc}") from None
    return str(target)
