"""Run the micropkg tasks from the monorepo root or any project: `invoke --list`."""

from micropkg_tasks import tasks as ns  # noqa: F401  (invoke looks for `ns`)
