"""Whether two requirements on the same project can both hold, judged with ``packaging``.

Merging keeps both lines when they overlap (``pandas`` and ``pandas>=2``) and
refuses when no version satisfies both (``pyyaml<6`` and ``pyyaml>=6.0``).
"""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version


def _boundaries(specifiers: SpecifierSet) -> list[Version] | None:
    """Versions worth trying against ``specifiers``; None when some clause cannot be judged (``===``)."""
    found = [Version("0")]
    for specifier in specifiers:
        if specifier.operator == "===":
            return None
        text = specifier.version[:-2] if specifier.version.endswith(".*") else specifier.version
        try:
            version = Version(text)
        except InvalidVersion:
            return None
        release = version.release
        bumped = ".".join(str(part) for part in (*release[:-1], release[-1] + 1))
        # The boundary itself, a point just above it, and the next release along.
        found += [version, Version(".".join(str(part) for part in (*release, 0, 0, 1))), Version(bumped)]
    return found


def can_both_hold(left: Requirement, right: Requirement) -> bool:
    """Whether some version satisfies both requirements (judged with ``packaging`` specifiers).

    The allowed versions of a specifier set are intervals with points removed, so
    if any version fits, one of the boundaries, or a point just above one, does.
    A clause that cannot be judged (``===``) gives the benefit of the doubt: pip-compile decides.
    """
    if left.url is not None and right.url is not None and left.url != right.url:
        return False
    combined = left.specifier & right.specifier
    candidates = _boundaries(combined)
    if not len(combined) or candidates is None:
        return True
    return any(combined.contains(version, prereleases=True) for version in candidates)
