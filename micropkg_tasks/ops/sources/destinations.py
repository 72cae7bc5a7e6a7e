"""Where packaged sdists are written: a local folder, or any fsspec URL.

Writes are atomic: the bytes go to a temporary name first and are moved into
place, so a reader never sees half a file.
"""

from __future__ import annotations

from pathlib import Path

from micropkg_tasks.core.change.atomic import write_atomically
from micropkg_tasks.core.change.transaction import UNCHANGED
from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.project.manifest import is_url

CREATED, OVERWRITTEN = "created", "overwritten"  # or UNCHANGED: the same bytes were there


def write_artifact_once(
    destination: str, filename: str, data: bytes, *, fs_args: str | None = None
) -> tuple[str, str]:
    """Write ``data`` as ``destination/filename`` unless those exact bytes are already there.

    Returns where it went and what happened: ``created``, ``overwritten`` (the
    file there had other bytes) or ``unchanged`` (nothing was written).
    """
    if is_url(destination):
        from micropkg_tasks.core.fs_args import redact_url
        from micropkg_tasks.ops.sources.remote import holds_same_bytes

        same = holds_same_bytes(destination, filename, data, fs_args=fs_args)
        shown = redact_url(f"{destination.rstrip('/')}/{filename}")
    else:
        target = Path(destination) / filename
        try:
            # A file of another size is different without being read.
            same = None if not target.is_file() else target.stat().st_size == len(data) and target.read_bytes() == data
        except OSError as exc:
            raise MicropkgError(f"could not read {target}: {exc.strerror or exc}") from None
        shown = str(target)
    if same:
        return shown, UNCHANGED
    path = write_artifact(destination, filename, data, fs_args=fs_args)
    return path, CREATED if same is None else OVERWRITTEN


def write_artifact(destination: str, filename: str, data: bytes, *, fs_args: str | None = None) -> str:
    """Write ``data`` as ``destination/filename`` and return where it went."""
    if is_url(destination):
        from micropkg_tasks.ops.sources.remote import upload_atomically

        return upload_atomically(destination, filename, data, fs_args=fs_args)
    folder = Path(destination)
    target = folder / filename
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(target, data, mode=0o644)
    except OSError as exc:
        raise MicropkgError(f"could not write {target}: {exc.strerror or exc}") from None
    return str(target)
