"""Small readers and writers for YAML record files."""

from core.utils.io.readers import read_records
from core.utils.io.writers import write_records

__all__ = ["read_records", "write_records"]
__version__ = "0.2.0"
