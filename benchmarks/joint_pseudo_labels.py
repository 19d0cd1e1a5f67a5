"""Where a joint model's per-slide ARI comes from: the first pseudo-labels of pooled slides.

``tl.embed`` on several slides clusters their pooled expression features (each spot averaged
with its 6 nearest spots of the same slide) once, and trains towards those pseudo-labels. No
training here: on the pair of ``bench_transfer.py`` (DLPFC 151673 and 151674, their 2340
shared genes, K = 7) this prints the ARI of the first pseudo-labels on each slide, for

* ``own``: each slide's own ``pp.transcriptomics`` features, clustered alone (what the slide's
  own model starts from);
* ``pooled``: ``pp.transcriptomics`` of both slides together (the default of a joint model),
  one clustering of both; ``pooled, each alone``: the same features, each slide clustered on
  its own (a weaker representation, or a costlier shared clustering?);
* ``pooled, slide axis removed``: the pooled principal components with the direction between
  the two slides' means projected out (does the slide shift split the clusters?);
* ``per-slide scaling``: ``pp.transcriptomics(library_key="slide")`` (every slide centred and
  scaled on its own), one clustering of both; and each slide clustered alone.

    python benchmarks/joint_pseudo_labels.py [--seeds 0 1 2 3 4]

Prints the median ARI (min-max) over seeds (the seed of the mixture fit and of the PCA).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae
from aestetik._clustering import fit_clusters
from aestetik._neighbors import knn_indices, neighbour_mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, annotation
from bench_transfer import read_pair

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy

SLIDES = ("train", "new")


def smoothed(adata, samples: np.ndarray | None = None, key: str = "X_pca_transcriptomics") -> np.ndarray:
    """The pseudo-labels' features: each spot's PCs averaged with its 6 nearest spots (of its slide)."""
    xy = np.asarray(adata.obsm["spatial"])[:, :2]
    return neighbour_mean(adata.obsm[key], knn_indices(xy, 6, samples=samples))


def per_slide_ari(both, labels: np.ndarray) -> list[float]:
    out = []
    for name in SLIDES:
        part = (both.obs["slide"] == name).to_numpy()
        lab, truth, _ = annotation(both[part])
        out.append(float(adjusted_rand_score(truth, labels[part][lab])))
    return out


def one_seed(train, new, k: int, seed: int) -> dict[str, list[float]]:
    res: dict[str, list[float]] = {"own": []}
    for a in (train, new):
        a = a.copy()
        ae.pp.transcriptomics(a, random_state=seed)
        lab, truth, _ = annotation(a)
        res["own"].append(float(adjusted_rand_score(truth, fit_clusters(smoothed(a), k, random_state=seed)[0][lab])))
    for correction in ("pooled", "per-slide scaling"):
        both = ad.concat({"train": train, "new": new}, label="slide", index_unique="-", uns_merge="unique")
        both.obs["slide"] = both.obs["slide"].astype("category")
        ae.pp.transcriptomics(both, random_state=seed, library_key="slide" if correction != "pooled" else None)
        codes = both.obs["slide"].cat.codes.to_numpy()
        res[correction] = per_slide_ari(both, fit_clusters(smoothed(both, codes), k, random_state=seed)[0])
        res[f"{correction}, each alone"] = [
            float(adjusted_rand_score(a_truth, fit_clusters(smoothed(part), k, random_state=seed)[0][a_lab]))
            for part in (both[both.obs["slide"] == name] for name in SLIDES)
            for a_lab, a_truth, _ in [annotation(part)]
        ]
        if correction == "pooled":
            x = both.obsm["X_pca_transcriptomics"]
            d = x[codes == 1].mean(0) - x[codes == 0].mean(0)
            u = d / np.linalg.norm(d)
            both.obsm["X_noaxis"] = x - np.outer(x @ u, u)
            labels = fit_clusters(smoothed(both, codes, "X_noaxis"), k, random_state=seed)[0]
            res["pooled, slide axis removed"] = per_slide_ari(both, labels)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--train", default="dlpfc_151673")
    p.add_argument("--new", default="dlpfc_151674")
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    args = p.parse_args()
    data = Path(args.data_dir)
    train, new = read_pair(data / f"{args.train}.h5ad", data / f"{args.new}.h5ad")
    k = annotation(train)[2]
    runs = [one_seed(train, new, k, seed) for seed in args.seeds]
    print(f"ARI of the first pseudo-labels, {args.train} (train) and {args.new} (new), {train.n_vars} shared genes,")
    print(f"K = {k}, median (min-max) over seeds {args.seeds}; no training")
    print(f"{'features, clustering':<32}{'ARI ' + args.train:>24}{'ARI ' + args.new:>24}")
    for name in runs[0]:
        cells = []
        for i in range(len(SLIDES)):
            v = [r[name][i] for r in runs]
            cells.append(f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})")
        print(f"{name:<32}{cells[0]:>24}{cells[1]:>24}")


if __name__ == "__main__":
    main()
