"""The one parser for numbers that users give: counts, sizes and timeouts.

Options (``--jobs``), settings (``[tool.micropkg]``, the invoke config) and the
fs-args' timeouts all pass through here, so the same text is accepted or refused
the same way everywhere:

* a **count** (``jobs``, ``max_members``) is written in ASCII digits only: ``4``,
  never ``²``, ``٤``, ``-1``, ``4.0`` or ``1e3``;
* an **amount** (a size in MB, a timeout in seconds) is a finite number that is not
  negative: never ``nan``, ``inf`` or ``-1``.

Anything else is a :class:`UsageError` (exit 2) naming the option or key.
"""

from __future__ import annotations

import math
import re
from typing import Any

from micropkg_tasks.core.errors import UsageError

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")


def is_ascii_digits(text: str) -> bool:
    """``str.isdigit`` also takes ``²`` and ``٤``, which ``int`` then refuses: accept 0-9 only."""
    return bool(text) and text.isascii() and text.isdigit()


def count(value: Any, name: str, *, minimum: int = 0) -> int:
    """A whole number of things, at least ``minimum``; ``name`` says where it came from in the error."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and is_ascii_digits(value.strip()):
        number = int(value.strip())
    if number is None or number < minimum:
        least = "a whole number" if minimum == 0 else f"a whole number of at least {minimum}"
        raise UsageError(f"{name} must be {least}, such as 4, not {_shown(value)}")
    return number


def amount(value: Any, name: str, *, unit: str, positive: bool = False) -> float:
    """A finite size or duration, not negative (above zero with ``positive``)."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = float(value.strip())
    if number is None or not math.isfinite(number) or number < 0 or (positive and number == 0):
        kind = "a positive" if positive else "a finite, non-negative"
        raise UsageError(f"{name} must be {kind} number of {unit}, such as 30, not {_shown(value)}")
    return number


def option_count(option: str, value: Any) -> int | None:
    """A count typed on the command line, such as ``--jobs=4`` (None when not given)."""
    if value is None:
        return None
    text = str(value).strip()
    if not is_ascii_digits(text):
        raise UsageError(f"--{option} takes a whole number, such as --{option}=4, not {_shown(str(value))}")
    return int(text)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
