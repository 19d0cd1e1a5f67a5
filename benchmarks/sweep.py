"""ARI of tl.embed settings over seeds on one or more slides (expression only; same clustering for all).

    python benchmarks/sweep.py --data dlpfc_151673.h5ad dlpfc_151674.h5ad --seeds 0 1 2 \
        --variant base '{}' --variant r1 '{"n_repeats": 1}'

A variant is ``NAME JSON``: keyword arguments of ``tl.embed``, plus an optional
``"cluster"`` mapping passed to ``tl.cluster``. Prints, per slide and variant, the ARI
of the refined clusters (median and per seed) and of the unrefined ones. ``--save DIR``
keeps the embeddings (with coordinates and labels) for ``cluster_variants.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True, nargs="+")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), required=True)
    p.add_argument("--trainer", default="{}", help="trainer_kwargs as JSON")
    p.add_argument("--pp", default="{}", help="pp.transcriptomics keyword arguments as JSON")
    p.add_argument("--save", default=None, help="folder for the embeddings (one .npz per slide and variant)")
    args = p.parse_args()
    for path in args.data:
        adata = ad.read_h5ad(path)
        lab = adata.obs["is_labelled"].to_numpy(bool)
        k = int(adata.obs["ground_truth"].nunique())
        if "array_row" not in adata.obs:
            ae.pp.lattice(adata)
        ae.pp.transcriptomics(adata, **json.loads(args.pp))
        truth = adata.obs["ground_truth"].astype(str).to_numpy()[lab]
        for name, spec in args.variant:
            kw = json.loads(spec)
            cluster_kw = kw.pop("cluster", {})
            aris, raw, embs, t0 = [], [], [], time.perf_counter()
            for seed in args.seeds:
                a = adata.copy()
                ae.tl.embed(
                    a,
                    n_clusters=k,
                    morphology_weight=0.0,
                    random_state=seed,
                    show_progress_bar=False,
                    trainer_kwargs=json.loads(args.trainer),
                    **kw,
                )
                embs.append(a.obsm["X_aestetik"])
                for refine, out in ((True, aris), (False, raw)):
                    ae.tl.cluster(a, k, random_state=seed, refine=refine, **cluster_kw)
                    out.append(adjusted_rand_score(truth, a.obs["aestetik_clusters"].astype(str).to_numpy()[lab]))
            print(
                f"{Path(path).stem:<24}{name:<14} median ARI {statistics.median(aris):.3f}  "
                f"per seed {[round(x, 3) for x in aris]}  unrefined median {statistics.median(raw):.3f}  "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
            if args.save:
                Path(args.save).mkdir(parents=True, exist_ok=True)
                np.savez_compressed(
                    Path(args.save) / f"{Path(path).stem}__{name}.npz",
                    embeddings=np.stack(embs),
                    seeds=np.array(args.seeds),
                    array_row=adata.obs["array_row"].to_numpy(),
                    array_col=adata.obs["array_col"].to_numpy(),
                    labelled=lab,
                    truth=adata.obs["ground_truth"].to_numpy(dtype=str),
                )


if __name__ == "__main__":
    main()
