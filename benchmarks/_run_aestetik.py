"""One run of this package on a slide: features, embedding, clustering; timings and peak memory to JSON.

Usage: python _run_aestetik.py DATA.h5ad --seed 0 --out run.json --emb emb.npy
[--morphology FEATURES.npy --morphology-weight W]
"""

from __future__ import annotations

import argparse
import warnings

import anndata as ad
import numpy as np
import scanpy as sc
import torch
from _common import peak_rss_mib, stage, write_json

import aestetik as ae
from aestetik.nn import NeighbourhoodGrid, neighbour_index

warnings.filterwarnings("ignore")
sc.settings.verbosity = "warning"  # aestetik logs through scanpy

p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--n-clusters", type=int, default=7)
p.add_argument("--window-size", type=int, default=7)
p.add_argument("--out", required=True)
p.add_argument("--emb", required=True)
p.add_argument("--morphology", default=None, help=".npy of per-spot morphology features")
p.add_argument("--morphology-weight", type=float, default=0.0)
args = p.parse_args()

adata = ad.read_h5ad(args.data)
weight = 0.0
if args.morphology:
    adata.obsm["X_pca_morphology"] = np.load(args.morphology)
    weight = args.morphology_weight
t = {}
with stage(t, "features"):
    ae.pp.transcriptomics(adata, random_state=args.seed)
with stage(t, "embed_total"):
    ae.tl.embed(
        adata,
        n_clusters=args.n_clusters,
        morphology_weight=weight,
        window_size=args.window_size,
        random_state=args.seed,
        show_progress_bar=False,
    )
tim = adata.uns["aestetik"]["timings"]
t["grid_index"] = tim["grid"]
t["pseudo_labels"] = tim["pseudo_labels"]
t["training"] = tim["training"]
t["inference"] = tim["inference"]
# The reference materialises every window (N, C, w, w); do the same once from the index
# so that the two "grid" figures measure the same output.
with stage(t, "grid_materialise"):
    x = adata.obsm["X_pca_transcriptomics"]
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    idx = neighbour_index(adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy(), args.window_size)
    g = NeighbourhoodGrid(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(idx))
    windows = g(torch.arange(adata.n_obs))
t["grid"] = t["grid_materialise"]
with stage(t, "clustering"):
    ae.tl.cluster(adata, args.n_clusters, method="bgm", refine=True, random_state=args.seed)
t["end_to_end"] = t["features"] + t["embed_total"] + t["clustering"]
np.save(args.emb, adata.obsm["X_aestetik"])
write_json(
    args.out,
    {
        "tool": "aestetik (this package)",
        "seed": args.seed,
        "morphology_weight": weight,
        "timings": t,
        "peak_rss_mib": peak_rss_mib(),
        "window_shape": list(windows.shape),
        "n_epochs": int(adata.uns["aestetik"]["n_epochs"]),
        "torch_threads": torch.get_num_threads(),
    },
)
