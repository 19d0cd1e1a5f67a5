"""The pipeline figure of the docs' front page, drawn with the package on its synthetic slide."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

import aestetik as ae
from aestetik._model import training_features
from aestetik.nn import NeighbourhoodGrid, neighbour_index


def pipeline_figure(random_state: int = 0):
    adata = ae.datasets.synthetic(n_spots=600, n_domains=4, random_state=random_state)
    ae.pp.transcriptomics(adata)
    ae.pp.morphology(adata, show_progress_bar=False)
    ae.tl.embed(adata, n_clusters=4, max_epochs=40, random_state=random_state, show_progress_bar=False)
    ae.tl.cluster(adata, 4, random_state=random_state)

    img = adata.uns["spatial"]["synthetic"]["images"]["hires"]
    sf = adata.uns["spatial"]["synthetic"]["scalefactors"]["tissue_hires_scalef"]
    xy = adata.obsm["spatial"] * sf
    spot = int(np.argmin(np.abs(xy - xy.mean(0)).sum(1)))
    w = 7
    index = neighbour_index(adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy(), w)
    feats, _ = training_features(adata.obsm["X_pca_transcriptomics"], adata.obsm["X_pca_morphology"])
    grid = NeighbourhoodGrid(torch.as_tensor(feats, dtype=torch.float32), torch.as_tensor(index, dtype=torch.int32))
    window = grid(torch.tensor([spot]))[0].numpy()

    fig, axes = plt.subplots(1, 5, figsize=(17, 3.6), gridspec_kw={"width_ratios": [1, 1, 0.8, 1.1, 1]})
    a = axes[0]
    a.imshow(img)
    a.scatter(*xy.T, s=3, c="k", alpha=0.35)
    a.scatter(*xy[spot], s=60, facecolors="none", edgecolors="yellow", linewidths=2)
    a.set_title("1-2  H&E + expression per spot")
    a = axes[1]
    a.scatter(*xy.T, c=adata.obsm["X_pca_transcriptomics"][:, 0], s=10, cmap="viridis")
    a.invert_yaxis()
    a.set_aspect("equal")
    a.set_title("expression PC 1")
    a = axes[2]
    a.imshow(window[0], cmap="viridis")
    a.set_title(f"4  {w}x{w} window of one spot\n({window.shape[0]} channels; PC 1 shown)", fontsize=10)
    a = axes[3]
    hist = adata.uns["aestetik"]["history"]
    for name in ("loss", "rec_expression", "triplet_expression", "rec_morphology", "triplet_morphology"):
        if name in hist:
            a.plot(hist[name], label=name)
    a.set_xlabel("epoch")
    a.legend(fontsize=7)
    a.set_title("5  training (reconstruction + triplet)")
    a = axes[4]
    codes = adata.obs["aestetik_clusters"].cat.codes.to_numpy()
    a.scatter(*xy.T, c=codes, s=10, cmap="tab10", vmin=0, vmax=9)
    a.invert_yaxis()
    a.set_aspect("equal")
    a.set_title("6-7  embedding -> domains")
    for a in axes:
        a.set_xticks([])
        a.set_yticks([])
    axes[3].set_xticks([0, 20, 40])
    fig.tight_layout()
    return fig
