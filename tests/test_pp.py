from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from scipy import sparse

import aestetik as ae
from aestetik.nn import neighbour_index

from .conftest import shared_file


def test_transcriptomics_outputs_and_keeps_x():
    adata = ae.datasets.synthetic(n_spots=200)
    x_before = adata.X.copy()
    ae.pp.transcriptomics(adata, n_comps=10, key_added="X_expr")
    assert adata.obsm["X_expr"].shape == (200, 10)
    assert (adata.X != x_before).nnz == 0
    assert adata.uns["expr"]["params"]["n_comps"] == 10
    n_genes = adata.uns["expr"]["n_genes"]
    assert adata.var["expr_genes"].sum() == n_genes and 10 < n_genes <= adata.n_vars


def test_transcriptomics_sparse_equals_dense():
    a = ae.datasets.synthetic(n_spots=200)
    b = a.copy()
    b.X = b.X.toarray()
    ae.pp.transcriptomics(a)
    ae.pp.transcriptomics(b)
    np.testing.assert_allclose(
        np.abs(a.obsm["X_pca_transcriptomics"]), np.abs(b.obsm["X_pca_transcriptomics"]), atol=1e-3
    )


def test_large_dense_counts_are_read_in_sparse_blocks(monkeypatch, tmp_path):
    """Dense counts above DENSE_MAX_VALUES are checked and made sparse block by block, with a
    warning that names the size; the features are those of the sparse counts, X is untouched."""
    import sys

    import scanpy as sc

    from aestetik.pp import _transcriptomics as module

    a = ae.datasets.synthetic(n_spots=300, random_state=0)
    dense = a.copy()
    dense.X = dense.X.toarray()
    x_before = dense.X.copy()
    monkeypatch.setattr(module, "DENSE_MAX_VALUES", 0)
    monkeypatch.setattr(module, "DENSE_BLOCK_ROWS", 64)
    monkeypatch.setattr(module, "DENSE_WARN_BYTES", 0)
    log = tmp_path / "scanpy.log"
    sc.settings.logfile = log
    try:
        ae.pp.transcriptomics(dense)
    finally:
        sc.settings.logfile = sys.stderr
    assert f"adata.X is a dense 300 x {a.n_vars} matrix" in log.read_text()
    np.testing.assert_array_equal(dense.X, x_before)
    ae.pp.transcriptomics(a)
    np.testing.assert_allclose(dense.obsm["X_pca_transcriptomics"], a.obsm["X_pca_transcriptomics"], atol=1e-5)
    dense.X[200, 0] = -1.0  # in the fourth block: still found before any work
    with pytest.raises(ValueError, match="raw counts"):
        ae.pp.transcriptomics(dense)


def test_transcriptomics_layer_and_copy():
    a = ae.datasets.synthetic(n_spots=200)
    a.layers["counts"] = a.X.copy()
    a.X = sparse.csr_matrix(a.X.astype(np.float32) / 3)  # normalised-looking X
    out = ae.pp.transcriptomics(a, layer="counts", copy=True)
    assert "X_pca_transcriptomics" not in a.obsm
    assert out.obsm["X_pca_transcriptomics"].shape == (200, 15)


def test_lattice_unique_and_close():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 300, size=(500, 2))
    a = ad.AnnData(np.ones((500, 1)), obsm={"spatial": xy})
    ae.pp.lattice(a)
    rows, cols = a.obs["array_row"].to_numpy(), a.obs["array_col"].to_numpy()
    assert len(set(zip(rows, cols, strict=True))) == 500  # unique positions
    b = a.uns["aestetik_lattice"]["bin_size"]["0"]
    pos = (xy - xy.min(0)) / b
    err = np.hypot(pos[:, 1] - (rows + 0.5), pos[:, 0] - (cols + 0.5))
    assert np.median(err) < 0.75 and err.max() < 4
    neighbour_index(rows, cols, 7)  # usable as a lattice


def test_lattice_per_sample_and_errors():
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 0.0], [10.0, 0.0]])
    a = ad.AnnData(np.ones((4, 1)), obs={"s": ["a", "a", "b", "b"]}, obsm={"spatial": xy})
    ae.pp.lattice(a, library_key="s")
    assert a.obs["array_col"].tolist() == [0, 1, 0, 1]
    with pytest.raises(KeyError, match="nope"):
        ae.pp.lattice(a, spatial_key="nope")
    with pytest.raises(ValueError, match="bin_size"):
        ae.pp.lattice(a, bin_size=-1)


def test_lattice_on_starmap():
    a = ad.read_h5ad(shared_file("starmap_mpfc_BZ5.h5ad"))
    ae.pp.lattice(a)
    rows, cols = a.obs["array_row"].to_numpy(), a.obs["array_col"].to_numpy()
    assert len(set(zip(rows, cols, strict=True))) == a.n_obs
    idx = neighbour_index(rows, cols, 7)
    # about one cell per lattice cell: a 7x7 window holds a good number of neighbours
    assert 5 < np.median((idx >= 0).sum(1)) < 49


def test_suggest_n_clusters_finds_the_synthetic_domains():
    adata = ae.datasets.synthetic(n_spots=400, fold_change=4.0)
    ae.pp.transcriptomics(adata)
    k = ae.tl.suggest_n_clusters(adata, use_rep="X_pca_transcriptomics", k_range=range(2, 9))
    assert k == 5
    scores = adata.uns["aestetik_n_clusters"]["scores"]
    assert list(scores["k"]) == list(range(2, 9)) and np.isfinite(scores["bic"]).all()
    with pytest.raises(ValueError, match="criterion"):
        ae.tl.suggest_n_clusters(adata, use_rep="X_pca_transcriptomics", criterion="aic")


def test_gene_selection_on_request_and_for_large_panels():
    a = ae.datasets.synthetic(n_spots=200)
    ae.pp.transcriptomics(a)  # 200 genes: a targeted panel, all kept
    assert a.uns["pca_transcriptomics"]["n_genes"] == a.n_vars
    ae.pp.transcriptomics(a, select_genes=True, n_top_genes=120)  # the 120 most variable (seurat_v3)
    assert a.uns["pca_transcriptomics"]["n_genes"] == 120 == a.var["pca_transcriptomics_genes"].sum()
    ae.pp.transcriptomics(a, select_genes=True, min_variance_norm=1.0)  # the published rule
    assert 15 < a.uns["pca_transcriptomics"]["n_genes"] < a.n_vars
    big = ae.datasets.synthetic(n_spots=200, n_genes=1200)
    ae.pp.transcriptomics(big, n_top_genes=1000)
    assert big.uns["pca_transcriptomics"]["params"]["select_genes"] is True
    assert big.uns["pca_transcriptomics"]["n_genes"] == 1000


def test_transcriptomics_leaves_the_thread_settings_alone():
    """scanpy's numba kernels would otherwise set torch's OpenMP pool to every core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ae.pp.transcriptomics(ae.datasets.synthetic(n_spots=200, n_genes=1200), n_top_genes=300)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_messages_follow_scanpy_verbosity(tmp_path):
    import sys

    import scanpy as sc

    log = tmp_path / "scanpy.log"
    sc.settings.logfile = log
    try:
        adata = ae.datasets.synthetic(n_spots=100)
        ae.pp.transcriptomics(adata)
        assert "added obsm" not in log.read_text()  # scanpy's default: warnings only
        sc.settings.verbosity = "info"
        ae.pp.transcriptomics(adata)
        assert "added obsm['X_pca_transcriptomics']" in log.read_text()
    finally:
        sc.settings.logfile = sys.stderr


def test_large_slides_stay_sparse(monkeypatch):
    """Above DENSE_MAX_VALUES the counts are scaled and reduced without densifying: same axes here."""
    import aestetik.pp._transcriptomics as transcriptomics_module

    dense = ae.datasets.synthetic(n_spots=1000, random_state=0)
    kept_sparse = dense.copy()
    ae.pp.transcriptomics(dense)
    monkeypatch.setattr(transcriptomics_module, "DENSE_MAX_VALUES", 0)
    ae.pp.transcriptomics(kept_sparse)
    assert kept_sparse.uns["pca_transcriptomics"]["sparse"] and not dense.uns["pca_transcriptomics"]["sparse"]
    x, y = dense.obsm["X_pca_transcriptomics"], kept_sparse.obsm["X_pca_transcriptomics"]
    for i in range(5):  # the same principal axes, up to their sign (no value reaches the clip here)
        assert abs(np.corrcoef(x[:, i], y[:, i])[0, 1]) > 0.999
    again = dense.copy()
    ae.pp.transcriptomics(again, reference=kept_sparse)
    np.testing.assert_allclose(again.obsm["X_pca_transcriptomics"], y, atol=1e-4)
