"""One run of a peer spatial-domain method at its published defaults, inside the peer's own venv.

    python run_peer.py METHOD DATA.h5ad --seed S --out run.json --emb emb.npy [--threads N]

METHOD is one of graphst, stagate, spagcn, banksy (venvs made by ``make_envs.sh``). Imports
only numpy/anndata/scanpy/sklearn/torch and the peer, never aestetik. Every run starts
from the raw counts of ``DATA.h5ad``; no cell is dropped, so labels and embedding rows
are in ``obs`` order. K = number of annotated domains (``obs.ground_truth.nunique()``).

The seed goes everywhere the peer takes one (its own seed arguments, ``random``, numpy,
torch). Saved: the embedding the method clusters (``--emb``, .npy) and a JSON with
method, package version, seed, parameters, wall seconds of the whole run after reading
the file, peak RSS (MiB), torch threads, n_obs and the labels of the peer's *own*
clustering protocol (``labels``, obs order).

R/mclust is not available here. Where a peer calls mclust with model ``EEE``
(ellipsoidal, equal volume, shape and orientation), this script uses
``sklearn.mixture.GaussianMixture(n_components=K, covariance_type="tied",
random_state=seed)``, the closest model in scikit-learn (one shared full covariance);
its initialisation (k-means) differs from mclust's hierarchical one.

Per method (defaults read from the installed packages and the authors' tutorials):

* graphst (graphst-modern 1.1.1.post3, DLPFC tutorial): ``GraphST.preprocess`` steps
  (seurat_v3 HVG 3000, normalize_total 1e4, log1p, scale without centring, max 10;
  GraphST/preprocess.py:104-108), ``GraphST(adata, device=cpu, random_seed=seed)`` at its
  defaults (600 epochs, lr 1e-3, 64 dims, datatype "10X": 3-NN graph; GraphST/GraphST.py:24-43),
  ``train()``. ``obsm["emb"]`` is GraphST's reconstruction of the HVG features; the embedding
  saved is the matrix its clustering works on, PCA 20 (random_state 42) of it. Own protocol = ``utils.clustering(method="mclust",
  refinement=True, radius=50)`` (GraphST/utils.py:39-114): PCA 20 (random_state 42) of the
  embedding, mclust EEE -> tied GMM, then ``refine_label`` (majority of the 50 nearest spots).
* stagate (stagate-modern 1.0.0.post1, STAGATE_pyG): tutorial preprocessing (seurat_v3 HVG
  3000, normalize_total 1e4, log1p), ``Cal_Spatial_Net(rad_cutoff=150)`` on Visium (tutorial
  T1_DLPFC); on imaging data (coordinates in arbitrary pixel units) the radius at which cells
  have 6 neighbours on average (STAGATE advises 5-10; its STARmap tutorial T9 used 400 px,
  6.5 neighbours), ``train_STAGATE(random_seed=seed)`` at its defaults (hidden [512, 30],
  1000 epochs, lr 1e-3, weight decay 1e-4, clipping 5; STAGATE_pyG/Train_STAGATE.py:17-30);
  embedding ``obsm["STAGATE"]``. Own protocol = ``mclust_R(used_obsm="STAGATE")`` -> tied GMM.
* spagcn (SpaGCN 1.2.7, README tutorial = ``ez_mode.detect_spatial_domains_ez_mode``,
  SpaGCN/ez_mode.py:6-21): adjacency from the coordinates with ``histology=False`` (the
  README's path without an image: the data here have only a 600x600 lowres H&E, not the
  full-resolution image its b=49 pixel window assumes), prefilter_genes(min_cells=3),
  prefilter_specialgenes, normalize_per_cell, log1p, ``search_l(p=0.5)``, ``search_res`` for
  K clusters (start 0.7, step 0.1, 20 epochs), train (louvain init, lr 0.05, 200 epochs, tol
  5e-3), then ``refine`` with shape "hexagon" (6 neighbours) on the array coordinates (Visium)
  or the cell positions (imaging). SpaGCN clusters by its own soft assignment and has no
  separate embedding to hand to another clustering: no ``--emb`` file is written, only its
  refined labels. Seeds: r_seed = t_seed = n_seed = seed (tutorial: 100).
* banksy (pybanksy 1.3.5, domain segmentation settings of its STARmap example
  starmap_simplified.py): ``filter_utils.normalize_total``; on Visium (sequencing) the HVG
  filter of its Slide-seq examples (``filter_hvg``, 2000 genes, flavor "seurat"); on imaging
  data all genes (as its STARmap example); ``initialize_banksy`` k_geom 15, scaled_gaussian,
  max_m 1 (AGF); lambda 0.8 (0.2 is its cell-typing setting); PCA 20 of the BANKSY matrix
  (= the embedding saved); own protocol = its default Leiden partition (50 nn, shared-nn graph)
  with ``find_resolutions`` searching a resolution that gives K labels; partition_seed = seed.

HVG selection never fails on small panels: with fewer genes than asked (imaging sets have
33-1020 genes, DLPFC 151510 has 500), all genes are used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

METHODS = ("graphst", "stagate", "spagcn", "banksy")

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("method", choices=METHODS)
p.add_argument("data")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--out", required=True)
p.add_argument("--emb", required=True)
p.add_argument("--threads", type=int, default=None, help="torch / BLAS / numba threads (default: library defaults)")
p.add_argument("--device", default="cpu", help="torch device of GraphST and STAGATE, e.g. cuda (default: cpu)")
args = p.parse_args()
if args.threads:  # before numpy, torch and numba read them
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
os.environ.setdefault("MPLBACKEND", "Agg")

import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import warnings  # noqa: E402
from importlib.metadata import version  # noqa: E402

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scanpy as sc  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

warnings.filterwarnings("ignore")
if args.threads:
    torch.set_num_threads(args.threads)


# ---------------------------------------------------------------- shared pieces
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def tied_gmm(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Stand-in for mclust ``EEE`` (R is not available): one shared full covariance."""
    return GaussianMixture(n_components=k, covariance_type="tied", random_state=seed).fit_predict(x)


def mark_hvg(adata: ad.AnnData, n_top: int, flavor: str) -> None:
    """``highly_variable_genes``; all genes when the panel has no more than ``n_top``."""
    if adata.n_vars <= n_top:
        adata.var["highly_variable"] = True
    else:
        sc.pp.highly_variable_genes(adata, flavor=flavor, n_top_genes=n_top)


def is_visium(adata: ad.AnnData) -> bool:
    return "array_row" in adata.obs and "array_col" in adata.obs


def radius_for_mean_neighbours(xy: np.ndarray, mean_neighbours: int) -> float:
    """Smallest radius at which cells have ``mean_neighbours`` neighbours on average."""
    d, _ = NearestNeighbors(n_neighbors=mean_neighbours * 4 + 1).fit(xy).kneighbors(xy)
    return float(np.sort(d[:, 1:].ravel())[mean_neighbours * len(xy) - 1])


# ---------------------------------------------------------------- the peers
def run_graphst(adata: ad.AnnData, k: int, seed: int) -> tuple:
    from GraphST.GraphST import GraphST
    from GraphST.utils import refine_label

    mark_hvg(adata, 3000, "seurat_v3")  # then the rest of GraphST.preprocess
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.scale(adata, zero_center=False, max_value=10)
    model = GraphST(adata, device=torch.device(args.device), random_seed=seed)
    # utils.clustering(adata, k, radius=50, method="mclust", refinement=True), mclust -> tied GMM.
    # obsm["emb"] is GraphST's reconstruction of the HVG features; clustering() works on its PCA 20
    pcs = PCA(n_components=20, random_state=42).fit_transform(model.train().obsm["emb"])
    a = ad.AnnData(obs=pd.DataFrame({"domain": tied_gmm(pcs, k, seed)}, index=adata.obs_names))
    a.obsm["spatial"] = adata.obsm["spatial"]
    labels = refine_label(a, radius=50, key="domain")
    params = {
        "n_hvg": int(adata.var.highly_variable.sum()),
        "epochs": model.epochs,
        "dim_output": model.dim_output,
        "learning_rate": model.learning_rate,
        "datatype": model.datatype,
        "random_seed": seed,
        "embedding": "emb_pca: PCA 20 (random_state 42) of obsm['emb'], as GraphST.utils.clustering",
        "own_protocol": "PCA 20 (random_state 42) + tied GMM (for mclust EEE) + refine_label radius 50",
    }
    return pcs, labels, params


def run_stagate(adata: ad.AnnData, k: int, seed: int) -> tuple:
    import STAGATE_pyG

    mark_hvg(adata, 3000, "seurat_v3")
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    rad = 150.0 if is_visium(adata) else radius_for_mean_neighbours(adata.obsm["spatial"], 6)
    STAGATE_pyG.Cal_Spatial_Net(adata, rad_cutoff=rad, verbose=False)
    n_edges = len(adata.uns["Spatial_Net"])
    STAGATE_pyG.train_STAGATE(adata, random_seed=seed, device=args.device, verbose=False)
    emb = adata.obsm["STAGATE"]
    params = {
        "n_hvg": int(adata.var.highly_variable.sum()),
        "rad_cutoff": rad,
        "mean_neighbours": n_edges / adata.n_obs,
        "hidden_dims": [512, 30],
        "n_epochs": 1000,
        "random_seed": seed,
        "own_protocol": "tied GMM (for mclust EEE) on obsm['STAGATE']",
    }
    return emb, tied_gmm(emb, k, seed), params


def run_spagcn(adata: ad.AnnData, k: int, seed: int) -> tuple:
    import SpaGCN as spg
    import SpaGCN.util as spg_util

    class PatchedSpaGCN(spg.SpaGCN):
        """SpaGCN with PCA 50 capped at the number of genes (osmFISH has 33)."""

        def train(self, adata, adj, num_pcs=50, **kw):
            super().train(adata, adj, num_pcs=min(num_pcs, adata.n_vars), **kw)

    spg_util.SpaGCN = PatchedSpaGCN  # search_res builds its models from this name

    def distances(xy: np.ndarray) -> np.ndarray:
        return spg.calculate_adj_matrix(x=xy[:, 0].tolist(), y=xy[:, 1].tolist(), histology=False)

    adj = distances(adata.obsm["spatial"])
    adata.var_names_make_unique()
    spg.prefilter_genes(adata, min_cells=3)
    spg.prefilter_specialgenes(adata)
    sc.pp.normalize_per_cell(adata, min_counts=0)  # min_counts=0: keep every cell (obs order)
    sc.pp.log1p(adata)
    adata.X = adata.X.toarray() if sp.issparse(adata.X) else adata.X  # SpaGCN calls the removed .A
    p = 0.5
    l = spg.search_l(p, adj, start=0.01, end=1000, tol=0.01, max_run=100)
    if l is None:
        raise RuntimeError("SpaGCN search_l found no l for p=0.5 in [0.01, 1000]")
    res = spg.search_res(
        adata, adj, l, k, start=0.7, step=0.1, tol=5e-3, lr=0.05, max_epochs=20, r_seed=seed, t_seed=seed, n_seed=seed
    )
    clf = PatchedSpaGCN()
    clf.set_l(l)
    seed_everything(seed)
    clf.train(adata, adj, init_spa=True, init="louvain", res=res, tol=5e-3, lr=0.05, max_epochs=200)
    pred, _ = clf.predict()
    grid = adata.obs[["array_row", "array_col"]].to_numpy(float) if is_visium(adata) else adata.obsm["spatial"]
    labels = spg.refine(sample_id=adata.obs_names.tolist(), pred=pred.tolist(), dis=distances(grid), shape="hexagon")
    params = {
        "histology": False,
        "n_genes": adata.n_vars,
        "num_pcs": min(50, adata.n_vars),
        "p": p,
        "l": l,
        "res": res,
        "n_clusters_before_refine": len(set(pred.tolist())),
        "refine": "hexagon on " + ("array_row/array_col" if is_visium(adata) else "obsm['spatial']"),
        "seeds": seed,
        "own_protocol": "SpaGCN labels after refine (no embedding)",
    }
    return None, labels, params


def run_banksy(adata: ad.AnnData, k: int, seed: int) -> tuple:
    from banksy.cluster_methods import run_Leiden_partition
    from banksy.embed_banksy import generate_banksy_matrix
    from banksy.initialize_banksy import initialize_banksy
    from banksy_utils.filter_utils import filter_hvg, normalize_total
    from banksy_utils.umap_pca import pca_umap

    k_geom, max_m, lam, pca_dim = 15, 1, 0.8, 20
    adata = normalize_total(adata)
    if is_visium(adata) and adata.n_vars > 2000:
        adata = filter_hvg(adata, n_top_genes=2000, flavor="seurat")[0].copy()
    banksy_dict = initialize_banksy(
        adata,
        ("x", "y", "spatial"),
        k_geom,
        nbr_weight_decay="scaled_gaussian",
        max_m=max_m,
        plt_edge_hist=False,
        plt_nbr_weights=False,
        plt_agf_angles=False,
        plt_theta=False,
    )
    banksy_dict, _ = generate_banksy_matrix(adata, banksy_dict, [lam], max_m, verbose=False)
    pca_umap(banksy_dict, pca_dims=[pca_dim], plt_remaining_var=False)
    results, _ = run_Leiden_partition(
        banksy_dict, [], num_nn=50, num_iterations=-1, partition_seed=seed, match_labels=False, max_labels=k
    )
    row = results.iloc[0]
    params = {
        "n_genes": adata.n_vars,
        "k_geom": k_geom,
        "max_m": max_m,
        "lambda": lam,
        "pca_dims": pca_dim,
        "nbr_weight_decay": "scaled_gaussian",
        "leiden_resolution": float(row["resolution"]),
        "leiden_num_nn": 50,
        "partition_seed": seed,
        "own_protocol": "BANKSY Leiden, resolution searched for K labels (find_resolutions)",
    }
    return np.asarray(row["adata"].obsm[f"reduced_pc_{pca_dim}"]), row["labels"].dense, params


RUNNERS = {"graphst": run_graphst, "stagate": run_stagate, "spagcn": run_spagcn, "banksy": run_banksy}
PACKAGES = {"graphst": "graphst-modern", "stagate": "stagate-modern", "spagcn": "SpaGCN", "banksy": "pybanksy"}


def main() -> None:
    adata = ad.read_h5ad(args.data)
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)  # raw counts as float (scanpy normalises in place)
    k = int(adata.obs["ground_truth"].nunique())
    n_obs = adata.n_obs
    t0 = time.perf_counter()
    seed_everything(args.seed)
    emb, labels, params = RUNNERS[args.method](adata, k, args.seed)
    wall = time.perf_counter() - t0
    labels = [str(x) for x in np.asarray(labels).ravel()]
    if len(labels) != n_obs:
        raise RuntimeError(f"{args.method} returned {len(labels)} labels for {n_obs} cells")
    if emb is not None:
        emb = np.asarray(emb, dtype=np.float32)
        assert emb.shape[0] == n_obs
        np.save(args.emb, emb)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {
        "method": args.method,
        "package": PACKAGES[args.method],
        "version": version(PACKAGES[args.method]),
        "data": os.path.basename(args.data),
        "seed": args.seed,
        "n_clusters": k,
        "params": params,
        "wall_s": wall,
        "peak_rss_mib": rss / 1024 if sys.platform != "darwin" else rss / 2**20,
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
        "n_obs": n_obs,
        "embedding": os.path.basename(args.emb) if emb is not None else None,
        "embedding_shape": list(emb.shape) if emb is not None else None,
        "n_labels": len(set(labels)),
        "labels": labels,
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print(
        f"{args.method} seed {args.seed}: {wall:.1f} s, {out['n_labels']} labels, peak RSS {out['peak_rss_mib']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
