"""The ``micropkg`` console script: the same tasks as the collection, without a ``tasks.py``."""

from __future__ import annotations

import os
from typing import Any, Callable

from invoke import Config, Program
from invoke.config import AmbiguousMergeError
from invoke.exceptions import Exit, ParseError, UncastableEnvVar

from micropkg_tasks._version import __version__
from micropkg_tasks.cli.arguments import usage_sentence
from micropkg_tasks.cli.collection import make_collection
from micropkg_tasks.cli.options import DEFAULTS
from micropkg_tasks.cli.output import install_log_redaction
from micropkg_tasks.core.errors import EXIT_USAGE
from micropkg_tasks.core.redaction import redact_text


def _config_file_error(path: str, reason: str) -> Exit:
    return Exit(f"error: the invoke config file {path} {reason}", code=EXIT_USAGE)


def _read_config_file(path: str, load: Callable[[str], Any]) -> Any:
    """One sentence naming the file for an invoke config file that cannot be used, instead of the
    loader's traceback. The file's text is never shown: it may hold secrets."""
    from invoke.util import yaml  # the YAML module Invoke loads its config files with

    try:
        data = load(path)
    except FileNotFoundError:
        raise  # Invoke's loaders skip a file that is not there
    except IsADirectoryError:
        raise _config_file_error(path, "is a folder, not a file") from None
    except PermissionError:
        raise _config_file_error(path, "cannot be read: permission denied") from None
    except OSError as exc:
        raise _config_file_error(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise _config_file_error(path, f"is not valid YAML{where}") from None
    except (ValueError, UnicodeDecodeError):
        reason = {".json": "is not valid JSON", ".py": "stops with an error when run"}
        raise _config_file_error(path, reason.get(os.path.splitext(path)[1], "is not valid text")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _config_file_error(path, "must hold a mapping of settings at the top level")
    section = data.get("micropkg")
    if section is not None and not isinstance(section, dict):
        raise _config_file_error(path, "key 'micropkg' must be a mapping of settings")
    return data


class MicropkgConfig(Config):
    """Invoke's Config, with a config file or variable it cannot use named in one sentence."""

    def _load_yaml(self, path: Any) -> Any:
        return _read_config_file(str(path), super()._load_yaml)

    _load_yml = _load_yaml

    def _load_json(self, path: Any) -> Any:
        return _read_config_file(str(path), super()._load_json)

    def _load_py(self, path: Any) -> Any:
        def load(name: str) -> Any:
            try:
                return Config._load_py(self, name)
            except (OSError, ValueError):
                raise
            except Exception as exc:  # the file is Python: any error it raises is its own
                raise ValueError(type(exc).__name__) from exc

        return _read_config_file(str(path), load)

    def merge(self) -> None:
        try:
            super().merge()
        except AmbiguousMergeError:
            files = [str(p) for p in (self._system_path, self._user_path, self._project_path, self._runtime_path) if p]
            raise Exit(
                "error: the invoke config files (" + ", ".join(files or ["none found"]) + ") set a key to a value "
                "where another level has a section of settings",
                code=EXIT_USAGE,
            ) from None

    def load_shell_env(self) -> None:
        try:
            super().load_shell_env()
        except (ValueError, UncastableEnvVar):
            raise Exit(f"error: {_bad_environment_variable(self._env_prefix or 'INVOKE_')}", code=EXIT_USAGE) from None


def _bad_environment_variable(prefix: str) -> str:
    for key, default in DEFAULTS.items():
        name = f"{prefix}MICROPKG_{key.upper()}"
        if name in os.environ and isinstance(default, (int, float)) and not isinstance(default, bool):
            try:
                type(default)(os.environ[name])
            except ValueError:
                return f"environment variable {name} must be a number"
    return f"an {prefix}* environment variable has a value its setting cannot take"


class MicropkgProgram(Program):
    """Invoke's Program, with usage errors exiting 2, ``./invoke.yaml`` honoured, and a config
    file that cannot be used named in one sentence."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("config_class", MicropkgConfig)
        super().__init__(*args, **kwargs)

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
