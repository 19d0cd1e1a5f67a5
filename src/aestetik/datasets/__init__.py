"""Bundled data sets (generated locally, no downloads)."""

from ._synthetic import synthetic

__all__ = ["synthetic"]
