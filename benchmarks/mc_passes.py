"""How many Monte-Carlo dropout passes does the embedding need?

Trains AESTETIK once on a DLPFC slide (expression only, window 7, 7 clusters), then
computes the embedding of the same trained model with n passes for several n and
compares each with 1000 passes (the reference implementation's default): the
relative difference of the embeddings, the ARI between the domains found from each
and from 1000 passes, the ARI against the annotation, and the inference time.

    python benchmarks/mc_passes.py [--data path.h5ad] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA

warnings.filterwarnings("ignore")
sc.settings.verbosity = "warning"  # aestetik logs through scanpy

PASSES = [1, 3, 10, 30, 100, 300, 1000]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED_DATA / "dlpfc_151673.h5ad"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    adata = ad.read_h5ad(args.data)
    ae.pp.transcriptomics(adata)
    embeddings: dict[int, np.ndarray] = {}
    seconds: dict[int, float] = {}
    model = ae.AESTETIK(adata, n_clusters=7, morphology_weight=0.0, random_state=args.seed)
    model.train(show_progress_bar=False)
    for n in PASSES:  # the same trained model for every n
        t0 = time.perf_counter()
        embeddings[n] = model.get_latent_representation(n_mc_passes=n, show_progress_bar=False)
        seconds[n] = time.perf_counter() - t0

    lab = adata.obs["is_labelled"].to_numpy(bool)
    truth = adata.obs["ground_truth"].to_numpy()[lab]
    labels = {}
    for n, e in embeddings.items():
        adata.obsm["emb"] = e
        ae.tl.cluster(adata, 7, use_rep="emb", random_state=args.seed)
        labels[n] = adata.obs["aestetik_clusters"].to_numpy()
    ref = embeddings[1000]
    spread = np.linalg.norm(ref - ref.mean(0))
    print(f"{Path(args.data).stem}, seed {args.seed}: embedding with n MC-dropout passes vs 1000 passes")
    print(f"{'n':>6}{'rel. diff':>11}{'ARI vs 1000':>13}{'ARI truth':>11}{'seconds':>9}")
    for n in PASSES:
        rel = np.linalg.norm(embeddings[n] - ref) / spread
        print(
            f"{n:>6}{rel:>11.4f}{adjusted_rand_score(labels[1000], labels[n]):>13.3f}"
            f"{adjusted_rand_score(truth, labels[n][lab]):>11.3f}{seconds[n]:>9.2f}"
        )


if __name__ == "__main__":
    main()
