"""``python -m micropkg_tasks`` is the same as the ``micropkg`` console script."""

from micropkg_tasks.cli.program import main

main()
