"""Time and memory of every stage against the number of spots, on synthetic slides with known domains.

For each size (one fresh process per size, so that peak memory is that size's own): the
synthetic slide (``datasets.synthetic``, no image), ``pp.transcriptomics``, ``tl.embed``
(``--epochs`` epochs; the per-epoch time is what grows with the data), ``tl.cluster`` and the
ARI against the known domains. Prints, per size, seconds per stage, peak resident memory, and
the ratio of each to the smallest size: a stage that grows linearly shows a time ratio close
to the size ratio. ``--epochs 0`` trains the default number of epochs for the size (about
``100 * 8192 / n_spots``: one at a million spots), i.e. the whole default pipeline end to end.
``--lattice square --genes 2000 --mean-counts 300`` makes Visium-HD-like bins (a few hundred
counts over 2,000 genes) instead of the default Visium-like spots of 200 genes; ``--morphology``
draws the slide's H&E-like image as well and runs ``pp.morphology`` (built-in encoder) before
``tl.embed``, which then trains on both modalities.

    python benchmarks/bench_scale.py [--sizes 10000 30000 100000] [--epochs 3]
        [--out benchmarks/results/scale_cpu.json]
    python benchmarks/bench_scale.py --sizes 1000000 --epochs 0 --lattice square --genes 2000 --mean-counts 300 \
        --out benchmarks/results/scale_1m_hd_cpu.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

ONE = """
import json, sys, time, warnings
sys.path.insert(0, {here!r})
from _common import peak_rss_mib
import scanpy as sc
from sklearn.metrics import adjusted_rand_score
import aestetik as ae
warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"
n, epochs = {n}, {epochs} or None
morphology = {morphology}
out = {{"n_spots": n, "epochs": epochs, "lattice": {lattice!r}, "n_genes": {genes}, "mean_counts": {mean_counts}}}
t = time.perf_counter()
adata = ae.datasets.synthetic(
    n_spots=n, n_genes={genes}, mean_counts={mean_counts}, lattice={lattice!r}, with_image=morphology, random_state=0
)
out["synthetic_s"] = time.perf_counter() - t
out["synthetic_peak_rss_mib"] = peak_rss_mib()
out["counts_per_spot"] = float(adata.X.sum() / n)
out["nonzeros_per_spot"] = adata.X.nnz / n
t = time.perf_counter(); ae.pp.transcriptomics(adata)
out["transcriptomics_s"] = time.perf_counter() - t
out["sparse"] = bool(adata.uns["pca_transcriptomics"]["sparse"])
out["transcriptomics_peak_rss_mib"] = peak_rss_mib()
if morphology:
    t = time.perf_counter(); ae.pp.morphology(adata, show_progress_bar=False)
    out["morphology_s"] = time.perf_counter() - t
    out["morphology_peak_rss_mib"] = peak_rss_mib()
    out["patch_side_px"] = int(min(adata.uns["pca_morphology"]["params"]["patch_side_px"]))
t = time.perf_counter()
ae.tl.embed(adata, n_clusters=5, max_epochs=epochs, show_progress_bar=False)
out["embed_s"] = time.perf_counter() - t
out["embed_peak_rss_mib"] = peak_rss_mib()
out |= {{f"embed_{{k}}_s": v for k, v in adata.uns["aestetik"]["timings"].items() if k != "total"}}
out["epochs"] = int(adata.uns["aestetik"]["params"]["max_epochs"])
out["epoch_s"] = out["embed_training_s"] / out["epochs"]
out["pseudo_label_neighbors"] = int(adata.uns["aestetik"]["params"]["pseudo_label_neighbors"])
out["morphology_weight"] = float(adata.uns["aestetik"]["weights"]["morphology"])
t = time.perf_counter(); ae.tl.cluster(adata, 5)
out["cluster_s"] = time.perf_counter() - t
out["ari"] = adjusted_rand_score(adata.obs["ground_truth"], adata.obs["aestetik_clusters"])
out["peak_rss_mib"] = peak_rss_mib()
print(json.dumps(out))
"""

STAGES = ["synthetic_s", "transcriptomics_s", "embed_pseudo_labels_s", "epoch_s", "embed_inference_s", "cluster_s"]
#: Printed when the records have them (``--morphology``).
OPTIONAL_STAGES = ["morphology_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    p.add_argument("--epochs", type=int, default=3, help="training epochs (0: the default for the size)")
    p.add_argument("--lattice", default="hexagonal", choices=["hexagonal", "square"])
    p.add_argument("--genes", type=int, default=200, help="genes of the synthetic slide")
    p.add_argument("--mean-counts", type=float, default=None, help="mean counts per spot (default: ~1.6 per gene)")
    p.add_argument("--morphology", action="store_true", help="draw the H&E-like image and run pp.morphology too")
    p.add_argument("--out", default=None)
    p.add_argument("--load", default=None, help="only print the table of this JSON file")
    args = p.parse_args()
    if args.load:
        records = json.loads(Path(args.load).read_text())["records"]
    else:
        records = []
        for n in args.sizes:
            code = ONE.format(
                here=str(HERE),
                n=n,
                epochs=args.epochs,
                lattice=args.lattice,
                genes=args.genes,
                mean_counts=args.mean_counts,
                morphology=args.morphology,
            )
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            rec = json.loads(res.stdout.strip().splitlines()[-1]) | {"process_s": time.perf_counter() - t0}
            records.append(rec)
            print({k: round(v, 3) if isinstance(v, float) else v for k, v in rec.items()}, flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps({"records": records}, indent=1))
    base = records[0]
    stages = STAGES + [s for s in OPTIONAL_STAGES if all(s in r for r in records)]
    print(f"\nseconds per stage and peak memory against the number of spots (ratios to {base['n_spots']} spots)")
    print(
        f"{'spots':>9}{'x':>6}"
        + "".join(f"{s.removesuffix('_s'):>22}" for s in stages)
        + f"{'peak MiB':>16}{'ARI':>7}{'epochs':>7}{'total s':>9}{'end-to-end s':>14}"
    )
    for r in records:
        ratio = r["n_spots"] / base["n_spots"]
        cells = "".join(f"{r[s]:>13.2f} ({r[s] / max(base[s], 1e-9):>5.1f}x)" for s in stages)
        mem = f"{r['peak_rss_mib']:>8.0f} ({r['peak_rss_mib'] / base['peak_rss_mib']:>4.1f}x)"
        work = r["transcriptomics_s"] + r.get("morphology_s", 0.0) + r["embed_s"] + r["cluster_s"]
        total = r["synthetic_s"] + work
        print(f"{r['n_spots']:>9}{ratio:>6.0f}{cells}{mem}{r['ari']:>7.3f}{r['epochs']:>7}{total:>9.0f}{work:>14.0f}")
    print("end-to-end: pp.transcriptomics (+ pp.morphology) + tl.embed + tl.cluster; total: with the synthetic slide")


if __name__ == "__main__":
    main()
