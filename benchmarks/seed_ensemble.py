"""Does an ensemble of whole trainings beat one? ARI of concatenated embeddings of several seeds.

    python benchmarks/seed_ensemble.py dlpfc_151673 --groups 0,1 2,3 4,5 0,1,2 3,4,5 [--cache DIR]

Every seed named in ``--groups`` is one ``tl.embed`` at the package defaults (expression only,
``random_state=seed``) after ``pp.transcriptomics``; ``--cache`` keeps each embedding as
``<data>_<seed>.npy`` there and reuses it. For every group, printed as one JSON line: the ARI of
each member's own domains and of the domains of the members' embeddings side by side
(concatenated), all clustered by ``tl.cluster`` (refined; ``random_state`` = the group's first
seed for the concatenation, the member's seed otherwise).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, read_annotated

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"


def member(adata, k: int, seed: int, cache: Path | None, name: str) -> np.ndarray:
    """The embedding of one training at ``seed`` (from ``cache`` when it holds it)."""
    path = cache / f"{name}_{seed}.npy" if cache else None
    if path is not None and path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    ae.tl.embed(adata, n_clusters=k, random_state=seed, show_progress_bar=False)
    print(f"# trained {name} seed {seed}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if path is not None:
        np.save(path, adata.obsm["X_aestetik"])
    return adata.obsm["X_aestetik"].copy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="a data set stem in --data-dir, e.g. dlpfc_151673")
    p.add_argument("--groups", nargs="+", required=True, help="comma-separated seeds, one group each")
    p.add_argument("--cache", default=None, help="directory keeping the members' embeddings")
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    args = p.parse_args()
    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    adata, lab, truth, k = read_annotated(Path(args.data_dir) / f"{args.data}.h5ad")
    ae.pp.transcriptomics(adata)

    def ari(rep: np.ndarray, seed: int) -> float:
        adata.obsm["X_ensemble"] = rep
        ae.tl.cluster(adata, k, use_rep="X_ensemble", random_state=seed)
        return round(adjusted_rand_score(truth, adata.obs["aestetik_clusters"].astype(str).to_numpy()[lab]), 4)

    for group in args.groups:
        seeds = [int(s) for s in group.split(",")]
        embs = [member(adata, k, s, cache, args.data) for s in seeds]
        single = [ari(e, s) for e, s in zip(embs, seeds, strict=True)]
        both = ari(np.concatenate(embs, axis=1), seeds[0])
        print(json.dumps({"data": args.data, "members": seeds, "single": single, "concatenated": both}), flush=True)


if __name__ == "__main__":
    main()
