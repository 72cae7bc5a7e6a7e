"""Help texts and short flags that several micropkg tasks share."""

from __future__ import annotations

PROJECT_HELP = "Project folder (default: the project containing the current folder)."
MONOREPO_HELP = "Act on every project of the monorepo (the default when run from the monorepo root)."
JSON_HELP = "Print the results as JSON."
ROOT_HELP = "Monorepo root (default: found from the current folder)."

VERBOSITY_HELP = {
    "quiet": "Print only errors and warnings.",
    "verbose": "Print more: every file, and the commands run.",
}
# Every task takes -q/--quiet and -v/--verbose; package and pull also take Kedro 0.19's
# short flags (kedro micropkg package/pull -e/--env, -a/--all, -d/--destination).
VERBOSITY_SHORT = {"quiet": "q", "verbose": "v"}
KEDRO_SHORT = {**VERBOSITY_SHORT, "all": "a", "env": "e", "destination": "d"}
