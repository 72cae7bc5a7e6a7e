from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read a YAML list of mappings; an empty file is an empty list."""
    loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if loaded is None:
        return []
    if not isinstance(loaded, list):
        raise ValueError(f"{path}: expected a list of records")
    return loaded
