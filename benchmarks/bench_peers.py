"""Peer methods (GraphST, STAGATE, SpaGCN, BANKSY) on the annotated data sets in ../shared/data.

Each (data set, method, seed) runs ``peers/run_peer.py`` in that method's own virtual
environment (``<venv-root>/venv-<method>``, made by ``peers/make_envs.sh``), one process
at a time, at the method's published defaults, with ``--threads`` threads (default 1, also for the
scoring here: on a shared 2-core machine the default of one thread per core made STAGATE's
scatter operations 45x and the Gaussian mixture of the scoring 100x slower); runs whose JSON already exists in
``--results`` are reused (delete them to rerun), and each run's log is written beside it.
Every run is then scored (ARI, NMI on the annotated spots) two ways:

* same: the peer's embedding clustered by the same code as AESTETIK
  (``aestetik.tl.cluster``: Bayesian Gaussian mixture, tied covariance, then the kNN vote
  on the spots' positions), K = number of annotated domains, ``random_state`` = seed;
  imaging data goes through ``aestetik.pp.lattice`` as in ``bench_quality.py``. SpaGCN has
  no embedding (it clusters by its own soft assignment), so it has no "same" score;
* own: the labels of the peer's own clustering protocol (GraphST: PCA 20 + mclust EEE +
  refinement; STAGATE: mclust EEE; SpaGCN: its labels after its refinement; BANKSY: Leiden
  at a resolution giving K), with a tied-covariance GaussianMixture wherever the peer
  calls R's mclust EEE (R is not available).

    python benchmarks/bench_peers.py [--methods graphst stagate] [--only starmap_mpfc_BZ5] [--seeds 0 1 2]
    python benchmarks/bench_peers.py --save peers.json        # keep the scored records
    python benchmarks/bench_peers.py --load peers*.json       # print the table of saved records
    python benchmarks/bench_peers.py --score-only --quality benchmarks/results/quality_cpu/*.json  # + our rows

``--score-only`` scores the runs already in ``--results`` and starts none; ``--quality`` adds the
rows of ``bench_quality.py`` records (AESTETIK at the defaults, the smoothed and the plain
expression PCA) to the table, for the data sets and seeds of the peer runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from threadpoolctl import threadpool_limits

import aestetik as ae

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import SHARED_DATA, annotation, data_files, merge_records  # noqa: E402

METHODS = ["graphst", "stagate", "spagcn", "banksy"]
warnings.filterwarnings("ignore")
sc.settings.verbosity = "error"  # aestetik logs through scanpy


def scores(truth, pred) -> list[float]:
    return [adjusted_rand_score(truth, pred), normalized_mutual_info_score(truth, pred)]


def run_peer(
    python: Path, method: str, data: Path, seed: int, res: Path, threads: int | None, start: bool = True
) -> Path | None:
    """Run one peer process unless its JSON exists; the JSON path, or None when the run failed (or not started)."""
    stem = res / f"{data.stem}_{method}_seed{seed}"
    out = stem.with_suffix(".json")
    if out.exists():
        return out
    if not start:
        return None
    cmd = [str(python), str(HERE / "peers" / "run_peer.py"), method, str(data), "--seed", str(seed)]
    cmd += ["--out", str(out), "--emb", str(stem.with_suffix(".npy"))]
    cmd += ["--threads", str(threads)] if threads else []
    print(f"{data.stem} {method} seed {seed}: running", flush=True)
    t0 = time.perf_counter()
    with open(stem.with_suffix(".log"), "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=res).returncode
    if rc != 0:
        tail = stem.with_suffix(".log").read_text().splitlines()[-5:]
        print(f"  FAILED (exit {rc}), log {stem.with_suffix('.log')}:\n    " + "\n    ".join(tail), flush=True)
        return None
    print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def score_file(path: Path, runs: list[tuple[str, int, Path]]) -> list[dict]:
    adata = ad.read_h5ad(path)
    lab, truth, k = annotation(adata)
    if "array_row" not in adata.obs:
        ae.pp.lattice(adata)
    records = []
    for method, seed, out in runs:
        r = json.loads(out.read_text())
        rec = {
            "data": path.stem,
            "spots": adata.n_obs,
            "K": k,
            "method": method,
            "version": r["version"],
            "seed": seed,
            "wall_s": r["wall_s"],
            "peak_rss_mib": r["peak_rss_mib"],
            "threads": r["torch_threads"],
            "own_n_labels": r["n_labels"],
            "own": scores(truth, np.asarray(r["labels"])[lab]),
            "same": None,
        }
        if r["embedding"]:
            a = ad.AnnData(obs=adata.obs[["array_row", "array_col"]].copy())
            a.obsm["spatial"], a.obsm["emb"] = adata.obsm["spatial"], np.load(out.parent / r["embedding"])
            ae.tl.cluster(a, k, use_rep="emb", random_state=seed)
            rec["same"] = scores(truth, a.obs["aestetik_clusters"].to_numpy()[lab])
        records.append(rec)
        same = f"{rec['same'][0]:.3f}" if rec["same"] else "-"
        print(f"{path.stem} {method} seed {seed}: ARI same {same}, own {rec['own'][0]:.3f}", flush=True)
    return records


def quality_rows(files: list[str], peer_records: list[dict]) -> list[dict]:
    """Rows of bench_quality.py records (same clustering by construction) for the peers' data sets and seeds."""
    wanted = {(r["data"], r["seed"]) for r in peer_records}
    merged = merge_records([q for f in files for q in json.loads(Path(f).read_text())])  # as bench_quality.py --load
    rows = []
    for q in sorted(merged, key=lambda q: (q["data"], q["seed"])):
        data, seed = q["data"], q["seed"]
        if (data, seed) in wanted:
            rows += [
                {
                    "data": data,
                    "spots": q["spots"],
                    "K": q["K"],
                    "method": name,
                    "seed": seed,
                    "wall_s": q.get(f"{col}_s", float("nan")),
                    "peak_rss_mib": float("nan"),
                    "threads": 1,
                    "own": None,
                    "same": q[col],
                }
                for col, name in (("aestetik", "AESTETIK"), ("smoothed", "smoothPCA"), ("expression", "exprPCA"))
                if col in q
            ]
    return rows


def table(records: list[dict]) -> None:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["data"], r["method"]), []).append(r)
    seeds = sorted({r["seed"] for r in records})

    def cell(rs: list[dict], key: str) -> str:
        vals = [r[key][0] for r in rs if r[key] is not None]
        if not vals:
            return "-"
        spread = f" ({min(vals):.3f}-{max(vals):.3f})" if len(vals) > 1 else ""
        return f"{statistics.median(vals):.3f}{spread}"

    print(f"\nseeds {seeds}; ARI on annotated spots, median (min-max over seeds)")
    print("same = the peer's embedding clustered as AESTETIK's (bgm + kNN refinement); own = the peer's protocol")
    print("(tied GaussianMixture wherever the peer calls mclust EEE); wall s / peak RSS: medians of the peer process")
    print("AESTETIK, smoothPCA, exprPCA: bench_quality.py records (wall s: one tl.embed + tl.cluster), when given")
    print(
        f"{'data set':<24}{'spots':>6}{'K':>4}  {'method':<9}{'same ARI':>22}{'own ARI':>22}"
        f"{'NMI same/own':>14}{'wall s':>9}{'RSS MiB':>9}{'thr':>4}"
    )
    for (data, method), rs in sorted(groups.items()):
        nmi = [statistics.median(r[key][1] for r in rs) if rs[0][key] else None for key in ("same", "own")]
        wall = statistics.median(r["wall_s"] for r in rs)
        rss = statistics.median(r["peak_rss_mib"] for r in rs)
        nmi_s = "/".join(f"{v:.2f}" if v is not None else "-" for v in nmi)
        print(
            f"{data:<24}{rs[0]['spots']:>6}{rs[0]['K']:>4}  {method:<9}{cell(rs, 'same'):>22}{cell(rs, 'own'):>22}"
            f"{nmi_s:>14}{'-' if wall != wall else f'{wall:.0f}':>9}{'-' if rss != rss else f'{rss:.0f}':>9}"
            f"{rs[0]['threads']:>4}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--only", nargs="*", default=None, help="data set stems, e.g. starmap_mpfc_BZ5")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    p.add_argument("--venv-root", default=str(HERE.parents[1]), help="folder holding venv-<method>/")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/BLAS/numba threads of each peer process (0: the libraries' defaults)",
    )
    p.add_argument("--results", default=str(HERE / "results" / "peers"), help="run JSON, embeddings and logs")
    p.add_argument("--save", default=None, help="write the scored records to this JSON file")
    p.add_argument("--load", nargs="+", default=None, help="print the table of saved records instead of running")
    p.add_argument("--score-only", action="store_true", help="score the runs that exist, start none")
    p.add_argument("--quality", nargs="+", default=[], help="bench_quality.py --save files whose rows to add")
    args = p.parse_args()
    if args.load:
        records = [r for f in args.load for r in json.loads(Path(f).read_text())]
        table(records + quality_rows(args.quality, records))
        return
    if args.threads:  # the scoring too: BLAS's default threads made the bgm 100x slower on a busy 2-core machine
        threadpool_limits(limits=args.threads)
    res = Path(args.results)
    res.mkdir(parents=True, exist_ok=True)
    files = data_files(args.data_dir, args.only)
    records = []
    for f in files:
        runs = []
        for method in args.methods:
            python = Path(args.venv_root) / f"venv-{method}" / "bin" / "python"
            for seed in args.seeds:
                out = run_peer(python, method, f.resolve(), seed, res, args.threads, start=not args.score_only)
                if out is not None:
                    runs.append((method, seed, out))
        if runs:
            records += score_file(f, runs)
    if args.save:
        Path(args.save).write_text(json.dumps(records, indent=1))
    table(records + quality_rows(args.quality, records))


if __name__ == "__main__":
    main()
