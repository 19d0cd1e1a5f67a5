"""Plots: spatial domains over the H&E image, training curves."""

from ._spatial import loss, spatial

__all__ = ["loss", "spatial"]
