"""Models across slides: one slide's model applied to another, and one model trained on two.

For every seed, on two annotated slides (default DLPFC 151673 -> 151674, one donor), K from the
training slide's annotation, restricted to the genes the two files share (2340 of their 5000
on 151673/151674; 289 on 151673/151510, whose file holds 500 genes):

* ``own``: ``pp.transcriptomics`` + ``tl.embed`` + ``tl.cluster`` fitted on the new slide itself;
* ``transfer``: the model of the training slide (``tl.embed(..., return_model=True)``); the new
  slide's features projected with ``pp.transcriptomics(new, reference=model)``, embedded with
  ``tl.embed(new, model=model)`` (no training) and its spots assigned to the training
  slide's domains with ``tl.cluster(new, reference=train)``;
* ``transfer_recluster``: the same embedding, clustered anew on the new slide;
* ``transfer_selfscaled``: as ``transfer``, but the training slide's features were made with
  ``library_key`` (per-slide scaling), so the new slide's genes are centred and scaled on
  the new slide itself before the projection;
* ``joint_<correction>``: one model on both slides (``library_key="slide"`` in ``tl.embed``:
  windows and pseudo-label neighbours stay inside each slide; one ``tl.cluster`` call), with
  the expression features ``pooled`` (no correction), ``scaled`` (``pp.transcriptomics(...,
  library_key="slide")``: every slide centred and scaled on its own) or ``harmony``
  (``harmonypy.run_harmony`` on the pooled PCs), or ``anchored`` (pooled features, and
  ``pseudo_label_reference="train"`` in ``tl.embed``: every pseudo-label clustering fitted on the
  training slide, the new slide's spots assigned to it); ARI per slide, the ARI of each slide's part of
  the joint embedding clustered alone (``*_alone``: it tells a weaker embedding from a costlier
  shared clustering), and the mixing of the slides in the embedding as the median iLISI
  (``harmonypy.compute_lisi``; 1 = no mixing, 2 = perfect for two slides).

All runs use the package defaults with ``morphology_weight=0`` (expression only) and the
same clustering (``tl.cluster``, refined), except ``own_morphology``, ``transfer_morphology`` and ``joint_morphology``
(``--variants``): ``pp.morphology`` defaults and morphology weight 1.5 (the default with an image
that shows texture; the defaults leave these low-resolution DLPFC images out), the new
slide's morphology features made with ``pp.morphology(new, reference=model)``. ``embed s`` is the time to embed the new slide with the trained
model, ``train s`` the time of ``tl.embed`` on the training slide.

    python benchmarks/bench_transfer.py [--seeds 0 1 2] [--train dlpfc_151673 --new dlpfc_151674]
        [--out benchmarks/results/transfer_cpu.json] [--load benchmarks/results/transfer_cpu*.json]

``--load`` joins the records of one seed from several files of one pair of slides (a later
file's keys replace an earlier one's), so a rerun of some variants adds to or replaces those
of the first run; the table names the pair the files hold. A row measured at fewer seeds than
the table says so; after the table, transfer and the joint models minus each slide's own
model, seed by seed (with the p-value of a Wilcoxon signed-rank test from 5 seeds on).

Needs ``harmonypy`` (``pip install harmonypy``) for the ``harmony`` variant.
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
from scipy.stats import wilcoxon
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, annotation, merge_records, write_json

warnings.filterwarnings("ignore")
sc.settings.verbosity = "warning"  # aestetik logs through scanpy


def ari(adata, key: str = "aestetik_clusters") -> float:
    lab, truth, _ = annotation(adata)
    return float(adjusted_rand_score(truth, adata.obs[key].astype(str).to_numpy()[lab]))


def read_pair(train_path: Path, new_path: Path):
    train, new = ad.read_h5ad(train_path), ad.read_h5ad(new_path)
    shared = train.var_names.intersection(new.var_names)
    return train[:, shared].copy(), new[:, shared].copy()


def transfer(
    train, new, k: int, opts: dict, seed: int, *, selfscaled: bool, out: dict, morphology: bool = False
) -> None:
    """Train on ``train``, embed ``new`` with that model, assign its spots to the training domains."""
    suffix = "_selfscaled" if selfscaled else "_morphology" if morphology else ""
    t0 = time.perf_counter()
    if selfscaled:
        train.obs["slide"] = "train"
    ae.pp.transcriptomics(train, random_state=seed, library_key="slide" if selfscaled else None)
    if morphology:
        ae.pp.morphology(train, show_progress_bar=False)
        opts = opts | {"morphology_weight": 1.5}
    model = ae.tl.embed(train, **opts, return_model=True)
    out[f"train_s{suffix}"] = time.perf_counter() - t0
    ae.tl.cluster(train, k, random_state=seed)
    out[f"train_slide{suffix}"] = ari(train)
    t0 = time.perf_counter()
    ae.pp.transcriptomics(new, reference=model)
    if morphology:
        ae.pp.morphology(new, reference=model, show_progress_bar=False)
    ae.tl.embed(new, model=model, show_progress_bar=False)
    out[f"embed_s{suffix}"] = time.perf_counter() - t0
    ae.tl.cluster(new, reference=train, random_state=seed)
    out[f"transfer{suffix}"] = ari(new)
    if not selfscaled and not morphology:
        ae.tl.cluster(new, k, random_state=seed, key_added="recluster")
        out["transfer_recluster"] = ari(new, "recluster")


def pooled(train, new):
    """Both slides in one AnnData, ``obs["slide"]`` = ``"train"`` / ``"new"`` (categorical)."""
    both = ad.concat({"train": train, "new": new}, label="slide", index_unique="-", uns_merge="unique")
    both.obs["slide"] = both.obs["slide"].astype("category")
    return both


def joint(train, new, k: int, opts: dict, seed: int, correction: str, out: dict) -> None:
    """One model on both slides; per-slide ARI of one clustering, and iLISI of the slides.

    ``correction="morphology"``: pooled expression features and ``pp.morphology`` of both
    slides' images (``library_key="sample_id"``), at morphology weight 1.5;
    ``"morphology_scaled"``: the same with the morphology features z-scored per slide
    (``scale_per_library=True``).
    """
    from harmonypy import compute_lisi, run_harmony

    both = pooled(train, new)
    ae.pp.transcriptomics(both, random_state=seed, library_key="slide" if correction == "scaled" else None)
    if correction.startswith("morphology"):
        per_slide = correction == "morphology_scaled"
        ae.pp.morphology(both, library_key="sample_id", scale_per_library=per_slide, show_progress_bar=False)
        opts = opts | {"morphology_weight": 1.5}
    key = "X_pca_transcriptomics"
    if correction == "anchored":
        opts = opts | {"pseudo_label_reference": "train"}
    if correction == "harmony":
        # harmonypy directly: scanpy 1.11's harmony_integrate transposes harmonypy 2's (N, d) output
        z = np.asarray(run_harmony(both.obsm[key], both.obs, "slide", random_state=seed).Z_corr)
        both.obsm["X_harmony"] = (z if z.shape[0] == both.n_obs else z.T).astype(np.float32)
        key = "X_harmony"
    t0 = time.perf_counter()
    ae.tl.embed(both, **opts, expression_key=key, library_key="slide")
    out[f"joint_{correction}_s"] = time.perf_counter() - t0
    ae.tl.cluster(both, k, random_state=seed, library_key="slide")
    for name in ("train", "new"):
        part = both[both.obs["slide"] == name]
        out[f"joint_{correction}_{name}"] = ari(part)
        # where a difference to the own model comes from: the joint embedding, or the shared clustering
        alone = part.copy()
        ae.tl.cluster(alone, k, random_state=seed)
        out[f"joint_{correction}_{name}_alone"] = ari(alone)
    lisi = compute_lisi(both.obsm["X_aestetik"], both.obs[["slide"]], ["slide"])
    out[f"joint_{correction}_ilisi"] = float(np.median(lisi))


def run(train_path: Path, new_path: Path, seed: int, variants: list[str]) -> dict:
    train, new = read_pair(train_path, new_path)
    k = annotation(train)[2]
    opts = {"n_clusters": k, "morphology_weight": 0.0, "random_state": seed, "show_progress_bar": False}
    out: dict = {"seed": seed, "n_genes": int(train.n_vars)}
    if "own" in variants:
        own = new.copy()
        t0 = time.perf_counter()
        ae.pp.transcriptomics(own, random_state=seed)
        ae.tl.embed(own, **opts)
        out["own_train_s"] = time.perf_counter() - t0
        ae.tl.cluster(own, k, random_state=seed)
        out["own"] = ari(own)
        single = train.copy()
        ae.pp.transcriptomics(single, random_state=seed)
        ae.tl.embed(single, **opts)
        ae.tl.cluster(single, k, random_state=seed)
        out["own_train"] = ari(single)
    if "transfer" in variants:
        transfer(train.copy(), new.copy(), k, opts, seed, selfscaled=False, out=out)
    if "transfer_selfscaled" in variants:
        transfer(train.copy(), new.copy(), k, opts, seed, selfscaled=True, out=out)
    if "own_morphology" in variants:
        own = new.copy()
        ae.pp.transcriptomics(own, random_state=seed)
        ae.pp.morphology(own, show_progress_bar=False)
        ae.tl.embed(own, **(opts | {"morphology_weight": 1.5}))
        ae.tl.cluster(own, k, random_state=seed)
        out["own_morphology"] = ari(own)
    if "transfer_morphology" in variants:
        transfer(train.copy(), new.copy(), k, opts, seed, selfscaled=False, out=out, morphology=True)
    for correction in ("pooled", "anchored", "scaled", "harmony", "morphology", "morphology_scaled"):
        if f"joint_{correction}" in variants:
            joint(train, new, k, opts, seed, correction, out)
    return out


VARIANTS = [
    "own",
    "transfer",
    "transfer_selfscaled",
    "joint_pooled",
    "joint_anchored",
    "joint_scaled",
    "joint_harmony",
]
MORPHOLOGY = [
    "own_morphology",
    "transfer_morphology",
    "joint_morphology",
    "joint_morphology_scaled",
]  # morphology weight 1.5, pp.morphology defaults


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--train", default="dlpfc_151673")
    p.add_argument("--new", default="dlpfc_151674")
    p.add_argument("--data-dir", default=str(SHARED_DATA))
    p.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS + MORPHOLOGY)
    p.add_argument("--out", default=None, help="write the per-seed records to this JSON file")
    p.add_argument("--load", nargs="+", default=None, help="only print the table of these JSON files")
    args = p.parse_args()
    data = Path(args.data_dir)
    records = []
    if args.load:
        pairs = set()
        for path in args.load:
            saved = json.loads(Path(path).read_text())
            records += saved["records"]
            pairs.add((saved["train"], saved["new"]))
        if len(pairs) > 1:
            raise SystemExit(
                f"--load: the files hold different pairs of slides {sorted(pairs)}; load one pair at a time"
            )
        args.train, args.new = pairs.pop()  # the table names the slides of the files, not the defaults
        records = merge_records(records, keys=("seed",))  # one seed's records in several files: joined
        args.seeds = sorted({r["seed"] for r in records})
    for seed in [] if args.load else args.seeds:
        rec = run(data / f"{args.train}.h5ad", data / f"{args.new}.h5ad", seed, args.variants)
        records.append(rec)
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in rec.items()}, flush=True)
        if args.out:
            write_json(args.out, {"train": args.train, "new": args.new, "records": records})
    print_table(records, args)


def print_table(records: list[dict], args) -> None:

    def med(key: str) -> str:
        v = [r[key] for r in records if key in r]
        return f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})" if v else "-"

    def n_seeds(*keys: str | None) -> str:
        """`` [5 seeds]`` after a row measured at fewer seeds than the table's."""
        counts = {sum(key in r for r in records) for key in keys if key} - {0, len(seeds)}
        return f"  [{'/'.join(map(str, sorted(counts)))} seeds]" if counts else ""

    seeds = sorted({r["seed"] for r in records})
    print(f"\n{args.train} (train) and {args.new} (new), seeds {seeds}: median ARI (min-max), K from the annotation")
    print(f"{'':44}{'ARI ' + args.new:>22}{'ARI ' + args.train:>22}  iLISI")
    rows = [
        ("own model of each slide", "own", "own_train", None),
        (f"transfer {args.train} -> {args.new}", "transfer", "train_slide", None),
        ("  same embedding, clustered anew", "transfer_recluster", None, None),
        ("transfer, new slide scaled on its own", "transfer_selfscaled", "train_slide_selfscaled", None),
        ("joint, pooled (no correction)", "joint_pooled_new", "joint_pooled_train", "joint_pooled_ilisi"),
        (
            "  same embedding, each slide clustered alone",
            "joint_pooled_new_alone",
            "joint_pooled_train_alone",
            None,
        ),
        (
            "joint, pseudo-labels of the train slide",
            "joint_anchored_new",
            "joint_anchored_train",
            "joint_anchored_ilisi",
        ),
        ("joint, per-slide scaling", "joint_scaled_new", "joint_scaled_train", "joint_scaled_ilisi"),
        ("joint, Harmony", "joint_harmony_new", "joint_harmony_train", "joint_harmony_ilisi"),
        ("with morphology: own model of the new slide", "own_morphology", None, None),
        ("with morphology: transfer", "transfer_morphology", "train_slide_morphology", None),
        ("with morphology: joint, pooled", "joint_morphology_new", "joint_morphology_train", "joint_morphology_ilisi"),
        (
            "with morphology: joint, morphology per slide",
            "joint_morphology_scaled_new",
            "joint_morphology_scaled_train",
            "joint_morphology_scaled_ilisi",
        ),
    ]
    for name, new_key, train_key, lisi_key in rows:
        print(
            f"{name:44}{med(new_key):>22}{med(train_key) if train_key else '':>22}  {med(lisi_key) if lisi_key else ''}"
            + n_seeds(new_key, train_key)
        )
    print_paired(records)
    with_time = [r for r in records if "embed_s" in r]
    if with_time:
        ratio = [r["embed_s"] / r["train_s"] for r in with_time]
        print(
            f"time: features + embedding of the new slide with the model {med('embed_s')} s, "
            f"features + training on {args.train} {med('train_s')} s (ratio {statistics.median(ratio):.3f})"
        )


def print_paired(records: list[dict]) -> None:
    """Transfer and the joint model against each slide's own model, seed by seed (same clustering)."""
    pairs = (
        ("transfer - own model, new slide", "transfer", "own"),
        ("joint, pooled - own model, train slide", "joint_pooled_train", "own_train"),
        ("joint, pooled - own model, new slide", "joint_pooled_new", "own"),
        ("joint, pseudo-labels of the train slide - own model, train slide", "joint_anchored_train", "own_train"),
        ("joint, pseudo-labels of the train slide - own model, new slide", "joint_anchored_new", "own"),
    )
    for name, key, own in pairs:
        d = [r[key] - r[own] for r in records if key in r and own in r]
        if d:
            # two-sided Wilcoxon signed-rank test of the paired differences (exact below 50 seeds)
            p = f", Wilcoxon p = {wilcoxon(d).pvalue:.3f}" if len(d) >= 5 and any(d) else ""
            print(
                f"{name}, same seed: median {statistics.median(d):+.3f} "
                f"({min(d):+.3f} to {max(d):+.3f}), behind at {sum(x < 0 for x in d)} of {len(d)} seeds{p}"
            )


if __name__ == "__main__":
    main()
