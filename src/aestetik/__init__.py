"""AESTETIK: multimodal spatial domains from expression, morphology and neighbourhoods."""

__version__ = "0.1.0"

from . import datasets, nn, pl, pp, tl
from ._model import AESTETIK

__all__ = ["AESTETIK", "__version__", "datasets", "nn", "pl", "pp", "tl"]
