from __future__ import annotations

import numpy as np
import pytest

import aestetik as ae

from .conftest import FAST

pytest.importorskip("spatialdata")


@pytest.fixture(scope="module")
def pair():
    sdata = ae.datasets.synthetic(n_spots=250, random_state=4, as_spatialdata=True)
    adata = ae.datasets.synthetic(n_spots=250, random_state=4)
    for d, kw in ((sdata, {"table_key": "table"}), (adata, {})):
        ae.pp.transcriptomics(d, **kw)
        ae.pp.morphology(d, show_progress_bar=False, **kw)
    return sdata, adata


def test_synthetic_as_spatialdata_elements():
    sdata = ae.datasets.synthetic(n_spots=120, as_spatialdata=True)
    assert list(sdata.images) == ["synthetic_hires"] and list(sdata.shapes) == ["synthetic_spots"]
    table = sdata.tables["table"]
    assert table.n_obs == 120 and table.uns["spatialdata_attrs"]["region"] == "synthetic_spots"
    assert len(list(sdata.images["synthetic_hires"].children)) == 3  # multiscale
    with pytest.raises(ValueError, match="n_samples=1"):
        ae.datasets.synthetic(n_spots=50, n_samples=2, as_spatialdata=True)


def test_embed_and_cluster_write_into_the_table_like_anndata(pair):
    sdata, adata = pair
    table = sdata.tables["table"]
    np.testing.assert_allclose(table.obsm["X_pca_transcriptomics"], adata.obsm["X_pca_transcriptomics"], atol=1e-5)
    kw = FAST | {"morphology_weight": 1.0}
    ae.tl.embed(sdata, table_key="table", **kw)
    ae.tl.embed(adata, **kw)
    np.testing.assert_allclose(table.obsm["X_aestetik"], adata.obsm["X_aestetik"], atol=1e-5)
    assert table.uns["aestetik"]["params"]["morphology_weight"] == 1.0
    ae.tl.cluster(sdata, 3, table_key="table")
    ae.tl.cluster(adata, 3)
    assert (table.obs["aestetik_clusters"].to_numpy() == adata.obs["aestetik_clusters"].to_numpy()).all()


def test_cluster_refines_on_shape_centres_without_obsm_spatial(pair):
    sdata, adata = pair
    s2 = ae.datasets.synthetic(n_spots=250, random_state=4, as_spatialdata=True)
    table = s2.tables["table"]
    table.obsm["emb"] = adata.obsm["X_pca_transcriptomics"]
    del table.obsm["spatial"]
    ae.tl.cluster(s2, 3, use_rep="emb", table_key="table")
    assert table.uns["aestetik_clusters"]["refinement_coordinates"] == "the spots' shapes"
    a2 = adata.copy()
    ae.tl.cluster(a2, 3, use_rep="X_pca_transcriptomics")
    assert (table.obs["aestetik_clusters"].to_numpy() == a2.obs["aestetik_clusters"].to_numpy()).all()


def test_copy_returns_a_new_spatialdata(pair):
    sdata, _ = pair
    out = ae.tl.cluster(sdata, 3, use_rep="X_pca_transcriptomics", key_added="copied", table_key="table", copy=True)
    assert "copied" in out.tables["table"].obs and "copied" not in sdata.tables["table"].obs
    assert type(out) is type(sdata)


def test_lattice_from_shape_centres():
    sdata = ae.datasets.synthetic(n_spots=100, random_state=4, as_spatialdata=True)
    table = sdata.tables["table"]
    del table.obsm["spatial"]
    ae.pp.lattice(sdata, table_key="table", key_added=("lr", "lc"))
    assert table.obs[["lr", "lc"]].drop_duplicates().shape[0] == 100


def test_bad_table_key(pair):
    sdata, _ = pair
    with pytest.raises(KeyError, match="table_key 'nope'"):
        ae.tl.embed(sdata, table_key="nope", **FAST)
    with pytest.raises(TypeError, match="table_key"):
        ae.tl.cluster(sdata, 3)
    with pytest.raises(TypeError, match="AnnData or a SpatialData"):
        ae.tl.cluster(np.zeros((3, 3)), 3)
