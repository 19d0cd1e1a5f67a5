"""How much training a large slide needs: ARI and time of ``tl.embed`` per number of epochs.

The default number of epochs shrinks with the slide (``aestetik._model.default_max_epochs``:
100 epochs up to 8,192 spots, one batch each, then about as many optimisation steps, at least
one epoch). On one synthetic slide with known domains (``datasets.synthetic``, no image, weak markers so
that the expression PCA alone finds the domains only partly), this trains ``tl.embed`` with
the default and with each ``--epochs`` value from the same pseudo-labels, clusters with
``tl.cluster`` and prints ARI, training steps and seconds, with the ratio of each run's training
time to the longest run's. The expression PCA clustered the same way is the floor.

    python benchmarks/bench_epochs.py [--n-spots 50000] [--epochs 10 100] [--seeds 0]
        [--fold-change 1.5] [--out benchmarks/results/epochs_cpu.json]
    python benchmarks/bench_epochs.py --n-spots 300000 --epochs 20 --out benchmarks/results/epochs_300k_cpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import scanpy as sc
from sklearn.metrics import adjusted_rand_score

import aestetik as ae
from aestetik._model import BATCH_SIZE, default_max_epochs

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"


def run(n_spots: int, epochs: list[int | None], seed: int, fold_change: float, n_domains: int) -> list[dict]:
    adata = ae.datasets.synthetic(
        n_spots=n_spots, n_domains=n_domains, fold_change=fold_change, with_image=False, random_state=seed
    )
    ae.pp.transcriptomics(adata, random_state=seed)
    truth = adata.obs["ground_truth"]
    ae.tl.cluster(adata, n_domains, use_rep="X_pca_transcriptomics", key_added="expr", random_state=seed)
    rows = [
        {
            "n_spots": n_spots,
            "seed": seed,
            "epochs": "expression PCA",
            "ari": adjusted_rand_score(truth, adata.obs["expr"]),
        }
    ]
    for e in epochs:
        t0 = time.perf_counter()
        ae.tl.embed(adata, n_clusters=n_domains, max_epochs=e, random_state=seed, show_progress_bar=False)
        wall = time.perf_counter() - t0
        uns = adata.uns["aestetik"]
        n_epochs = uns["params"]["max_epochs"]
        ae.tl.cluster(adata, n_domains, random_state=seed)
        rows.append(
            {
                "n_spots": n_spots,
                "seed": seed,
                "epochs": f"{n_epochs} (default)" if e is None else str(n_epochs),
                "steps": n_epochs * math.ceil(n_spots / BATCH_SIZE),
                "train_s": float(uns["timings"]["training"]),
                "embed_s": wall,
                "final_loss": float(uns["history"]["loss"][-1]),
                "ari": adjusted_rand_score(truth, adata.obs["aestetik_clusters"]),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> None:
    longest = max(r.get("train_s", 0) for r in rows)
    print(f"\n{'spots':>8} {'seed':>4} {'epochs':>16} {'steps':>6} {'train s':>8} {'ratio':>6} {'loss':>7} {'ARI':>6}")
    for r in rows:
        if "train_s" in r:
            print(
                f"{r['n_spots']:>8} {r['seed']:>4} {r['epochs']:>16} {r['steps']:>6} {r['train_s']:>8.1f}"
                f" {r['train_s'] / longest:>6.2f} {r['final_loss']:>7.4f} {r['ari']:>6.3f}"
            )
        else:
            print(
                f"{r['n_spots']:>8} {r['seed']:>4} {r['epochs']:>16} {'':>6} {'':>8} {'':>6} {'':>7} {r['ari']:>6.3f}"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-spots", type=int, default=50_000)
    p.add_argument("--epochs", type=int, nargs="*", default=[10, 100], help="besides the default")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--fold-change", type=float, default=1.5)
    p.add_argument("--n-domains", type=int, default=5)
    p.add_argument("--out", default=None, help="write the rows to this JSON file")
    p.add_argument("--load", default=None, help="print the table of a saved JSON file instead of running")
    args = p.parse_args()
    if args.load:
        table(json.loads(Path(args.load).read_text()))
        return
    print(f"default epochs at {args.n_spots} spots: {default_max_epochs(args.n_spots)}", flush=True)
    rows = [r for s in args.seeds for r in run(args.n_spots, [None, *args.epochs], s, args.fold_change, args.n_domains)]
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    table(rows)


if __name__ == "__main__":
    main()
