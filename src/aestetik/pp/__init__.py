"""Preprocessing: modality features and lattice coordinates."""

from ._lattice import lattice
from ._morphology import morphology
from ._transcriptomics import transcriptomics

__all__ = ["lattice", "morphology", "transcriptomics"]
