"""GPU run: DLPFC 151673 at the defaults (expression only) and a large synthetic slide.

Prints stage timings, ARI and peak GPU memory. Run where CUDA is available:
    python benchmarks/gpu_check.py --data path/to/dlpfc_151673.h5ad --large 200000
"""

from __future__ import annotations

import argparse
import time
import warnings

import anndata as ad
import scanpy as sc
import torch
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

warnings.filterwarnings("ignore")
sc.settings.verbosity = "warning"  # aestetik logs through scanpy


def timings(adata) -> str:
    return " ".join(f"{k}={v:.2f}s" for k, v in adata.uns["aestetik"]["timings"].items())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=None)
    p.add_argument("--large", type=int, default=200_000)
    p.add_argument("--large-epochs", type=int, default=10)
    args = p.parse_args()
    print(torch.cuda.get_device_name(0), "torch", torch.__version__)
    gpu = {"accelerator": "gpu", "devices": 1}

    if args.data:
        adata = ad.read_h5ad(args.data)
        lab = adata.obs["is_labelled"].to_numpy(bool)
        t0 = time.perf_counter()
        ae.pp.transcriptomics(adata)
        t_feat = time.perf_counter() - t0
        for seed in (0, 1, 2):
            a = adata.copy()
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            ae.tl.embed(
                a, n_clusters=7, morphology_weight=0.0, random_state=seed, show_progress_bar=False, trainer_kwargs=gpu
            )
            t_embed = time.perf_counter() - t0
            t0 = time.perf_counter()
            ae.tl.cluster(a, 7, random_state=seed)
            t_cl = time.perf_counter() - t0
            ari = adjusted_rand_score(a.obs["ground_truth"][lab], a.obs["aestetik_clusters"][lab])
            print(
                f"dlpfc_151673 seed {seed}: ARI {ari:.3f}; features {t_feat:.2f}s embed {t_embed:.2f}s "
                f"cluster {t_cl:.2f}s [{timings(a)}] peak GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
            )

    if args.large:
        t0 = time.perf_counter()
        big = ae.datasets.synthetic(n_spots=args.large, with_image=False, n_genes=200)
        ae.pp.transcriptomics(big)
        print(f"synthetic {big.n_obs} spots: data + features {time.perf_counter() - t0:.1f}s")
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        ae.tl.embed(
            big,
            n_clusters=5,
            max_epochs=args.large_epochs,
            clustering_method="kmeans",
            show_progress_bar=False,
            trainer_kwargs=gpu,
        )
        print(
            f"synthetic {big.n_obs} spots, {args.large_epochs} epochs: embed {time.perf_counter() - t0:.1f}s "
            f"[{timings(big)}] peak GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
        )
        ae.tl.cluster(big, 5, method="kmeans", refine=False)
        print(f"  ARI {adjusted_rand_score(big.obs['ground_truth'], big.obs['aestetik_clusters']):.3f}")


if __name__ == "__main__":
    main()
