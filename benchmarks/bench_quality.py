"""Domain quality on every annotated data set in ../shared/data.

For each file: expression-only domains (the expression PCA clustered by the same
code) and AESTETIK at the paper's DLPFC settings (morphology_weight 0, window 7,
K = number of annotated domains, spatial refinement on). Imaging-based data
(no Visium lattice) goes through ``aestetik.pp.lattice`` first. ARI and NMI are
computed on the annotated spots; timings are wall seconds on this machine.

    python benchmarks/bench_quality.py [--seeds 0 1 2] [--only dlpfc_151673]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import aestetik as ae

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA

warnings.filterwarnings("ignore")
logging.getLogger("aestetik").setLevel(logging.ERROR)


def scores(truth, pred) -> tuple[float, float]:
    return adjusted_rand_score(truth, pred), normalized_mutual_info_score(truth, pred)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="*", default=None)
    args = p.parse_args()
    files = sorted(SHARED_DATA.glob("*.h5ad"))
    if args.only:
        files = [f for f in files if f.stem in args.only]
    rows = []
    for f in files:
        adata = ad.read_h5ad(f)
        lab = adata.obs["is_labelled"].to_numpy(bool)
        truth = adata.obs["ground_truth"].astype(str).to_numpy()[lab]
        k = int(adata.obs["ground_truth"].nunique())
        t0 = time.perf_counter()
        if "array_row" not in adata.obs:
            ae.pp.lattice(adata)
        ae.pp.transcriptomics(adata)
        t_feat = time.perf_counter() - t0
        expr, aes, t_embed = [], [], []
        for seed in args.seeds:
            ae.tl.cluster(adata, k, use_rep="X_pca_transcriptomics", key_added="expr", random_state=seed)
            expr.append(scores(truth, adata.obs["expr"].to_numpy()[lab]))
            t0 = time.perf_counter()
            ae.tl.embed(
                adata, n_clusters=k, morphology_weight=0.0, window_size=7, random_state=seed, show_progress_bar=False
            )
            ae.tl.cluster(adata, k, random_state=seed)
            t_embed.append(time.perf_counter() - t0)
            aes.append(scores(truth, adata.obs["aestetik_clusters"].to_numpy()[lab]))
        med = lambda xs, i: statistics.median(x[i] for x in xs)
        rows.append(
            (
                f.stem,
                adata.n_obs,
                k,
                med(expr, 0),
                med(expr, 1),
                med(aes, 0),
                med(aes, 1),
                [round(a[0], 3) for a in aes],
                t_feat,
                statistics.median(t_embed),
            )
        )
        print(f"{f.stem}: expression ARI {med(expr, 0):.3f}, AESTETIK ARI {med(aes, 0):.3f} {rows[-1][7]}", flush=True)

    print(
        f"\nmedian over seeds {args.seeds}; ARI/NMI on annotated spots; same clustering (bgm + kNN refinement) for both"
    )
    print(
        f"{'data set':<26}{'spots':>7}{'K':>4}{'expr ARI':>10}{'expr NMI':>10}{'AESTETIK ARI':>14}{'NMI':>7}  {'ARI per seed':<24}{'features s':>11}{'embed+cluster s':>17}"
    )
    for r in rows:
        print(
            f"{r[0]:<26}{r[1]:>7}{r[2]:>4}{r[3]:>10.3f}{r[4]:>10.3f}{r[5]:>14.3f}{r[6]:>7.3f}  {str(r[7]):<24}{r[8]:>11.1f}{r[9]:>17.1f}"
        )
    print(
        f"\nmedian ARI over data sets: expression {np.median([r[3] for r in rows]):.3f}, AESTETIK {np.median([r[5] for r in rows]):.3f}"
    )


if __name__ == "__main__":
    main()
