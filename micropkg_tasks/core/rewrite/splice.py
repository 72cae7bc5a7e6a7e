"""Rewrite a micro-package once, then install it into many projects by splicing.

Pulling the same sdist into several projects (``sync-shared`` does it for every
target) rewrites the same files again and again; only the name of the
project's package differs. So the files are rewritten once with a placeholder
identifier where the package name goes, and each project's copy is that
result with the placeholder replaced by its package name: no parse at all.

The rewriter (libcst) stays the only thing that finds references; the
placeholder only marks where the package name lands. A file set that already
contains the placeholder text is rewritten directly, so a splice can never
touch anything but what the rewriter wrote.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping

# A valid identifier that no real source should contain (checked for each file set).
PLACEHOLDER = "micropkg_target_pkg_b7e3c19a"
_PLACEHOLDER_BYTES = PLACEHOLDER.encode("ascii")

Rewrite = Callable[[Mapping[str, bytes], str], dict[str, bytes]]


class SplicedRewrites:
    """A bounded cache of placeholder rewrites, keyed by what determines them (sdist, module path)."""

    def __init__(self, max_entries: int = 32) -> None:
        self._max_entries = max_entries
        self._templates: OrderedDict[Hashable, dict[str, bytes]] = OrderedDict()

    def rewrite(self, key: Hashable, files: Mapping[str, bytes], rewrite: Rewrite, package_name: str) -> dict[str, bytes]:
        """``rewrite(files, package_name)``, computed once per ``key`` for every package name.

        ``rewrite`` must depend on the package name only through the module paths it
        moves references to (as the pull side does)."""
        if any(_PLACEHOLDER_BYTES in content for content in files.values()):
            return rewrite(files, package_name)
        template = self._templates.get(key)
        if template is None:
            template = rewrite(files, PLACEHOLDER)
            self._templates[key] = template
            while len(self._templates) > self._max_entries:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(key)
        name = package_name.encode("utf-8")
        return {relative: content.replace(_PLACEHOLDER_BYTES, name) for relative, content in template.items()}
