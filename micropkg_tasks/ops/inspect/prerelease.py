"""``prerelease``: before a release, prove every micro-package builds, installs and passes its own
tests, and that nothing has drifted.

Checks, per project (SPEC §11):

1. reproducible: every package-manifest entry built twice gives identical bytes;
2. installable: ``pip wheel --no-deps --no-build-isolation --no-index`` builds each sdist;
3. round-trip: each sdist pulled under a fresh name into a scratch project of its
   own with the same package name and layout but none of the code or config,
   together with the micro-packages it depends on, so the sdist must be
   self-contained and a real pull into a new project accepts it; it imports, and
   its packaged tests pass under pytest (in a subprocess);
4. in sync: every copy a declaration brings in (shared entry or pull manifest) is in sync
   or customised, in the one model ``status`` and ``check`` read;
5. requirements current: ``requirements.txt`` was compiled from the current ``requirements.in``;
6. lock clean: no installed micro-package is edited, unless listed in
   ``[tool.micropkg.prerelease] allow-edited``;
7. version bumped: no micro-package of the project has other content than a copy
   in another project that carries the same ``__version__``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from micropkg_tasks.core.errors import MicropkgError, UsageError
from micropkg_tasks.core.lock.copy_state import LOCAL_EDITS, PASSING
from micropkg_tasks.core.project.manifest import read_package_manifest
from micropkg_tasks.core.project.monorepo import Monorepo, find_monorepo_root, load_monorepo
from micropkg_tasks.core.project.project import Project, find_project_root, load_project
from micropkg_tasks.core.sdist.read import SdistContents, read_sdist
from micropkg_tasks.ops.compile.batch import settings_for
from micropkg_tasks.ops.compile.compile import requirements_current
from micropkg_tasks.ops.copies.copy_state import copy_model
from micropkg_tasks.ops.inspect.status import status
from micropkg_tasks.ops.inspect.version_bump import copies_from, unbumped
from micropkg_tasks.ops.install.apply import install_sdists
from micropkg_tasks.ops.install.dependencies import fetch_missing_dependencies
from micropkg_tasks.ops.install.item import FetchedFrom, SdistToInstall
from micropkg_tasks.ops.package.build import BuiltSdist, build_package
from micropkg_tasks.ops.package.dependencies import micropackages_of
from micropkg_tasks.ops.sources.locations import PATH

CHECKS = (
    "reproducible", "installable", "round-trip", "in sync", "requirements current", "lock clean", "version bumped",
)
SUBPROCESS_TIMEOUT = 900  # seconds for one pip wheel or pytest run


@dataclass(frozen=True)
class CheckResult:
    project: str
    check: str
    status: str  # "pass", "fail" or "not run"
    seconds: float
    reason: str = ""
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrereleaseReport:
    root: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(check.status == "pass" for check in self.checks)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if check.status == "fail")


class CheckFailed(Exception):
    """A check's verdict: the reason and the lines that explain it."""

    def __init__(self, reason: str, details: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = tuple(details)


def _tail(text: str, lines: int = 20) -> list[str]:
    return [line for line in text.strip().splitlines()[-lines:] if line.strip()]


def _run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
            timeout=SUBPROCESS_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{' '.join(command[2:4])} took longer than {SUBPROCESS_TIMEOUT} s") from None


_MISSING_MODULE = re.compile(r"No module named '?([\w.]+)'?")


def project_interpreter(project: Project) -> tuple[str, str]:
    """The Python that runs a project's code, and where that choice came from.

    ``[tool.micropkg.prerelease] python`` (a path, relative to the project, or a command
    on PATH) wins; then the project's own ``.venv``; then the Python running micropkg.
    """
    settings = project.settings.get("prerelease", {})
    configured = settings.get("python") if isinstance(settings, dict) else None
    where = f"{project.pyproject_path} [tool.micropkg.prerelease] python"
    if configured is not None:
        if not isinstance(configured, str) or not configured.strip():
            raise UsageError(f"{where} must be a path to a Python interpreter, got {configured!r}")
        candidate = Path(configured).expanduser()
        if not candidate.is_absolute() and ("/" in configured or os.sep in configured):
            candidate = project.root / candidate
        found = str(candidate) if candidate.is_absolute() or candidate.exists() else shutil.which(configured)
        if found is None or not Path(found).is_file():
            raise UsageError(f"{where} is {configured!r}, which does not exist; give the path to the project's Python")
        return found, where
    for venv_python in (project.root / ".venv/bin/python", project.root / ".venv/Scripts/python.exe"):
        if venv_python.is_file():
            return str(venv_python), f"the project's {project.relative(venv_python)}"
    return sys.executable, "the Python running micropkg"


def _missing_module(python: str, output: str, package_name: str) -> str | None:
    """One sentence when a run failed because ``python`` lacks a dependency, else None.

    A missing module of the project's own package is not a dependency: the sdist is not
    self-contained, and the ordinary failure says so.
    """
    if "ModuleNotFoundError" not in output and "No module named" not in output:
        return None
    found = _MISSING_MODULE.search(output)
    if found is None or found.group(1).split(".")[0] == package_name:
        return None
    return (
        f"module {found.group(1)!r} is not installed in {python}; install it there, or point "
        "[tool.micropkg.prerelease] python at the interpreter that has the project's dependencies"
    )


class _ProjectChecks:
    """The checks for one project; the sdists built by the first are reused by the next two."""

    def __init__(self, project: Project, shown: str, scratch: Path, monorepo: Monorepo | None = None) -> None:
        self.monorepo = monorepo
        self.project = project
        self.shown = shown
        self.scratch = scratch
        self.built: list[tuple[str, BuiltSdist]] = []
        self.python, self.python_source = project_interpreter(project)

    def reproducible(self) -> str:
        entries = read_package_manifest(self.project)
        if not entries:
            return "nothing to package (no package manifest)"
        differing = []
        for entry in entries:
            first = build_package(self.project, entry.module_path, entry.alias, entry.env)
            second = build_package(self.project, entry.module_path, entry.alias, entry.env)
            if first.data != second.data:
                differing.append(
                    f"{entry.module_path}: two builds differ ({first.result.sha256[:12]} vs {second.result.sha256[:12]})"
                )
            self.built.append((entry.module_path, first))
        if differing:
            raise CheckFailed(f"{len(differing)} sdist(s) are not reproducible", differing)
        return f"{len(entries)} sdist(s) identical across two builds"

    def installable(self) -> str:
        if not self.built:
            return "nothing to build"
        folder = self.scratch / "sdists"
        folder.mkdir(exist_ok=True)
        failures = []
        for module, sdist in self.built:
            path = folder / sdist.filename
            path.write_bytes(sdist.data)
            done = _run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                 "-q", "-w", str(self.scratch / "wheels"), str(path)],
                cwd=self.scratch,
            )
            if done.returncode != 0:
                failures.append(f"{module}: pip wheel failed: {(_tail(done.stderr, 1) or ['no output'])[-1]}")
        if failures:
            raise CheckFailed(f"{len(failures)} sdist(s) do not build a wheel", failures)
        return f"{len(self.built)} wheel(s) built"

    def round_trip(self) -> str:
        if not self.built:
            return "nothing to pull"
        failures: list[str] = []
        ran = 0
        for index, (module, sdist) in enumerate(self.built):
            # Each sdist goes into a fresh project of its own, as a real pull into a new project would:
            # nothing there defines its parameter keys or its modules already.
            outcome = self._round_trip_one(module, sdist, self.scratch / f"copy-{index}")
            if isinstance(outcome, list):
                failures += outcome
            else:
                ran += outcome
        if len(failures) == 1 and " is not installed in " in failures[0]:
            raise CheckFailed(failures[0])  # one missing dependency: the sentence says it all
        if failures:
            raise CheckFailed("pulled sdists do not import or their tests fail", failures)
        return f"{len(self.built)} pulled under fresh names; tests passed for {ran} (with {self.python_source})"

    def _round_trip_one(self, module: str, sdist: BuiltSdist, copy: Path) -> int | list[str]:
        """Pull ``sdist`` under a fresh name into an empty project at ``copy``, import it and run its
        tests: 1 when tests ran and passed, 0 when it has none, else the lines saying what failed."""
        scratch_project = load_project(_empty_project_like(self.project, copy))
        fresh = f"{sdist.result.name}_prerelease_check"
        item = SdistToInstall(read_sdist(sdist.data, source=sdist.filename), sdist.filename, fresh, None, "base")
        try:
            install_sdists(scratch_project, [item, *self._dependencies(scratch_project, item)])
        except MicropkgError as exc:
            return [f"{module}: a pull into a new project is refused: {exc}", *(f"  {line}" for line in exc.details)]
        env = {**os.environ, "PYTHONPATH": str(scratch_project.source_dir)}
        imported = _run([self.python, "-c", f"import {scratch_project.package_name}.{fresh}"], cwd=copy, env=env)
        if imported.returncode != 0:
            missing = _missing_module(self.python, imported.stderr, scratch_project.package_name)
            if missing:
                return [f"{module} does not import: {missing}"]
            return [f"{module}: import failed: {(_tail(imported.stderr, 1) or ['no output'])[-1]}"]
        tests = scratch_project.module_tests_dir(fresh)
        if not any(tests.rglob("test*.py")):
            return 0
        result = _run(
            [self.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests.relative_to(copy))],
            cwd=copy, env=env,
        )
        if result.returncode == 0:
            return 1
        missing = _missing_module(self.python, result.stdout + result.stderr, scratch_project.package_name)
        if missing:
            return [f"{module}: packaged tests cannot run: {missing}"]
        return [f"{module}: packaged tests failed", *(f"  {line}" for line in _tail(result.stdout, 15))]

    def _dependencies(self, scratch: Project, item: SdistToInstall) -> list[SdistToInstall]:
        """The micro-packages ``item`` imports, from this run's builds (or built now), at their source paths."""
        by_filename = {sdist.filename: sdist for _, sdist in self.built}
        known = micropackages_of(self.project).members

        def fetch(location: str, origin: FetchedFrom) -> tuple[SdistContents, str, str]:
            sdist = by_filename.get(location)
            if sdist is None:
                module = next((m for m in sorted(known) if location.startswith(f"{known[m].name}-")), None)
                if module is None:
                    raise MicropkgError(f"no micro-package of {self.shown} builds {location}")
                sdist = build_package(self.project, module, known[module].alias, known[module].env)
                by_filename[sdist.filename] = sdist
            return read_sdist(sdist.data, source=sdist.filename), sdist.filename, PATH

        origin = FetchedFrom(item.location, PATH, None, "base")
        return fetch_missing_dependencies(scratch, [replace(item, fetched_from=origin)], fetch)

    def in_sync(self) -> str:
        # The one model of installed copies, as `status` and `check` see this project. Local edits
        # of an ad-hoc pull are the lock-clean check's (allow-edited), not this one's.
        copies = [
            c for c in copy_model(self.project.root, projects=[self.project.root]).copies
            if c.owner or c.state not in LOCAL_EDITS
        ]
        if not copies:
            return "no micro-packages installed here"
        stale = [c for c in copies if c.state not in PASSING]
        shared = "shared " if all(c.shared for c in (stale or copies)) else ""
        if stale:
            lines = [f"{c.module} (from {c.comes_from}): {c.state}"
                     for c in stale]
            lines += [f"  edited: {path}" for c in stale for path in (*c.edited, *c.missing)]
            fix = "run sync-shared" if shared else "run sync-shared for shared copies, pull --all for the others"
            raise CheckFailed(f"{len(stale)} {shared}copy(ies) out of sync: {fix}", lines)
        return f"{len(copies)} {shared}copy(ies) in sync"

    def requirements_current(self) -> str:
        settings = settings_for(self.project)
        if not self.project.requirements_in.is_file():
            return "no requirements.in"
        if not settings.enabled:
            return "compile = false"
        if not requirements_current(self.project, settings=settings):
            shown = self.project.relative(self.project.requirements_txt)
            raise CheckFailed(f"{shown} is not compiled from the current requirements.in: run compile-reqs")
        return f"{self.project.relative(self.project.requirements_txt)} matches requirements.in"

    def lock_clean(self) -> str:
        allowed = set(self.project.settings.get("prerelease", {}).get("allow-edited", []))
        report = status(self.project)
        edited = [p for p in report.packages if p.state in LOCAL_EDITS and p.module not in allowed]
        if edited:
            lines = [f"{p.module}: {path}" for p in edited for path in (*p.edited, *p.missing)]
            raise CheckFailed(
                f"{len(edited)} installed micro-package(s) edited locally "
                "(list them in [tool.micropkg.prerelease] allow-edited if that is intended)",
                lines,
            )
        return f"{len(report.packages)} installed micro-package(s) unedited"

    def version_bumped(self) -> str:
        if self.monorepo is None:
            return "not in a monorepo"
        copies = copies_from(self.project, self.monorepo)
        if not copies:
            return "no copies of its micro-packages in other projects"
        stale = unbumped(self.project, self.shown, copies)
        if stale:
            raise CheckFailed(f"{len(stale)} micro-package(s) changed without a new __version__", stale)
        return f"{len(copies)} cop(ies) elsewhere match their source or carry an older version"


def _empty_project_like(project: Project, folder: Path) -> Path:
    """A project with the same package name and layout but none of its code.

    Pulling into a full copy would let an sdist import modules it does not
    contain (the copy still has them); an empty project shows what a consumer
    really gets.
    """
    package = folder / project.source_dir.relative_to(project.root) / project.package_name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    tests = folder / project.tests_dir.relative_to(project.root)
    tests.mkdir(parents=True, exist_ok=True)
    (tests / "__init__.py").write_text("")
    (folder / project.conf_dir.relative_to(project.root) / "base").mkdir(parents=True)
    source_dir = project.source_dir.relative_to(project.root).as_posix()
    (folder / "pyproject.toml").write_text(
        f'[tool.micropkg]\npackage_name = "{project.package_name}"\nsource_dir = "{source_dir}"\n'
        f'conf_source = "{project.conf_dir.relative_to(project.root).as_posix()}"\n'
    )
    return folder


def _targets(start: Path, projects: Sequence[str | Path] | None) -> tuple[Path, list[Path], Path | None]:
    monorepo_root = find_monorepo_root(start)
    if projects:
        roots = [find_project_root(Path(p)) for p in projects]
    elif monorepo_root is not None:
        roots = list(load_monorepo(monorepo_root).projects)
    else:
        roots = [find_project_root(start)]
    if not roots:
        raise UsageError(f"no projects to check under {start.resolve()}")
    return (monorepo_root or roots[0]), roots, monorepo_root


def prerelease(
    root: Path | str | os.PathLike[str] | None = None,
    *,
    projects: Sequence[str | Path] | None = None,
    keep_going: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PrereleaseReport:
    """Run every check for each project (default: every project of the monorepo at or above ``root``,
    or the project there). Without ``keep_going`` the first failure stops the run; the checks not
    run are reported as such."""
    start = Path(root) if root is not None else Path.cwd()
    base, roots, monorepo_root = _targets(start, projects)
    monorepo = load_monorepo(monorepo_root) if monorepo_root is not None else None
    results: list[CheckResult] = []
    stopped = False
    with tempfile.TemporaryDirectory(prefix="micropkg-prerelease-") as scratch_root:
        for index, project_root in enumerate(roots):
            project = load_project(project_root)
            shown = project_root.relative_to(base).as_posix() if project_root != base else "."
            scratch = Path(scratch_root) / str(index)
            scratch.mkdir()
            checks = _ProjectChecks(project, shown, scratch, monorepo)
            steps = [checks.reproducible, checks.installable, checks.round_trip,
                     checks.in_sync, checks.requirements_current, checks.lock_clean, checks.version_bumped]
            for name, step in zip(CHECKS, steps):
                if stopped:
                    results.append(CheckResult(shown, name, "not run", 0.0, "an earlier check failed"))
                    continue
                if progress is not None:
                    progress(f"{shown}: {name}")
                started = time.monotonic()
                try:
                    reason = step()
                    results.append(CheckResult(shown, name, "pass", time.monotonic() - started, reason))
                except CheckFailed as failed:
                    results.append(CheckResult(shown, name, "fail", time.monotonic() - started, failed.reason, failed.details))
                    stopped = not keep_going
                except MicropkgError as exc:
                    results.append(CheckResult(shown, name, "fail", time.monotonic() - started, str(exc), tuple(exc.details)))
                    stopped = not keep_going
    return PrereleaseReport(str(base), tuple(results))
