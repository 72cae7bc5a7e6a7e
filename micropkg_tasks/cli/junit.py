"""``prerelease --junit-xml FILE``: the report as JUnit XML, which GitLab, Jenkins, Azure
Pipelines and Buildkite read as test results.

One test suite per project, one test case per check: a failing check carries a
``<failure>`` with its reason (and its details as the body), a check that did not
run is ``<skipped>``.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import TYPE_CHECKING

from micropkg_tasks.core.change.atomic import write_atomically
from micropkg_tasks.core.errors import UsageError
from micropkg_tasks.core.redaction import redact_text

if TYPE_CHECKING:
    from micropkg_tasks.ops.inspect.prerelease import PrereleaseReport


def junit_tree(result: PrereleaseReport) -> ElementTree.ElementTree:
    suites = ElementTree.Element("testsuites", name="micropkg prerelease")
    by_project: dict[str, ElementTree.Element] = {}
    for check in result.checks:
        suite = by_project.get(check.project)
        if suite is None:
            suite = by_project[check.project] = ElementTree.SubElement(suites, "testsuite", name=check.project)
        case = ElementTree.SubElement(
            suite, "testcase", classname=check.project, name=check.check, time=f"{check.seconds:.3f}"
        )
        if check.status == "fail":
            failure = ElementTree.SubElement(case, "failure", message=redact_text(check.reason), type="prerelease")
            failure.text = redact_text("\n".join((check.reason, *check.details)))
        elif check.status != "pass":
            ElementTree.SubElement(case, "skipped", message=redact_text(check.reason))
        elif check.reason:
            ElementTree.SubElement(case, "system-out").text = redact_text(check.reason)
    total = {"tests": 0, "failures": 0, "skipped": 0, "time": 0.0}
    for suite in by_project.values():
        cases = suite.findall("testcase")
        counts = {
            "tests": len(cases),
            "failures": sum(1 for case in cases if case.find("failure") is not None),
            "skipped": sum(1 for case in cases if case.find("skipped") is not None),
            "time": sum(float(case.get("time", "0")) for case in cases),
        }
        for key, value in counts.items():
            suite.set(key, f"{value:.3f}" if key == "time" else str(value))
            total[key] += value
        suite.set("errors", "0")
    for key, value in total.items():
        suites.set(key, f"{value:.3f}" if key == "time" else str(int(value)))
    suites.set("errors", "0")
    return ElementTree.ElementTree(suites)


def junit_target(path: str) -> Path:
    """The file ``--junit-xml`` names, checked before any work is done."""
    target = Path(path).resolve()
    if target.is_dir():
        raise UsageError(f"--junit-xml {path} is a folder; give a file name such as prerelease.xml")
    if not target.parent.is_dir():
        raise UsageError(f"--junit-xml {path}: the folder {target.parent} does not exist")
    return target


def write_junit(result: PrereleaseReport, path: str) -> None:
    """Write the report to ``path`` whole or not at all (a temporary file, then a rename)."""
    target = junit_target(path)
    tree = junit_tree(result)
    ElementTree.indent(tree)
    document = io.BytesIO()
    tree.write(document, encoding="utf-8", xml_declaration=True)
    write_atomically(target, document.getvalue())
