"""One run of the reference ``aestetik==0.3.1`` at its defaults; run in its own venv.

Expression only, or with ``--morphology FILE.npy --morphology-weight W`` the given
morphology features (the reference's own image pipeline needs Inception weights from
the internet). Stages are timed by wrapping the reference's own functions. Usage:
python _run_reference.py DATA.h5ad --seed 0 --out run.json --emb emb.npy --workdir /tmp/x
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings

import anndata as ad
import numpy as np
from _common import peak_rss_mib, stage, write_json

warnings.filterwarnings("ignore")

p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--n-clusters", type=int, default=7)
p.add_argument("--window-size", type=int, default=7)
p.add_argument("--out", required=True)
p.add_argument("--emb", required=True)
p.add_argument("--morphology", default=None, help=".npy of per-spot morphology features")
p.add_argument("--morphology-weight", type=float, default=0.0)
p.add_argument("--workdir", required=True, help="where Lightning may write lightning_logs/")
args = p.parse_args()
out, emb_path, data = (os.path.abspath(x) for x in (args.out, args.emb, args.data))
morphology = np.load(args.morphology) if args.morphology else None
os.makedirs(args.workdir, exist_ok=True)
os.chdir(args.workdir)

import aestetik.utils.utils_data as ref_data  # noqa: E402
import torch  # noqa: E402
from aestetik.utils.utils_transcriptomics import preprocess_adata  # noqa: E402
from lightning.pytorch import Trainer  # noqa: E402

from aestetik import AESTETIK  # noqa: E402

logging.getLogger("lightning").setLevel(logging.WARNING)
t: dict = {}


def timed(name, fn):
    def wrapper(*a, **k):
        with stage(t, name):
            return fn(*a, **k)

    return wrapper


ref_data.build_grid = timed("grid", ref_data.build_grid)
ref_data.clustering = timed("pseudo_labels", ref_data.clustering)
AESTETIK._compute_latent_space = timed("inference", AESTETIK._compute_latent_space)
AESTETIK._cluster_embedding = timed("clustering", AESTETIK._cluster_embedding)
Trainer.fit = timed("trainer_fit", Trainer.fit)

adata = ad.read_h5ad(data)
with stage(t, "features"):
    pre = preprocess_adata(adata)
    adata.obsm["X_pca_transcriptomics"] = pre.obsm["X_pca"]
if morphology is None:
    # Expression only: the reference requires a morphology matrix; a constant one carries no
    # signal, collapses to one pseudo-label cluster and costs a single input channel.
    adata.obsm["X_pca_morphology"] = np.zeros((adata.n_obs, 1), dtype=np.float32)
else:
    adata.obsm["X_pca_morphology"] = morphology.astype(np.float32)
adata.obs["x_array"] = adata.obs["array_row"]
adata.obs["y_array"] = adata.obs["array_col"]
model = AESTETIK(
    morphology_weight=args.morphology_weight if morphology is not None else 0.0,
    n_cluster=args.n_clusters,
    window_size=args.window_size,
    clustering_method="bgm",
    random_state=args.seed,
)
with stage(t, "fit_total"):
    model.fit(adata)
t["training"] = t["trainer_fit"] - t["grid"] - t["pseudo_labels"]
t["end_to_end"] = t["features"] + t["fit_total"]
np.save(emb_path, model.embedding_)
write_json(
    out,
    {
        "tool": "aestetik==0.3.1 (reference)",
        "seed": args.seed,
        "morphology_weight": args.morphology_weight if morphology is not None else 0.0,
        "timings": t,
        "peak_rss_mib": peak_rss_mib(),
        "labels": [str(x) for x in model.labels_],
        "torch_threads": torch.get_num_threads(),
    },
)
