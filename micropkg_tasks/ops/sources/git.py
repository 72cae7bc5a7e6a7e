"""Micro-packages straight from a git repository at a ref (``git+https://...@v1#pipelines.x``).

The ref is resolved to a commit with ``git ls-remote``. The commit is fetched
shallow (``--depth=1``) and without file contents (``--filter=blob:none``) into a
bare repository in the user cache folder; then only the blobs of the project's
files are fetched, read with ``git cat-file --batch`` and written to a folder of
their own, keyed by repository and commit::

    <cache>/git/<hash of the repository URL>/repo.git      the bare repository
    <cache>/git/<hash of the repository URL>/<commit>/     the files at that commit

No work tree is ever checked out, so no smudge filter, ``.gitattributes`` driver or
checkout hook of the repository runs, and every git command is given
``core.hooksPath`` pointing nowhere, so no hook runs at all (a fetch runs the
``reference-transaction`` hook otherwise). The user's own git configuration and
credential helpers are honoured; no prompt can wait for an answer (no terminal,
``GIT_TERMINAL_PROMPT=0``) and every command has a bounded wait
(``MICROPKG_GIT_TIMEOUT``, else ``[tool.micropkg] git_timeout``, else 120 seconds). The cache path holds hashes only,
and nothing shown or stored carries the URL's credentials.

The micro-package is then packaged in memory from that folder, as a sibling
project's is. Nothing in the repository is run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from micropkg_tasks.core.change.bounded import MAX_SDIST_BYTES
from micropkg_tasks.core.errors import MicropkgError
from micropkg_tasks.core.git_url import COMMIT, GitSource, is_git_location, parse_git_location, same_repository_ref
from micropkg_tasks.core.lock import copy_state as states
from micropkg_tasks.core.lock.lockfile import LockEntry, read_project_lock
from micropkg_tasks.core.project.project import Project
from micropkg_tasks.core.quantities import amount
from micropkg_tasks.core.redaction import REDACTED, redact_text
from micropkg_tasks.ops.process_group import communicate_or_stop
from micropkg_tasks.ops.sources.cache import cache_dir

DEFAULT_TIMEOUT = 120.0  # seconds for one git command
# Given to every git command, over the user's configuration: no hook, no fsmonitor daemon
# or hook, and no attributes file outside the repository that could assign a filter driver.
# The files themselves are only ever read with ``git cat-file --batch`` (:func:`_read_blobs`),
# which applies no filter: nothing is checked out.
NOTHING_RUNS = ("-c", f"core.hooksPath={os.devnull}", "-c", "core.fsmonitor=false",
                "-c", f"core.attributesFile={os.devnull}")
TIMEOUT_VARIABLE = "MICROPKG_GIT_TIMEOUT"
TIMEOUT_SETTING = "git_timeout"  # in [tool.micropkg]; the variable wins over it
_REGULAR_MODES = (b"100644", b"100755")

# What git says, lower-cased, and the one sentence it becomes (``{repo}`` is the URL without credentials).
_FAILURES = (
    (("could not resolve host", "could not resolve hostname", "name or service not known",
      "nodename nor servname", "temporary failure in name resolution"),
     "the host of {repo} is not known (its name does not resolve)"),
    (("terminal prompts disabled", "could not read username", "could not read password", "authentication failed",
      "permission denied", "the requested url returned error: 401", "the requested url returned error: 403",
      "host key verification failed"),
     "{repo} needs credentials git could not supply (set up a credential helper, an ssh key, or a token)"),
    (("does not appear to be a git repository", "repository not found", "not found", "returned error: 404"),
     "there is no git repository at {repo}"),
    (("could not connect", "connection refused", "failed to connect", "couldn't connect"),
     "could not connect to the host of {repo}"),
)


class GitSourceError(MicropkgError):
    """A git source that cannot be read: one sentence naming the location, secrets hidden."""


def git_timeout(project: Project | None = None) -> float:
    """Seconds one git command may take: ``$MICROPKG_GIT_TIMEOUT``, else the project's
    ``[tool.micropkg] git_timeout``, else 120. A value that is not a finite positive number
    is a :class:`UsageError` naming where it was set."""
    if project is None:
        return settings_timeout({}, None)
    return settings_timeout(project.settings, project.pyproject_path)


def settings_timeout(settings: Mapping[str, Any], config_path: Path | None) -> float:
    """:func:`git_timeout` with the ``[tool.micropkg]`` table of ``config_path`` (a project's,
    or a monorepo root's for its shared entries)."""
    value = os.environ.get(TIMEOUT_VARIABLE)
    if value is not None and value.strip():
        return amount(value, TIMEOUT_VARIABLE, unit="seconds", positive=True)
    if TIMEOUT_SETTING in settings:
        where = f"{config_path} [tool.micropkg] key {TIMEOUT_SETTING!r}"
        return amount(settings[TIMEOUT_SETTING], where, unit="seconds", positive=True)
    return DEFAULT_TIMEOUT


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # no prompt for a user name or password: fail instead
    env["GCM_INTERACTIVE"] = "never"
    env["GIT_ATTR_NOSYSTEM"] = "1"  # nor the system's attributes file
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


@dataclass(frozen=True)
class _Git:
    """Runs git for one source: bounded, with no terminal, no hooks and no secret in what is shown."""

    source: GitSource
    timeout: float

    def __call__(self, *args: str, cwd: Path | None = None, stdin: bytes | None = None,
                 remote: bool = False) -> subprocess.CompletedProcess[bytes]:
        git = shutil.which("git")
        if git is None:
            raise GitSourceError(f"{self.source.display}: git is not installed (it is needed for git+ sources)")
        command = [git, *NOTHING_RUNS]
        if remote:  # the URL goes to git on the command line only, never into a file
            command += ["-c", f"remote.origin.url={self.source.url}"]
        try:
            return _run_bounded([*command, *args], cwd, stdin, self.timeout)
        except subprocess.TimeoutExpired:
            raise GitSourceError(
                f"{self.source.display}: git did not finish within {self.timeout:g} seconds "
                f"(raise [tool.micropkg] {TIMEOUT_SETTING} or set {TIMEOUT_VARIABLE} to wait longer)"
            ) from None
        except OSError as exc:
            raise GitSourceError(f"{self.source.display}: git could not be run ({exc.strerror or exc})") from None

    def failed(self, done: subprocess.CompletedProcess[bytes], doing: str) -> GitSourceError:
        """The one sentence for a git command that failed."""
        said = done.stderr.decode("utf-8", "replace")
        lowered = said.lower()
        for needles, sentence in _FAILURES:
            if any(needle in lowered for needle in needles):
                return GitSourceError(f"{self.source.display}: {sentence.format(repo=self.source.repository)}")
        last = next((line.strip() for line in reversed(said.splitlines()) if line.strip()), "no message")
        shown = redact_text(last.replace(self.source.url, self.source.repository))
        return GitSourceError(f"{self.source.display}: git could not {doing} ({shown})")


def _run_bounded(argv: list[str], cwd: Path | None, stdin: bytes | None,
                 timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run git in a session of its own (no terminal to prompt on); past ``timeout``, it and
    everything it started (ssh, a credential helper) are stopped."""
    process = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_environment(), start_new_session=True,
    )
    out, err = communicate_or_stop(process, stdin, timeout)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def _pick(lines: list[tuple[str, str]], ref: str) -> str | None:
    """The commit ``ref`` names among ``git ls-remote`` lines, tags first (as git itself looks)."""
    found = dict((name, oid) for oid, name in lines)
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", ref, f"{ref}^{{}}"):
        if name in found and (name == ref == "HEAD" or name.startswith("refs/")):
            return found[name]
    return None


def resolve_commit(source: GitSource, *, timeout: float | None = None) -> str:
    """The commit the source's ref names now (a full commit id names itself)."""
    if source.pinned:
        return source.ref
    git = _Git(source, timeout if timeout is not None else git_timeout())
    wanted = source.ref if source.ref == "HEAD" or source.ref.startswith("refs/") else None
    patterns = [wanted] if wanted else [f"refs/tags/{source.ref}", f"refs/tags/{source.ref}^{{}}",
                                        f"refs/heads/{source.ref}"]
    done = git("ls-remote", "--", source.url, *patterns)
    if done.returncode != 0:
        raise git.failed(done, "list its refs")
    lines = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        oid, _, name = line.partition("\t")
        if COMMIT.fullmatch(oid):
            lines.append((oid, name))
    commit = _pick(lines, source.ref)
    if commit is None:
        raise GitSourceError(f"{source.display}: {source.repository} has no tag or branch {source.ref!r}")
    return commit


def _repository(root: Path, git: _Git) -> Path:
    """The cache's bare repository for this source, made on first use (no URL in its config)."""
    repo = root / "repo.git"
    if (repo / "HEAD").is_file():
        return repo
    root.mkdir(parents=True, exist_ok=True)
    done = git("init", "--bare", "--quiet", "--template=", str(repo))
    for key, value in (("remote.origin.promisor", "true"), ("remote.origin.partialclonefilter", "blob:none"),
                       ("extensions.partialClone", "origin")):
        if done.returncode == 0:
            done = git("config", key, value, cwd=repo)
    if done.returncode != 0:
        raise git.failed(done, "set up its cache in the user cache folder")
    return repo


def _list_files(git: _Git, repo: Path, commit: str) -> list[tuple[str, str]]:
    """``(path, blob id)`` of every regular file of the project at ``commit`` (no content is
    needed for this, so none is fetched)."""
    source = git.source
    args = ["ls-tree", "-r", "-z", "--full-tree", commit]
    if source.path:
        args += ["--", f"{source.path}/"]
    done = git(*args, cwd=repo)
    if done.returncode != 0:
        raise git.failed(done, f"list the files of {commit[:12]}")
    files = []
    for record in done.stdout.split(b"\0"):
        head, _, path = record.partition(b"\t")
        parts = head.split()
        if len(parts) != 3 or parts[0] not in _REGULAR_MODES:
            continue  # symbolic links and submodules are not copied
        name = path.decode("utf-8", "surrogateescape")
        if name.startswith("/") or any(part in ("", ".", "..", ".git") for part in name.split("/")):
            continue
        files.append((name, parts[2].decode("ascii")))
    where = f"{source.path}/pyproject.toml" if source.path else "pyproject.toml"
    if where not in {name for name, _ in files}:
        folder = f"folder {source.path!r}" if source.path else "repository root"
        raise GitSourceError(f"{source.display}: the {folder} holds no project (no pyproject.toml) at {source.ref}")
    return files


def _read_blobs(git: _Git, repo: Path, blobs: list[str]) -> dict[str, bytes]:
    """The content of each blob, read with ``git cat-file --batch``: plumbing, so no filter runs."""
    done = git("cat-file", "--batch", cwd=repo, stdin="".join(f"{blob}\n" for blob in blobs).encode())
    if done.returncode != 0:
        raise git.failed(done, "read the project's files")
    if len(done.stdout) > MAX_SDIST_BYTES:
        raise GitSourceError(f"{git.source.display}: the project's files at {git.source.ref} are larger than the "
                             f"{MAX_SDIST_BYTES // (1 << 20)} MiB this tool reads")
    out, at, found = done.stdout, 0, {}
    while at < len(out):
        end = out.index(b"\n", at)
        header = out[at:end].split()
        if len(header) != 3 or header[1] != b"blob":
            raise GitSourceError(f"{git.source.display}: a file of the project is missing from the fetched commit")
        size = int(header[2])
        found[header[0].decode("ascii")] = out[end + 1:end + 1 + size]
        at = end + 1 + size + 1
    return found


def _write_tree(root: Path, commit: str, files: list[tuple[str, str]], contents: dict[str, bytes]) -> Path:
    """Write the files to ``<root>/<commit>``, whole or not at all (a folder renamed into place)."""
    final = root / commit
    staging = Path(tempfile.mkdtemp(prefix=f".{commit[:12]}.", dir=root))
    try:
        for name, blob in files:
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(contents[blob])
        os.replace(staging, final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not final.is_dir():
            raise
    return final


def cached_tree(source: GitSource, commit: str) -> Path | None:
    """The project folder at ``commit`` if the cache has it (git is not run)."""
    folder = cache_dir() / "git" / source.key / commit
    return folder / source.path if folder.is_dir() else None


def fetch_tree(source: GitSource, commit: str, *, timeout: float | None = None) -> Path:
    """The project folder of ``source`` at ``commit``, from the cache or fetched into it."""
    found = cached_tree(source, commit)
    if found is not None:
        return found
    git = _Git(source, timeout if timeout is not None else git_timeout())
    root = cache_dir() / "git" / source.key
    try:
        repo = _repository(root, git)
        done = git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--depth=1", "--filter=blob:none",
                   "origin", commit, cwd=repo, remote=True)
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").lower()
            if any(n in said for n in ("not our ref", "no such remote ref", "couldn't find remote ref",
                                       "unadvertised object")):
                raise GitSourceError(f"{source.display}: {source.repository} has no commit {source.ref}")
            raise git.failed(done, f"fetch {commit[:12]}")
        files = _list_files(git, repo, commit)
        blobs = sorted({blob for _, blob in files})
        done = git("-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                   "--filter=blob:none", "--stdin", "origin", cwd=repo, remote=True,
                   stdin="".join(f"{blob}\n" for blob in blobs).encode())
        if done.returncode != 0:
            raise git.failed(done, "fetch the project's files")
        tree = _write_tree(root, commit, files, _read_blobs(git, repo, blobs))
    except OSError as exc:
        raise GitSourceError(f"{source.display}: could not write to the cache folder ({exc.strerror or exc})") from None
    return tree / source.path if source.path else tree


def package_at(source: GitSource, commit: str, alias: str | None, env: str, *, timeout: float | None = None) -> bytes:
    """The sdist of the source's micro-package at ``commit``, packaged in memory as a sibling's is."""
    from micropkg_tasks.ops.package.build import build_package

    project = project_at(source, commit, timeout=timeout)
    try:
        return build_package(project, source.module, alias, env, for_distribution=False).data
    except MicropkgError as exc:
        raise GitSourceError(f"{source.display}: {str(exc).replace(str(project.root), 'the project')}") from None


def project_at(source: GitSource, commit: str, *, timeout: float | None = None) -> Project:
    """The source's project as it is at ``commit`` (its files in the cache), holding the
    source's module: a sibling project to package from, outside the user's folders."""
    from micropkg_tasks.core.project.project import load_project

    folder = fetch_tree(source, commit, timeout=timeout)
    try:
        project = load_project(folder)
    except MicropkgError as exc:
        raise GitSourceError(f"{source.display}: {str(exc).replace(str(folder), 'the project')}") from None
    module_dir = project.package_dir.joinpath(*source.module.split("."))
    if not module_dir.is_dir() and not module_dir.with_suffix(".py").is_file():
        raise GitSourceError(f"{source.display}: the project has no module {source.module} at {source.ref}")
    return project


def recorded_commit(project: Project, location: str) -> str | None:
    """The commit the project's lock records for the git ``location`` at the same ref, if any:
    a pull at an unchanged ref stays on it until ``--update``."""
    if not is_git_location(location):
        return None
    try:
        lock = read_project_lock(project)
    except MicropkgError:
        return None  # the pull itself says what is wrong with the lock
    for entry in lock.entries.values():
        if entry.commit and same_repository_ref(entry.source, location):
            return entry.commit
    return None


def lock_source(location: str) -> GitSource | None:
    """The git source a lock (or a manifest) records, None if ``location`` is not a well-formed
    one. A lock records a URL's credentials as ***: git is asked without them (its credential
    helpers answer)."""
    if not is_git_location(location):
        return None
    try:
        return parse_git_location(location.replace(f"://{REDACTED}@", "://", 1))
    except MicropkgError:
        return None


def git_upstream(location: str, installed: LockEntry, *, offline: bool = False, project: Project | None = None) -> str:
    """How a copy pulled from a git source compares with ``location`` (the declared source,
    or the one it was pulled from): in sync while its ref still names the recorded commit,
    ``upstream moved`` once it names another, ``not checked (offline)`` when git is not asked."""
    source = lock_source(location)
    if source is None:
        return states.SOURCE_MISSING
    if installed.commit is None or offline:
        return upstream_at(source, installed, None)
    timeout = git_timeout(project)  # a bad setting is one sentence (exit 2), not a state
    try:
        commit = resolve_commit(source, timeout=timeout)
    except MicropkgError:
        return states.SOURCE_MISSING
    return upstream_at(source, installed, commit)


def upstream_at(source: GitSource, installed: LockEntry, commit: str | None) -> str:
    """How a copy installed from a git source compares with ``source`` whose ref names
    ``commit`` now (None: git was not asked, offline)."""
    if installed.commit is None:
        return states.UPSTREAM_MOVED  # nothing says which commit it came from: install it again
    if commit is None:
        return states.IN_SYNC if source.pinned and source.ref == installed.commit else states.NOT_CHECKED_OFFLINE
    return states.IN_SYNC if commit == installed.commit else states.UPSTREAM_MOVED
