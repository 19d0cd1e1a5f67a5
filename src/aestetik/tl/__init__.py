"""Tools: the AESTETIK embedding and spatial domains."""

from ._cluster import cluster
from ._embed import embed

__all__ = ["cluster", "embed"]
