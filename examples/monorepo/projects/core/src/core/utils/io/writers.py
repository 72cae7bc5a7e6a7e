from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_records(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write records as a YAML list, keys in insertion order."""
    Path(path).write_text(yaml.safe_dump(records, sort_keys=False), encoding="utf-8")
