"""Tools: the AESTETIK embedding and spatial domains."""

from ._cluster import cluster
from ._embed import embed
from ._suggest import suggest_n_clusters

__all__ = ["cluster", "embed", "suggest_n_clusters"]
