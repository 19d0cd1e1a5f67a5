from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt

import aestetik as ae
from aestetik.pl._spatial import _matched_colors

from .conftest import FAST


@pytest.fixture
def clustered(adata):
    rng = np.random.default_rng(0)
    codes = adata.obs["ground_truth"].cat.codes.to_numpy()
    # a relabelled copy of the truth with 10% noise
    noisy = np.where(rng.random(adata.n_obs) < 0.1, rng.integers(0, 5, adata.n_obs), (codes + 2) % 5)
    adata.obs["clusters"] = pd.Categorical(noisy.astype(str))
    return adata


def test_spatial_panels_over_image(clustered):
    uns_before = set(clustered.uns)
    fig = ae.pl.spatial(clustered, color=["ground_truth", "clusters"], reference="ground_truth", return_fig=True)
    axes = [a for a in fig.axes if a.get_title()]
    assert [a.get_title().split()[0] for a in axes] == ["ground_truth", "clusters"]
    assert "ARI" in axes[1].get_title() and "ARI" not in axes[0].get_title()
    assert all(len(a.images) == 1 for a in axes)  # the H&E image under the spots
    assert set(clustered.uns) == uns_before  # colours are set on a private view only
    plt.close(fig)


def test_spatial_without_image():
    xy = np.random.default_rng(0).uniform(0, 100, (60, 2))
    a = ad.AnnData(np.ones((60, 1)), obs={"d": pd.Categorical(["a", "b"] * 30)}, obsm={"spatial": xy})
    fig = ae.pl.spatial(a, color="d", return_fig=True)
    assert len(fig.axes[0].images) == 0 and len(fig.axes[0].collections) > 0
    plt.close(fig)


def test_spatial_into_given_axes(clustered):
    fig, axs = plt.subplots(1, 2)
    out = ae.pl.spatial(clustered, color=["ground_truth", "clusters"], ax=axs, show=False, img_key=None)
    assert list(out) == list(axs)
    plt.close(fig)


def test_matched_colors_follow_the_reference(clustered):
    truth = clustered.obs["ground_truth"]
    ref_colors = dict(zip(map(str, truth.cat.categories), ["c0", "c1", "c2", "c3", "c4"], strict=True))
    m = _matched_colors(clustered.obs["clusters"], truth, ref_colors)
    # cluster (d + 2) % 5 is domain d
    assert all(m[str((d + 2) % 5)] == f"c{d}" for d in range(5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"color": "nope"}, "nope"),
        ({"color": "clusters", "reference": "truth"}, "truth"),
        ({"img_key": "fullres"}, "fullres"),
        ({"library_id": "x"}, "x"),
    ],
)
def test_spatial_bad_input(clustered, kwargs, match):
    uns_before = set(clustered.uns)
    with pytest.raises(KeyError, match=match):
        ae.pl.spatial(clustered, **({"color": "clusters"} | kwargs), show=False)
    assert set(clustered.uns) == uns_before


def test_loss_curves(adata):
    ae.tl.embed(adata, **FAST)
    fig = ae.pl.loss(adata, return_fig=True)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["loss", "rec_expression", "triplet_expression"]  # morphology terms are zero here
    plt.close(fig)
    with pytest.raises(KeyError, match="nope"):
        ae.pl.loss(adata, terms=["nope"], show=False)
    with pytest.raises(KeyError, match="tl.embed"):
        ae.pl.loss(adata, key="other", show=False)


def test_spatial_takes_spatialdata_with_table_key():
    sdata = ae.datasets.synthetic(n_spots=120, as_spatialdata=True)
    table_key = next(iter(sdata.tables))
    fig = ae.pl.spatial(sdata, color=["ground_truth"], table_key=table_key, return_fig=True)
    assert len(fig.axes) >= 1
    with pytest.raises(TypeError, match="table_key"):
        ae.pl.spatial(sdata, color=["ground_truth"], return_fig=True)
    plt.close("all")


def test_loss_takes_spatialdata_with_table_key():
    sdata = ae.datasets.synthetic(n_spots=120, as_spatialdata=True)
    table_key = next(iter(sdata.tables))
    ae.pp.transcriptomics(sdata, table_key=table_key)
    ae.tl.embed(sdata, table_key=table_key, **FAST)
    assert ae.pl.loss(sdata, table_key=table_key, return_fig=True) is not None
    plt.close("all")
