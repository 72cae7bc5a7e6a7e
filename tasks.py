"""Tasks for working on micropkg-tasks itself, plus the micropkg tasks for trying them out.

    invoke --list
"""

from invoke import task

from micropkg_tasks.cli.collection import make_collection


@task(help={"args": "Extra arguments for pytest, e.g. '-k pull -x'."})
def test(c, args=""):
    """Run the test suite."""
    c.run(f"python -m pytest {args}", pty=False)


@task(help={"args": "Extra arguments for the benchmark script."})
def bench(c, args=""):
    """Run the benchmarks and print their figures."""
    c.run(f"python benchmarks/run.py {args}", pty=False)


ns = make_collection(test, bench)
