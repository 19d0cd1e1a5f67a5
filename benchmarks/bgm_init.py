"""How the initialisation of the Bayesian Gaussian mixture changes the clusters, per seed.

The method (and ``aestetik.tl.cluster``'s ``bgm``) starts the mixture's 10 restarts from
random responsibilities. This script clusters the expression PCA of every annotated data
set in ../shared/data with random and k-means initialisation, 5 seeds each, and prints
the ARI per seed (no spatial refinement), to show where random starts find degenerate
mixtures.

    python benchmarks/bgm_init.py [--seeds 0 1 2 3 4] [--only baristaseq_visp_slice1]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture

import aestetik as ae

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, data_files, read_annotated

warnings.filterwarnings("ignore")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    args = p.parse_args()
    files = data_files(args.data_dir, args.only)
    print(f"ARI of bgm (tied, 10 restarts) on the expression PCA, seeds {args.seeds}, no refinement")
    for f in files:
        adata, lab, truth, k = read_annotated(f)
        ae.pp.transcriptomics(adata)
        x = adata.obsm["X_pca_transcriptomics"]
        for init in ("random", "kmeans"):
            aris = []
            for seed in args.seeds:
                bgm = BayesianGaussianMixture(
                    n_components=k,
                    covariance_type="tied",
                    init_params=init,
                    max_iter=1000,
                    n_init=10,
                    random_state=seed,
                ).fit(x)
                aris.append(adjusted_rand_score(truth, bgm.predict(x)[lab]))
            print(f"  {f.stem:<26}{init:<8} min {min(aris):.3f}  per seed {[round(a, 3) for a in aris]}", flush=True)


if __name__ == "__main__":
    main()
