"""ARI of ``tl.embed`` variants on one data set and seed, one JSON line per run.

    python benchmarks/variants.py dlpfc_151673 --seed 0 --variant base '{}' \
        --variant no_smoothing '{"pseudo_label_neighbors": 0}' [--pp '{"min_variance_norm": 1.0}'] \
        [--no-morphology] [--out results/variants_cpu.jsonl]

Features: ``pp.transcriptomics`` (keyword arguments from ``--pp``) and, where the file has an
H&E image and ``--no-morphology`` is not given, ``pp.morphology`` (built-in encoder). Each
variant is ``NAME JSON``: keyword arguments of ``tl.embed`` (``n_clusters`` defaults to the number
of annotated domains, which ``tl.cluster`` always uses), plus an optional ``"cluster"`` mapping
for ``tl.cluster``. Printed per run: ARI of the refined and unrefined domains on the annotated
spots and the stage timings. ``--out`` appends the lines to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, annotation

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="a data set stem in --data-dir, e.g. dlpfc_151673")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"), required=True)
    p.add_argument("--pp", default="{}", help="pp.transcriptomics keyword arguments as JSON")
    p.add_argument("--no-morphology", action="store_true")
    p.add_argument("--trainer", default="{}", help="trainer_kwargs as JSON")
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    p.add_argument("--out", default=None, help="append the JSON lines to this file")
    args = p.parse_args()
    adata = ad.read_h5ad(Path(args.data_dir) / f"{args.data}.h5ad")
    lab, truth, k = annotation(adata)
    if "array_row" not in adata.obs:
        ae.pp.lattice(adata)
    ae.pp.transcriptomics(adata, **json.loads(args.pp))
    image = any(lib.get("images") for lib in adata.uns.get("spatial", {}).values())
    if image and not args.no_morphology:
        ae.pp.morphology(adata, show_progress_bar=False)
    for name, spec in args.variant:
        kw = json.loads(spec)
        cluster_kw = kw.pop("cluster", {})
        t0 = time.perf_counter()
        ae.tl.embed(
            adata,
            n_clusters=kw.pop("n_clusters", k),  # the pseudo-labels' K; tl.cluster keeps the annotation's
            random_state=args.seed,
            show_progress_bar=False,
            trainer_kwargs=json.loads(args.trainer),
            **kw,
        )
        embed_s = time.perf_counter() - t0
        aris = {}
        for refine in (True, False):
            ae.tl.cluster(adata, k, random_state=args.seed, refine=refine, **cluster_kw)
            aris[refine] = adjusted_rand_score(truth, adata.obs["aestetik_clusters"].astype(str).to_numpy()[lab])
        line = json.dumps(
            {
                "data": args.data,
                "seed": args.seed,
                "variant": name,
                "embed": json.loads(spec),
                "pp": json.loads(args.pp),
                "morphology": "X_pca_morphology" in adata.obsm,
                "ari": round(aris[True], 4),
                "ari_unrefined": round(aris[False], 4),
                "embed_s": round(embed_s, 1),
                "timings": {s: round(v, 1) for s, v in adata.uns["aestetik"]["timings"].items()},
            }
        )
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(line + "\n")


if __name__ == "__main__":
    main()
