from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scanpy as sc
from anndata import AnnData
from scipy import sparse
from threadpoolctl import threadpool_limits

from aestetik._spatialdata import check_data, copy_data
from aestetik._utils import check_int

logger = logging.getLogger("aestetik")


def _counts(adata: AnnData, layer: str | None):
    if layer is not None:
        if layer not in adata.layers:
            raise KeyError(f"layer {layer!r} not found in adata.layers (available: {list(adata.layers.keys())})")
        x = adata.layers[layer]
    else:
        x = adata.X
        if x is None:
            raise KeyError("adata.X is empty; pass the layer that holds raw counts with `layer=`")
    values = x.data if sparse.issparse(x) else np.asarray(x)
    if values.size and not np.all(np.isfinite(values)):
        raise ValueError(
            f"{f'adata.layers[{layer!r}]' if layer else 'adata.X'} has NaN/inf values; raw counts expected"
        )
    if values.size and (values.min() < 0 or np.any(values != np.round(values))):
        raise ValueError(
            f"{f'adata.layers[{layer!r}]' if layer else 'adata.X'} does not hold raw counts (negative or "
            "non-integer values); pass the raw-count layer with `layer=`"
        )
    return x


def transcriptomics(
    adata: AnnData | Any,
    *,
    layer: str | None = None,
    n_comps: int = 15,
    min_cells: int = 10,
    min_variance_norm: float | None = None,
    n_top_genes: int = 3000,
    select_genes: bool | None = None,
    target_sum: float = 1e4,
    max_value: float = 10.0,
    key_added: str = "X_pca_transcriptomics",
    random_state: int = 0,
    table_key: str | None = None,
    copy: bool = False,
) -> AnnData | Any | None:
    """Expression features of AESTETIK from raw counts.

    Genes seen in fewer than ``min_cells`` spots are dropped; on whole-transcriptome
    data the ``n_top_genes`` most variable genes are kept (scanpy's ``seurat_v3`` ranking
    on the counts; the published method keeps those whose normalised variance is at
    least 1, ``min_variance_norm=1.0``); the counts are normalised
    to ``target_sum`` per spot, log1p-transformed, scaled (clipped at ``max_value``)
    and reduced by PCA. All of this runs on a private copy of the counts: ``adata.X``
    and the layers are never modified.

    Parameters
    ----------
    adata
        Annotated data with raw counts (sparse or dense) in ``X`` or ``layers[layer]``.
    layer
        Layer with the raw counts; ``None`` uses ``X``.
    n_comps
        Number of principal components.
    min_cells
        Minimum number of spots in which a gene must be detected.
    min_variance_norm
        If set, keep the genes whose ``seurat_v3`` normalised variance is at least this
        (the published rule: ``1.0``) instead of the ``n_top_genes`` most variable.
    n_top_genes
        Number of highly variable genes kept (all of them when there are fewer). See
        "The parameters that matter" in the documentation for the measurements.
    select_genes
        Select highly variable genes. ``None``: only when more than 1000 genes pass
        ``min_cells`` (whole-transcriptome data); targeted panels of imaging-based data
        were chosen by design and keep all their genes.
    target_sum
        Total counts per spot after normalisation.
    max_value
        Clip value after scaling to unit variance.
    key_added
        ``obsm`` key of the result; the parameters go to ``uns[key_added.removeprefix("X_")]``
        and the selected genes to ``var[f"{key}_genes"]``.
    random_state
        Seed of the PCA solver.
    table_key
        For a ``spatialdata.SpatialData`` object: the table to read and write (as squidpy).
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the copy when ``copy=True``. Writes ``obsm[key_added]`` (``(n_obs, n_comps)``),
    ``var[f"{key}_genes"]`` and ``uns[key]["params"]`` with ``key = key_added.removeprefix("X_")``.

    Examples
    --------
    >>> import aestetik as ae
    >>> adata = ae.datasets.synthetic(n_spots=300)
    >>> ae.pp.transcriptomics(adata)
    >>> adata.obsm["X_pca_transcriptomics"].shape
    (300, 15)
    """
    data, adata = adata, check_data(adata, table_key)
    n_comps = check_int("n_comps", n_comps, minimum=1)
    min_cells = check_int("min_cells", min_cells, minimum=0)
    n_top_genes = check_int("n_top_genes", n_top_genes, minimum=2)
    counts = _counts(adata, layer)
    if adata.n_obs <= n_comps:
        raise ValueError(f"n_comps={n_comps} needs more than {n_comps} spots, got {adata.n_obs}")

    tmp = AnnData(X=counts.copy() if sparse.issparse(counts) else np.array(counts, copy=True))
    tmp.X = tmp.X.astype(np.float32)
    tmp.obs_names = adata.obs_names
    tmp.var_names = adata.var_names
    keep_cells = np.asarray((tmp.X > 0).sum(axis=0)).ravel() >= min_cells
    tmp = tmp[:, keep_cells].copy()
    if tmp.n_vars == 0:
        raise ValueError(f"No gene is detected in at least min_cells={min_cells} spots")
    if select_genes is None:
        select_genes = tmp.n_vars > 1000
    if select_genes:
        # numba's OpenMP layer sets the thread count of the process-wide OpenMP runtime (torch's
        # included) to every core; threadpoolctl puts the caller's setting back afterwards
        with threadpool_limits(limits=None):
            sc.pp.highly_variable_genes(tmp, flavor="seurat_v3", n_top_genes=tmp.n_vars)
        if min_variance_norm is not None:
            selected = tmp.var["variances_norm"].to_numpy() >= min_variance_norm
        else:
            order = np.argsort(-tmp.var["variances_norm"].to_numpy(), kind="stable")
            selected = np.zeros(tmp.n_vars, dtype=bool)
            selected[order[:n_top_genes]] = True
    else:
        selected = np.ones(tmp.n_vars, dtype=bool)
    n_genes = int(selected.sum())
    if n_genes < 2:
        raise ValueError(
            f"Only {n_genes} gene(s) have a normalised variance >= {min_variance_norm}; lower `min_variance_norm`"
        )
    if n_genes <= n_comps:  # small targeted panels (imaging-based data)
        logger.warning(
            "only %d genes selected: using %d principal components instead of %d", n_genes, n_genes - 1, n_comps
        )
    n_used = min(n_comps, n_genes - 1)
    tmp = tmp[:, selected].copy()
    with threadpool_limits(limits=None):  # as above
        sc.pp.normalize_total(tmp, target_sum=target_sum)
        sc.pp.log1p(tmp)
        if sparse.issparse(tmp.X):  # scaling centres the data, hence densifies it anyway
            tmp.X = tmp.X.toarray()
        sc.pp.scale(tmp, max_value=max_value)
        sc.pp.pca(tmp, n_comps=n_used, random_state=random_state)

    if copy:
        data, adata = copy_data(data, table_key)
    key = key_added.removeprefix("X_")
    adata.obsm[key_added] = np.asarray(tmp.obsm["X_pca"], dtype=np.float32)
    genes = np.zeros(adata.n_vars, dtype=bool)
    genes[np.flatnonzero(keep_cells)[selected]] = True
    adata.var[f"{key}_genes"] = genes
    adata.uns[key] = {
        "params": {
            "layer": layer,
            "n_comps": n_comps,
            "min_cells": min_cells,
            "min_variance_norm": min_variance_norm,
            "n_top_genes": n_top_genes,
            "select_genes": select_genes,
            "target_sum": target_sum,
            "max_value": max_value,
            "random_state": random_state,
        },
        "n_genes": n_genes,
        "n_comps": n_used,
        "variance_ratio": np.asarray(tmp.uns["pca"]["variance_ratio"]),
    }
    logger.info(
        "added obsm[%r] (%d PCs of %d genes), var[%r], uns[%r]", key_added, n_used, n_genes, f"{key}_genes", key
    )
    return data if copy else None
