"""How good are the pseudo-labels? ARI of the expression pseudo-labels against the annotation.

No training: the pseudo-labels are what ``tl.embed`` clusters before it trains (the same
``fit_clusters`` call), so this measures, on every annotated data set, the target the
triplet loss pulls the embedding towards. Variants:

* genes: ``3000`` most variable (the default of ``pp.transcriptomics``) or ``var>=1``
  (normalised ``seurat_v3`` variance >= 1, the published rule);
* smoothing: the expression PCA of each spot (``own``, the published method) or averaged
  over the spot and its 6 / 18 nearest spots (``pseudo_label_neighbors``);
* starts of the Bayesian Gaussian mixture: ``kmeans`` or ``random`` (the published method).

    python benchmarks/pseudo_labels.py [--seeds 0 1 2 3 4] [--only dlpfc_151673]
    python benchmarks/pseudo_labels.py --confidence [--seeds 0 1 2]

Prints, per data set and variant, the median ARI over seeds and its range. ``--confidence``
looks at the default pseudo-labels only (3000 genes, the default neighbours, k-means starts):
for mixture-posterior thresholds 0.9, 0.99 and 0.999, the share of spots above it and the ARI
of the pseudo-labels on the annotated spots above and below it (medians over seeds).
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
from aestetik._model import default_pseudo_label_neighbors
from aestetik._neighbors import knn_indices, neighbour_mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, data_files, read_annotated

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy

VARIANTS = [  # (genes, neighbours, starts)
    ("var>=1", 0, "random"),  # the published method
    ("var>=1", 0, "kmeans"),
    ("var>=1", 6, "random"),
    ("var>=1", 6, "kmeans"),
    ("3000", 0, "kmeans"),
    ("3000", 6, "random"),
    ("3000", 6, "kmeans"),  # the defaults
    ("3000", 18, "kmeans"),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    p.add_argument("--confidence", action="store_true", help="ARI above and below posterior thresholds")
    args = p.parse_args()
    files = data_files(args.data_dir, args.only)
    if args.confidence:
        confidence(files, args.seeds)
        return
    print(f"ARI of the expression pseudo-labels, median (min-max) over seeds {args.seeds}")
    print(f"{'data set':<24}{'genes':>8}{'neighbours':>11}{'starts':>8}  ARI")
    for path in files:
        adata, lab, truth, k = read_annotated(path)
        ae.pp.transcriptomics(adata, key_added="X_3000")
        ae.pp.transcriptomics(adata, min_variance_norm=1.0, key_added="X_var>=1")
        xy = np.asarray(adata.obsm["spatial"])[:, :2]
        nbrs = {n: knn_indices(xy, n) for n in {v[1] for v in VARIANTS} if n}
        for genes, n, init in VARIANTS:
            x = adata.obsm[f"X_{genes}"]
            x = neighbour_mean(x, nbrs[n]) if n else x
            aris = [
                adjusted_rand_score(truth, fit_clusters(x, k, random_state=s, mixture_init=init)[0][lab])
                for s in args.seeds
            ]
            print(
                f"{path.stem:<24}{genes:>8}{n:>11}{init:>8}  {statistics.median(aris):.3f} "
                f"({min(aris):.3f}-{max(aris):.3f})",
                flush=True,
            )


THRESHOLDS = (0.9, 0.99, 0.999)


def confidence(files: list[Path], seeds: list[int]) -> None:
    """How often the default pseudo-labels are right where the mixture is sure of them, and elsewhere."""
    print(f"default pseudo-labels by mixture posterior; medians over seeds {seeds}")
    print(f"{'data set':<24}{'neighbours':>11}{'posterior >':>12}{'share':>7}{'ARI above':>10}{'ARI below':>10}")
    for path in files:
        adata, lab, truth, k = read_annotated(path)
        ae.pp.transcriptomics(adata)
        rows, cols = (adata.obs[c].to_numpy() for c in ("array_row", "array_col"))
        n = default_pseudo_label_neighbors(rows, cols)
        xy = np.asarray(adata.obsm["spatial"])[:, :2]  # as the variants above
        x = neighbour_mean(adata.obsm["X_pca_transcriptomics"], knn_indices(xy, n))
        fits = [fit_clusters(x, k, random_state=s)[:2] for s in seeds]
        for t in THRESHOLDS:
            share, above, below = [], [], []
            for labels, proba in fits:
                sure = proba[lab] > t
                share.append(float((proba > t).mean()))
                above.append(adjusted_rand_score(truth[sure], labels[lab][sure]))
                below.append(adjusted_rand_score(truth[~sure], labels[lab][~sure]))
            med = statistics.median
            print(f"{path.stem:<24}{n:>11}{t:>12}{med(share):>7.2f}{med(above):>10.3f}{med(below):>10.3f}", flush=True)


if __name__ == "__main__":
    main()
