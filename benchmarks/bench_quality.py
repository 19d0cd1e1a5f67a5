"""Domain quality on every annotated data set in ../shared/data.

For each file and seed:
  * expression only: the expression PCA clustered by the same code as AESTETIK,
  * AESTETIK expression only (morphology_weight 0, window 7), the paper's DLPFC setting,
  * AESTETIK with morphology (``--morphology-weight``, 1.5 = the package default when
    morphology features exist), on files that carry an H&E image in ``uns["spatial"]``;
    the features come from ``aestetik.pp.morphology`` (built-in ``histology`` encoder).
K = number of annotated domains, spatial refinement on, bgm clustering. Imaging-based
data (no Visium lattice) goes through ``aestetik.pp.lattice`` first. ARI and NMI are
computed on the annotated spots; timings are wall seconds on this machine.

    python benchmarks/bench_quality.py [--seeds 0 1 2] [--only dlpfc_151673]

Runs can be split (e.g. one process per file and seed on a GPU machine) and merged:
``--save part.json`` writes the per-seed records, ``--load part*.json`` prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import aestetik as ae

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA

warnings.filterwarnings("ignore")
logging.getLogger("aestetik").setLevel(logging.ERROR)


def scores(truth, pred) -> tuple[float, float]:
    return adjusted_rand_score(truth, pred), normalized_mutual_info_score(truth, pred)


def has_image(adata: ad.AnnData) -> bool:
    return any(lib.get("images") for lib in adata.uns.get("spatial", {}).values())


def run_file(path: Path, seeds: list[int], weight: float, trainer_kwargs: dict) -> list[dict]:
    adata = ad.read_h5ad(path)
    lab = adata.obs["is_labelled"].to_numpy(bool)
    truth = adata.obs["ground_truth"].astype(str).to_numpy()[lab]
    k = int(adata.obs["ground_truth"].nunique())
    t0 = time.perf_counter()
    if "array_row" not in adata.obs:
        ae.pp.lattice(adata)
    ae.pp.transcriptomics(adata)
    t_feat = time.perf_counter() - t0
    image = has_image(adata)
    t_morph = None
    if image:
        t0 = time.perf_counter()
        ae.pp.morphology(adata, show_progress_bar=False)
        t_morph = time.perf_counter() - t0
    records = []
    accel = trainer_kwargs.get("accelerator", "auto")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() and accel in ("auto", "gpu", "cuda") else "cpu"
    for seed in seeds:
        rec = {"data": path.stem, "spots": adata.n_obs, "K": k, "seed": seed, "features_s": t_feat, "device": device}
        ae.tl.cluster(adata, k, use_rep="X_pca_transcriptomics", key_added="expr", random_state=seed)
        rec["expression"] = scores(truth, adata.obs["expr"].to_numpy()[lab])
        runs = [("aestetik", 0.0)] + ([("aestetik_morphology", weight)] if image else [])
        for name, w in runs:
            t0 = time.perf_counter()
            ae.tl.embed(
                adata,
                n_clusters=k,
                morphology_weight=w,
                window_size=7,
                random_state=seed,
                show_progress_bar=False,
                trainer_kwargs=trainer_kwargs,
            )
            ae.tl.cluster(adata, k, random_state=seed)
            rec[f"{name}_s"] = time.perf_counter() - t0
            rec[name] = scores(truth, adata.obs["aestetik_clusters"].to_numpy()[lab])
        if image:
            rec["morphology_weight"], rec["morphology_features_s"] = weight, t_morph
        records.append(rec)
        msg = ", ".join(
            f"{n} ARI {rec[n][0]:.3f}" for n in ("expression", "aestetik", "aestetik_morphology") if n in rec
        )
        print(f"{path.stem} seed {seed}: {msg}", flush=True)
    return records


def table(records: list[dict]) -> None:
    by_file: dict[str, list[dict]] = {}
    for r in records:
        by_file.setdefault(r["data"], []).append(r)
    seeds = sorted({r["seed"] for r in records})
    weights = sorted({r["morphology_weight"] for r in records if "morphology_weight" in r})
    print(f"\nmedian over seeds {seeds}; ARI / NMI on annotated spots; same clustering (bgm + kNN refinement) for all")
    print(f"AESTETIK: window 7; '+ morphology' = morphology_weight {', '.join(f'{w:g}' for w in weights) or '-'}")
    print("embed s: median wall seconds of one AESTETIK embed + cluster (expression only) on the row's device(s)")
    head = f"{'data set':<26}{'spots':>7}{'K':>4}{'expression':>12}{'AESTETIK':>12}{'+ morphology':>14}"
    print(head + f"  {'AESTETIK ARI per seed':<24}{'+ morphology per seed':<24}{'embed s':>8}  device")
    summary: dict[str, list[float]] = {"expression": [], "aestetik": [], "aestetik_morphology": []}
    for name, rs in sorted(by_file.items()):
        cells = []
        for key in summary:
            vals = [r[key] for r in rs if key in r]
            if vals:
                ari, nmi = statistics.median(v[0] for v in vals), statistics.median(v[1] for v in vals)
                summary[key].append(ari)
                cells.append(f"{ari:.3f}/{nmi:.2f}")
            else:
                cells.append("-")
        per = [str([round(r[k][0], 3) for r in rs]) if k in rs[0] else "-" for k in ("aestetik", "aestetik_morphology")]
        t = statistics.median(r["aestetik_s"] for r in rs)
        print(
            f"{name:<26}{rs[0]['spots']:>7}{rs[0]['K']:>4}{cells[0]:>12}{cells[1]:>12}{cells[2]:>14}  "
            f"{per[0]:<24}{per[1]:<24}{t:>8.0f}  {' + '.join(sorted({r.get('device', '?') for r in rs}))}"
        )
    print(
        "\nmedian ARI over data sets: "
        + ", ".join(f"{k} {np.median(v):.3f} ({len(v)} sets)" for k, v in summary.items() if v)
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    p.add_argument("--morphology-weight", type=float, default=1.5)
    p.add_argument("--trainer", default="{}", help="trainer_kwargs of tl.embed as JSON")
    p.add_argument("--save", default=None, help="write the per-seed records to this JSON file")
    p.add_argument("--load", nargs="+", default=None, help="print the table of saved records instead of running")
    args = p.parse_args()
    if args.load:
        table([r for f in args.load for r in json.loads(Path(f).read_text())])
        return
    files = sorted(Path(args.data_dir).glob("*.h5ad"))
    if args.only:
        files = [f for f in files if f.stem in args.only]
    records = [r for f in files for r in run_file(f, args.seeds, args.morphology_weight, json.loads(args.trainer))]
    if args.save:
        Path(args.save).write_text(json.dumps(records, indent=1))
    table(records)


if __name__ == "__main__":
    main()
