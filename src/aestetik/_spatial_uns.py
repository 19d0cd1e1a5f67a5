"""The scanpy/squidpy layout of ``uns["spatial"]``: libraries, their images and scale factors."""

from __future__ import annotations

from typing import Any

import numpy as np
from anndata import AnnData

#: Scale factor of each Space Ranger image key (any other key ``k``: ``tissue_{k}_scalef``).
SCALE_KEYS = {"hires": "tissue_hires_scalef", "lowres": "tissue_lowres_scalef"}


def libraries(adata: AnnData) -> dict[str, Any]:
    """``uns["spatial"]``, or an empty dict when there is none."""
    spatial = adata.uns.get("spatial")
    return spatial if isinstance(spatial, dict) else {}


def resolve_library(adata: AnnData, library_id: str | None) -> str:
    """``library_id`` checked against ``uns["spatial"]``, or its only library."""
    spatial = libraries(adata)
    if library_id is None:
        if len(spatial) != 1:
            raise ValueError(
                f"adata.uns['spatial'] holds several libraries {list(spatial)}: pass library_id= (or library_key=)"
            )
        return next(iter(spatial))
    if library_id not in spatial:
        raise KeyError(f"library id {library_id!r} not in adata.uns['spatial'] (available: {list(spatial)})")
    return library_id


def scale_key(image_key: str) -> str:
    """The ``scalefactors`` entry that maps full-resolution pixels to the image ``image_key``."""
    return SCALE_KEYS.get(image_key, f"tissue_{image_key}_scalef")


def choose_image(adata: AnnData, library: str, image_key: str | None, *, prefer: tuple[str, ...]) -> str | None:
    """The image key of ``library`` to use.

    ``image_key`` itself, checked (with its scale factor); without it, the first key of
    ``prefer`` that the library has, else its first image, else ``None`` (no image).
    """
    entry = libraries(adata)[library]
    images = entry.get("images") or {}
    if image_key is None:
        return next((k for k in (*prefer, *images) if k in images), None)
    if image_key not in images:
        raise KeyError(
            f"image key {image_key!r} not in adata.uns['spatial'][{library!r}]['images'] (available: {list(images)})"
        )
    factors = entry.get("scalefactors")
    if factors is None:
        raise KeyError(f"adata.uns['spatial'][{library!r}]['scalefactors'] is missing")
    if scale_key(image_key) not in factors:
        raise KeyError(
            f"scale factor {scale_key(image_key)!r} of image {image_key!r} missing in "
            f"adata.uns['spatial'][{library!r}]['scalefactors']"
        )
    return image_key


def image_and_scale(adata: AnnData, library: str, image_key: str) -> tuple[np.ndarray, float]:
    """The image array of a (checked) key and its full-resolution-to-image scale factor."""
    entry = libraries(adata)[library]
    return np.asarray(entry["images"][image_key]), float(entry["scalefactors"][scale_key(image_key)])


def spot_diameter_fullres(adata: AnnData, library: str) -> float:
    """Space Ranger's spot diameter in full-resolution pixels, with an error naming the fix."""
    factors = libraries(adata)[library].get("scalefactors") or {}
    if "spot_diameter_fullres" not in factors:
        raise KeyError(
            f"'spot_diameter_fullres' missing in adata.uns['spatial'][{library!r}]['scalefactors']; pass spot_diameter="
        )
    return float(factors["spot_diameter_fullres"])
