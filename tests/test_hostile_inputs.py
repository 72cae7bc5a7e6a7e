"""A corpus of hostile or broken inputs: each is refused with a clear message, and nothing changes.

Every case builds a real workspace (a project, a monorepo, an sdist on disk),
runs the ``micropkg`` CLI in-process the way a user would, and asserts:

* the exit code (non-zero: 2 for a usage error, 1 for anything else);
* a fragment of the one-sentence error message naming what is at fault;
* no traceback;
* the whole workspace (every file and folder, with content hash, mode and
  mtime) is exactly what it was before the run.

The cases cover manifests, requirements files, project layouts and archives;
the archive cases add to the 44 of ``tests/hostile_archives.py`` that
``tests/test_pull.py`` already runs (Unicode-normalisation and case tricks,
duplicate members, names ending in ``/`` or holding NUL). ``CASES`` is the
corpus; its size is the figure given in ``docs/reliability.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import EXAMPLE_MONOREPO, kedro_project, run_micropkg
from tests.helpers import build_file_tree, snapshot_tree
from tests.hostile_archives import archive, dir_member, file_member, sdist_files, tar_gz, valid_sdist

ROOT = "data_cleaning-0.1"
PKG = f"{ROOT}/data_cleaning"
MICROPKG = {  # a micro-package inside the default project, for package-side cases
    "src/spaceflights/pipelines/x/__init__.py": '"""x."""\n',
    "src/spaceflights/pipelines/x/nodes.py": "def f():\n    return 1\n",
}


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], tuple[Path, list[str]]]  # workspace -> (folder to run in, CLI arguments)
    exit_code: int
    fragment: str
    xfail: str | None = None  # a product bug this case exposes


CASES: dict[str, Case] = {}


def case(name: str, exit_code: int, fragment: str, *, xfail: str | None = None):
    def register(build: Callable[[Path], tuple[Path, list[str]]]):
        assert name not in CASES, name
        CASES[name] = Case(build, exit_code, fragment, xfail)
        return build

    return register


# -- builders -----------------------------------------------------------------------------------------


def project(ws: Path, *, pyproject_extra: str = "", extra: dict[str, str | bytes] | None = None) -> Path:
    return kedro_project(ws / "project", pyproject_extra=pyproject_extra, extra=extra)


def raw_project(ws: Path, pyproject: str | bytes, extra: dict[str, str | bytes] | None = None) -> Path:
    """A project whose pyproject.toml is exactly ``pyproject``."""
    files: dict[str, str | bytes] = {
        "pyproject.toml": pyproject,
        "src/spaceflights/__init__.py": "",
        "src/spaceflights/pipelines/__init__.py": "",
        "conf/base/parameters.yml": "seed: 1\n",
        **(extra or {}),
    }
    return build_file_tree(ws / "project", files, dedent=False)


def package_manifest(entries: str) -> str:
    return f"\n[tool.kedro.micropkg.package]\n{entries}\n"


def pull_manifest(entries: str) -> str:
    return f"\n[tool.kedro.micropkg.pull]\n{entries}\n"


def package_all(ws: Path, manifest: str) -> tuple[Path, list[str]]:
    return project(ws, pyproject_extra=package_manifest(manifest), extra=MICROPKG), ["package", "--all"]


def pull_all(ws: Path, manifest: str) -> tuple[Path, list[str]]:
    (ws / "dist").mkdir()
    (ws / "dist/data_cleaning-0.1.tar.gz").write_bytes(valid_sdist())
    return project(ws, pyproject_extra=pull_manifest(manifest)), ["pull", "--all", "--no-compile"]


def pull_sdist(ws: Path, data: bytes, *, target: Path | None = None, options: tuple[str, ...] = ()):
    """Pull ``data`` (the bytes of an sdist) into a fresh project, or into ``target``."""
    path = ws / "data_cleaning-0.1.tar.gz"
    path.write_bytes(data)
    return target or project(ws), ["pull", str(path), "--no-compile", *options]


def package_requirements(ws: Path, requirements: str | bytes) -> tuple[Path, list[str]]:
    extra = {**MICROPKG, "src/spaceflights/pipelines/x/requirements.txt": requirements}
    return project(ws, extra=extra), ["package", "pipelines.x"]


def monorepo(ws: Path, shared: str, *, projects: str = '["projects/*"]') -> tuple[Path, list[str]]:
    root = ws / "monorepo"
    shutil.copytree(EXAMPLE_MONOREPO, root, ignore=shutil.ignore_patterns("__pycache__", "dist", "*.pyc"))
    (root / "pyproject.toml").write_text(
        f"[tool.micropkg.monorepo]\nprojects = {projects}\n\n{shared}", encoding="utf-8"
    )
    return root, ["sync-shared", "--no-compile"]


def shared(**keys: str) -> str:
    body = "".join(f"{key} = {value}\n" for key, value in keys.items())
    return f"[[tool.micropkg.shared]]\n{body}"


def with_members(*extra: tuple[tarfile.TarInfo, bytes | None], drop: tuple[str, ...] = ()) -> bytes:
    """The valid sdist's members (minus ``drop``), with ``extra`` appended."""
    base = [file_member(f"{ROOT}/{path}", data) for path, data in sorted(sdist_files().items()) if path not in drop]
    return tar_gz([dir_member(ROOT), *base, *extra])


def pax_named(member: tuple[tarfile.TarInfo, bytes | None], name: str) -> tuple[tarfile.TarInfo, bytes | None]:
    """Carry ``name`` in a pax ``path`` record, where a NUL or a trailing slash survives."""
    info, data = member
    info.pax_headers = {"path": name}
    return info, data


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# -- manifests ----------------------------------------------------------------------------------------


@case("manifest-package-unquoted-dotted-key", 2, "is an unquoted dotted key")
def _(ws):
    return package_all(ws, "pipelines.x = {}")


@case("manifest-pull-unquoted-dotted-key", 2, "quote it: \"data_cleaning-0.1.tar.gz\" = {}")
def _(ws):
    return pull_all(ws, "data_cleaning-0.1.tar.gz = {}")


@case("manifest-option-wrong-type", 2, "option 'alias' must be a string, got int 3")
def _(ws):
    return package_all(ws, '"pipelines.x" = {alias = 3}')


@case("manifest-entry-not-a-table", 2, "must be a table of options")
def _(ws):
    return package_all(ws, '"pipelines.x" = "yes"')


@case("manifest-table-is-an-array", 2, "must be a table of entries, not an array of tables")
def _(ws):
    return project(
        ws, pyproject_extra='\n[[tool.kedro.micropkg.package]]\nmodule = "pipelines.x"\n', extra=MICROPKG
    ), ["package", "--all"]


@case("manifest-unknown-option", 2, "has unknown option 'aliass'")
def _(ws):
    return package_all(ws, '"pipelines.x" = {aliass = "y"}')


@case("manifest-alias-is-a-keyword", 2, "alias 'class' is not a valid Python package name")
def _(ws):
    return package_all(ws, '"pipelines.x" = {alias = "class"}')


@case("manifest-module-path-with-slashes", 2, "is not a dotted Python module path")
def _(ws):
    return package_all(ws, '"pipelines/x" = {}')


@case("manifest-pull-destination-with-dotdot", 2, "must be a dotted module path")
def _(ws):
    return pull_all(ws, '"dist/data_cleaning-0.1.tar.gz" = {destination = "../../outside"}')


@case("manifest-pull-destination-empty-component", 2, "must be a dotted module path")
def _(ws):
    return pull_all(ws, '"dist/data_cleaning-0.1.tar.gz" = {destination = "utils..evil"}')


@case("manifest-env-with-path-separator", 2, "must be the name of one folder under conf/")
def _(ws):
    return package_all(ws, '"pipelines.x" = {env = "base/../../etc"}')


@case("manifest-pull-env-with-backslash", 2, "must be the name of one folder under conf/")
def _(ws):
    return pull_all(ws, '"dist/data_cleaning-0.1.tar.gz" = {env = "base\\\\..\\\\x"}')


@case("manifest-pull-missing-fs-args-file", 2, "missing.yml does not exist")
def _(ws):
    return pull_all(ws, '"memory://bucket/data_cleaning-0.1.tar.gz" = {fs-args = "missing.yml"}')


@case("manifest-package-missing-fs-args-file", 2, "missing.yml does not exist")
def _(ws):
    extra = {**MICROPKG, "src/spaceflights/pipelines/a/__init__.py": "A = 1\n"}
    manifest = '"pipelines.a" = {}\n"pipelines.x" = {destination = "memory://bucket/x", fs-args = "missing.yml"}'
    return project(ws, pyproject_extra=package_manifest(manifest), extra=extra), ["package", "--all"]


@case("manifest-monorepo-shared-unknown-key", 1, "has unknown key 'aliass'")
def _(ws):
    return monorepo(ws, shared(micropkg='"utils.io"', source='"projects/core"', aliass='"y"'))


@case("manifest-monorepo-shared-source-outside", 1, "source '../../outside' is outside the monorepo")
def _(ws):
    (ws / "outside").mkdir()
    return monorepo(ws, shared(micropkg='"utils.io"', source='"../../outside"'))


@case("manifest-monorepo-shared-alias-is-a-keyword", 2, "alias 'import' is not a valid Python package name")
def _(ws):
    return monorepo(ws, shared(micropkg='"utils.io"', source='"projects/core"', alias='"import"'))


@case("manifest-monorepo-shared-destination-with-dotdot", 2, "must be a dotted module path")
def _(ws):
    return monorepo(ws, shared(micropkg='"utils.io"', source='"projects/core"', destination='"../utils"'))


@case("manifest-monorepo-shared-env-with-path-separator", 2, "must be the name of one folder under conf/")
def _(ws):
    return monorepo(ws, shared(micropkg='"utils.io"', source='"projects/core"', env='"base/../x"'))


@case("manifest-monorepo-shared-targets-wrong-type", 1, "'targets' must be a list of project folders")
def _(ws):
    return monorepo(ws, shared(micropkg='"utils.io"', source='"projects/core"', targets='"projects/churn"'))


@case("manifest-monorepo-projects-glob-outside", 1, "must stay inside the monorepo")
def _(ws):
    return monorepo(ws, "", projects='["../*"]')


@case("project-pyproject-invalid-toml", 1, "is not valid TOML")
def _(ws):
    return project(ws, pyproject_extra="\n[tool.kedro.micropkg.package\n"), ["package", "--all"]


@case("project-pyproject-not-utf8", 1, "is not valid UTF-8")
def _(ws):
    return raw_project(ws, b'[tool.kedro]\npackage_name = "spaceflights"\n# caf\xe9\n'), ["package", "--all"]


# -- requirements files -------------------------------------------------------------------------------


@case("requirements-package-bare-url", 1, "requirements.txt:2: 'https://evil.example/evil-1.0.tar.gz' is not a valid")
def _(ws):
    return package_requirements(ws, "pandas>=2\nhttps://evil.example/evil-1.0.tar.gz\n")


@case("requirements-package-invalid-specifier", 1, "requirements.txt:1: 'pandas>>=2' is not a valid requirement")
def _(ws):
    return package_requirements(ws, "pandas>>=2\n")


@case("requirements-package-not-utf8", 1, "requirements file is not valid UTF-8")
def _(ws):
    return package_requirements(ws, b"pandas\nnump\xff\n")


@case("requirements-package-local-path", 1, "local paths cannot be packaged as requirements")
def _(ws):
    return package_requirements(ws, "../../secrets/lib\n")


@case("requirements-package-relative-url", 1, "the URL after '@' must be absolute")
def _(ws):
    return package_requirements(ws, "evil @ ./libs/evil.tar.gz\n")


@case("requirements-sdist-dash-r-line", 1, "lists an invalid requirement '-r ../../requirements-dev.txt'")
def _(ws):
    return pull_sdist(ws, valid_sdist(requires=("-r ../../requirements-dev.txt",)))


@case("requirements-sdist-pkg-info-dash-r-line", 1, "PKG-INFO' lists an invalid requirement '-r other.txt'")
def _(ws):
    files = {p: d for p, d in sdist_files().items() if p != "pyproject.toml"}
    files["PKG-INFO"] = b"Metadata-Version: 2.1\nName: data_cleaning\nVersion: 0.1\nRequires-Dist: -r other.txt\n"
    return pull_sdist(ws, archive(files, ROOT))


@case("requirements-sdist-bare-url", 1, "lists an invalid requirement 'https://evil.example/evil-1.0.tar.gz'")
def _(ws):
    return pull_sdist(ws, valid_sdist(requires=("https://evil.example/evil-1.0.tar.gz",)))


@case("requirements-sdist-invalid-specifier", 1, "lists an invalid requirement 'pandas>>=2'")
def _(ws):
    return pull_sdist(ws, valid_sdist(requires=("pandas>>=2",)))


@case("requirements-sdist-line-break-injection", 1, "lists an invalid requirement")
def _(ws):
    return pull_sdist(ws, valid_sdist(requires=("pandas\n--index-url https://evil.example/simple",)))


@case("requirements-sdist-pkg-info-not-utf8", 1, "PKG-INFO' is not valid UTF-8 text")
def _(ws):
    files = {p: d for p, d in sdist_files().items() if p != "pyproject.toml"}
    files["PKG-INFO"] = b"Metadata-Version: 2.1\nName: data_cleaning\nVersion: 0.1\nSummary: caf\xe9\n"
    return pull_sdist(ws, archive(files, ROOT))


@case("requirements-project-requirements-in-not-utf8", 1, "requirements.in is not valid UTF-8")
def _(ws):
    return pull_sdist(ws, valid_sdist(), target=project(ws, extra={"requirements.in": b"pyyaml\nnump\xff\n"}))


@case("requirements-project-requirements-txt-not-utf8", 1, "requirements.txt is not valid UTF-8")
def _(ws):
    return pull_sdist(ws, valid_sdist(), target=project(ws, extra={"requirements.txt": b"pyyaml\nnump\xff\n"}))


# -- projects -----------------------------------------------------------------------------------------


@case("project-missing-package-name", 1, "pyproject.toml: [tool.kedro] has no package_name")
def _(ws):
    root = raw_project(ws, '[tool.kedro]\nproject_name = "spaceflights"\n')
    return root, ["package", "--all", "--project", str(root)]


@case("project-missing-package-name-found-from-its-folder", 2, "expected a pyproject.toml with [tool.kedro]")
def _(ws):
    return raw_project(ws, '[tool.kedro]\nproject_name = "spaceflights"\n'), ["package", "--all"]


@case("project-package-name-not-an-identifier", 1, "package_name 'space-flights' is not a valid Python package")
def _(ws):
    return raw_project(ws, '[tool.kedro]\npackage_name = "space-flights"\n'), ["package", "--all"]


@case("project-package-name-wrong-type", 1, "package_name 3 is not a valid Python package name")
def _(ws):
    return raw_project(ws, "[tool.kedro]\npackage_name = 3\n"), ["package", "--all"]


@case("project-source-dir-escapes", 1, "is outside the project folder")
def _(ws):
    build_file_tree(ws / "outside", {"spaceflights/__init__.py": ""})
    pyproject = '[tool.kedro]\npackage_name = "spaceflights"\nsource_dir = "../outside"\n'
    return raw_project(ws, pyproject), ["package", "--all"]


@case("project-source-dir-symlink-escapes", 1, "is outside the project folder")
def _(ws):
    build_file_tree(ws / "outside", {"spaceflights/__init__.py": ""})
    root = raw_project(ws, '[tool.kedro]\npackage_name = "spaceflights"\nsource_dir = "code"\n')
    (root / "code").symlink_to(ws / "outside", target_is_directory=True)
    return root, ["package", "--all"]


@case("project-conf-source-escapes", 1, "conf_source is outside the project folder")
def _(ws):
    return project(ws, pyproject_extra='\n[tool.micropkg]\nconf_source = "../../etc"\n'), ["package", "--all"]


@case("project-package-folder-missing", 1, "names package 'spaceflights', but")
def _(ws):
    root = project(ws)
    shutil.rmtree(root / "src/spaceflights")
    return root, ["package", "--all"]


@case("project-micropkg-path-is-a-file", 2, "src/spaceflights/pipelines/x is not a folder")
def _(ws):
    return project(ws, extra={"src/spaceflights/pipelines/x": "x = 1\n"}), ["package", "pipelines.x"]


@case("project-micropkg-without-init", 2, "is not a Python package: src/spaceflights/pipelines/x/__init__.py")
def _(ws):
    return project(ws, extra={"src/spaceflights/pipelines/x/nodes.py": "x = 1\n"}), ["package", "pipelines.x"]


@case("project-pull-destination-is-a-file", 1, "src/spaceflights/utils is a file, not a folder")
def _(ws):
    target = project(ws, extra={"src/spaceflights/utils": "x = 1\n"})
    return pull_sdist(ws, valid_sdist(), target=target, options=("--destination", "utils"))


@case("project-lock-not-toml", 1, "micropkg.lock is not valid TOML")
def _(ws):
    return pull_sdist(ws, valid_sdist(), target=project(ws, extra={"micropkg.lock": "[micropkg\n"}))


@case("project-lock-wrong-format", 1, "lock format 9 is not supported")
def _(ws):
    return pull_sdist(ws, valid_sdist(), target=project(ws, extra={"micropkg.lock": "version = 9\n"}))


# -- archives (beyond tests/hostile_archives.py) ------------------------------------------------------


@case("archive-nfc-nfd-folder-collision", 1, "after Unicode NFC normalisation")
def _(ws):
    return pull_sdist(ws, with_members(
        file_member(f"{PKG}/{nfc('café')}/__init__.py", ""),
        file_member(f"{PKG}/{nfd('café')}/nodes.py", "x = 1\n"),
    ))


@case("archive-nfc-nfd-test-file-collision", 1, "after Unicode NFC normalisation")
def _(ws):
    return pull_sdist(ws, with_members(
        file_member(f"{ROOT}/tests/{nfc('test_é')}.py", "a = 1\n"),
        file_member(f"{ROOT}/tests/{nfd('test_é')}.py", "b = 2\n"),
    ))


@case("archive-nfc-nfd-parameter-file-collision", 1, "after Unicode NFC normalisation")
def _(ws):
    return pull_sdist(ws, with_members(
        file_member(f"{PKG}/config/{nfc('paramètres')}.yml", "a: 1\n"),
        file_member(f"{PKG}/config/{nfd('paramètres')}.yml", "a: 2\n"),
    ))


@case("archive-fullwidth-package-name", 1, "is the package folder, but its name is not a valid Python identifier")
def _(ws):
    # NFKC folds U+FF44 to "d": Python would import this folder as "data_cleaning".
    files = {p.replace("data_cleaning/", "\uff44ata_cleaning/"): d for p, d in sdist_files().items()}
    return pull_sdist(ws, archive(files, ROOT))


@case("archive-case-colliding-folders", 1, "case-insensitively")
def _(ws):
    return pull_sdist(ws, with_members(
        file_member(f"{PKG}/Utils/__init__.py", ""),
        file_member(f"{PKG}/utils/__init__.py", ""),
    ))


@case("archive-case-colliding-test-files", 1, "case-insensitively")
def _(ws):
    return pull_sdist(ws, with_members(file_member(f"{ROOT}/tests/TEST_NODES.py", "x = 1\n")))


@case("archive-case-colliding-package-folder", 1, "case-insensitively")
def _(ws):
    return pull_sdist(ws, with_members(file_member(f"{ROOT}/Data_Cleaning/readme.txt", "hi\n")))


@case("archive-kelvin-sign-casefold-collision", 1, "case-insensitively")
def _(ws):
    return pull_sdist(ws, with_members(
        file_member(f"{PKG}/key.py", "a = 1\n"),
        file_member(f"{PKG}/\u212aey.py", "b = 2\n"),  # KELVIN SIGN folds to "k"
    ))


@case("archive-sharp-s-casefold-collision", 1, "case-insensitively")
def _(ws):
    return pull_sdist(ws, with_members(
        file_member(f"{PKG}/strasse.py", "a = 1\n"),
        file_member(f"{PKG}/straße.py", "b = 2\n"),
    ))


@case("archive-duplicate-pyproject", 1, "'data_cleaning-0.1/pyproject.toml' appears more than once")
def _(ws):
    return pull_sdist(ws, with_members(file_member(f"{ROOT}/pyproject.toml", '[project]\nname = "evil"\n')))


@case("archive-duplicate-pkg-info", 1, "'data_cleaning-0.1/PKG-INFO' appears more than once")
def _(ws):
    return pull_sdist(ws, with_members(file_member(f"{ROOT}/PKG-INFO", "Name: evil\nVersion: 9\n")))


@case("archive-duplicate-parameter-file", 1, "appears more than once (duplicate member name)")
def _(ws):
    return pull_sdist(ws, with_members(file_member(f"{PKG}/config/parameters_data_cleaning.yml", "x: 2\n")))


@case("archive-duplicate-folder-then-file", 1, "to be both a file and a folder")
def _(ws):
    return pull_sdist(ws, with_members(
        dir_member(f"{PKG}/helpers"),
        file_member(f"{PKG}/helpers/__init__.py", ""),
        file_member(f"{PKG}/helpers", "x = 1\n"),
    ))


@case("archive-duplicate-file-then-folder", 1, "to be both a file and a folder")
def _(ws):
    return pull_sdist(ws, with_members(dir_member(f"{PKG}/nodes.py")))


@case("archive-regular-file-named-like-tests-folder", 1, "is a regular file whose name ends in '/'")
def _(ws):
    return pull_sdist(ws, with_members(file_member(f"{ROOT}/tests/", "x = 1\n")))


@case("archive-pax-name-of-tests-folder-with-trailing-slash", 1, "is a regular file whose name ends in '/'")
def _(ws):
    return pull_sdist(ws, with_members(pax_named(file_member(f"{ROOT}/tests_", "x = 1\n"), f"{ROOT}/tests/")))


@case("archive-pax-name-with-trailing-slash", 1, "is a regular file whose name ends in '/'")
def _(ws):
    return pull_sdist(ws, with_members(
        pax_named(file_member(f"{PKG}/extra_", "x = 1\n"), f"{PKG}/extra.py/"),
    ))


@case("archive-nul-in-folder-member", 1, "contains a NUL character")
def _(ws):
    return pull_sdist(ws, with_members(pax_named(dir_member(f"{PKG}/sub"), f"{PKG}/sub\x00evil")))


@case("archive-nul-at-end-of-name", 1, "contains a NUL character")
def _(ws):
    # Truncated at the NUL, this would silently replace nodes.py.
    return pull_sdist(ws, with_members(pax_named(file_member(f"{PKG}/n.py", "x = 1\n"), f"{PKG}/nodes.py\x00")))


@case("archive-nul-in-root-folder", 1, "contains a NUL character")
def _(ws):
    return pull_sdist(ws, with_members(
        pax_named(file_member(f"{ROOT}/x", "x = 1\n"), f"{ROOT}\x00other/data_cleaning/x.py"),
    ))


# With --alias, parameters_data_cleaning.yml would be renamed onto parameters_cleaning.yml, which the sdist
# also holds: the choice of alias is the problem, so it is a usage error.
@case("archive-alias-maps-two-parameter-files-onto-one", 2, "two parameter files would both be installed as")
def _(ws):
    files = {**sdist_files(), "data_cleaning/config/parameters_cleaning.yml": b"other: 1\n"}
    return pull_sdist(ws, archive(files, ROOT), options=("--alias", "cleaning"))


# -- paths that lead out of the project, and locks that point there ----------------------------------
# Each of these wrote, read or deleted outside the project before the path guard (issue 13): the
# workspace snapshot covers ``outside/`` and ``victim.txt`` too, so "nothing changed" includes them.

VICTIM = "victim: nothing here may be read, written or deleted\n"


def outside(ws: Path, name: str, files: dict[str, str] | None = None) -> Path:
    """A folder next to the project (inside the workspace, outside the project)."""
    return build_file_tree(ws / "outside" / name, files or {"keep.txt": "outside\n"}, dedent=False)


def symlink_folder(ws: Path, relative: str, files: dict[str, str] | None = None) -> Path:
    """A fresh project whose folder ``relative`` is a symlink to a folder outside it."""
    root = project(ws)
    target = outside(ws, "target-" + relative.replace("/", "-").lstrip("."), files)
    folder = root / relative
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(target, target_is_directory=True)
    return root


@case("project-pipelines-folder-symlinked-outside", 1, "outside the project")
def _(ws):
    root = symlink_folder(ws, "src/spaceflights/pipelines", {"__init__.py": ""})
    return pull_sdist(ws, valid_sdist(), target=root, options=("--destination", "pipelines"))


@case("project-conf-base-symlinked-outside", 1, "outside the project")
def _(ws):
    return pull_sdist(ws, valid_sdist(), target=symlink_folder(ws, "conf/base", {"parameters.yml": "seed: 1\n"}))


@case("project-tests-folder-symlinked-outside", 1, "outside the project")
def _(ws):
    return pull_sdist(ws, valid_sdist(), target=symlink_folder(ws, "tests", {"__init__.py": ""}))


@case("project-package-folder-symlinked-outside", 1, "outside the project")
def _(ws):
    root = symlink_folder(ws, "src/spaceflights", {"__init__.py": '__version__ = "0.1"\n', "pipelines/__init__.py": ""})
    return pull_sdist(ws, valid_sdist(), target=root)


@case("project-state-folder-symlinked-outside", 1, "outside the project")
def _(ws):
    return pull_sdist(ws, valid_sdist(), target=symlink_folder(ws, ".micropkg", {}))


def pulled_once(ws: Path) -> Path:
    """A project with the valid sdist pulled (so it has a lock), and ``victim.txt`` beside it."""
    root = project(ws)
    (ws / "victim.txt").write_text(VICTIM, encoding="utf-8")
    sdist = ws / "data_cleaning-0.1.tar.gz"
    sdist.write_bytes(valid_sdist())
    assert run_micropkg(["pull", str(sdist), "--no-compile"], root).exit_code == 0
    return root


def lock_listing(ws: Path, listed: str) -> Path:
    """``pulled_once``, then the lock also lists ``listed`` as an installed file, with the victim's digest."""
    root = pulled_once(ws)
    lock = root / "micropkg.lock"
    digest = hashlib.sha256(VICTIM.encode()).hexdigest()
    header = '[micropkg."data_cleaning".files]\n'
    text = lock.read_text(encoding="utf-8").replace(header, f'{header}{json.dumps(listed)} = "{digest}"\n')
    lock.write_text(text, encoding="utf-8")
    return root


@case("project-lock-lists-a-parent-path", 1, 'lists "../victim.txt", which has a \'..\' component')
def _(ws):
    return pull_sdist(ws, valid_sdist(), target=lock_listing(ws, "../victim.txt"), options=("--force",))


@case("project-lock-lists-an-absolute-path", 1, "which is an absolute path")
def _(ws):
    return pull_sdist(ws, valid_sdist(), target=lock_listing(ws, str(ws / "victim.txt")), options=("--force",))


@case("project-lock-lists-a-file-outside-code-tests-and-conf", 1,
      "which is outside the project's code, tests and conf folders")
def _(ws):
    root = lock_listing(ws, "pyproject.toml")
    return pull_sdist(ws, valid_sdist(), target=root, options=("--force",))


@case("project-lock-lists-a-parent-path-dry-run-diff", 1, "is invalid and was not used")
def _(ws):
    root = lock_listing(ws, "../victim.txt")
    return pull_sdist(ws, valid_sdist(), target=root, options=("--force", "--dry-run", "--diff"))


@case("project-lock-lists-a-parent-path-status", 1, "is invalid and was not used")
def _(ws):
    return lock_listing(ws, "../victim.txt"), ["status"]


@case("project-installed-file-replaced-by-symlink-outside", 1, "outside the project")
def _(ws):
    root = pulled_once(ws)
    nodes = root / "src/spaceflights/data_cleaning/nodes.py"
    nodes.unlink()
    nodes.symlink_to(ws / "victim.txt")
    return pull_sdist(ws, valid_sdist(), target=root, options=("--force", "--dry-run", "--diff"))


@case("project-installed-file-replaced-by-symlink-outside-forced", 1, "outside the project")
def _(ws):
    root = pulled_once(ws)
    nodes = root / "src/spaceflights/data_cleaning/nodes.py"
    nodes.unlink()
    nodes.symlink_to(ws / "victim.txt")
    return pull_sdist(ws, valid_sdist(), target=root, options=("--force",))


@case("project-fifo-at-an-install-path", 1, "a FIFO, device or socket is in the way")
def _(ws):
    root = project(ws)
    folder = root / "src/spaceflights/data_cleaning"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "nodes.py")
    return pull_sdist(ws, valid_sdist(), target=root)


@case("archive-member-named-like-a-transaction-temporary", 1, "reserves for its own temporary and backup files")
def _(ws):
    return pull_sdist(ws, with_members(file_member(f"{PKG}/.nodes.py.micropkg-new", "x = 1\n")))


@case("archive-member-named-like-a-transaction-backup", 1, "reserves for its own temporary and backup files")
def _(ws):
    return pull_sdist(ws, with_members(file_member(f"{ROOT}/tests/.test_nodes.py.micropkg-backup", "x = 1\n")))
# -- metadata, nesting, special files and sizes: input that must not crash, hang or poison the lock ----


def micropkg_with_init(ws: Path, init: str) -> tuple[Path, list[str]]:
    extra = {**MICROPKG, "src/spaceflights/pipelines/x/__init__.py": init}
    return project(ws, extra=extra), ["package", "pipelines.x"]


@case("archive-metadata-delete-character-poisons-the-lock", 1, "containing the control or invisible character '\\x7f'")
def _(ws):
    # JSON escaping leaves DEL raw, and TOML forbids it: the lock written afterwards could not be read.
    return pull_sdist(ws, valid_sdist(micropkg={"module": "pipelines.data_cleaning", "source-sha256": "ab\x7fcd"}))


@case("archive-metadata-terminal-escape", 1, "containing the control or invisible character '\\x1b'")
def _(ws):
    return pull_sdist(ws, valid_sdist(micropkg={"module": "\x1b]0;owned\x07pipelines.data_cleaning"}))


@case("archive-metadata-requirement-too-long", 1, "more than the 2000 allowed")
def _(ws):
    return pull_sdist(ws, valid_sdist(requires=("pandas>=" + ".".join(["1"] * 1100),)))


@case("archive-metadata-tool-value-too-long", 1, "more than the 1000 allowed")
def _(ws):
    return pull_sdist(ws, valid_sdist(micropkg={"module": "pipelines.data_cleaning", "note": "n" * 5000}))


@case("archive-member-name-longer-than-the-os-allows", 1, "longer than the 255 bytes file systems allow")
def _(ws):
    return pull_sdist(ws, with_members(file_member(f"{PKG}/{'a' * 300}.py", "x = 1\n")))


@case("archive-pyproject-deeply-nested-toml", 1, "pyproject.toml' is nested too deeply to parse safely")
def _(ws):
    files = sdist_files()
    files["pyproject.toml"] += b"\n[tool.deep]\nx = " + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    return pull_sdist(ws, archive(files, ROOT))


@case("project-pyproject-deeply-nested-toml", 1, "pyproject.toml")
def _(ws):
    # tomlkit refuses this itself (newer versions) or recurses until our guard stops it (older ones).
    return project(ws, pyproject_extra="\nx = " + "[" * 100_000 + "]" * 100_000 + "\n"), ["package", "--all"]


@case("project-init-attribute-chain-1500-long", 1, "__init__.py is nested too deeply")
def _(ws):
    return micropkg_with_init(ws, "import spaceflights.pipelines.x\ny = spaceflights.pipelines.x" + ".b" * 1500 + "\n")


@case("project-init-binary-operation-10000-long", 1, "__init__.py is nested too deeply")
def _(ws):
    return micropkg_with_init(ws, "y = " + " + ".join(["1"] * 10_000) + "\n")


@case("project-init-deep-unary-minus", 1, "__init__.py is nested too deeply")
def _(ws):
    return micropkg_with_init(ws, "y = " + "-" * 100_000 + "1\n")


@case("project-pulled-module-deeply-nested", 1, "nodes.py is nested too deeply to rewrite its imports")
def _(ws):
    files = sdist_files()
    # ``import data_cleaning.nodes`` makes every use of ``data_cleaning`` one to rewrite, this one too.
    files["data_cleaning/nodes.py"] = ("import data_cleaning.nodes\ny = data_cleaning" + ".b" * 1500 + "\n").encode()
    return pull_sdist(ws, archive(files, ROOT))


@case("project-lock-is-a-fifo", 1, "micropkg.lock is a FIFO (named pipe), not a regular file")
def _(ws):
    root = project(ws)
    os.mkfifo(root / "micropkg.lock")  # reading it would block forever
    return pull_sdist(ws, valid_sdist(), target=root)


@case("project-pull-location-is-dev-zero", 1, "/dev/zero is a character device, not a regular file")
def _(ws):
    return project(ws), ["pull", "/dev/zero", "--no-compile"]


@case("project-pull-location-is-file-url-of-dev-zero", 1, "file:///dev/zero is not a regular file")
def _(ws):
    return project(ws), ["pull", "file:///dev/zero", "--no-compile"]


@case("project-micropkg-requirements-dangling-symlink", 1, "requirements.txt is a symlink to a missing file")
def _(ws):
    root, argv = package_requirements(ws, "pandas\n")
    requirements = root / "src/spaceflights/pipelines/x/requirements.txt"
    requirements.unlink()
    requirements.symlink_to(ws / "gone.txt")  # its requirements must not vanish from the sdist silently
    return root, argv


@case("project-micropkg-file-is-a-fifo", 1, "pipelines/x/data.bin is a FIFO (named pipe), not a regular file")
def _(ws):
    root = project(ws, extra=MICROPKG)
    os.mkfifo(root / "src/spaceflights/pipelines/x/data.bin")
    return root, ["package", "pipelines.x"]


# -- the test -----------------------------------------------------------------------------------------


def _params():
    for name, item in CASES.items():
        marks = [pytest.mark.xfail(strict=True, reason=item.xfail)] if item.xfail else []
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", list(_params()))
def test_hostile_input_is_refused_clearly_and_changes_nothing(name: str, tmp_path: Path) -> None:
    item = CASES[name]
    workspace = tmp_path / "ws"
    workspace.mkdir()
    cwd, argv = item.build(workspace)
    before = snapshot_tree(workspace)

    result = run_micropkg(argv, cwd)

    assert result.exit_code == item.exit_code, result.stdout + result.stderr
    assert item.fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert snapshot_tree(workspace) == before


def test_the_corpus_has_at_least_forty_cases_in_four_kinds() -> None:
    kinds = {name.split("-", 1)[0] for name in CASES}
    assert len(CASES) >= 40
    assert kinds == {"manifest", "requirements", "project", "archive"}


def test_a_dash_r_line_pointing_outside_the_micro_package_is_refused_and_never_read(tmp_path):
    """A ``-r`` inside the micro-package folder is followed (its file travels in the sdist);
    one that points outside is an error naming the file and line, and the file it names is
    never read, so nothing outside the micro-package leaks in."""
    secret = tmp_path / "secret-requirements.txt"
    secret.write_text("leaked-package==1.0\n", encoding="utf-8")
    root, argv = package_requirements(tmp_path, f"-r {secret}\npandas>=2\n")
    before = snapshot_tree(root)
    result = run_micropkg(argv, root)
    assert result.exit_code == 1
    assert f"requirements.txt:1: '-r {secret}' points outside the micro-package folder" in result.stderr
    assert "leaked" not in result.stdout + result.stderr
    assert snapshot_tree(root) == before


def test_a_lock_or_link_pointing_outside_is_never_read_through_even_by_dry_run_diff(tmp_path):
    """``pull --force --dry-run --diff`` printed the content of a file the lock listed outside the
    project, or that an installed file linked to. Neither is shown now, and nothing is touched."""
    for variant in ("lock", "link"):
        ws = tmp_path / variant
        ws.mkdir()
        if variant == "lock":
            root = lock_listing(ws, "../victim.txt")
        else:
            root = pulled_once(ws)
            nodes = root / "src/spaceflights/data_cleaning/nodes.py"
            nodes.unlink()
            nodes.symlink_to(ws / "victim.txt")
        (ws / "victim.txt").write_text("TOP-SECRET-CONTENT\n", encoding="utf-8")
        cwd, argv = pull_sdist(ws, valid_sdist(), target=root, options=("--force", "--dry-run", "--diff"))
        before = snapshot_tree(ws)
        result = run_micropkg(argv, cwd)
        assert result.exit_code == 1, result.stdout + result.stderr
        assert "TOP-SECRET-CONTENT" not in result.stdout + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one sentence
        assert snapshot_tree(ws) == before


def test_sync_shared_refuses_a_target_whose_lock_lists_a_path_outside_and_deletes_nothing(tmp_path):
    """A lock naming ``../../victim.txt`` made ``sync-shared`` delete the victim when the entry was
    updated. Now that target fails with one sentence naming the entry, the victim stays, and the
    other target is still synced."""
    root, argv = monorepo(tmp_path, "[[tool.micropkg.shared]]\nmicropkg = \"pipelines.data_cleaning\"\n"
                                    "source = \"projects/core\"\n")
    assert run_micropkg(argv, root).exit_code == 0
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM, encoding="utf-8")
    churn_lock = root / "projects/churn/micropkg.lock"
    digest = hashlib.sha256(VICTIM.encode()).hexdigest()
    header = '[micropkg."pipelines.data_cleaning".files]\n'
    text = churn_lock.read_text(encoding="utf-8")
    assert header in text
    churn_lock.write_text(text.replace(header, f'{header}"../../../victim.txt" = "{digest}"\n'), encoding="utf-8")
    nodes = root / "projects/core/src/core/pipelines/data_cleaning/nodes.py"
    nodes.write_text(nodes.read_text(encoding="utf-8") + "\nSTEP = 2\n", encoding="utf-8")
    churn_before = snapshot_tree(root / "projects/churn")

    result = run_micropkg([*argv, "--force"], root)

    assert result.exit_code == 1, result.stdout + result.stderr
    assert victim.read_text(encoding="utf-8") == VICTIM
    assert snapshot_tree(root / "projects/churn") == churn_before
    failure = [line for line in result.stderr.splitlines() if line.startswith("projects/churn: failed")]
    assert len(failure) == 1 and 'lists "../../../victim.txt", which has a \'..\' component' in failure[0]
    assert "projects/forecast: updated" in result.stdout
