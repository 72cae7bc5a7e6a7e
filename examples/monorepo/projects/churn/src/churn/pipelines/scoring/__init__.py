"""Churn scoring: the project's own pipeline."""
