"""How much do the built-in morphology features carry alone? ARI of ``tl.cluster`` on ``X_pca_morphology``.

On the DLPFC slides in ../shared/data (600 x 600 low-resolution H&E), ``pp.morphology`` at its
defaults (built-in ``histology`` encoder), then ``tl.cluster(use_rep="X_pca_morphology")`` with
K = 7, refined and unrefined, for seeds 0-4. No training.

    python benchmarks/morphology_only.py > benchmarks/results/morphology_only_cpu.txt
"""

from __future__ import annotations

import sys
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

if __name__ == "__main__":
    print(f"# python benchmarks/morphology_only.py  (aestetik {ae.__version__})")
    for slide in ("dlpfc_151673", "dlpfc_151674"):
        a = ad.read_h5ad(SHARED_DATA / f"{slide}.h5ad")
        lab = a.obs["is_labelled"].to_numpy(bool)
        ae.pp.morphology(a, show_progress_bar=False)
        for seed in range(5):
            r = {}
            for refine in (True, False):
                ae.tl.cluster(a, 7, use_rep="X_pca_morphology", key_added="m", refine=refine, random_state=seed)
                r[refine] = adjusted_rand_score(a.obs["ground_truth"][lab], a.obs["m"][lab])
            print(f"{slide} seed {seed}: refined {r[True]:.3f} unrefined {r[False]:.3f}", flush=True)
