"""Pure functions on lists of records, so they run and test without a dataframe library."""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]


def drop_columns(records: list[Record], columns: list[str]) -> list[Record]:
    """Remove the given keys from every record."""
    return [{k: v for k, v in record.items() if k not in columns} for record in records]


def rename_columns(records: list[Record], mapping: dict[str, str]) -> list[Record]:
    """Rename keys; keys not in ``mapping`` keep their name."""
    return [{mapping.get(k, k): v for k, v in record.items()} for record in records]


def missing_share(records: list[Record], column: str) -> float:
    """Share of records where ``column`` is missing or None."""
    if not records:
        return 0.0
    return sum(1 for record in records if record.get(column) is None) / len(records)


def clean(records: list[Record], params: dict[str, Any]) -> list[Record]:
    """Drop, then rename, as configured in ``parameters_data_cleaning.yml``."""
    kept = drop_columns(records, params.get("drop_columns", []))
    return rename_columns(kept, params.get("rename", {}))
