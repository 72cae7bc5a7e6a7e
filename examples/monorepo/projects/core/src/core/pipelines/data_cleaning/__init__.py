"""Cleaning steps every project runs on raw customer records."""

from core.pipelines.data_cleaning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
__version__ = "0.3.0"
