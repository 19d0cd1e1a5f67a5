"""Command line: ``python -m aestetik demo [--input file.h5ad --n-clusters K]``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from aestetik import __version__

logger = logging.getLogger("aestetik.cli")  # the demo's own steps

_DEMO_DESCRIPTION = """\
Run the whole AESTETIK pipeline once: expression features (pp.transcriptomics),
morphology features from the H&E image when the input has one (pp.morphology),
the embedding (tl.embed), spatial domains (tl.cluster, and expression-only domains
for comparison), then write a figure, the loss curves and the annotated .h5ad into
--out. Without --input it runs on a synthetic Visium-like slide with 5 known layers
(aestetik.datasets.synthetic, expression and neighbourhood only); with a known domain
column (--truth-key) it prints the ARI of both clusterings.
"""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults, except unset ones (``None``) and off switches; keep the description's lines."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _image_libraries(adata) -> list[str]:
    """Libraries of ``uns["spatial"]`` (scanpy layout) that carry at least one image."""
    spatial = adata.uns.get("spatial")
    if not isinstance(spatial, Mapping):
        return []
    return [lib for lib, entry in spatial.items() if isinstance(entry, Mapping) and len(entry.get("images") or {}) > 0]


def _demo(args: argparse.Namespace) -> int:
    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import adjusted_rand_score

    import aestetik as ae

    t0 = time.perf_counter()
    if args.input:
        adata = ad.read_h5ad(args.input)
        n_clusters = args.n_clusters
        if n_clusters is None:
            sys.exit("--n-clusters is required with --input")
    else:
        logger.info("synthetic Visium-like slide (aestetik.datasets.synthetic), 5 layered domains")
        # markers raised 1.8-fold: too weak for one spot's expression to tell the layers apart
        # (the expression PCA finds none of them), strong enough over a spot's neighbourhood
        adata = ae.datasets.synthetic(n_spots=args.n_spots, fold_change=1.8)
        n_clusters = args.n_clusters or 5
    if "array_row" not in adata.obs and "x_array" not in adata.obs:
        logger.info("no lattice coordinates: mapping obsm['spatial'] onto a lattice (aestetik.pp.lattice)")
        ae.pp.lattice(adata)
    logger.info("[1/4] expression features (aestetik.pp.transcriptomics)")
    ae.pp.transcriptomics(adata, layer=args.layer)
    libraries = _image_libraries(adata) if args.input else []  # the synthetic slide stays expression only
    if libraries and args.no_morphology:
        logger.info("--no-morphology: the H&E image in uns['spatial'] is not used")
    elif len(libraries) == 1:
        logger.info(
            "[1/4] morphology features from the H&E image in uns['spatial'][%r] (aestetik.pp.morphology; "
            "--no-morphology skips them)",
            libraries[0],
        )
        ae.pp.morphology(adata, library_id=libraries[0])
    elif len(libraries) > 1:
        logger.warning(
            "uns['spatial'] has images of %d libraries: the demo uses expression only; run "
            "aestetik.pp.morphology(adata, library_key=...) yourself for several slides",
            len(libraries),
        )
    logger.info(
        "[2/4] AESTETIK embedding (aestetik.tl.embed), %s epochs",
        "the default number of" if args.max_epochs is None else args.max_epochs,
    )
    ae.tl.embed(adata, n_clusters=n_clusters, max_epochs=args.max_epochs, random_state=args.seed)
    logger.info("[3/4] spatial domains (aestetik.tl.cluster)")
    ae.tl.cluster(adata, n_clusters, random_state=args.seed)
    ae.tl.cluster(
        adata, n_clusters, use_rep="X_pca_transcriptomics", key_added="expression_clusters", random_state=args.seed
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cols = ["expression_clusters", "aestetik_clusters"]
    truth = args.truth_key if args.truth_key in adata.obs else None
    if truth:
        cols.insert(0, truth)
        lab = adata.obs[truth].notna().to_numpy()
        for c in cols[1:]:
            score = adjusted_rand_score(adata.obs[truth][lab].astype(str), adata.obs[c][lab].astype(str))
            print(f"ARI {c:<22} {score:.3f}")
    logger.info("[4/4] figure and h5ad")
    fig = ae.pl.spatial(adata, color=cols, reference=truth, return_fig=True)
    loss_fig = ae.pl.loss(adata, return_fig=True)
    fig_path, h5_path = out / "aestetik_demo.png", out / "aestetik_demo.h5ad"
    fig.savefig(fig_path, dpi=110, bbox_inches="tight")
    loss_fig.savefig(out / "aestetik_loss.png", dpi=110, bbox_inches="tight")
    plt.close("all")
    adata.write_h5ad(h5_path)
    print(f"wrote {fig_path}, {out / 'aestetik_loss.png'} and {h5_path} in {time.perf_counter() - t0:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m aestetik`` and the ``aestetik`` command."""
    p = argparse.ArgumentParser(
        prog="aestetik",
        description="AESTETIK: spatial domains from gene expression, H&E morphology and spot neighbourhoods.",
        epilog="'aestetik demo --help' lists the options of the demo.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser(
        "demo",
        help="features -> embedding -> domains -> figure, on bundled synthetic data or --input",
        description=_DEMO_DESCRIPTION,
        formatter_class=_HelpFormatter,
    )
    d.add_argument(
        "--input",
        metavar="H5AD",
        help="an .h5ad with raw counts and Visium array coordinates (or obsm['spatial']); its H&E image in "
        "uns['spatial'], when there is one, gives morphology features (default: the synthetic slide)",
    )
    d.add_argument(
        "--n-clusters",
        type=int,
        default=None,
        metavar="K",
        help="number of spatial domains (default: 5 on the synthetic slide; required with --input)",
    )
    d.add_argument("--layer", default=None, help="layer with the raw counts (default: X)")
    d.add_argument("--truth-key", default="ground_truth", help="obs column with known domains, for the ARI")
    d.add_argument("--n-spots", type=int, default=1000, help="number of spots of the synthetic slide")
    d.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="training epochs of tl.embed (default: 100 up to 8,192 spots, then fewer, at least 1)",
    )
    d.add_argument("--seed", type=int, default=0, help="random_state of tl.embed and tl.cluster")
    d.add_argument(
        "--no-morphology",
        action="store_true",
        help="do not use the H&E image of --input (expression and neighbourhood only)",
    )
    d.add_argument("--out", default="aestetik_demo", metavar="DIR", help="output folder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("lightning").setLevel(logging.WARNING)
    import scanpy as sc

    sc.settings.verbosity = "info"  # the package's own messages too
    return _demo(args)


if __name__ == "__main__":
    sys.exit(main())
