"""AESTETIK: multimodal spatial domains from expression, morphology and neighbourhoods."""

__version__ = "0.1.0"

from . import datasets, nn, pl, pp, tl

__all__ = ["__version__", "datasets", "nn", "pl", "pp", "tl"]
