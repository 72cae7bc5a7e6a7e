"""core: the team's shared building blocks."""

__version__ = "0.4.0"
