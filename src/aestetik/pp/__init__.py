"""Preprocessing: modality features and lattice coordinates."""

from ._lattice import lattice
from ._transcriptomics import transcriptomics

__all__ = ["lattice", "transcriptomics"]
