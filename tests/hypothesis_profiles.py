"""Hypothesis profiles for the property tests.

``ci`` (the default) is bounded and derandomised, so every run of ``.ci/run``
tries the same examples and stays well under a minute. ``thorough`` tries many
more, with a fresh random seed each run; select it with
``HYPOTHESIS_PROFILE=thorough``. Neither has a deadline: packaging and pulling
touch the disk and their timing varies with the machine.

Tests take their example counts from :func:`examples`, so one switch scales
every property test of the suite.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"

# Examples per test, by test kind and profile. "tree" tests build, package and pull
# whole projects on disk (~0.3 s each); "source" tests rewrite one file in memory.
EXAMPLES: dict[str, dict[str, int]] = {
    "ci": {"tree": 40, "alias": 40, "source": 300},
    "thorough": {"tree": 300, "alias": 300, "source": 3000},
}

_COMMON = dict(
    deadline=None,
    # Generated trees are filtered for valid, unambiguous names; that is expected work.
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
    # No "explain" phase: it re-runs a failing tree hundreds of times to point at lines.
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
)

settings.register_profile("ci", derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", derandomize=False, database=None, **_COMMON)

ACTIVE = os.environ.get(PROFILE_ENV, "ci")
if ACTIVE not in EXAMPLES:
    raise RuntimeError(f"{PROFILE_ENV}={ACTIVE!r} is not a profile; use one of {sorted(EXAMPLES)}")
settings.load_profile(ACTIVE)


def examples(kind: str) -> int:
    """How many examples a test of ``kind`` runs under the active profile."""
    return EXAMPLES[ACTIVE][kind]
