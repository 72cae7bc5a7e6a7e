"""Which parameter files belong to a micro-package, and how an alias renames them.

The selection follows Kedro's micro-packaging globs, relative to
``conf/<env>/``. Catalog and credentials files are never packaged: they hold
environment-specific wiring and secrets, not the micro-package's parameters.
"""

from __future__ import annotations

from pathlib import Path

_NEVER_PACKAGED_PREFIXES = ("catalog", "credentials")


def _matches(parts: tuple[str, ...], name: str) -> bool:
    folders, filename = parts[:-1], parts[-1]
    if filename == f"parameters_{name}.yml":  # **/parameters_<name>.yml
        return True
    if name in folders:  # **/<name>/**/* (covers parameters*/**/<name>/**/* too)
        return True
    # parameters*/**/<name>.yml
    return bool(folders) and folders[0].startswith("parameters") and filename == f"{name}.yml"


def _never_packaged(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(_NEVER_PACKAGED_PREFIXES) for part in parts)


def select_parameter_files(env_dir: Path, name: str) -> tuple[list[str], list[str]]:
    """Parameter files for micro-package ``name`` below ``env_dir``.

    Returns ``(selected, refused)`` as sorted posix paths relative to
    ``env_dir``; ``refused`` lists catalog/credentials files the globs matched.
    """
    selected: list[str] = []
    refused: list[str] = []
    if not env_dir.is_dir():
        return selected, refused
    for path in sorted(env_dir.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        parts = path.relative_to(env_dir).parts
        if not _matches(parts, name):
            continue
        (refused if _never_packaged(parts) else selected).append("/".join(parts))
    return selected, refused


def skipped_symlinks(env_dir: Path, name: str) -> list[str]:
    """Symlinks (dangling or not) that the globs match: never packaged, so callers warn about them."""
    if not env_dir.is_dir():
        return []
    return sorted(
        "/".join(path.relative_to(env_dir).parts)
        for path in env_dir.rglob("*")
        if path.is_symlink() and _matches(path.relative_to(env_dir).parts, name)
    )


def rename_for_alias(relative: str, old: str, new: str) -> str:
    """Rename the file (not its folders) when its name contains the old name, as Kedro does."""
    folder, _, filename = relative.rpartition("/")
    if old not in filename or old == new:
        return relative
    renamed = filename.replace(old, new)
    return f"{folder}/{renamed}" if folder else renamed
