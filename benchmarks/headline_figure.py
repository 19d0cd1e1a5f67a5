"""The README's picture: DLPFC 151673, manual layers, expression-PCA domains and AESTETIK domains at the defaults.

The same steps as the DLPFC tutorial in ``docs/`` (one seed), on this machine:

    python benchmarks/headline_figure.py [--seed 0] > benchmarks/results/headline_151673.txt

writes ``docs/_static/dlpfc_151673_domains.png`` and prints the ARI of both panels.
Over seeds and data sets, see ``bench_quality.py``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import anndata as ad
import matplotlib

matplotlib.use("Agg")
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import SHARED_DATA  # noqa: E402

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(HERE.parent / "docs" / "_static" / "dlpfc_151673_domains.png"))
    args = p.parse_args()
    adata = ad.read_h5ad(SHARED_DATA / "dlpfc_151673.h5ad")
    ae.pp.transcriptomics(adata)
    ae.pp.morphology(adata, show_progress_bar=False)
    ae.tl.cluster(adata, 7, use_rep="X_pca_transcriptomics", key_added="expression PCA", random_state=args.seed)
    ae.tl.embed(adata, n_clusters=7, random_state=args.seed, show_progress_bar=False)
    ae.tl.cluster(adata, 7, random_state=args.seed, key_added="AESTETIK")
    labelled = adata[adata.obs["is_labelled"]].copy()
    labelled.obs["manual layers"] = labelled.obs["ground_truth"]
    fig = ae.pl.spatial(
        labelled,
        ["manual layers", "expression PCA", "AESTETIK"],
        reference="manual layers",
        panel_size=4,
        return_fig=True,
    )
    fig.savefig(args.out, dpi=110, bbox_inches="tight")
    print(f"# python benchmarks/headline_figure.py --seed {args.seed}  (aestetik {ae.__version__}, CPU)")
    for col in ("expression PCA", "AESTETIK"):
        print(f"{col}: ARI {adjusted_rand_score(labelled.obs['ground_truth'], labelled.obs[col]):.3f}")
    print(f"figure: {args.out}")
