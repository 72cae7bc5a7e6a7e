"""Plan the installation of one sdist into a project, without writing anything.

The plan maps each file of the sdist to its place in the project, rewrites
imports back into the project namespace, merges requirements, classifies
every file (create / update / delete / unchanged / conflict) against the disk
and ``micropkg.lock``, and stages the result in a ``Staging`` overlay.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.lockfile import Lock, LockEntry, sha256_bytes
from micropkg_tasks.core.params import rename_for_alias
from micropkg_tasks.core.project import Project
from micropkg_tasks.core.requirements import merge_requirements
from micropkg_tasks.core.restore import restore
from micropkg_tasks.core.rewrite import ModuleMove, rewrite_module
from micropkg_tasks.core.rewrite_strings import is_dotted
from micropkg_tasks.core.sdist_read import SdistContents
from micropkg_tasks.core.staging import Staging
from micropkg_tasks.core.transaction import CONFLICT, CREATE, DELETE, UNCHANGED, UPDATE


@dataclass(frozen=True)
class PlannedFile:
    path: str  # relative to the project root
    action: str  # create, update, delete, unchanged or conflict
    reason: str = ""


@dataclass
class InstallPlan:
    module: str
    location: str
    files: list[PlannedFile] = field(default_factory=list)
    requirements_added: list[str] = field(default_factory=list)
    requirements_present: list[str] = field(default_factory=list)
    requirements_conflicts: list[str] = field(default_factory=list)
    requirements_removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> list[PlannedFile]:
        return [item for item in self.files if item.action == CONFLICT]


def install_module(destination: str | None, name: str) -> str:
    return f"{destination}.{name}" if destination else name


def _top_level_names(files: dict[str, bytes]) -> frozenset[str]:
    """Names a dotted string may continue with after the package name: its submodules and
    what its ``__init__`` defines. Only these strings are rewritten back on pull."""
    names = set()
    for relative in files:
        head = relative.split("/", 1)[0]
        if head.endswith(".py"):
            head = head[:-3]
        if head.isidentifier() and head != "__init__":
            names.add(head)
    init = files.get("__init__.py")
    if init:
        try:
            tree = ast.parse(init)
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names)


@dataclass(frozen=True)
class _ExactRestore:
    """How to pull an sdist of ours exactly: its restore records, and full-path moves from the
    source project's names to the target's (identity moves left out)."""

    records: Mapping[str, Any]
    moves: tuple[ModuleMove, ...]
    key_prefix: str = ""

    def rewrite(self, relative: str, packaged: str, filename: str) -> str | None:
        key = f"{self.key_prefix}{relative}"
        original = restore(packaged, self.records[key]) if key in self.records else packaged
        if original is None:
            return None  # the file was changed after packaging: the ordinary rules apply
        return rewrite_module(original, self.moves, filename=filename).code if self.moves else original


def _exact_restore(
    project: Project, sdist: SdistContents, module: str, dependency_moves: Sequence[ModuleMove]
) -> _ExactRestore | None:
    records, source_module, source_project = (sdist.micropkg.get(k) for k in ("restore", "module", "project"))
    if not (isinstance(records, Mapping) and isinstance(source_module, str) and isinstance(source_project, str)):
        return None  # Kedro's sdists, and ours from before restore records: today's rules
    if not (is_dotted(source_module) and is_dotted(source_project)):
        return None
    moves = [
        ModuleMove(f"{source_project}.{source_module}", f"{project.package_name}.{module}"),
        ModuleMove(f"tests.{source_module}", f"tests.{module}"),
        *dependency_moves,
    ]
    return _ExactRestore(records, tuple(move for move in moves if move.old != move.new))


def _rewrite_files(
    files: dict[str, bytes], moves: list[ModuleMove], shown_prefix: str, exact: _ExactRestore | None = None
) -> dict[str, bytes]:
    out = {}
    for relative, content in files.items():
        if relative.endswith(".py"):
            try:
                source = content.decode("utf-8")
            except UnicodeDecodeError:
                raise MicropkgError(f"{shown_prefix}{relative} in the sdist is not valid UTF-8 Python source") from None
            restored = exact.rewrite(relative, source, f"{shown_prefix}{relative}") if exact else None
            if restored is not None:
                content = restored.encode("utf-8")
            else:
                result = rewrite_module(source, moves, filename=f"{shown_prefix}{relative}")
                content = result.code.encode("utf-8") if result.changed else content
        out[relative] = content
    return out


def target_files(
    project: Project,
    sdist: SdistContents,
    *,
    module: str,
    env: str,
    install_name: str,
    dependency_moves: Sequence[ModuleMove] = (),
) -> dict[Path, bytes]:
    """Every file the sdist installs, at its project path, with imports rewritten back.

    ``dependency_moves`` point the micro-packages it depends on at where the target has them.
    Our own sdists are restored exactly from their records; others follow the rules of SPEC §4.
    """
    package_files = sdist.package_files()
    test_files = sdist.test_files()
    moves = [
        ModuleMove(sdist.name, f"{project.package_name}.{module}", string_roots=_top_level_names(package_files)),
        ModuleMove("tests", f"tests.{module}", string_roots=_top_level_names(test_files)),
        *dependency_moves,
    ]
    exact = _exact_restore(project, sdist, module, dependency_moves)
    code_exact = replace(exact, key_prefix=f"{sdist.name}/") if exact else None
    tests_exact = replace(exact, key_prefix="tests/") if exact else None
    code_dir = project.module_dir(module)
    tests_dir = project.module_tests_dir(module)
    env_dir = project.env_dir(env)
    placed: dict[Path, bytes] = {}
    for relative, content in _rewrite_files(package_files, moves, f"{sdist.root}/{sdist.name}/", code_exact).items():
        placed[code_dir / relative] = content
    for relative, content in _rewrite_files(test_files, moves, f"{sdist.root}/tests/", tests_exact).items():
        placed[tests_dir / relative] = content
    for relative, content in sdist.config_files().items():
        target = env_dir / rename_for_alias(relative, sdist.name, install_name)
        if target in placed:
            raise UsageError(
                f"{sdist.source}: with the name {install_name!r}, two parameter files would both be installed as "
                f"{project.relative(target)} (one of them is config/{relative}); pull it under another --alias"
            )
        placed[target] = content
    return placed


def _intermediate_inits(project: Project, module: str, staging: Staging) -> list[Path]:
    """``__init__.py`` files missing on the way to the destination, so the result imports."""
    parts = module.split(".")[:-1]
    needed = []
    for depth in range(1, len(parts) + 1):
        init = project.package_dir.joinpath(*parts[:depth], "__init__.py")
        if staging.read(init) is None:
            needed.append(init)
        tests_init = project.tests_dir.joinpath(*parts[:depth], "__init__.py")
        if (project.tests_dir / "__init__.py").is_file() and staging.read(tests_init) is None:
            needed.append(tests_init)
    return needed


def _classify(
    project: Project, staging: Staging, path: Path, content: bytes, lock: Lock, module: str, force: bool
) -> PlannedFile:
    relative = project.relative(path)
    current = staging.read(path)
    owner = lock.owner_of(relative)
    if owner is not None and owner.module != module:
        # Another installed micro-package owns this file: taking it over silently would
        # let one pull overwrite, and a later one delete, what the other installed.
        if not force:
            return PlannedFile(relative, CONFLICT, f"installed by {owner.module}")
        del owner.files[relative]
        return PlannedFile(relative, UPDATE if current is not None else CREATE, f"taken over from {owner.module} (--force)")
    if current is None:
        if owner is not None and not force:
            # We installed it and someone deleted it: that is a local edit too.
            return PlannedFile(relative, CONFLICT, f"deleted since {owner.module} installed it")
        return PlannedFile(relative, CREATE)
    if current == content:
        return PlannedFile(relative, UNCHANGED)
    if owner is not None and owner.files.get(relative) == sha256_bytes(current):
        return PlannedFile(relative, UPDATE)
    if force:
        return PlannedFile(relative, UPDATE, "overwritten (--force)")
    if owner is None:
        return PlannedFile(relative, CONFLICT, "exists and was not installed by micropkg")
    return PlannedFile(relative, CONFLICT, f"edited since {owner.module} installed it")


def _requirements(
    project: Project,
    staging: Staging,
    sdist: SdistContents,
    module: str,
    lock: Lock,
    plan: InstallPlan,
) -> list[str]:
    """Merge the sdist's requirements into ``requirements.in``; return those this pull owns."""
    previous = lock.entries.get(module)
    previously_ours = set(previous.requirements) if previous else set()
    still_wanted = set(sdist.requires)
    removable = sorted(previously_ours - still_wanted - lock.requirements_of_others(module))
    if not sdist.requires and not removable:
        return []
    path = project.requirements_in
    existing = staging.read(path)
    read_from = path
    if existing is None:
        # requirements.in starts as a copy of requirements.txt, so compiling it keeps what the project had.
        read_from = project.requirements_txt
        existing = staging.read(read_from) or b""
        if existing:
            plan.warnings.append(f"{project.relative(path)} created from {project.relative(read_from)}")
    try:
        text = existing.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MicropkgError(
            f"{project.relative(read_from)} is not valid UTF-8 (byte {exc.start}); fix it before pulling"
        ) from None
    merged = merge_requirements(text, list(sdist.requires), origin=module, remove=removable)
    plan.requirements_added = list(merged.added)
    plan.requirements_present = list(merged.already_present)
    plan.requirements_removed = list(merged.removed)
    plan.requirements_conflicts = [
        f"{c.name}: project has '{c.existing}', {module} asks for '{c.incoming}'" for c in merged.conflicts
    ]
    if merged.changed or staging.read(path) is None:
        staging.write(path, merged.text.encode("utf-8"))
    return sorted(set(merged.added) | (previously_ours & still_wanted))


def plan_install(
    project: Project,
    staging: Staging,
    lock: Lock,
    sdist: SdistContents,
    *,
    location: str,
    alias: str | None,
    destination: str | None,
    env: str,
    force: bool,
    placed: dict[Path, bytes] | None = None,
) -> InstallPlan:
    """Stage the installation of ``sdist`` and record the new lock entry in ``lock``.

    ``placed`` is ``target_files(...)`` computed ahead (in parallel, for a batch).
    """
    install_name = alias or sdist.name
    module = install_module(destination, install_name)
    plan = InstallPlan(module=module, location=location)
    if placed is None:
        placed = target_files(project, sdist, module=module, env=env, install_name=install_name)
    previous = lock.entries.get(module)

    for path in sorted(placed):
        planned = _classify(project, staging, path, placed[path], lock, module, force)
        plan.files.append(planned)
        if planned.action in (CREATE, UPDATE):
            staging.write(path, placed[path])

    if previous is not None:
        new_paths = {project.relative(path) for path in placed}
        for relative, digest in sorted(previous.files.items()):
            if relative in new_paths or lock.owners_other_than(relative, module):
                continue
            path = project.root / relative
            current = staging.read(path)
            if current is None:
                continue
            if sha256_bytes(current) == digest or force:
                plan.files.append(PlannedFile(relative, DELETE, "dropped upstream"))
                staging.delete(path)
            else:
                plan.files.append(PlannedFile(relative, CONFLICT, "dropped upstream but edited locally"))

    for init in _intermediate_inits(project, module, staging):
        plan.files.append(PlannedFile(project.relative(init), CREATE, "missing package __init__.py"))
        staging.write(init, b"")

    requirements = _requirements(project, staging, sdist, module, lock, plan)
    if plan.requirements_conflicts:
        plan.warnings += [f"requirement conflict: {text}" for text in plan.requirements_conflicts]

    options = {"env": env}
    if alias:
        options["alias"] = alias
    if destination:
        options["destination"] = destination
    source_sha = sdist.micropkg.get("source-sha256")
    lock.entries[module] = LockEntry(
        module=module,
        name=sdist.name,
        source=location,
        version=sdist.version,
        sdist_sha256=sdist.sha256,
        source_sha256=str(source_sha) if source_sha else None,
        options=options,
        requirements=requirements,
        files={project.relative(path): sha256_bytes(content) for path, content in placed.items()},
    )
    return plan
