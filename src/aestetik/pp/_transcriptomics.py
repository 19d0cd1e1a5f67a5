"""``pp.transcriptomics``: expression features from raw counts (or projected on a reference's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scanpy as sc
from anndata import AnnData
from scipy import sparse
from threadpoolctl import threadpool_limits

from aestetik import _logging as logger
from aestetik._docs import doc_copy, doc_table_key, inject_docs
from aestetik._spatialdata import check_data, copy_data
from aestetik._utils import check_int, reference_state, sample_codes, standardise_per_group, state_id

if TYPE_CHECKING:
    from spatialdata import SpatialData


#: Spots read at a time when large dense counts are checked and made sparse.
DENSE_BLOCK_ROWS = 16_384
#: Dense counts from this size on get a warning: they hold every zero, which sparse counts do not.
DENSE_WARN_BYTES = 2 * 1024**3


def _check_counts(values: np.ndarray, name: str) -> None:
    if values.size and not np.all(np.isfinite(values)):
        raise ValueError(f"{name} has NaN/inf values; raw counts expected")
    if values.size and (values.min() < 0 or np.any(values != np.round(values))):
        raise ValueError(
            f"{name} does not hold raw counts (negative or non-integer values); pass the raw-count layer with `layer=`"
        )


def _dense_to_sparse(x: Any, name: str) -> sparse.csr_matrix:
    """Large dense counts, checked and copied into a sparse matrix block by block.

    Checking or copying the whole matrix at once would hold one or two more dense copies
    of it (1M spots x 18k genes: 67 GiB each as float32); block by block, the extra memory
    is one block plus the non-zeros.
    """
    n_obs, n_vars = x.shape
    gib = n_obs * n_vars * 4 / 1024**3
    message = (
        f"{name} is a dense {n_obs:,} x {n_vars:,} matrix ({gib:.1f} GiB as float32): pp.transcriptomics reads it "
        f"{DENSE_BLOCK_ROWS:,} spots at a time into a sparse copy. Raw counts are mostly zeros; stored sparse "
        "(`adata.X = scipy.sparse.csr_matrix(adata.X)`) they take a fraction of that memory."
    )
    if x.nbytes >= DENSE_WARN_BYTES:  # the memory the dense matrix itself holds
        logger.warning(message)
    else:
        logger.info(message)
    blocks = []
    for start in range(0, n_obs, DENSE_BLOCK_ROWS):
        block = np.asarray(x[start : start + DENSE_BLOCK_ROWS])
        _check_counts(block, name)
        blocks.append(sparse.csr_matrix(block, dtype=np.float32))
    return sparse.vstack(blocks, format="csr")


def _counts(adata: AnnData, layer: str | None):
    if layer is not None:
        if layer not in adata.layers:
            raise KeyError(f"layer {layer!r} not found in adata.layers (available: {list(adata.layers.keys())})")
        x = adata.layers[layer]
    else:
        x = adata.X
        if x is None:
            raise KeyError("adata.X is empty; pass the layer that holds raw counts with `layer=`")
    name = f"adata.layers[{layer!r}]" if layer else "adata.X"
    if sparse.issparse(x):
        _check_counts(x.data, name)
        return x
    if np.prod(x.shape) > DENSE_MAX_VALUES:
        return _dense_to_sparse(x, name)
    x = np.asarray(x)
    _check_counts(x, name)
    return x


@inject_docs(doc_table_key=doc_table_key, doc_copy=doc_copy)
def transcriptomics(
    adata: AnnData | SpatialData,
    *,
    layer: str | None = None,
    n_comps: int = 15,
    min_cells: int = 10,
    min_variance_norm: float | None = None,
    n_top_genes: int = 3000,
    select_genes: bool | None = None,
    target_sum: float = 1e4,
    max_value: float = 10.0,
    library_key: str | None = None,
    key_added: str = "X_pca_transcriptomics",
    reference: Any = None,
    random_state: int = 0,
    table_key: str | None = None,
    copy: bool = False,
) -> AnnData | SpatialData | None:
    """Expression features of AESTETIK from raw counts.

    Genes seen in fewer than ``min_cells`` spots are dropped; on whole-transcriptome
    data the ``n_top_genes`` most variable genes are kept (scanpy's ``seurat_v3`` ranking
    on the counts; the published method keeps those whose normalised variance is at
    least 1, ``min_variance_norm=1.0``); the counts are normalised
    to ``target_sum`` per spot, log1p-transformed, scaled (clipped at ``max_value``)
    and reduced by PCA. Sparse counts of more than 10^8 spots x genes (large slides) are
    never densified: the genes are scaled as a sparse matrix, the PCA centres them
    implicitly, and the values are not clipped. All of this runs on a private copy of the counts: ``adata.X``
    and the layers are never modified.

    With ``reference`` (a slide processed before, or a trained :class:`aestetik.AESTETIK`),
    nothing is fitted: the reference's genes, scaling and principal axes are applied to
    this slide's counts, so that its features live in the same space as the reference's
    (what a model trained on the reference needs to embed this slide).

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
    library_key
        ``obs`` column of each spot's slide (the batch), for several slides processed
        together: genes are ranked by their variance within slides, and every slide is
        centred and scaled on its own before the shared PCA, so that a gene's offset from
        one slide to the next (a slide effect) does not become a principal axis. A
        ``reference`` fitted this way scales the new slide (each of its ``library_key``
        slides) on its own too.
    key_added
        ``obsm`` key of the result; the parameters go to ``uns[key_added.removeprefix("X_")]``
        and the selected genes to ``var[f"{key}_genes"]``.
    reference
        An AnnData (or SpatialData table) processed by this function with the same
        ``key_added``, or a trained :class:`aestetik.AESTETIK`: project onto its fitted
        features instead of fitting new ones (``n_comps``, ``min_cells``, the gene selection,
        ``target_sum`` and ``max_value`` then come from the reference). Every gene of the
        reference must be in ``var_names``; a ``KeyError`` names the missing ones.
    random_state
        Seed of the PCA solver.
    {doc_table_key}
    {doc_copy}

    Returns
    -------
    ``None``, or the copy when ``copy=True``. Writes ``obsm[key_added]`` (``(n_obs, n_comps)``),
    ``var[f"{key}_genes"]`` and ``uns[key]`` with ``key = key_added.removeprefix("X_")``:
    ``params``, and ``state`` (the genes, their scaling means and standard deviations, the
    principal axes and an ``id``), what ``reference`` reads.

    Examples
    --------
    >>> import aestetik as ae
    >>> adata = ae.datasets.synthetic(n_spots=300)
    >>> ae.pp.transcriptomics(adata)
    >>> adata.obsm["X_pca_transcriptomics"].shape
    (300, 15)
    """
    data, adata = adata, check_data(adata, table_key)
    batches = sample_codes(adata, library_key)
    if reference is not None:
        return _project(
            data, adata, reference, layer=layer, batches=batches, key_added=key_added, table_key=table_key, copy=copy
        )
    n_comps = check_int("n_comps", n_comps, minimum=1)
    min_cells = check_int("min_cells", min_cells, minimum=0)
    n_top_genes = check_int("n_top_genes", n_top_genes, minimum=2)
    if adata.n_obs <= n_comps:
        raise ValueError(f"n_comps={n_comps} needs more than {n_comps} spots, got {adata.n_obs}")
    counts = _counts(adata, layer)
    keep_cells = _spots_per_gene(counts) >= min_cells
    if not keep_cells.any():
        raise ValueError(f"No gene is detected in at least min_cells={min_cells} spots")
    # one float32 copy of the kept genes: the user's counts are never changed in place
    all_kept = bool(keep_cells.all())
    is_users = all_kept and counts is (adata.X if layer is None else adata.layers[layer])
    tmp = AnnData(X=(counts if all_kept else counts[:, keep_cells]).astype(np.float32, copy=is_users))
    tmp.obs_names = adata.obs_names
    tmp.var_names = adata.var_names[keep_cells]
    del counts
    if select_genes is None:
        select_genes = tmp.n_vars > 1000
    if select_genes:
        # numba's OpenMP layer sets the thread count of the process-wide OpenMP runtime (torch's
        # included) to every core; threadpoolctl puts the caller's setting back afterwards
        if library_key is not None:
            tmp.obs["batch"] = batches.astype(str)
        with threadpool_limits(limits=None):
            sc.pp.highly_variable_genes(
                tmp, flavor="seurat_v3", n_top_genes=tmp.n_vars, batch_key="batch" if library_key else None
            )
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
    if not selected.all():
        tmp = tmp[:, selected].copy()
    with threadpool_limits(limits=None):  # as above
        sc.pp.normalize_total(tmp, target_sum=target_sum)
        sc.pp.log1p(tmp)
    stay_sparse = sparse.issparse(tmp.X) and library_key is None and tmp.n_obs * tmp.n_vars > DENSE_MAX_VALUES
    if stay_sparse:  # large slides: memory follows the non-zeros
        pcs, variance_ratio, state = _sparse_pca(tmp.X, n_used, target_sum)
        state = {"genes": np.asarray(tmp.var_names, dtype=str), **state}
        state["id"] = state_id(state)
    else:
        with threadpool_limits(limits=None):
            if sparse.issparse(tmp.X):  # scaling centres the data, hence densifies it anyway
                tmp.X = tmp.X.toarray()
            if library_key is None:
                sc.pp.scale(tmp, max_value=max_value)
            else:
                tmp.X = scale_per_batch(np.asarray(tmp.X), batches, max_value)
            sc.pp.pca(tmp, n_comps=n_used, random_state=random_state)
        pcs, variance_ratio = tmp.obsm["X_pca"], np.asarray(tmp.uns["pca"]["variance_ratio"])
        state = _fitted_state(tmp, target_sum=target_sum, max_value=max_value, per_batch=library_key is not None)

    if copy:
        data, adata = copy_data(data, table_key)
    key = key_added.removeprefix("X_")
    adata.obsm[key_added] = np.asarray(pcs, dtype=np.float32)
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
            "library_key": library_key,
            "random_state": random_state,
        },
        "n_genes": n_genes,
        "n_comps": n_used,
        "variance_ratio": variance_ratio,
        "sparse": bool(stay_sparse),
        "state": state,
    }
    logger.info(
        "added obsm[%r] (%d PCs of %d genes), var[%r], uns[%r]", key_added, n_used, n_genes, f"{key}_genes", key
    )
    return data if copy else None


#: Above this many values (spots x selected genes), sparse counts are scaled and reduced without
#: being densified (no clipping at ``max_value`` then); below, as scanpy's ``scale`` + ``pca``.
DENSE_MAX_VALUES = 100_000_000


#: Spots per block when large sparse counts are summarised (bounded temporary memory).
SPARSE_BLOCK_ROWS = 65_536
#: Values (spots x genes) per dense float32 block of the sparse PCA's scatter matrix (256 MiB).
SCATTER_BLOCK_VALUES = 1 << 26


def _spots_per_gene(x: Any) -> np.ndarray:
    """In how many spots every gene has a positive count, read block by block of spots."""
    n_obs, n_vars = x.shape
    out = np.zeros(n_vars, dtype=np.int64)
    for start in range(0, n_obs, SPARSE_BLOCK_ROWS):
        block = x[start : start + SPARSE_BLOCK_ROWS]
        if sparse.issparse(block):
            block = sparse.csr_matrix(block)
            out += np.bincount(block.indices[block.data > 0], minlength=n_vars)
        else:
            out += (np.asarray(block) > 0).sum(axis=0)
    return out


def _sparse_pca(x: sparse.spmatrix, n_comps: int, target_sum: float):
    """PCA of the scaled log-normalised counts without densifying or copying them whole.

    The gene means come from the sparse matrix; the centred genes x genes scatter matrix is
    accumulated in float64 over dense float32 blocks of spots (``SCATTER_BLOCK_VALUES``
    values each: one BLAS product per block, far faster than a sparse product of the
    matrix with itself). The principal axes are the leading eigenvectors of the covariance
    of the scaled genes (as scikit-learn's ``covariance_eigh`` solver, with its signs), and
    the components are computed block by block from the sparse matrix. The values are not
    clipped. Memory beyond the counts: one dense block and a genes x genes matrix.
    Returns the components, the explained variance ratios and the state.
    """
    x = sparse.csr_matrix(x)
    n, g = x.shape
    mean = np.asarray(x.sum(axis=0, dtype=np.float64)).ravel() / n
    centre = mean.astype(np.float32)
    scatter = np.zeros((g, g))
    rows = max(1, SCATTER_BLOCK_VALUES // g)
    for start in range(0, n, rows):
        block = x[start : start + rows].toarray()
        block -= centre
        scatter += block.T @ block
    shift = mean - centre  # the blocks were centred on the float32 mean: move the scatter to the exact one
    scatter -= n * np.outer(shift, shift)
    var = np.diag(scatter) / max(n - 1, 1)
    std = np.sqrt(np.clip(var, 0, None))
    std[std == 0] = 1.0
    cov = scatter / max(n - 1, 1) / np.outer(std, std)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    components = eigenvectors[:, :n_comps].T.copy()
    largest = np.argmax(np.abs(components), axis=1)  # sign: the largest loading of each axis positive
    components *= np.sign(components[np.arange(n_comps), largest])[:, None]
    loadings = components.T / std[:, None]  # (g, n_comps): scaling folded into the projection
    offset = mean @ loadings
    pcs = np.empty((n, n_comps), dtype=np.float32)
    for start in range(0, n, SPARSE_BLOCK_ROWS):
        pcs[start : start + SPARSE_BLOCK_ROWS] = x[start : start + SPARSE_BLOCK_ROWS] @ loadings - offset
    explained = np.clip(eigenvalues, 0, None)
    state = {
        "mean": mean,
        "std": std,
        "per_batch": False,
        "pca_mean": np.zeros_like(mean),  # centred features: the PCA's centre is 0
        "components": components,
        "target_sum": float(target_sum),
        "max_value": float("inf"),  # not clipped
    }
    return pcs, explained[:n_comps] / explained.sum(), state


def scale_per_batch(x: np.ndarray, batches: np.ndarray, max_value: float) -> np.ndarray:
    """Centre every gene and scale it to unit variance within each batch, then clip at ``max_value``.

    As scanpy's ``pp.scale`` (unbiased variance; a constant gene keeps scale 1), slide by slide.
    """
    return standardise_per_group(x, batches, ddof=1, max_value=max_value)


def _fitted_state(tmp: AnnData, *, target_sum: float, max_value: float, per_batch: bool) -> dict[str, Any]:
    """What :func:`transcriptomics` fitted, enough to project another slide's counts.

    With per-batch scaling there are no shared gene means and deviations (``NaN``): a new
    slide is scaled on its own.
    """
    x = np.asarray(tmp.X)
    if per_batch:
        mean = std = np.full(tmp.n_vars, np.nan)
    else:
        mean = tmp.var["mean"].to_numpy(np.float64)
        std = tmp.var["std"].to_numpy(np.float64).copy()
        std[std == 0] = 1.0  # as scanpy's scale
    state = {
        "genes": np.asarray(tmp.var_names, dtype=str),
        "mean": mean,
        "std": std,
        "per_batch": bool(per_batch),
        "pca_mean": x.mean(axis=0, dtype=np.float64),  # after clipping: the centre the PCA used
        "components": np.asarray(tmp.varm["PCs"], dtype=np.float64).T.copy(),
        "target_sum": float(target_sum),
        "max_value": float(max_value),
    }
    state["id"] = state_id(state)
    return state


def _log_normalised(x, target_sum: float) -> np.ndarray:
    """Counts of some spots, normalised to ``target_sum`` per spot and log1p-transformed (dense)."""
    x = np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float64)
    total = x.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    return np.log1p(x * (target_sum / total))


def project_counts(counts, state: dict[str, Any], *, batches: np.ndarray | None = None, chunk_size: int = 16384):
    """Apply a fitted :func:`transcriptomics` state to raw counts of its genes.

    Per spot: normalise to ``target_sum``, log1p, scale with the fitted means and standard
    deviations (per-batch states: with those of each of ``batches``), clip at ``max_value``
    and project on the fitted principal axes. Memory follows one chunk of ``chunk_size``
    spots (one batch, for per-batch states) densified over the state's genes.
    """
    n = counts.shape[0]
    comps = np.asarray(state["components"], dtype=np.float64)
    mean, std, centre = (np.asarray(state[k], dtype=np.float64) for k in ("mean", "std", "pca_mean"))
    max_value, target_sum = float(state["max_value"]), float(state["target_sum"])
    out = np.empty((n, comps.shape[0]), dtype=np.float32)
    if state.get("per_batch", False):
        batches = np.zeros(n, dtype=np.int64) if batches is None else batches
        for b in np.unique(batches):
            rows = np.flatnonzero(batches == b)
            x = _log_normalised(counts[rows], target_sum)
            out[rows] = (scale_per_batch(x, np.zeros(len(rows)), max_value) - centre) @ comps.T
        return out
    for start in range(0, n, chunk_size):
        x = _log_normalised(counts[start : start + chunk_size], target_sum)
        x = np.clip((x - mean) / std, -max_value, max_value)
        out[start : start + len(x)] = (x - centre) @ comps.T
    return out


def _project(data: Any, adata: AnnData, reference: Any, *, layer, batches, key_added: str, table_key, copy: bool):
    """:func:`transcriptomics` with ``reference``: the reference's fitted state applied to ``adata``."""
    key = key_added.removeprefix("X_")
    state, params = reference_state(reference, key, produced_by="aestetik.pp.transcriptomics")
    counts = _counts(adata, layer)
    genes = np.asarray(state["genes"], dtype=str)
    position = adata.var_names.get_indexer(genes)
    missing = genes[position < 0]
    if len(missing):
        raise KeyError(
            f"{len(missing)} of the reference's {len(genes)} genes are not in var_names, e.g. "
            f"{[str(g) for g in missing[:5]]}; the model needs all of them (subset the reference's genes and "
            "refit, or bring the slide's genes to the reference's names)"
        )
    x = project_counts(counts[:, position], state, batches=batches)
    if copy:
        data, adata = copy_data(data, table_key)
    adata.obsm[key_added] = x
    adata.var[f"{key}_genes"] = np.isin(np.arange(adata.n_vars), position)
    adata.uns[key] = {
        "params": dict(params) | {"layer": layer, "reference": state["id"]},
        "n_genes": len(genes),
        "n_comps": x.shape[1],
        "state": state,
    }
    logger.info("added obsm[%r] (%d PCs of the reference's %d genes)", key_added, x.shape[1], len(genes))
    return data if copy else None
