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

import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae
from aestetik._clustering import fit_clusters
from aestetik._neighbors import knn_indices, neighbour_mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, annotation
from bench_transfer import pooled, read_pair

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy

SLIDES = ("train", "new")


def smoothed(adata, samples: np.ndarray | None = None, key: str = "X_pca_transcriptomics") -> np.ndarray:
    """The pseudo-labels' features: each spot's PCs averaged with its 6 nearest spots (of its slide)."""
    xy = np.asarray(adata.obsm["spatial"])[:, :2]
    return neighbour_mean(adata.obsm[key], knn_indices(xy, 6, samples=samples))


def ari_on(part, labels: np.ndarray) -> float:
    """ARI of one slide's ``labels`` on its annotated spots."""
    lab, truth, _ = annotation(part)
    return float(adjusted_rand_score(truth, labels[lab]))


def clustered_together(both, k: int, seed: int, key: str = "X_pca_transcriptomics") -> list[float]:
    """One clustering of both slides' features: its ARI on each slide."""
    codes = both.obs["slide"].cat.codes.to_numpy()
    labels = fit_clusters(smoothed(both, codes, key), k, random_state=seed)[0]
    return [ari_on(both[mask], labels[mask]) for mask in (both.obs["slide"] == name for name in SLIDES)]


def clustered_alone(slides, k: int, seed: int) -> list[float]:
    """Each slide's features clustered on their own."""
    return [ari_on(a, fit_clusters(smoothed(a), k, random_state=seed)[0]) for a in slides]


def one_seed(train, new, k: int, seed: int) -> dict[str, list[float]]:
    own = [a.copy() for a in (train, new)]
    for a in own:
        ae.pp.transcriptomics(a, random_state=seed)
    res = {"own": clustered_alone(own, k, seed)}
    for correction in ("pooled", "per-slide scaling"):
        both = pooled(train, new)
        ae.pp.transcriptomics(both, random_state=seed, library_key="slide" if correction != "pooled" else None)
        res[correction] = clustered_together(both, k, seed)
        res[f"{correction}, each alone"] = clustered_alone([both[both.obs["slide"] == n] for n in SLIDES], k, seed)
        if correction == "pooled":
            x, codes = both.obsm["X_pca_transcriptomics"], both.obs["slide"].cat.codes.to_numpy()
            d = x[codes == 1].mean(0) - x[codes == 0].mean(0)  # the axis between the two slides' means
            u = d / np.linalg.norm(d)
            both.obsm["X_noaxis"] = x - np.outer(x @ u, u)
            res["pooled, slide axis removed"] = clustered_together(both, k, seed, "X_noaxis")
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
