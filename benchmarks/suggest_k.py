"""What tl.suggest_n_clusters suggests on annotated slides, from saved AESTETIK embeddings.

Uses the embeddings written by bench_reference.py (results/reference/<slide>_ours_seed*.npy)
and the expression PCA, and prints the suggestion of each criterion next to the number of
annotated domains.

    python benchmarks/suggest_k.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc

import aestetik as ae

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import SHARED_DATA  # noqa: E402

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy


def main() -> None:
    print(f"{'slide':<16}{'rep':<26}{'truth K':>8}{'silhouette':>12}{'BIC':>6}")
    for emb_path in sorted((HERE / "results" / "reference").glob("*_ours_seed0.npy")):
        name = emb_path.name.removesuffix("_ours_seed0.npy")
        adata = ad.read_h5ad(SHARED_DATA / f"{name}.h5ad")
        k_true = int(adata.obs["ground_truth"].nunique())
        ae.pp.transcriptomics(adata)
        adata.obsm["X_aestetik"] = np.load(emb_path)
        for rep in ("X_aestetik", "X_pca_transcriptomics"):
            s = ae.tl.suggest_n_clusters(adata, use_rep=rep, criterion="silhouette")
            b = ae.tl.suggest_n_clusters(adata, use_rep=rep, criterion="bic")
            print(
                f"{name:<16}{rep + ' (seed 0)' if rep == 'X_aestetik' else rep:<26}{k_true:>8}{s:>12}{b:>6}", flush=True
            )


if __name__ == "__main__":
    main()
