"""This package against the reference ``aestetik==0.3.1`` on one DLPFC slide.

Both run in their own virtual environments, in separate processes, one after the
other, with the same data, window 7, 7 clusters. The reference runs at its
defaults (1000 MC-dropout passes, 100 epochs). Both embeddings are then clustered
by the same code (Bayesian Gaussian mixture + the same kNN spatial refinement), and
ARI is computed on the annotated spots. Prints per-stage wall time, peak memory and
ARI, with ratios reference / ours.

Expression only by default. With ``--morphology-weight W`` (> 0) both tools get the
same morphology features, computed once by ``aestetik.pp.morphology`` (built-in
``histology`` encoder) from the slide's image and saved beside the results; the
reference's own image pipeline needs Inception weights from the internet.

    python benchmarks/bench_reference.py --seeds 0 1 2 \
        --reference-python /path/to/ref-venv/bin/python
    python benchmarks/bench_reference.py --seeds 0 --morphology-weight 1.5 \
        --reference-python /path/to/ref-venv/bin/python

Runs whose JSON already exists in --results are reused (delete them to rerun).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import aestetik as ae

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import SHARED_DATA  # noqa: E402

STAGES = ["features", "pseudo_labels", "grid", "training", "inference", "clustering", "end_to_end"]


def run(cmd: list[str], log: Path) -> None:
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, cwd=HERE)
    print(f"  done in {time.perf_counter() - t0:.0f} s: {' '.join(Path(c).name for c in cmd[:3])}", flush=True)


def common_clustering(adata: ad.AnnData, emb: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    a = ad.AnnData(
        obs=adata.obs[["array_row", "array_col"]].copy(), obsm={"spatial": adata.obsm["spatial"], "emb": emb}
    )
    ae.tl.cluster(a, n_clusters, method="bgm", refine=True, use_rep="emb", random_state=seed)
    return a.obs["aestetik_clusters"].to_numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(SHARED_DATA / "dlpfc_151673.h5ad"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--reference-python", default=os.environ.get("AESTETIK_REFERENCE_PYTHON", ""))
    p.add_argument("--results", default=str(HERE / "results" / "reference"))
    p.add_argument("--n-clusters", type=int, default=7)
    p.add_argument("--morphology-weight", type=float, default=0.0)
    args = p.parse_args()
    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    args.data = str(Path(args.data).resolve())
    name = Path(args.data).stem
    extra: list[str] = []
    if args.morphology_weight > 0:
        feats = res / f"{name}_morphology_histology.npy"
        if not feats.exists():
            a = ad.read_h5ad(args.data)
            ae.pp.morphology(a, show_progress_bar=False)
            np.save(feats, a.obsm["X_pca_morphology"])
        extra = ["--morphology", str(feats), "--morphology-weight", str(args.morphology_weight)]
        name = f"{name}_mw{args.morphology_weight:g}"

    runs: dict[str, dict[int, dict]] = {"reference": {}, "ours": {}}
    for seed in args.seeds:
        for tool in ("reference", "ours"):
            out, emb = res / f"{name}_{tool}_seed{seed}.json", res / f"{name}_{tool}_seed{seed}.npy"
            if not out.exists():
                if tool == "reference":
                    if not args.reference_python:
                        sys.exit("pass --reference-python (the python of a venv with aestetik==0.3.1)")
                    cmd = [args.reference_python, "_run_reference.py", args.data, "--workdir", str(res / "ref_workdir")]
                else:
                    cmd = [sys.executable, "_run_aestetik.py", args.data]
                cmd += extra
                print(f"seed {seed}: running {tool}", flush=True)
                run(
                    [*cmd, "--seed", str(seed), "--out", str(out), "--emb", str(emb)],
                    res / f"{name}_{tool}_seed{seed}.log",
                )
            runs[tool][seed] = json.loads(out.read_text()) | {"embedding": np.load(emb)}

    adata = ad.read_h5ad(args.data)
    lab = adata.obs["is_labelled"].to_numpy(bool)
    truth = adata.obs["ground_truth"].to_numpy()[lab]
    scores: dict[str, dict[str, list[float]]] = {t: {"ari": [], "nmi": []} for t in runs}
    for tool, by_seed in runs.items():
        for seed, r in by_seed.items():
            pred = common_clustering(adata, r["embedding"], args.n_clusters, seed)[lab]
            scores[tool]["ari"].append(adjusted_rand_score(truth, pred))
            scores[tool]["nmi"].append(normalized_mutual_info_score(truth, pred))
    ref_own = [adjusted_rand_score(truth, np.asarray(r["labels"])[lab]) for r in runs["reference"].values()]

    def med(tool: str, key: str) -> float:
        return statistics.median(r["timings"][key] for r in runs[tool].values())

    modality = (
        f"expression + morphology (weight {args.morphology_weight:g}, same features)"
        if args.morphology_weight > 0
        else "expression only"
    )
    print(f"\n== {name}: this package vs aestetik==0.3.1, {modality}, window 7, {args.n_clusters} clusters ==")
    print(f"seeds: {args.seeds}; timings are medians over seeds (s); ratio = reference / ours\n")
    print(f"{'stage':<16}{'reference':>12}{'ours':>12}{'ratio':>10}")
    for s in STAGES:
        r, o = med("reference", s), med("ours", s)
        print(f"{s:<16}{r:>12.3f}{o:>12.3f}{r / o:>9.1f}x")
    print(
        f"{'grid (index)':<16}{'':>12}{med('ours', 'grid_index'):>12.4f}{med('reference', 'grid') / med('ours', 'grid_index'):>9.0f}x"
    )
    mr = statistics.median(r["peak_rss_mib"] for r in runs["reference"].values())
    mo = statistics.median(r["peak_rss_mib"] for r in runs["ours"].values())
    print(f"{'peak RSS (MiB)':<16}{mr:>12.0f}{mo:>12.0f}{mr / mo:>9.2f}x")
    print("\nARI / NMI on annotated spots, same clustering (bgm + kNN refinement) on both embeddings:")
    for tool in runs:
        a, n = scores[tool]["ari"], scores[tool]["nmi"]
        print(
            f"  {tool:<10} ARI per seed {[round(x, 3) for x in a]}  median {statistics.median(a):.3f}   "
            f"NMI median {statistics.median(n):.3f}"
        )
    print(
        f"  reference with its own clustering (array-coordinate refinement): ARI median {statistics.median(ref_own):.3f}"
    )
    print(
        f"\nARI ratio ours / reference (medians): {statistics.median(scores['ours']['ari']) / statistics.median(scores['reference']['ari']):.2f}"
    )


if __name__ == "__main__":
    main()
