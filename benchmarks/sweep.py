"""ARI of tl.embed settings over seeds on one slide (expression only; same clustering for all).

    python benchmarks/sweep.py --data dlpfc_151673.h5ad --seeds 0 1 2 3 \
        --variant base '{}' --variant r3 '{"n_repeats": 3}'
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings

import anndata as ad
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

warnings.filterwarnings("ignore")
logging.getLogger("aestetik").setLevel(logging.ERROR)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), required=True)
    p.add_argument("--trainer", default="{}", help="trainer_kwargs as JSON")
    args = p.parse_args()
    adata = ad.read_h5ad(args.data)
    lab = adata.obs["is_labelled"].to_numpy(bool)
    k = int(adata.obs["ground_truth"].nunique())
    if "array_row" not in adata.obs:
        ae.pp.lattice(adata)
    ae.pp.transcriptomics(adata)
    truth = adata.obs["ground_truth"].astype(str).to_numpy()[lab]
    for name, spec in args.variant:
        kw = json.loads(spec)
        refine_kw = kw.pop("cluster", {})
        aris, t0 = [], time.perf_counter()
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
            ae.tl.cluster(a, k, random_state=seed, **refine_kw)
            aris.append(adjusted_rand_score(truth, a.obs["aestetik_clusters"].astype(str).to_numpy()[lab]))
        print(
            f"{name:<14} median ARI {statistics.median(aris):.3f}  mean {statistics.mean(aris):.3f}  "
            f"per seed {[round(x, 3) for x in aris]}  ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
