"""The ``micropkg`` console script: the same tasks as the collection, without a ``tasks.py``."""

from __future__ import annotations

import os

from invoke import Program
from invoke.exceptions import Exit, ParseError

from micropkg_tasks._version import __version__
from micropkg_tasks.cli.arguments import usage_sentence
from micropkg_tasks.cli.collection import make_collection
from micropkg_tasks.cli.output import install_log_redaction
from micropkg_tasks.core.errors import EXIT_USAGE
from micropkg_tasks.core.redaction import redact_text


class MicropkgProgram(Program):
    """Invoke's Program, with usage errors exiting 2 and ``./invoke.yaml`` honoured."""

    def parse_core_args(self) -> None:
        try:
            super().parse_core_args()
        except ParseError as exc:
            raise Exit(redact_text(str(exc)), code=EXIT_USAGE) from None

    def parse_core(self, argv: list[str] | None) -> None:
        install_log_redaction()  # INVOKE_DEBUG=1 set logging up when invoke was imported
        try:
            super().parse_core(argv)
        finally:
            # ``--debug`` has just set up logging: from here on every record is redacted.
            install_log_redaction()

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            sentence = usage_sentence(exc, self.binary or "micropkg", list(self.core.unparsed))
            raise Exit(f"error: {sentence}" if sentence else redact_text(str(exc)), code=EXIT_USAGE) from None

    def parse_collection(self) -> None:
        super().parse_collection()
        # With a fixed namespace Invoke never looks for a project folder, so
        # read ``invoke.yaml`` (and friends) from where the user runs us.
        self.config.set_project_location(os.getcwd())
        self.config.load_project()


program = MicropkgProgram(
    namespace=make_collection(),
    version=__version__,
    name="micropkg",
    binary="micropkg",
    binary_names=["micropkg"],
)


def main() -> None:
    program.run()
