"""Domain quality on every annotated data set in ../shared/data, with the same clustering for every column.

For each file and seed, K = number of annotated domains, ARI and NMI on the annotated spots,
every representation clustered by ``aestetik.tl.cluster`` at its defaults (Bayesian Gaussian
mixture + kNN refinement):

* ``expression``: the expression PCA of ``pp.transcriptomics``;
* ``smoothed``: that PCA averaged over each spot and its nearest spots (6 on the hexagonal
  Visium lattice, 18 on the square lattice of imaging data, as ``tl.embed`` does), the features
  the pseudo-labels are clustered from (a spatially smoothed PCA, the strongest simple baseline);
* ``aestetik``: ``tl.embed`` at the package defaults, after ``pp.morphology`` (built-in
  encoder) where the file carries an H&E image (on the DLPFC files, a low-resolution image of
  about 4 pixels per spot, which the defaults leave out: expression only);
* ``aestetik_morphology``: the same with the morphology features at ``morphology_weight=1.5``,
  image files only;
* ``previous``: the defaults of aestetik 0.1.0, i.e. the published method's pseudo-labels
  (``pp.transcriptomics(min_variance_norm=1)``, ``tl.embed(pseudo_label_neighbors=0,
  mixture_init="random")``, ``tl.cluster(mixture_init="random")``, morphology at weight 1.5
  where there is an image).

Imaging-based data goes through ``pp.lattice`` first. Timings are wall seconds of one
``tl.embed`` + ``tl.cluster`` on the machine that ran it.

    python benchmarks/bench_quality.py [--seeds 0 1 2 3 4] [--only dlpfc_151673]
    python benchmarks/bench_quality.py --only dlpfc_151673 --seeds 0 --save part.json   # split the work
    python benchmarks/bench_quality.py --columns previous --seeds 0 1 2 --save prev.json  # some columns only
    python benchmarks/bench_quality.py --load part*.json                               # merge and print
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import aestetik as ae
from aestetik._model import default_pseudo_label_neighbors
from aestetik._neighbors import knn_indices, neighbour_mean
from aestetik._utils import lattice_coordinates

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, annotation, data_files, merge_records

warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy

COLUMNS = ("expression", "smoothed", "previous", "aestetik", "aestetik_morphology")


def has_image(adata: ad.AnnData) -> bool:
    return any(lib.get("images") for lib in adata.uns.get("spatial", {}).values())


def features(path: Path) -> tuple[ad.AnnData, dict]:
    """The file with expression (new and 0.1.0 defaults) and, where there is an image, morphology features."""
    adata = ad.read_h5ad(path)
    t0 = time.perf_counter()
    if "array_row" not in adata.obs:
        ae.pp.lattice(adata)
    ae.pp.transcriptomics(adata)
    ae.pp.transcriptomics(adata, min_variance_norm=1.0, key_added="X_pca_previous")
    n_neighbors = default_pseudo_label_neighbors(*lattice_coordinates(adata)[:2])
    nbrs = knn_indices(np.asarray(adata.obsm["spatial"])[:, :2], n_neighbors)
    adata.obsm["X_smoothed"] = neighbour_mean(adata.obsm["X_pca_transcriptomics"], nbrs)
    timings = {"features_s": time.perf_counter() - t0}
    if has_image(adata):
        t0 = time.perf_counter()
        ae.pp.morphology(adata, show_progress_bar=False)
        timings["morphology_s"] = time.perf_counter() - t0
    return adata, timings


def run_file(path: Path, seeds: list[int], trainer_kwargs: dict, columns: tuple[str, ...] = COLUMNS) -> list[dict]:
    adata, timings = features(path)
    lab, truth, k = annotation(adata)
    image = "X_pca_morphology" in adata.obsm
    accel = trainer_kwargs.get("accelerator", "auto")
    gpu = torch.cuda.is_available() and accel in ("auto", "gpu", "cuda")
    device = torch.cuda.get_device_name(0) if gpu else "cpu"
    embed_kw = {"n_clusters": k, "show_progress_bar": False, "trainer_kwargs": trainer_kwargs}

    def score(**cluster_kw) -> list[float]:
        ae.tl.cluster(adata, k, random_state=seed, **cluster_kw)
        pred = adata.obs["aestetik_clusters"].astype(str).to_numpy()[lab]
        return [adjusted_rand_score(truth, pred), normalized_mutual_info_score(truth, pred)]

    records = []
    for seed in seeds:
        rec = {"data": path.stem, "spots": adata.n_obs, "K": k, "seed": seed, "device": device, **timings}
        if "expression" in columns:
            rec["expression"] = score(use_rep="X_pca_transcriptomics")
        if "smoothed" in columns:
            rec["smoothed"] = score(use_rep="X_smoothed")
        runs = {
            "aestetik": ({}, {}),
            "previous": (
                {"expression_key": "X_pca_previous", "pseudo_label_neighbors": 0, "mixture_init": "random"}
                | ({"morphology_weight": 1.5} if image else {}),
                {"mixture_init": "random"},
            ),
        }
        if image:
            runs["aestetik_morphology"] = ({"morphology_weight": 1.5}, {})
        for name, (embed_extra, cluster_extra) in runs.items():
            if name not in columns:
                continue
            t0 = time.perf_counter()
            ae.tl.embed(adata, random_state=seed, **embed_kw, **embed_extra)
            rec[name] = score(**cluster_extra)
            rec[f"{name}_s"] = time.perf_counter() - t0
        records.append(rec)
        print(f"{path.stem} seed {seed}: " + ", ".join(f"{c} {rec[c][0]:.3f}" for c in COLUMNS if c in rec), flush=True)
    return records


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})"


def _median_of(rs: list[dict], key: str) -> str:
    vals = [r[key] for r in rs if key in r]
    return f"{statistics.median(vals):.0f}" if vals else "-"


def table(records: list[dict]) -> None:
    by_file: dict[str, list[dict]] = {}
    for r in merge_records(records):
        by_file.setdefault(r["data"], []).append(r)
    seeds = sorted({r["seed"] for r in records})
    print(f"\nARI on annotated spots: median over seeds {seeds} (min-max); the same clustering (tl.cluster) for all")
    print(
        "aestetik: package defaults (morphology only where its patches show texture: not on these DLPFC images);"
        " aestetik_morphology: with morphology at weight 1.5; previous: aestetik 0.1.0 defaults"
    )
    head = f"{'data set':<24}{'spots':>6}{'K':>3}" + "".join(f"{c:>20}" for c in COLUMNS)
    print(head + f"{'s/run':>8}{'prev s':>8}  device")
    medians: dict[str, list[float]] = {c: [] for c in COLUMNS}
    for name, rs in sorted(by_file.items()):
        cells = []
        for c in COLUMNS:
            vals = [r[c][0] for r in rs if c in r]
            cells.append(_cell(vals))
            if vals:
                medians[c].append(statistics.median(vals))
        devices = " + ".join(sorted({r.get("device", "?") for r in rs}))
        print(
            f"{name:<24}{rs[0]['spots']:>6}{rs[0]['K']:>3}"
            + "".join(f"{c:>20}" for c in cells)
            + f"{_median_of(rs, 'aestetik_s'):>8}{_median_of(rs, 'previous_s'):>8}  {devices}"
        )
    print("\nper seed (ARI):")
    for name, rs in sorted(by_file.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        print(
            f"  {name:<24}"
            + "  ".join(
                f"{c} {[round(r[c][0], 3) for r in rs if c in r]}"
                for c in ("aestetik", "aestetik_morphology", "previous")
                if any(c in r for r in rs)
            )
        )
    collapsed = [
        f"{name} {c} seed {r['seed']} ({r[c][0]:.3f})"
        for name, rs in sorted(by_file.items())
        for c in COLUMNS
        for r in rs
        if c in r and r[c][0] < 0.5 * statistics.median(x[c][0] for x in rs if c in x)
    ]
    print("\ncollapsed runs (ARI below half the median of their column): " + ("; ".join(collapsed) or "none"))
    print(
        "\nmedian over data sets of the per-set medians: "
        + ", ".join(f"{c} {np.median(v):.3f} ({len(v)} sets)" for c, v in medians.items() if v)
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    p.add_argument("--trainer", default="{}", help="trainer_kwargs of tl.embed as JSON")
    p.add_argument("--columns", nargs="+", default=list(COLUMNS), choices=COLUMNS, help="the columns to compute")
    p.add_argument("--save", default=None, help="write the per-seed records to this JSON file")
    p.add_argument("--load", nargs="+", default=None, help="print the table of saved records instead of running")
    args = p.parse_args()
    if args.load:
        table([r for f in args.load for r in json.loads(Path(f).read_text())])
        return
    files = data_files(args.data_dir, args.only)
    records = [r for f in files for r in run_file(f, args.seeds, json.loads(args.trainer), tuple(args.columns))]
    if args.save:
        Path(args.save).write_text(json.dumps(records, indent=1))
    table(records)


if __name__ == "__main__":
    main()
