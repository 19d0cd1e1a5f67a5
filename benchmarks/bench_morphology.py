"""Morphology features on a DLPFC slide: what they carry, how they weigh in AESTETIK, and encoder speed.

Quality (``--quality``): features from the slide's H&E image (``pp.morphology``, the
built-in ``histology`` encoder unless ``--encoder``), then ARI on the annotated spots of
  * morphology only and expression only (the same bgm clustering, with and without refinement),
  * AESTETIK for each ``--weights`` (morphology_weight; 0 = expression only), window 7.
Speed (``--speed``): patches per second of each ``--speed-encoders`` on this machine, over
the slide's first ``--n-speed`` spots, with the ratio to the built-in encoder measured in the
same process. torchvision encoders run with random weights (the speed is the same as
pretrained; ImageNet weights cannot be downloaded on a machine without internet).

    python benchmarks/bench_morphology.py --quality --seeds 0 1 2
    python benchmarks/bench_morphology.py --speed --speed-encoders histology resnet50 inception_v3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy


def ari(adata, lab, truth, key) -> float:
    return adjusted_rand_score(truth, adata.obs[key].astype(str).to_numpy()[lab])


def quality(adata: ad.AnnData, args) -> None:
    lab = adata.obs["is_labelled"].to_numpy(bool)
    truth = adata.obs["ground_truth"].astype(str).to_numpy()[lab]
    k = int(adata.obs["ground_truth"].nunique())
    t0 = time.perf_counter()
    ae.pp.morphology(
        adata, encoder=args.encoder, weights=None if args.random_weights else "imagenet", show_progress_bar=False
    )
    params = adata.uns["pca_morphology"]["params"]
    print(
        f"pp.morphology ({args.encoder}): {adata.n_obs} spots in {time.perf_counter() - t0:.1f} s; image "
        f"{params['image']}, patch side {params['patch_side_px']} px resized to {params['input_size']} px"
    )
    ae.pp.transcriptomics(adata)
    rows: dict[str, list[float]] = {}
    for seed in args.seeds:
        for name, rep in (("morphology only", "X_pca_morphology"), ("expression only", "X_pca_transcriptomics")):
            for refine in (False, True):
                ae.tl.cluster(adata, k, use_rep=rep, refine=refine, random_state=seed, key_added="c")
                rows.setdefault(f"{name}{' + refinement' if refine else ''}", []).append(ari(adata, lab, truth, "c"))
        for w in args.weights:
            t0 = time.perf_counter()
            ae.tl.embed(adata, n_clusters=k, morphology_weight=w, random_state=seed, show_progress_bar=False)
            ae.tl.cluster(adata, k, random_state=seed)
            rows.setdefault(f"AESTETIK morphology_weight={w:g}", []).append(ari(adata, lab, truth, "aestetik_clusters"))
            print(
                f"  seed {seed} weight {w:g}: ARI {rows[f'AESTETIK morphology_weight={w:g}'][-1]:.3f} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print(f"\n{Path(args.data).stem}, K={k}, seeds {args.seeds}; ARI on annotated spots (median, per seed)")
    for name, v in rows.items():
        print(f"  {name:<40}{statistics.median(v):>7.3f}   {[round(x, 3) for x in v]}")


def speed(adata: ad.AnnData, args) -> None:
    sub = adata[: args.n_speed].copy()
    base = None
    print(
        f"\npatches per second, {sub.n_obs} spots of {Path(args.data).stem}, batch 64, CPU threads "
        f"{__import__('torch').get_num_threads()}"
    )
    for enc in args.speed_encoders:
        ae.pp.morphology(sub[:64].copy(), encoder=enc, weights=None, show_progress_bar=False, n_comps=2)  # warm-up
        t0 = time.perf_counter()
        ae.pp.morphology(sub, encoder=enc, weights=None, show_progress_bar=False, raw_key="raw")
        dt = time.perf_counter() - t0
        rate = sub.n_obs / dt
        base = base or rate
        print(
            f"  {enc:<16}{rate:>10.1f} patches/s  ({sub.obsm['raw'].shape[1]} features, input "
            f"{sub.uns['pca_morphology']['params']['input_size']} px; {base / rate:.1f}x the time of "
            f"{args.speed_encoders[0]})",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED_DATA / "dlpfc_151673.h5ad"))
    p.add_argument("--quality", action="store_true")
    p.add_argument("--speed", action="store_true")
    p.add_argument("--encoder", default="histology")
    p.add_argument("--random-weights", action="store_true")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 1.5, 2.0, 3.0])
    p.add_argument("--speed-encoders", nargs="+", default=["histology"])
    p.add_argument("--n-speed", type=int, default=512)
    args = p.parse_args()
    adata = ad.read_h5ad(args.data)
    if args.quality:
        quality(adata, args)
    if args.speed:
        speed(adata, args)


if __name__ == "__main__":
    main()
