"""A name for one run (one task, one ``sync_shared`` call), for the caches that run owns.

A cache that lives in a process longer than one call (a worker, a caller that runs several
tasks) keys its entries by the run that made them: a run reuses its own work, and never
serves one run what another one computed. The oldest entries make room for new ones.
"""

from __future__ import annotations

import uuid


def new_run() -> str:
    """A fresh run name: plain text, so it travels to worker processes with the jobs."""
    return uuid.uuid4().hex
