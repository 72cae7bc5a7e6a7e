"""Find micro-packages whose source changed while their ``__version__`` stayed the same as a copy's.

A copy in another project of the monorepo records, in its lock entry, the version it was
installed at and the digest of the source it came from. When the source now has other
content under that same version, two different things carry one version number: the
source's ``__version__`` must be bumped before it is released.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.lock.lockfile import read_project_lock
from micropkg_tasks.core.project.monorepo import Monorepo
from micropkg_tasks.core.project.project import Project, load_project
from micropkg_tasks.core.project.version import resolve_version
from micropkg_tasks.ops.package.inputs import read_inputs


@dataclass(frozen=True)
class InstalledCopy:
    project: str  # relative to the monorepo root
    module: str  # where it is installed there
    micropkg: str  # its module path in the source project
    version: str
    source_sha256: str | None
    env: str


def copies_from(project: Project, monorepo: Monorepo) -> list[InstalledCopy]:
    """Every copy, in the monorepo's other projects, of a micro-package of ``project``: by the origin
    (``<package>#<module path>``) its lock entry records, whatever brought it in."""
    prefix = f"{project.package_name}#"
    copies = []
    for root in monorepo.projects:
        if root == project.root:
            continue
        try:
            lock = read_project_lock(load_project(root))
        except MicropkgError:
            continue  # an unreadable lock is the in-sync check's to report
        for module, entry in sorted(lock.entries.items()):
            if entry.origin and entry.origin.startswith(prefix):
                copies.append(InstalledCopy(
                    monorepo.relative(root), module, entry.origin[len(prefix):], entry.version,
                    entry.source_sha256, entry.options.get("env", "base"),
                ))
    return copies


def unbumped(project: Project, shown: str, copies: Sequence[InstalledCopy]) -> list[str]:
    """One line per micro-package of ``project`` that a copy has at its current version with other
    content, naming the file whose ``__version__`` to bump. ``shown`` is the project as the report
    names it, so the file can be found from the monorepo root."""
    lines: dict[str, str] = {}
    for copy in copies:
        module_dir = project.module_dir(copy.micropkg)
        if copy.micropkg in lines or not module_dir.is_dir() or copy.source_sha256 is None:
            continue
        version, _ = resolve_version(project, module_dir)
        if version.version != copy.version:
            continue
        try:
            digest = read_inputs(project, copy.micropkg, None, copy.env, for_distribution=False).digest
        except MicropkgError:
            continue  # the other checks report a micro-package that cannot be read
        if digest == copy.source_sha256:
            continue
        init = _version_file(project, module_dir, version.source)
        where = init if shown == "." else f"{shown}/{init}"
        lines[copy.micropkg] = (
            f"{copy.micropkg} changed since {copy.project} installed it as {copy.module} {copy.version}: "
            f"bump `__version__` in {where}"
        )
    return [lines[key] for key in sorted(lines)]


def _version_file(project: Project, module_dir: Path, source: str) -> str:
    """The file the version is read from: the micro-package's ``__init__.py``, unless the version
    came from the project package's (then that one), and the micro-package's own otherwise."""
    package_init = project.relative(project.package_dir / "__init__.py")
    if f"({package_init})" in source:
        return package_init
    return project.relative(module_dir / "__init__.py")
