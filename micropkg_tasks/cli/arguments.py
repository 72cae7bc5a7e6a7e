"""A positional argument that a flag can stand in for: ``package <module>`` or ``package --all``.

Invoke treats every positional argument as required, and a bare word after a
task name is taken as the next task unless a positional is still missing. We
want both ``invoke package pipelines.x`` and ``invoke package --all``. So the
positional stays positional (and required), but setting its companion flag
also marks it as given, with an empty value the task then ignores.
"""

from __future__ import annotations

from typing import Any, Mapping

from invoke import Task
from invoke.exceptions import ParseError
from invoke.parser import Argument, ParserContext


class _FillingFlag(Argument):
    """A boolean flag that, once set, also satisfies a positional argument."""

    def __init__(self, *args: Any, fills: Argument, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fills = fills

    def set_value(self, value: Any, cast: bool = True) -> None:
        super().set_value(value, cast=cast)
        if self.value and self._fills.raw_value is None:
            # An empty string is "given" to the parser, and means "not given" to the task.
            self._fills.set_value("", cast=False)


class ShortFlagTask(Task):
    """A task with the short flags we choose (``{"env": "e"}``), not Invoke's automatic ones.

    Invoke looks a flag up in the task's own flags before its core flags, so a
    task's ``-e``, ``-d`` or ``-l`` wins over Invoke's ``--echo``, ``--debug`` and
    ``--list`` after the task name, under ``micropkg`` and under plain ``invoke``.
    """

    def __init__(self, *args: Any, short_flags: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("auto_shortflags", False)
        super().__init__(*args, **kwargs)
        self.short_flags = dict(short_flags or {})

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        # Invoke pops each help text as it builds the arguments; keep them, so that the help
        # printed after a parse (``package --help``) still has every option's text.
        saved = dict(self.help)
        try:
            return super().get_arguments(ignore_unknown_help=ignore_unknown_help)
        finally:
            self.help = saved

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        short = self.short_flags.get(name)
        if short is not None:
            if short in taken_names:
                raise ValueError(f"short flag -{short} of {name!r} is already taken")
            opts["names"] = [*opts["names"], short]
        return opts


class PositionalOrFlagTask(ShortFlagTask):
    """A task whose positional arguments may be replaced by a flag (``{"module": "all"}``)."""

    def __init__(self, *args: Any, filled_by: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filled_by = dict(filled_by or {})

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        arguments = super().get_arguments(ignore_unknown_help=ignore_unknown_help)
        by_name = {argument.name: argument for argument in arguments}
        result = []
        for argument in arguments:
            filled = next((pos for pos, flag in self.filled_by.items() if flag == argument.name), None)
            if filled is None:
                result.append(argument)
                continue
            result.append(
                _FillingFlag(
                    names=argument.names,
                    kind=argument.kind,
                    default=argument.default,
                    help=argument.help,
                    positional=False,
                    optional=argument.optional,
                    incrementable=argument.incrementable,
                    attr_name=argument.attr_name,
                    fills=by_name[filled],
                )
            )
        return result


# What package and pull need when Invoke found no positional argument, in Kedro's words.
NEEDS = {
    "package": "a module path (such as pipelines.data_cleaning, or several as a,b,c), or --all to package "
    "every entry of [tool.micropkg.package] (or [tool.kedro.micropkg.package] before Kedro 1.0)",
    "pull": "a location (an sdist path, fsspec URL or name==version), or --all to pull every entry of "
    "[tool.micropkg.pull] (or [tool.kedro.micropkg.pull] before Kedro 1.0)",
    "remove": "the module path of an installed micro-package, as micropkg.lock lists it (such as pipelines.x)",
}


def _second_bare_word(tokens: list[str], context: ParserContext) -> str | None:
    """The bare word after the task's positional argument, skipping the task's flags and their
    values: the word Invoke then took for a task name it does not know."""
    if context.name not in tokens:
        return None
    bare = []
    wants_value = False
    for token in tokens[tokens.index(context.name) + 1:]:
        if wants_value:
            wants_value = False
        elif token.startswith("-"):
            # The flags lexicon resolves short aliases (-e) only through ``in`` and ``[]``.
            flag = context.flags[token] if token in context.flags else None
            wants_value = flag is not None and flag.takes_value and not flag.optional
        else:
            bare.append(token)
            if len(bare) == 2:
                return token
    return None


def usage_sentence(exc: ParseError, binary: str, tokens: list[str]) -> str | None:
    """One sentence for the parse errors a Kedro user meets first with package and pull:
    no module and no ``--all``, and several modules separated by spaces. None for any other.

    ``tokens`` are the arguments after Invoke's core options, as the parser saw them.
    """
    context = exc.context
    if context is None or context.name not in NEEDS:
        return None
    if context.missing_positional_args:
        return f"{context.name} needs {NEEDS[context.name]}"
    if context.name == "remove":
        return None
    word = _second_bare_word(tokens, context)
    given = context.args["module" if context.name == "package" else "location"].value
    if word is None or not given or given.startswith("-"):
        return None  # an unknown option took the positional's place: Invoke's own message says so
    if context.name == "package":
        return (
            f"give several modules as one comma-separated argument: "
            f"{binary} package {given},{word} (a bare word after the module is read as another task)"
        )
    return (
        f"pull takes one location per run ({word!r} was read as another task); "
        "pull each sdist separately, or list them in [tool.micropkg.pull] and run pull --all"
    )
