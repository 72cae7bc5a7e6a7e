"""One state per copy, whoever asks: ``status`` at the root and in the project, ``check`` at the
root and in the project, ``sync-shared --check`` (for shared copies), text and ``--json``.

Each test builds one state of the documented set on the example monorepo and asserts that
every command reports it the same way, with the same exit code for the gates.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_micropkg
from tests.helpers import build_file_tree, snapshot_tree
from tests.test_merge_sync import CHURN_NODES, LINE_30, SOURCE_NODES, edit

CHURN = "projects/churn"
SHARED = "pipelines.data_cleaning"  # churn's copy of a [[tool.micropkg.shared]] entry
PULLED = "pipelines.reporting"  # churn's copy from its own pull manifest only
STATES = ("in sync", "customised", "upstream moved", "locally edited", "conflicted", "broken", "interrupted",
          "source missing", "orphaned", "not installed", "installed from another source")


def _run(argv: list[str], folder: Path):
    result = run_micropkg(argv, folder)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _row_state(text: str, *cells: str) -> str:
    """The STATE cell of the table row holding ``cells``."""
    for line in text.splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        if all(cell in parts for cell in cells):
            found = [part for part in parts if part in STATES]
            assert len(found) == 1, line
            return found[0]
    raise AssertionError(f"no row with {cells} in:\n{text}")


def reported(monorepo: Path, project: str, module: str) -> tuple[dict[str, str], dict[str, int]]:
    """How every command reports one copy, and the exit codes of the gates."""
    inside = monorepo / project
    seen: dict[str, str] = {}
    codes: dict[str, int] = {}
    root_status = _run(["status"], monorepo)
    seen["root status"] = _row_state(root_status.stdout, project, module)
    seen["root status --json"] = next(
        r["state"] for r in json.loads(_run(["status", "--json"], monorepo).stdout)["rows"]
        if r["project"] == project and r["module"] == module
    )
    seen["project status"] = _row_state(_run(["status"], inside).stdout, module)
    seen["project status --json"] = next(
        p["state"] for p in json.loads(_run(["status", "--json"], inside).stdout)["packages"] if p["module"] == module
    )
    for where, folder in (("root", monorepo), ("project", inside)):
        text = _run(["check"], folder)
        seen[f"{where} check"] = _row_state(text.stdout, module)
        as_json = _run(["check", "--json"], folder)
        seen[f"{where} check --json"] = next(
            c["state"] for c in json.loads(as_json.stdout)["copies"] if c["project"] == project and c["module"] == module
        )
        codes[f"{where} check"] = text.exit_code
        assert as_json.exit_code == text.exit_code
    shared = json.loads(_run(["check", "--json"], monorepo).stdout)
    if next(c["shared"] for c in shared["copies"] if c["project"] == project and c["module"] == module):
        check = _run(["sync-shared", "--check", "--json"], monorepo)
        seen["sync-shared --check --json"] = next(
            s["state"] for t in json.loads(check.stdout)["targets"] for s in t["states"]
            if s["project"] == project and s["module"] == module
        )
        codes["sync-shared --check"] = check.exit_code
    return seen, codes


def assert_everywhere(monorepo: Path, project: str, module: str, state: str, code: int) -> None:
    before = snapshot_tree(monorepo)
    seen, codes = reported(monorepo, project, module)
    assert set(seen.values()) == {state}, seen
    assert set(codes.values()) == {code}, codes
    assert snapshot_tree(monorepo) == before  # every one of them only read


def _sync(monorepo: Path, *args: str) -> None:
    result = _run(["sync-shared", "--no-compile", *args], monorepo)
    assert result.exit_code == 0, result.stdout + result.stderr


@pytest.fixture
def synced(monorepo: Path) -> Path:
    _sync(monorepo)
    return monorepo


def _add_reporting(monorepo: Path) -> None:
    """A micro-package of core that only churn's pull manifest names, pulled."""
    build_file_tree(monorepo / "projects/core/src/core/pipelines/reporting", {
        "__init__.py": '"""Reporting."""\n\n__version__ = "0.1.0"\n',
        "nodes.py": "def summarise(rows):\n    return len(rows)\n",
    })
    manifest = monorepo / CHURN / "pyproject.toml"
    manifest.write_text(manifest.read_text() + '"../core#pipelines.reporting" = {destination = "pipelines"}\n')
    result = _run(["pull", "--all", "--no-compile"], monorepo / CHURN)
    assert result.exit_code == 0, result.stdout + result.stderr


# -- the states --------------------------------------------------------------------------------------


def test_in_sync_everywhere(synced):
    assert_everywhere(synced, CHURN, SHARED, "in sync", 0)


def test_not_installed_everywhere(monorepo):
    assert_everywhere(monorepo, CHURN, SHARED, "not installed", 1)


def test_upstream_moved_everywhere(synced):
    nodes = synced / SOURCE_NODES
    nodes.write_text(nodes.read_text() + "\n# upstream moves\n")
    assert_everywhere(synced, CHURN, SHARED, "upstream moved", 1)


def test_locally_edited_everywhere(synced):
    nodes = synced / CHURN / CHURN_NODES
    nodes.write_text(nodes.read_text() + "\n# a local tweak\n")
    assert_everywhere(synced, CHURN, SHARED, "locally edited", 3)


def test_conflicted_everywhere(synced):
    edit(synced / CHURN / CHURN_NODES, LINE_30, '    return rename_columns(kept, params.get("rename", {"id": "key"}))\n')
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    assert _run(["sync-shared", "--merge", "--no-compile"], synced).exit_code == 1
    assert_everywhere(synced, CHURN, SHARED, "conflicted", 3)


def test_interrupted_everywhere_and_nothing_is_rolled_back(synced):
    churn = synced / CHURN
    copy = churn / CHURN_NODES
    copy.rename(copy.with_name(f".{copy.name}.micropkg-backup"))
    copy.write_text("# half of the new version\n")
    journal = churn / ".micropkg" / "journal"
    journal.parent.mkdir(exist_ok=True)
    journal.write_text(json.dumps({"format": 1, "state": "applying", "entries": [[CHURN_NODES, True, False]],
                                   "created-dirs": []}))
    assert_everywhere(synced, CHURN, SHARED, "interrupted", 1)
    check = _run(["check"], synced)
    assert "micropkg recover" in check.stdout + check.stderr and str(journal) in check.stdout + check.stderr


def test_source_missing_everywhere(synced):
    # (A shared entry whose micro-package is gone is refused as the monorepo is read.)
    _add_reporting(synced)
    shutil.rmtree(synced / "projects/core/src/core/pipelines/reporting")
    assert_everywhere(synced, CHURN, PULLED, "source missing", 1)


def test_a_pull_manifest_copy_gone_stale_is_upstream_moved_everywhere(synced):
    _add_reporting(synced)
    assert_everywhere(synced, CHURN, PULLED, "in sync", 0)
    nodes = synced / "projects/core/src/core/pipelines/reporting/nodes.py"
    nodes.write_text(nodes.read_text() + "\n# upstream moves\n")
    assert_everywhere(synced, CHURN, PULLED, "upstream moved", 1)
    check = _run(["check"], synced / CHURN)
    assert f"{CHURN}: {PULLED} (from ../core#pipelines.reporting): upstream moved: run pull --all" in check.stdout


# -- owners ------------------------------------------------------------------------------------------


def test_each_copy_names_the_one_declaration_that_brings_it_in(synced):
    _add_reporting(synced)
    copies = {(c["project"], c["module"]): c for c in json.loads(_run(["check", "--json"], synced).stdout)["copies"]}
    # churn's manifest names data_cleaning too, from the same source: the shared entry owns it.
    assert copies[(CHURN, SHARED)]["owner"] == "[[tool.micropkg.shared]] #1 (pipelines.data_cleaning)"
    assert copies[(CHURN, PULLED)]["owner"] == f"{CHURN}/pyproject.toml pull manifest entry '../core#pipelines.reporting'"
    assert not copies[(CHURN, PULLED)]["shared"]


def test_two_declarations_of_one_copy_from_different_sources_are_a_configuration_error(synced):
    manifest = synced / CHURN / "pyproject.toml"
    text = manifest.read_text()
    manifest.write_text(text.replace('"../core#pipelines.data_cleaning" = {destination = "pipelines"}',
                                     '"../forecast#pipelines.data_cleaning" = {destination = "pipelines"}'))
    for folder in (synced, synced / CHURN):
        check = _run(["check"], folder)
        assert check.exit_code == 1
        assert "[[tool.micropkg.shared]] #1 (pipelines.data_cleaning)" in check.stderr
        assert "'../forecast#pipelines.data_cleaning'" in check.stderr
        status = _run(["status"], folder)
        assert "'../forecast#pipelines.data_cleaning'" in status.stderr


def test_a_sibling_sdist_in_dist_and_the_sibling_module_are_one_source(synced):
    built = _run(["package", "pipelines.data_cleaning"], synced / "projects/core")
    assert built.exit_code == 0, built.stderr
    [sdist] = (synced / "projects/core/dist").glob("data_cleaning-*.tar.gz")
    manifest = synced / CHURN / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('"../core#pipelines.data_cleaning"', f'"../core/dist/{sdist.name}"'))
    check = _run(["check"], synced)
    assert check.exit_code == 0, check.stdout + check.stderr
    assert check.stderr == ""


# -- the gate ----------------------------------------------------------------------------------------


def test_check_with_an_invalid_journal_refuses_in_one_sentence(synced):
    journal = synced / CHURN / ".micropkg" / "journal"
    journal.parent.mkdir(exist_ok=True)
    journal.write_text("{not json")
    before = snapshot_tree(synced)
    for folder in (synced, synced / CHURN):
        result = _run(["check"], folder)
        assert result.exit_code == 1
        assert str(journal) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert snapshot_tree(synced) == before


def test_prerelease_in_sync_fails_on_a_stale_pull_manifest_copy(synced):
    _add_reporting(synced)
    nodes = synced / "projects/core/src/core/pipelines/reporting/nodes.py"
    nodes.write_text(nodes.read_text() + "\n# upstream moves\n")
    result = _run(["prerelease", "--keep-going", "--project", CHURN], synced)
    assert result.exit_code == 1
    assert re.search(r"projects/churn\s+in sync\s+FAIL", result.stdout), result.stdout
    assert f"{PULLED} (from ../core#pipelines.reporting): upstream moved" in result.stderr


# -- broken: code that imports what the target does not have ------------------------------------------


def _add_dangling_reporting(monorepo: Path) -> None:
    """core's reporting imports core.utils, which is no micro-package of core."""
    build_file_tree(monorepo / "projects/core/src/core", {
        "pipelines/reporting/__init__.py": '__version__ = "0.1.0"\n',
        "pipelines/reporting/nodes.py": "from core.utils import normalise_columns\n\n\n"
                                        "def report(df):\n    return normalise_columns(df)\n",
        "utils/__init__.py": "def normalise_columns(df):\n    return df\n",
    })


def test_sync_shared_refuses_a_copy_that_cannot_import_and_syncs_the_rest(monorepo):
    _add_dangling_reporting(monorepo)
    config = monorepo / "pyproject.toml"
    config.write_text(config.read_text() + '\n[[tool.micropkg.shared]]\nmicropkg = "pipelines.reporting"\n'
                      'source = "projects/core"\ntargets = ["projects/churn"]\n')
    result = _run(["sync-shared", "--no-compile"], monorepo)
    assert result.exit_code == 1
    assert "core.utils (src/churn/pipelines/reporting/nodes.py:1)" in result.stderr
    assert "package manifest" in result.stderr and "--with-deps" in result.stderr
    assert not (monorepo / CHURN / "src/churn/pipelines/reporting").exists()
    assert (monorepo / CHURN / "src/churn/pipelines/data_cleaning/nodes.py").is_file()  # the rest synced
    assert (monorepo / "projects/forecast/src/forecast/pipelines/cleaning/nodes.py").is_file()
    check = _run(["check"], monorepo)
    assert check.exit_code == 1
    assert _row_state(check.stdout, CHURN, PULLED) == "not installed"


def test_pull_refuses_a_copy_that_cannot_import_and_writes_nothing(monorepo):
    _add_dangling_reporting(monorepo)
    churn = monorepo / CHURN
    before = snapshot_tree(churn)
    result = _run(["pull", "../core#pipelines.reporting", "--destination", "pipelines", "--no-compile"], churn)
    assert result.exit_code == 1
    assert "core.utils (src/churn/pipelines/reporting/nodes.py:1)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert snapshot_tree(churn) == before


def test_a_copy_installed_with_a_dangling_import_is_broken_everywhere(synced):
    # As a copy installed before pulls refused such code: the import is in the lock's own hash.
    copy = synced / CHURN / CHURN_NODES
    original = copy.read_bytes()
    copy.write_bytes(b"from core.utils import normalise_columns\n" + original)
    lock = synced / CHURN / "micropkg.lock"
    lock.write_text(lock.read_text().replace(hashlib.sha256(original).hexdigest(),
                                             hashlib.sha256(copy.read_bytes()).hexdigest()))
    assert_everywhere(synced, CHURN, SHARED, "broken", 1)
    check = _run(["check"], synced)
    assert f"core.utils ({CHURN_NODES}:1)" in check.stdout


# -- customised: local changes kept on purpose --------------------------------------------------------


LINE_3 = "from __future__ import annotations\n"


def _merge_a_local_tweak(synced: Path) -> Path:
    target = synced / CHURN / CHURN_NODES
    edit(target, LINE_3, "from __future__ import annotations  # churn: local tweak\n")
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    merged = _run(["sync-shared", "--merge", "--no-compile"], synced)
    assert merged.exit_code == 0, merged.stdout + merged.stderr
    return target


def test_customised_everywhere_after_a_merge_keeps_a_local_edit(synced):
    _merge_a_local_tweak(synced)
    assert_everywhere(synced, CHURN, SHARED, "customised", 0)


def test_a_further_upstream_edit_merges_into_a_customised_copy_again(synced):
    target = _merge_a_local_tweak(synced)
    nodes = synced / SOURCE_NODES
    nodes.write_text(nodes.read_text() + "\n\ndef newer():\n    return 2\n")
    assert_everywhere(synced, CHURN, SHARED, "upstream moved", 1)
    _sync(synced)  # no --merge needed: the copy is customised
    assert "# churn: local tweak" in target.read_text() and "def newer" in target.read_text()
    assert_everywhere(synced, CHURN, SHARED, "customised", 0)
    # An edit on top of the customised content is a local edit again.
    target.write_text(target.read_text() + "# another\n")
    assert_everywhere(synced, CHURN, SHARED, "locally edited", 3)


def test_prerelease_passes_in_sync_and_lock_clean_for_a_customised_copy(synced):
    _merge_a_local_tweak(synced)
    result = _run(["prerelease", "--keep-going", "--project", CHURN], synced)
    assert re.search(r"projects/churn\s+in sync\s+PASS", result.stdout), result.stdout + result.stderr
    assert re.search(r"projects/churn\s+lock clean\s+PASS", result.stdout), result.stdout + result.stderr


# -- orphaned: no declaration names it any more -------------------------------------------------------


def test_orphaned_everywhere_once_no_declaration_names_the_copy(synced):
    config = synced / "pyproject.toml"
    text = config.read_text()
    first = text.index("[[tool.micropkg.shared]]")
    second = text.index("[[tool.micropkg.shared]]", first + 1)
    config.write_text(text[:first] + text[second:])  # churn's shared entry is gone
    manifest = synced / CHURN / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('"../core#pipelines.data_cleaning" = {destination = "pipelines"}\n', ""))
    assert_everywhere(synced, CHURN, SHARED, "orphaned", 1)


def test_an_ad_hoc_pull_is_owned_by_nobody_and_not_orphaned(synced):
    _add_reporting(synced)
    manifest = synced / CHURN / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('"../core#pipelines.reporting" = {destination = "pipelines"}\n', ""))
    assert_everywhere(synced, CHURN, PULLED, "orphaned", 1)
    adhoc = _run(["pull", "../core#pipelines.reporting", "--destination", "pipelines", "--alias", "summary",
                  "--no-compile"], synced / CHURN)
    assert adhoc.exit_code == 0, adhoc.stderr
    assert_everywhere(synced, CHURN, "pipelines.summary", "in sync", 1)  # the orphan still fails the gate
    copies = {c["module"]: c for c in json.loads(_run(["check", "--json"], synced / CHURN).stdout)["copies"]}
    assert copies["pipelines.summary"]["owner"] == ""


def test_an_ad_hoc_pull_of_a_local_sdist_is_upstream_moved_once_that_file_changes(synced):
    """A copy pulled from a local sdist file, named relative to the project, compares with that
    file: rebuilt with other content, the copy is upstream moved everywhere; rebuilt as it was,
    the copy is in sync again."""
    core = synced / "projects/core"
    build_file_tree(core / "src/core/pipelines/reporting", {
        "__init__.py": '"""Reporting."""\n\n__version__ = "0.1.0"\n',
        "nodes.py": "def summarise(rows):\n    return len(rows)\n",
    })
    assert _run(["package", "pipelines.reporting"], core).exit_code == 0
    sdist = core / "dist/reporting-0.1.0.tar.gz"
    pulled = _run(["pull", "../core/dist/reporting-0.1.0.tar.gz", "--destination", "pipelines", "--no-compile"],
                  synced / CHURN)
    assert pulled.exit_code == 0, pulled.stderr
    assert_everywhere(synced, CHURN, PULLED, "in sync", 0)
    original = sdist.read_bytes()
    nodes = core / "src/core/pipelines/reporting/nodes.py"
    nodes.write_text(nodes.read_text() + "\n# upstream moves\n")
    assert _run(["package", "pipelines.reporting"], core).exit_code == 0
    assert sdist.read_bytes() != original
    assert_everywhere(synced, CHURN, PULLED, "upstream moved", 1)
    sdist.write_bytes(original)
    assert_everywhere(synced, CHURN, PULLED, "in sync", 0)


def test_accept_records_local_edits_as_intended_and_the_next_upstream_change_merges(synced):
    target = synced / CHURN / CHURN_NODES
    edit(target, LINE_3, "from __future__ import annotations  # churn: accepted\n")
    assert_everywhere(synced, CHURN, SHARED, "locally edited", 3)
    accepted = _run(["accept", SHARED], synced / CHURN)
    assert accepted.exit_code == 0, accepted.stderr
    assert f"accepted  {CHURN_NODES}" in accepted.stdout
    assert_everywhere(synced, CHURN, SHARED, "customised", 0)
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    _sync(synced)
    assert "# churn: accepted" in target.read_text() and 'params.get("rename") or {}' in target.read_text()
    assert_everywhere(synced, CHURN, SHARED, "customised", 0)


def test_accept_refuses_what_it_cannot_record_and_writes_nothing(synced):
    churn = synced / CHURN
    unknown = _run(["accept", "pipelines.nope"], churn)
    assert unknown.exit_code == 2 and "pipelines.nope" in unknown.stderr
    at_root = _run(["accept", SHARED], synced)
    assert at_root.exit_code == 2 and "inside a project" in at_root.stderr
    (churn / CHURN_NODES).unlink()
    before = snapshot_tree(churn)
    deleted = _run(["accept", SHARED], churn)
    assert deleted.exit_code == 2 and CHURN_NODES in deleted.stderr
    assert snapshot_tree(churn) == before


def test_merge_true_on_a_shared_entry_merges_local_edits_without_the_flag(synced):
    config = synced / "pyproject.toml"
    config.write_text(config.read_text().replace('targets = ["projects/churn"]\n', 'targets = ["projects/churn"]\nmerge = true\n', 1))
    target = synced / CHURN / CHURN_NODES
    edit(target, LINE_3, "from __future__ import annotations  # churn: local tweak\n")
    edit(synced / SOURCE_NODES, LINE_30, '    return rename_columns(kept, params.get("rename") or {})\n')
    _sync(synced)
    assert "# churn: local tweak" in target.read_text() and 'params.get("rename") or {}' in target.read_text()
    assert_everywhere(synced, CHURN, SHARED, "customised", 0)
    # Without merge = true, the same kind of edit stops the other target.
    forecast = synced / "projects/forecast/src/forecast/pipelines/cleaning/nodes.py"
    edit(forecast, LINE_3, "from __future__ import annotations  # forecast\n")
    nodes = synced / SOURCE_NODES
    nodes.write_text(nodes.read_text() + "\n# upstream again\n")
    assert _run(["sync-shared", "--no-compile"], synced).exit_code == 1


def test_merge_must_be_a_boolean(synced):
    config = synced / "pyproject.toml"
    config.write_text(config.read_text().replace('targets = ["projects/churn"]\n', 'targets = ["projects/churn"]\nmerge = "yes"\n', 1))
    result = _run(["check"], synced)
    assert result.exit_code == 1 and "'merge' must be true or false" in result.stderr


def test_merge_true_on_a_pull_manifest_entry_merges_local_edits_on_pull_all(synced):
    _add_reporting(synced)
    manifest = synced / CHURN / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace(
        '"../core#pipelines.reporting" = {destination = "pipelines"}',
        '"../core#pipelines.reporting" = {destination = "pipelines", merge = true}'))
    copy = synced / CHURN / "src/churn/pipelines/reporting/nodes.py"
    copy.write_text("# churn: local note\n" + copy.read_text())
    source = synced / "projects/core/src/core/pipelines/reporting/nodes.py"
    source.write_text(source.read_text() + "\n\ndef newer():\n    return 2\n")
    pulled = _run(["pull", "--all", "--no-compile"], synced / CHURN)
    assert pulled.exit_code == 0, pulled.stdout + pulled.stderr
    assert "# churn: local note" in copy.read_text() and "def newer" in copy.read_text()
    assert_everywhere(synced, CHURN, PULLED, "customised", 0)


def test_merge_in_a_pull_manifest_must_be_a_boolean(synced):
    manifest = synced / CHURN / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('{destination = "pipelines"}', '{destination = "pipelines", merge = "yes"}'))
    result = _run(["pull", "--all", "--no-compile"], synced / CHURN)
    assert result.exit_code == 2 and "option 'merge' must be true or false" in result.stderr


# -- check in CI ----------------------------------------------------------------------------------------


def test_check_format_github_annotates_the_file_at_fault_and_writes_the_summary(synced, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    nodes = synced / CHURN / CHURN_NODES
    nodes.write_text(nodes.read_text() + "\n# a local tweak\n")
    result = _run(["check", "--format", "github"], synced)
    assert result.exit_code == 3
    assert f"::error file={CHURN}/{CHURN_NODES},line=1,title=micropkg%3A locally edited::" in result.stdout
    text = summary.read_text()
    assert "micropkg check" in text and "| projects/churn | pipelines.data_cleaning | 0.3.0 | locally edited |" in text
    as_json = _run(["check", "--json", "--format", "github"], synced)
    json.loads(as_json.stdout)  # the annotations go to stderr then
    assert "::error file=" in as_json.stderr
