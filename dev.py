#!/usr/bin/env python3
"""Set up a development virtualenv and run the demo or the test suite.

    python3 dev.py demo    # package, pull and inspect a scratch copy of examples/monorepo
    python3 dev.py test    # run the whole test suite (extra arguments go to pytest)
    python3 dev.py lock    # refresh requirements/dev.txt, the pinned development versions
    python3 dev.py mutate  # mutation-test the safety-critical modules (or: mutate journal redaction ...)

Only the standard library is used here, so this works on a fresh machine with
nothing but Python 3.11 and pip. The virtualenv lives in ``.venv/``. It is
installed with ``requirements/dev.txt`` as constraints, so every machine gets
the versions the suite was last green with, and it is reinstalled only when
``pyproject.toml`` or that file changes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
PINS = ROOT / "requirements" / "dev.txt"
# The extras the development environment needs; the pins are compiled from these.
EXTRAS = ("test", "nox", "mutate")
MUTANTS = ROOT / "mutants"
# What `dev.py mutate` mutates: a module, and the functions of it that matter (None: all of them).
# The test files that run against the mutants are listed under [tool.mutmut] in pyproject.toml.
MUTATE_TARGETS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "pathguard": ("micropkg_tasks.core.change.pathguard", None),
    "journal": ("micropkg_tasks.core.change.journal", None),
    "transaction": ("micropkg_tasks.core.change.transaction", None),
    "atomic": ("micropkg_tasks.core.change.atomic", None),  # the transaction's (and every other) file write
    "lockfile": (  # validation of a lock read from disk
        "micropkg_tasks.core.lock.lockfile",
        ("_string", "_string_map", "_path_problem", "validate_lock_paths", "parse_lock", "read_lock",
         "read_project_lock", "lock_folders"),
    ),
    "redaction": ("micropkg_tasks.core.redaction", None),
    "requirements": (  # merging a micro-package's requirements into the project's file
        "micropkg_tasks.core.requirements.merge",
        ("_key", "_extras", "_signature", "_satisfied_by", "_parse_exact", "_existing_entries",
         "merge_requirements", "_removed_lines", "_merge_incoming", "_rebuild", "_has_requirement",
         "_drop_empty_headers"),
    ),
}


def venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def installed_from() -> str:
    """What the virtualenv was built from: a change to either file means reinstall."""
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", PINS):
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", *args], check=True)


def ensure_venv() -> Path:
    """Create ``.venv`` and install the project with its test extras, pinned by ``requirements/dev.txt``."""
    wanted = installed_from()
    python = venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return python
    if not python.exists():
        print(f"dev.py: creating virtualenv in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    constraints = ["-c", str(PINS)] if PINS.exists() else []
    print(f"dev.py: installing micropkg-tasks with its test dependencies{' (pinned)' if constraints else ''}", flush=True)
    # pip and setuptools are pinned too: the editable install and the build checks use them.
    pip(python, "install", "--quiet", *constraints, "pip", "setuptools")
    pip(python, "install", "--quiet", *constraints, "-e", f"{ROOT}[{','.join(EXTRAS)}]")
    STAMP.write_text(wanted + "\n")
    return python


def lock(python: Path, rest: list[str]) -> int:
    """Recompile the pins from pyproject.toml with pip-tools (``--upgrade`` moves them all)."""
    PINS.parent.mkdir(exist_ok=True)
    command = [
        str(python), "-m", "piptools", "compile", "--quiet", "--allow-unsafe", "--strip-extras",
        "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
        *(arg for extra in EXTRAS for arg in ("--extra", extra)),
        "--output-file", str(PINS.relative_to(ROOT)), "pyproject.toml", *rest,
    ]
    # pip-compile names the command that made the file in its header.
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "CUSTOM_COMPILE_COMMAND": "python3 dev.py lock"})
    if done.returncode == 0:
        print(f"dev.py: wrote {PINS.relative_to(ROOT)}; the next test or demo run reinstalls .venv from it")
    return done.returncode


def mutant_patterns(names: list[str]) -> list[str]:
    """mutmut's names for the mutants of the chosen targets: ``module.x_function__mutmut_N``
    (``module.xǁClassǁmethod__mutmut_N`` for methods)."""
    patterns = []
    for name in names:
        module, functions = MUTATE_TARGETS[name]
        patterns += [f"{module}.*"] if functions is None else [f"{module}.x_{f}__mutmut_*" for f in functions]
    return patterns


def unknown_mutate_target(names: list[str]) -> str | None:
    unknown = [name for name in names if name not in MUTATE_TARGETS]
    if unknown:
        return f"dev.py: unknown module {unknown[0]!r}; choose from {', '.join(MUTATE_TARGETS)}"
    return None


def mutate(python: Path, names: list[str]) -> int:
    """Run mutmut, one mutant at a time, on the chosen targets; print each one's score and survivors."""
    problem = unknown_mutate_target(names)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    names = names or list(MUTATE_TARGETS)
    mutmut = python.parent / "mutmut"
    # A fresh copy each time: mutmut keeps copies of unmutated modules and stale results otherwise.
    shutil.rmtree(MUTANTS, ignore_errors=True)
    patterns = mutant_patterns(names)
    done = subprocess.run([str(mutmut), "run", "--max-children", "1", *patterns], cwd=ROOT)
    if done.returncode != 0:
        return done.returncode
    listing = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True)
    status = {}
    for line in listing.stdout.splitlines():
        mutant, sep, verdict = line.strip().rpartition(": ")
        if sep and any(fnmatch.fnmatchcase(mutant, pattern) for pattern in patterns):
            status[mutant] = verdict
    print(f"\ndev.py: mutation score per module ({len(status)} mutants)")
    survivors = []
    for name in names:
        own = {m: v for m, v in status.items() if any(fnmatch.fnmatchcase(m, p) for p in mutant_patterns([name]))}
        killed = sum(v in {"killed", "timeout", "caught by type check"} for v in own.values())
        score = f"{100 * killed / len(own):.1f}%" if own else "n/a"
        print(f"  {name:<13} {killed}/{len(own)} killed ({score})")
        survivors += sorted(f"{m}: {v}" for m, v in own.items() if v not in {"killed", "timeout", "caught by type check"})
    if survivors:
        print("dev.py: not killed (see one with: .venv/bin/mutmut show NAME):")
        print("\n".join(f"  {line}" for line in survivors))
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "lock", "mutate"}:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    if argv[0] == "mutate" and unknown_mutate_target(argv[1:]):
        print(unknown_mutate_target(argv[1:]), file=sys.stderr)  # before any install
        return 2
    python = ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "lock":
        return lock(python, rest)
    if command == "mutate":
        return mutate(python, rest)
    if command == "test":
        return subprocess.run([str(python), "-m", "pytest", *rest], cwd=ROOT).returncode
    return subprocess.run([str(python), str(ROOT / "examples" / "demo.py"), *rest], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
