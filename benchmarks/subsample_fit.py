"""What fitting the clusters on a subsample costs: ``max_spots`` of tl.cluster and of the pseudo-labels.

On large slides ``tl.cluster(max_spots=)`` and ``tl.embed(pseudo_label_max_spots=)`` (default
100,000) fit the Gaussian mixture on a seeded random subsample and assign every spot to it.
The annotated sets here are smaller than the default, so the cost is measured by forcing
small subsamples. The features are those the pseudo-labels cluster: the expression PCA
(``pp.transcriptomics`` defaults) averaged over each spot and its 6 nearest spots.

For each data set, seed and ``max_spots``: the ARI against the annotation of

* ``pseudo``: the pseudo-labels (``fit_clusters``, as ``tl.embed`` calls it), and
* ``domains``: ``tl.cluster`` on the same features (spatial refinement on),

and ``agree``: the ARI between the subsample fit and the fit on all spots (same seed).
``--synthetic N`` measures the package default instead (100,000 of N spots) on a synthetic slide of
N spots with known domains (no image, 5 layered domains, weak 1.5-fold markers).

    python benchmarks/subsample_fit.py [--seeds 0 1 2] [--sizes 2000 1000 500] [--only dlpfc_151673]
    python benchmarks/subsample_fit.py --synthetic 300000 --sizes 100000 --seeds 0
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae
from aestetik._clustering import fit_clusters
from aestetik._neighbors import knn_indices, neighbour_mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, data_files, read_annotated

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def _synthetic(n_spots: int) -> tuple:
    adata = ae.datasets.synthetic(n_spots=n_spots, fold_change=1.5, with_image=False, random_state=0)
    truth = adata.obs["ground_truth"].to_numpy()
    return adata, np.ones(adata.n_obs, dtype=bool), truth, len(np.unique(truth))


def _data_sets(args: argparse.Namespace):
    """(name, (adata, labelled mask, truth on the labelled spots, K)) per data set."""
    if args.synthetic:
        yield f"synthetic_{args.synthetic}", _synthetic(args.synthetic)
        return
    for path in data_files(args.data_dir, args.only):
        yield path.stem, read_annotated(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 1000, 500])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    p.add_argument("--synthetic", type=int, default=None, help="a synthetic slide of this many spots instead")
    args = p.parse_args()
    print(f"ARI, median (min-max) over seeds {args.seeds}; max_spots 'all' = fit on every spot")
    print(f"{'data set':<24}{'spots':>6}{'max_spots':>10}{'pseudo':>22}{'domains':>22}{'agree pseudo':>22}")
    for name, (adata, lab, truth, k) in _data_sets(args):
        ae.pp.transcriptomics(adata)
        xy = np.asarray(adata.obsm["spatial"])[:, :2]
        adata.obsm["X_smoothed"] = neighbour_mean(adata.obsm["X_pca_transcriptomics"], knn_indices(xy, 6))
        full: dict[int, np.ndarray] = {}
        for size in [None, *args.sizes]:
            if size is not None and size >= adata.n_obs:
                continue
            pseudo, domains, agree = [], [], []
            for seed in args.seeds:
                labels = fit_clusters(adata.obsm["X_smoothed"], k, random_state=seed, max_spots=size)[0]
                full.setdefault(seed, labels)
                pseudo.append(adjusted_rand_score(truth, labels[lab]))
                agree.append(adjusted_rand_score(full[seed], labels))
                ae.tl.cluster(adata, k, use_rep="X_smoothed", random_state=seed, max_spots=size)
                domains.append(adjusted_rand_score(truth, adata.obs["aestetik_clusters"].to_numpy()[lab]))
            print(
                f"{name:<24}{adata.n_obs:>6}{size or 'all':>10}{fmt(pseudo):>22}{fmt(domains):>22}{fmt(agree):>22}",
                flush=True,
            )


if __name__ == "__main__":
    main()
