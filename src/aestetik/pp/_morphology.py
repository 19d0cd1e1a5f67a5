"""``pp.morphology``: image patches under the spots, encoded and reduced by PCA (or projected on a reference's)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from anndata import AnnData
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from aestetik import _logging as logger
from aestetik import _spatial_uns as uns_spatial
from aestetik._docs import doc_copy, inject_docs
from aestetik._patches import (
    MIN_TEXTURE_SIDE_PX,
    Level,
    PatchDataset,
    choose_level,
    level_from_array,
    spatial_order,
    tiff_levels,
    whole_batch,
)
from aestetik._spatialdata import check_data, copy_data, image_levels, is_spatialdata, shape_centres
from aestetik._utils import check_int, library_ids, reference_state, standardise_per_group, state_id
from aestetik.nn._image import HistologyFeatures, as_encoder, torchvision_encoder

if TYPE_CHECKING:
    from spatialdata import SpatialData


def _encoder(encoder: Any, weights: Any, input_size: int | None) -> tuple[nn.Module, int, str]:
    if isinstance(encoder, str):
        if encoder == "histology":
            size = input_size or 64
            return HistologyFeatures(input_size=size), size, "histology"
        module, size = torchvision_encoder(encoder, weights)
        return module, input_size or size, encoder
    return as_encoder(encoder), input_size or 224, type(encoder).__name__


@dataclass
class PatchSource:
    """Where the patches of some spots come from: one image pyramid, in its finest level's pixels."""

    spots: np.ndarray  # rows of the table
    levels: list[Level]  # the image pyramid, finest level first
    centres: np.ndarray  # (n, 2) spot centres, x then y
    diameters: np.ndarray  # (n,) spot diameters
    name: str  # for messages


def _full_resolution_centres(adata: AnnData, spatial_key: str) -> np.ndarray:
    if spatial_key not in adata.obsm:
        raise KeyError(f"adata.obsm[{spatial_key!r}] (spot centres in full-resolution pixels, x then y) not found")
    return np.asarray(adata.obsm[spatial_key], dtype=np.float64)[:, :2]


def _needs_diameter(spot_diameter: float | None, what: str) -> float:
    if spot_diameter is None:
        raise ValueError(f"pass spot_diameter= (in full-resolution pixels) with an image {what}")
    return float(spot_diameter)


def _source_tiff(adata: AnnData, path: str | Path, spot_diameter, spatial_key: str) -> tuple[list[PatchSource], dict]:
    """A (pyramidal, OME-)TIFF file in full-resolution pixels, read lazily."""
    levels = tiff_levels(path)
    d = _needs_diameter(spot_diameter, "file")
    xy = _full_resolution_centres(adata, spatial_key)
    return [PatchSource(np.arange(adata.n_obs), levels, xy, np.full(adata.n_obs, d), str(path))], {"image": str(path)}


def _source_array(adata: AnnData, image: np.ndarray, spot_diameter, spatial_key: str) -> tuple[list[PatchSource], dict]:
    """An in-memory image in full-resolution pixels."""
    level = level_from_array(image)
    d = _needs_diameter(spot_diameter, "array")
    xy = _full_resolution_centres(adata, spatial_key)
    return [PatchSource(np.arange(adata.n_obs), [level], xy, np.full(adata.n_obs, d), "array")], {"image": "array"}


def _source_uns(
    adata: AnnData, image_key: str | None, library_id, library_key, spot_diameter, spatial_key: str
) -> tuple[list[PatchSource], dict]:
    """The images of ``uns["spatial"]`` (one library, or one per ``library_key`` value)."""
    if not uns_spatial.libraries(adata):
        raise KeyError(
            "no image: adata.uns['spatial'] is missing or empty (scanpy layout: uns['spatial'][library_id]"
            "['images'] and ['scalefactors']); pass image= a TIFF path or an array instead"
        )
    xy_full = _full_resolution_centres(adata, spatial_key)
    if library_key is not None:
        lib_of_spot = library_ids(adata, library_key)
        libs = list(dict.fromkeys(lib_of_spot))
    else:
        libs = [uns_spatial.resolve_library(adata, library_id)]
        lib_of_spot = np.full(adata.n_obs, libs[0], dtype=object)
    out, keys = [], set()
    for lib in libs:
        uns_spatial.resolve_library(adata, lib)
        key = image_key or uns_spatial.choose_image(adata, lib, None, prefer=("hires",))
        if key is None:
            raise KeyError(f"adata.uns['spatial'][{lib!r}]['images'] is empty: no image")
        key = uns_spatial.choose_image(adata, lib, key, prefer=())  # checks the key and its scale factor
        image, scale = uns_spatial.image_and_scale(adata, lib, key)
        d = spot_diameter if spot_diameter is not None else uns_spatial.spot_diameter_fullres(adata, lib)
        spots = np.flatnonzero(lib_of_spot == lib)
        # everything in pixels of this image (its only level)
        out.append(
            PatchSource(
                spots, [level_from_array(image)], xy_full[spots] * scale, np.full(len(spots), d * scale), f"{lib}/{key}"
            )
        )
        keys.add(key)
    return out, {"image": sorted(keys)[0] if len(keys) == 1 else sorted(keys), "library_ids": libs}


def _source_spatialdata(sdata: Any, table: AnnData, image_key, shapes_key, spot_diameter, table_key):
    """A SpatialData image (multiscale, dask-backed) and the spot shapes annotated by the table."""
    used_image_key, element, levels = image_levels(sdata, image_key)
    xy, diam, used_shapes = shape_centres(sdata, table, shapes_key, target=element)
    if spot_diameter is not None:
        diam = np.full(len(xy), float(spot_diameter))  # in full-resolution = finest-level pixels
    source = {"image_key": used_image_key, "shapes_key": used_shapes, "table_key": table_key}
    return [PatchSource(np.arange(table.n_obs), levels, xy, diam, used_image_key)], source


def _patch_sources(
    adata, table, *, image, image_key, library_id, library_key, shapes_key, spot_diameter, spatial_key, table_key
):
    """The patch sources of ``pp.morphology``'s input, checked: every spot centre inside its image."""
    if is_spatialdata(adata):
        if image is not None or library_id is not None or library_key is not None:
            raise ValueError("image=, library_id= and library_key= are for AnnData; use image_key= with SpatialData")
        sources, record = _source_spatialdata(adata, table, image_key, shapes_key, spot_diameter, table_key)
    elif isinstance(image, str | Path) and Path(image).suffix.lower() in {".tif", ".tiff", ".svs", ".ome"}:
        sources, record = _source_tiff(table, image, spot_diameter, spatial_key)
    elif isinstance(image, np.ndarray):
        sources, record = _source_array(table, image, spot_diameter, spatial_key)
    elif image is None or isinstance(image, str):
        sources, record = _source_uns(table, image, library_id, library_key, spot_diameter, spatial_key)
    else:
        raise TypeError(f"image must be an image key, a TIFF path or an array, got {type(image).__name__}")
    for src in sources:
        h, w = src.levels[0].height, src.levels[0].width
        xy = src.centres
        outside = (xy[:, 0] < 0) | (xy[:, 1] < 0) | (xy[:, 0] >= w) | (xy[:, 1] >= h)
        if outside.any():
            first = table.obs_names[src.spots[np.flatnonzero(outside)[0]]]
            raise ValueError(
                f"{int(outside.sum())} spot centres lie outside the image {src.name} ({w} x {h} px), e.g. {first!r}: "
                "check the coordinates and the scale factors"
            )
    return sources, record


@inject_docs(doc_copy=doc_copy)
def morphology(
    adata: AnnData | SpatialData,
    *,
    encoder: str | nn.Module | Callable[[torch.Tensor], torch.Tensor] = "histology",
    weights: str | Path | None = "imagenet",
    image: str | Path | np.ndarray | None = None,
    library_id: str | None = None,
    library_key: str | None = None,
    spatial_key: str = "spatial",
    table_key: str | None = None,
    image_key: str | None = None,
    shapes_key: str | None = None,
    spot_diameter: float | None = None,
    patch_scale: float = 1.0,
    input_size: int | None = None,
    n_comps: int = 15,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    key_added: str = "X_pca_morphology",
    raw_key: str | None = None,
    reference: Any = None,
    scale_per_library: bool = False,
    random_state: int = 0,
    show_progress_bar: bool = True,
    copy: bool = False,
) -> AnnData | SpatialData | None:
    """Morphology features of AESTETIK from the H&E image under each spot.

    A square patch of side ``spot_diameter * patch_scale`` (full-resolution pixels) is
    cut around every spot, converted to the image level at hand, resized to the
    encoder's ``input_size``, encoded in batches through a torch ``DataLoader`` (on
    the GPU when there is one), z-scored per feature and reduced by PCA to ``n_comps``
    components.

    Image sources:

    * **AnnData** (scanpy/squidpy layout): ``uns["spatial"][library_id]["images"][image]``
      (``"hires"`` when present, else the first image; any key with a
      ``tissue_{key}_scalef`` scale factor), spot centres in ``obsm[spatial_key]``,
      ``spot_diameter_fullres`` from the scale factors. Several slides: ``library_key``
      names the ``obs`` column holding each spot's library id.
    * ``image=`` **a (pyramidal, OME-)TIFF path**, read lazily through zarr: only
      the patches are read, from the coarsest level on which a patch still spans
      ``input_size`` pixels; or an in-memory array. Both need ``spot_diameter``.
    * **SpatialData**: ``adata.images[image_key]`` (multiscale, dask-backed: the level is
      chosen as for TIFFs, only the patches are computed), the spot shapes annotated by
      ``adata.tables[table_key]`` (Visium circles: their radius gives the diameter),
      mapped into the image's pixels through the elements' transformations.

    With ``reference`` (a slide processed before, or a trained :class:`aestetik.AESTETIK`),
    the patches are encoded as the reference's were and projected on its fitted
    z-scoring and principal axes, so that the features live in the reference's space.

    Resolution: where a patch spans fewer than 8 image pixels (a 55 um Visium spot on
    the low-resolution image covers about 4), it shows the stain's colour but not the
    tissue's texture. The function then warns, and :func:`aestetik.tl.embed` leaves
    these features out unless ``morphology_weight`` is given: on the DLPFC slides we
    measured, such features did not improve the domains and made them less steady
    ("The parameters that matter" in the documentation). Give the high- or
    full-resolution image where you have it.

    Parts of a patch outside the image are padded with white. Integer images are
    scaled by their dtype's maximum, float images are taken as ``[0, 1]``; grayscale
    images are repeated over RGB and the alpha channel of RGBA is dropped.

    Parameters
    ----------
    adata
        AnnData, or a ``spatialdata.SpatialData`` object with ``table_key``.
    encoder
        ``"histology"`` (default): :class:`aestetik.nn.HistologyFeatures`, 69 colour,
        stain and texture statistics, no weights to download; a torchvision model
        name (``"inception_v3"`` as in the paper, ``"resnet50"``, ...; needs
        ``pip install 'aestetik[vision]'``), its classifier removed; or any
        ``torch.nn.Module``/callable mapping ``(B, 3, S, S)`` float patches in
        ``[0, 1]`` to ``(B, D)`` features (e.g. a pathology foundation model you loaded).
    weights
        For torchvision names: ``"imagenet"`` (torchvision's pretrained weights,
        downloaded once when the machine can reach them), a local ``state_dict`` file,
        or ``None`` (random weights).
    image
        AnnData only: the image key in ``uns["spatial"][library_id]["images"]``, a TIFF
        path or an ``(H, W[, C])`` array in full-resolution pixels.
    library_id, library_key
        AnnData only: the library of ``uns["spatial"]`` to use (needed when there are
        several), or the ``obs`` column giving each spot's library.
    spatial_key
        ``obsm`` key of the spot centres (x, y) in full-resolution pixels (AnnData).
    table_key, image_key, shapes_key
        SpatialData only: the table to write to, the image element (the only one by
        default) and the spots' shapes (by default the element the table annotates).
    spot_diameter
        Spot diameter in full-resolution pixels; default: ``spot_diameter_fullres`` of
        the scale factors, or the shapes' radius.
    patch_scale
        Patch side as a multiple of the spot diameter.
    input_size
        Side of the patches given to the encoder (default: 64 for ``"histology"``, the
        model's own for torchvision, 224 for your own module).
    n_comps
        Principal components kept (15 as in the paper; capped by the number of spots
        and features).
    batch_size, num_workers
        DataLoader settings.
    device
        Where the encoder runs; default ``"cuda"`` when available, else the CPU.
    key_added
        ``obsm`` key of the PCA features; parameters go to ``uns[key_added.removeprefix("X_")]``.
    raw_key
        Also store the encoder's raw features in ``obsm[raw_key]``.
    reference
        An AnnData (or SpatialData table) processed by this function with the same
        ``key_added``, or a trained :class:`aestetik.AESTETIK`: encode and project as the
        reference did, fitting nothing. ``encoder`` (a built-in name), ``weights``,
        ``input_size``, ``patch_scale`` and ``n_comps`` then come from the reference; an
        encoder module of your own must be passed again as ``encoder`` (checked by its
        class name).
    scale_per_library
        With ``library_key`` (several slides): z-score the encoder's features within each
        slide before the shared PCA, so that a slide's overall staining or scan differences
        do not become principal axes. A ``reference`` fitted this way z-scores the new slide
        (each of its ``library_key`` slides) on its own.
    random_state
        Seed of the PCA.
    show_progress_bar
        Show a tqdm bar over the batches.
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes ``obsm[key_added]``,
    optionally ``obsm[raw_key]``, and ``uns[key]`` with ``params``, ``variance_ratio``,
    ``n_features``, ``state`` (the fitted z-scoring and principal axes, what ``reference``
    reads) and ``timings`` (``key = key_added.removeprefix("X_")``); for
    SpatialData, into ``adata.tables[table_key]``.

    Examples
    --------
    >>> import aestetik as ae
    >>> adata = ae.datasets.synthetic(n_spots=300)
    >>> ae.pp.morphology(adata, show_progress_bar=False)
    >>> adata.obsm["X_pca_morphology"].shape
    (300, 15)
    """
    t_start = time.perf_counter()
    table = check_data(adata, table_key)
    fitted = None
    if scale_per_library and library_key is None and reference is None:
        raise ValueError("scale_per_library=True needs library_key= (the obs column of each spot's slide)")
    if reference is not None:
        fitted, ref_params = reference_state(
            reference, key_added.removeprefix("X_"), produced_by="aestetik.pp.morphology"
        )
        encoder, weights, input_size, patch_scale = _reference_encoder(encoder, ref_params)
        n_comps = int(ref_params["n_comps"])
    n_comps = check_int("n_comps", n_comps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if not patch_scale > 0:
        raise ValueError(f"patch_scale must be positive, got {patch_scale}")
    if spot_diameter is not None and not spot_diameter > 0:
        raise ValueError(f"spot_diameter must be positive, got {spot_diameter}")
    if input_size is not None:
        input_size = check_int("input_size", input_size, minimum=1)
    if table.n_obs < 2:
        raise ValueError(f"need at least 2 spots, got {table.n_obs}")

    # ---- where each spot's patch is (validated before any encoding) ------------------------
    sources, source = _patch_sources(
        adata,
        table,
        image=image,
        image_key=image_key,
        library_id=library_id,
        library_key=library_key,
        shapes_key=shapes_key,
        spot_diameter=spot_diameter,
        spatial_key=spatial_key,
        table_key=table_key,
    )

    module, size, encoder_name = _encoder(encoder, weights, input_size)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    module = module.to(device).eval()

    # ---- encode ---------------------------------------------------------------------------
    features: np.ndarray | None = None
    sides = []
    t0 = time.perf_counter()
    n_total = table.n_obs
    bar = tqdm(total=n_total, desc=f"morphology ({encoder_name})", disable=not show_progress_bar, unit="spot")
    with torch.no_grad():
        for src in sources:
            spots, levels, xy, diam, name = src.spots, src.levels, src.centres, src.diameters, src.name
            side_full = float(np.median(diam)) * patch_scale
            level = choose_level(levels, side_full, size)
            side = max(1, int(round(side_full / level.downsample)))
            sides.append(side)
            ds = PatchDataset(level, xy / level.downsample, side)
            order = spatial_order(xy / level.downsample, side)
            loader = DataLoader(
                ds,
                batch_size=batch_size,
                sampler=order.tolist(),
                num_workers=num_workers,
                collate_fn=whole_batch,
            )
            logger.info(
                "%s: %d patches of %d px (level 1/%g) resized to %d px", name, len(ds), side, level.downsample, size
            )
            start = 0
            for batch in loader:
                batch = batch.to(device, non_blocking=True)
                if batch.shape[-1] != size:
                    batch = F.interpolate(
                        batch, size=(size, size), mode="bilinear", antialias=side > size, align_corners=False
                    )
                out = module(batch)
                if isinstance(out, (tuple, list)):
                    out = out[0]
                if not isinstance(out, torch.Tensor):
                    raise TypeError(f"the encoder returned {type(out).__name__}, expected a torch.Tensor")
                if out.ndim > 2 and all(s == 1 for s in out.shape[2:]):
                    out = out.flatten(1)
                if out.ndim != 2 or out.shape[0] != batch.shape[0]:
                    raise ValueError(
                        f"the encoder must return (batch, features) = ({batch.shape[0]}, D); got {tuple(out.shape)}"
                    )
                out = out.float().cpu().numpy()
                if features is None:
                    features = np.empty((n_total, out.shape[1]), dtype=np.float32)
                elif out.shape[1] != features.shape[1]:
                    raise ValueError(f"the encoder returned {out.shape[1]} features after {features.shape[1]}")
                features[spots[order[start : start + len(out)]]] = out
                start += len(out)
                bar.update(len(out))
    bar.close()
    assert features is not None
    t_encode = time.perf_counter() - t0
    if (narrowest := min(sides)) < MIN_TEXTURE_SIDE_PX:
        logger.warning(
            f"pp.morphology: a spot's patch spans {narrowest} pixels of the image (fewer than "
            f"{MIN_TEXTURE_SIDE_PX}): the features hold colour, not tissue texture, and tl.embed will not use them "
            "unless morphology_weight is given; a higher-resolution image gives more"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError("the encoder returned NaN or infinite features")

    # ---- PCA (or the reference's) -----------------------------------------------------------
    t0 = time.perf_counter()
    per_library = scale_per_library if fitted is None else bool(fitted.get("per_library", False))
    pca_input = features  # the encoder's features stay as they are for raw_key
    if per_library:
        libs = library_ids(table, library_key) if library_key is not None else np.zeros(table.n_obs, dtype=str)
        pca_input = standardise_per_group(features, libs)  # z-scored per slide
    if fitted is None:
        pcs, state, variance_ratio = _fit_pca(pca_input, n_comps, table.n_obs, random_state)
        state["per_library"] = bool(per_library)
        state["id"] = state_id(state)
    else:
        pcs, state = project_features(pca_input, fitted), fitted
        variance_ratio = np.asarray(fitted.get("variance_ratio", []), dtype=np.float64)
    n_used = pcs.shape[1]
    t_pca = time.perf_counter() - t0

    # ---- write ----------------------------------------------------------------------------
    if copy:
        adata, table = copy_data(adata, table_key)
    key = key_added.removeprefix("X_")
    table.obsm[key_added] = pcs
    if raw_key is not None:
        table.obsm[raw_key] = features
    table.uns[key] = {
        "params": {
            "encoder": encoder_name,
            "encoder_builtin": isinstance(encoder, str),
            "weights": None
            if weights is None or not isinstance(encoder, str) or encoder == "histology"
            else str(weights),
            "input_size": size,
            "patch_scale": float(patch_scale),
            "patch_side_px": sides,
            "spot_diameter": spot_diameter,
            "n_comps": n_used,
            "random_state": random_state,
            "raw_key": raw_key,
            "scale_per_library": bool(per_library),
            "reference": None if fitted is None else fitted["id"],
            **source,
        },
        "n_features": int(features.shape[1]),
        "variance_ratio": variance_ratio,
        "state": state,
        "timings": {"encode": t_encode, "pca": t_pca, "total": time.perf_counter() - t_start},
    }
    logger.info(
        "added obsm[%r] (%d PCs of %d %s features) in %.1f s",
        key_added,
        n_used,
        features.shape[1],
        encoder_name,
        time.perf_counter() - t_start,
    )
    return adata if copy else None


def _reference_encoder(encoder: Any, params: dict) -> tuple[Any, Any, int, float]:
    """``(encoder, weights, input_size, patch_scale)`` that made a reference's morphology features."""
    name = params["encoder"]
    if not params.get("encoder_builtin", True):  # the user's own module: it must be passed again
        if isinstance(encoder, str) or type(encoder).__name__ != name:
            raise ValueError(
                f"the reference's features were made by your encoder {name!r}: pass that module again as encoder="
            )
        return encoder, None, int(params["input_size"]), float(params["patch_scale"])
    return name, params.get("weights"), int(params["input_size"]), float(params["patch_scale"])


def _fit_pca(features: np.ndarray, n_comps: int, n_obs: int, random_state: int):
    """Z-score the features over the spots and keep ``n_comps`` principal components.

    Returns the components, the fitted state (what :func:`project_features` applies) and the
    explained variance ratios.
    """
    from sklearn.decomposition import PCA

    std = features.std(0)
    keep = std > 1e-8 * max(1.0, float(np.abs(features).max()))
    if keep.sum() == 0:
        raise ValueError("all morphology features are constant over the spots: the patches look the same")
    mean = features[:, keep].mean(0)
    z = (features[:, keep] - mean) / std[keep]
    n_used = min(n_comps, z.shape[1], n_obs - 1)
    if n_used < n_comps:
        logger.warning("n_comps=%d capped at %d (features or spots)", n_comps, n_used)
    pca = PCA(n_components=n_used, random_state=random_state, svd_solver="full" if z.shape[1] <= 1000 else "auto")
    pcs = pca.fit_transform(z).astype(np.float32)
    state = {
        "keep": keep,
        "mean": mean.astype(np.float64),
        "std": std[keep].astype(np.float64),
        "pca_mean": pca.mean_.astype(np.float64),
        "components": pca.components_.astype(np.float64),
        "variance_ratio": pca.explained_variance_ratio_.astype(np.float64),
    }
    state["id"] = state_id(state)
    return pcs, state, pca.explained_variance_ratio_.astype(np.float64)


def project_features(features: np.ndarray, state: dict) -> np.ndarray:
    """Encoder features of new spots in a fitted morphology space (z-scoring, then principal axes)."""
    keep = np.asarray(state["keep"], dtype=bool)
    if features.shape[1] != len(keep):
        raise ValueError(f"the encoder gave {features.shape[1]} features, the reference's {len(keep)}")
    z = (features[:, keep] - np.asarray(state["mean"])) / np.asarray(state["std"])
    return ((z - np.asarray(state["pca_mean"])) @ np.asarray(state["components"]).T).astype(np.float32)
