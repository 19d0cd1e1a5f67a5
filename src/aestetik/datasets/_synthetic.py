"""A synthetic Visium-like slide (layered domains, counts, H&E-like image) bundled for demos and tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

#: Mean H&E-like colour (RGB) per domain and the density of dark "nuclei" dots.
_PALETTE = np.array(
    [
        [232, 182, 205],
        [200, 140, 190],
        [170, 110, 170],
        [215, 160, 160],
        [150, 100, 150],
        [240, 200, 220],
        [185, 120, 140],
        [160, 130, 190],
    ],
    dtype=np.float64,
)
_NUCLEI = np.array([0.002, 0.012, 0.03, 0.006, 0.045, 0.001, 0.02, 0.035])


def _domain(x: np.ndarray, y: np.ndarray, width: float, height: float, n_domains: int) -> np.ndarray:
    """Curved horizontal layers, like cortical layers."""
    t = (y + 0.08 * height * np.sin(2 * np.pi * x / width)) / height
    return np.clip((t * n_domains).astype(np.int64), 0, n_domains - 1)


def _programs(
    rng: np.random.Generator, n_genes: int, n_domains: int, n_markers: int, fold_change: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gene baselines and the log fold changes of each domain's marker genes (shared by all samples)."""
    base = rng.lognormal(mean=0.0, sigma=1.0, size=n_genes) * 1.0
    log_fc = np.zeros((n_domains, n_genes))
    for d in range(n_domains):
        markers = rng.choice(n_genes, size=n_markers, replace=False)
        log_fc[d, markers] = np.log(fold_change)
    return base, log_fc


#: Counts drawn at a time (spots x genes): memory follows one block (100,000 spots of 200 genes).
_BLOCK_VALUES = 20_000_000


def _counts(rng: np.random.Generator, profile: np.ndarray, domain: np.ndarray, size: np.ndarray) -> sparse.csr_matrix:
    """Gamma-Poisson (negative-binomial, dispersion 5) counts, block by block of spots, as CSR."""
    theta = 5.0
    step = max(1, _BLOCK_VALUES // profile.shape[1])
    blocks = []
    for start in range(0, len(domain), step):
        mu = profile[domain[start : start + step]] * size[start : start + step, None]
        blocks.append(sparse.csr_matrix(rng.poisson(rng.gamma(shape=theta, scale=mu / theta)).astype(np.int32)))
    return blocks[0] if len(blocks) == 1 else sparse.vstack(blocks, format="csr")


def _lattice(n_spots: int, spot_distance: float, square: bool) -> tuple[np.ndarray, ...]:
    """Lattice indices and centres (full-resolution pixels) of ``n_spots`` spots, row by row."""
    aspect = 1.0 if square else np.sqrt(3) / 2
    n_cols = max(2, int(round(np.sqrt(n_spots * aspect))))
    n_rows = int(np.ceil(n_spots / n_cols))
    r, c = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    rows = r.ravel()[:n_spots]
    margin = 2 * spot_distance
    if square:  # Visium HD bins: array_col steps by 1, rows and columns one bin apart
        cols = c.ravel()[:n_spots]
        return rows, cols, margin + cols * spot_distance, margin + rows * spot_distance, margin
    cols = (2 * c + (r % 2)).ravel()[:n_spots]  # Visium: array_row + array_col is even
    return rows, cols, margin + cols * spot_distance / 2, margin + rows * spot_distance * np.sqrt(3) / 2, margin


def _one_sample(
    rng: np.random.Generator,
    n_spots: int,
    base: np.ndarray,
    log_fc: np.ndarray,
    spot_distance: float,
    scalef: float,
    with_image: bool = True,
    square: bool = False,
) -> tuple[sparse.csr_matrix, pd.DataFrame, np.ndarray, np.ndarray | None, np.ndarray]:
    rows, cols, x, y, margin = _lattice(n_spots, spot_distance, square)
    width, height = x.max() + margin, y.max() + margin
    n_domains = len(log_fc)
    domain = _domain(x - margin, y - margin, width - 2 * margin, height - 2 * margin + 1e-9, n_domains)

    # Negative-binomial counts: gene baselines, domain markers, spot library sizes.
    size = rng.lognormal(mean=0.0, sigma=0.3, size=n_spots)
    profile = base[None, :] * np.exp(log_fc)  # mean counts of each domain at library size 1
    counts = _counts(rng, profile, domain, size)

    obs = pd.DataFrame({"array_row": rows, "array_col": cols, "in_tissue": 1, "domain": domain})
    if not with_image:
        return counts, obs, np.stack([x, y], axis=1), None, log_fc
    img = _image(rng, width, height, margin, scalef, n_domains)
    return counts, obs, np.stack([x, y], axis=1), img, log_fc


#: Image rows drawn at a time: memory follows one strip, not the whole image in float64.
_IMAGE_STRIP = 512


def _image(rng: np.random.Generator, width: float, height: float, margin: float, scalef: float, n_domains: int):
    """H&E-like image at "hires" scale, uint8: colour and density of dark nuclei-like dots per domain.

    Drawn strip by strip of rows, first the colour noise of every strip, then the dots, so the
    random stream (and the image) is that of drawing the whole image at once.
    """
    h, w = int(np.ceil(height * scalef)), int(np.ceil(width * scalef))
    img = np.empty((h, w, 3), dtype=np.uint8)
    px = np.arange(w) / scalef - margin

    def domains(y0: int, y1: int) -> np.ndarray:
        py = np.arange(y0, y1)[:, None] / scalef - margin
        return _domain(px[None, :], py, width - 2 * margin, height - 2 * margin + 1e-9, n_domains)

    for y0 in range(0, h, _IMAGE_STRIP):
        y1 = min(y0 + _IMAGE_STRIP, h)
        colour = _PALETTE[domains(y0, y1) % len(_PALETTE)] + rng.normal(0, 12, size=(y1 - y0, w, 3))
        img[y0:y1] = np.clip(colour, 0, 255).astype(np.uint8)
    for y0 in range(0, h, _IMAGE_STRIP):
        y1 = min(y0 + _IMAGE_STRIP, h)
        nuclei = rng.random((y1 - y0, w)) < _NUCLEI[domains(y0, y1) % len(_NUCLEI)]
        img[y0:y1][nuclei] = [70, 40, 110]
    return img


def synthetic(
    n_spots: int = 400,
    *,
    n_genes: int = 200,
    n_domains: int = 5,
    n_markers: int = 20,
    fold_change: float = 2.5,
    n_samples: int = 1,
    batch_effect: float = 0.0,
    with_image: bool = True,
    lattice: str = "hexagonal",
    mean_counts: float | None = None,
    as_spatialdata: bool = False,
    random_state: int = 0,
) -> AnnData | Any:
    """A Visium-like synthetic slide with layered domains, counts and an H&E-like image.

    Spots sit on Visium's hexagonal lattice (``array_row + array_col`` even). The
    tissue is cut into ``n_domains`` curved layers. Counts are negative-binomial
    (dispersion 5) with ``n_markers`` genes per domain raised ``fold_change``-fold and
    log-normal library sizes, so expression alone separates the domains only
    partly. The RGB image (scanpy layout, ``uns["spatial"][library_id]``) has a
    colour and a density of dark nuclei-like dots per domain.

    Parameters
    ----------
    n_spots
        Spots per sample.
    n_genes
        Genes.
    n_domains
        Number of layered domains (``obs["ground_truth"]``).
    n_markers
        Marker genes per domain.
    fold_change
        Expression fold change of a domain's markers.
    n_samples
        Number of slides of the same tissue (the same domains and marker genes), stacked
        with ``obs["sample"]``; each has its own image.
    batch_effect
        Slide effect: every slide's gene baselines are multiplied by a log-normal factor of
        this standard deviation, drawn per slide and gene (``0``: none).
    with_image
        Draw the H&E-like image (skip it for large slides used only for expression).
    lattice
        ``"hexagonal"``: Visium spots (55 um, 100 um apart; ``array_col`` steps by 2);
        ``"square"``: Visium HD bins that tile the tissue (``array_row``/``array_col``
        step by 1, a bin's side is the spacing).
    mean_counts
        Mean counts per spot (before the spots' log-normal library sizes). ``None``: the
        gene baselines as drawn, about 1.6 counts per gene (350 for 200 genes); a Visium HD
        bin of 8 um holds a few hundred counts over thousands of genes.
    as_spatialdata
        Return a ``spatialdata.SpatialData`` object instead (one sample with its image):
        the image ``"synthetic_hires"`` (3 levels, ``c, y, x``), the spot circles
        ``"synthetic_spots"`` and the ``"table"`` annotating them (``obs["region"]``,
        ``obs["spot_id"]``), all in a ``"global"`` coordinate system in full-resolution pixels.
    random_state
        Seed.

    Returns
    -------
    (or the SpatialData object described above, whose table is this AnnData)
    AnnData with raw counts in ``X`` (CSR, int32), ``obs`` ``array_row``, ``array_col``,
    ``in_tissue``, ``ground_truth`` (categorical), ``sample``; ``obsm["spatial"]``
    (full-resolution pixels, x then y) and ``uns["spatial"]`` with ``hires`` and ``lowres``
    images and scale factors.

    Examples
    --------
    >>> import aestetik as ae
    >>> adata = ae.datasets.synthetic(n_spots=300)
    >>> adata
    AnnData object with n_obs × n_vars = 300 × 200
        obs: 'array_row', 'array_col', 'in_tissue', 'sample', 'ground_truth'
        uns: 'spatial'
        obsm: 'spatial'
    """
    if as_spatialdata and (n_samples != 1 or not with_image):
        raise ValueError("as_spatialdata=True makes one sample with its image: use n_samples=1, with_image=True")
    if n_domains < 1 or n_domains > n_spots:
        raise ValueError(f"n_domains must be in [1, n_spots], got {n_domains}")
    if n_markers > n_genes:
        raise ValueError(f"n_markers ({n_markers}) cannot exceed n_genes ({n_genes})")
    if lattice not in ("hexagonal", "square"):
        raise ValueError(f"lattice must be 'hexagonal' or 'square', got {lattice!r}")
    square = lattice == "square"
    rng = np.random.default_rng(random_state)
    spot_distance, scalef = 100.0, 0.2
    spot_diameter = spot_distance if square else 55.0
    if batch_effect < 0:
        raise ValueError(f"batch_effect must be >= 0, got {batch_effect}")
    blocks, obs, coords, spatial = [], [], [], {}
    base, log_fc = _programs(rng, n_genes, n_domains, n_markers, fold_change)
    if mean_counts is not None:
        if not mean_counts > 0:
            raise ValueError(f"mean_counts must be positive, got {mean_counts}")
        base = base * mean_counts / np.mean((base[None, :] * np.exp(log_fc)).sum(axis=1))
    for s in range(n_samples):
        lib = "synthetic" if n_samples == 1 else f"synthetic_{s}"
        shift = rng.lognormal(0.0, batch_effect, size=n_genes) if batch_effect > 0 else 1.0
        x, o, xy, img, _ = _one_sample(rng, n_spots, base * shift, log_fc, spot_distance, scalef, with_image, square)
        o["sample"] = lib
        o.index = [f"{lib}_spot{i}" for i in range(len(o))]
        blocks.append(x)
        obs.append(o)
        coords.append(xy)
        spatial[lib] = {
            "images": {} if img is None else {"hires": img, "lowres": img[::4, ::4].copy()},
            "scalefactors": {
                "tissue_hires_scalef": scalef,
                "tissue_lowres_scalef": scalef / 4,
                "spot_diameter_fullres": spot_diameter,
                "fiducial_diameter_fullres": spot_diameter * 1.6,
            },
            "metadata": {"source": "aestetik.datasets.synthetic", "random_state": random_state},
        }
    obs_df = pd.concat(obs)
    obs_df["ground_truth"] = pd.Categorical(
        [f"domain_{d}" for d in obs_df.pop("domain")], categories=[f"domain_{d}" for d in range(n_domains)]
    )
    obs_df["sample"] = pd.Categorical(obs_df["sample"])
    adata = AnnData(
        X=sparse.vstack(blocks).tocsr(),
        obs=obs_df,
        var=pd.DataFrame(index=[f"gene_{g}" for g in range(n_genes)]),
        obsm={"spatial": np.concatenate(coords)},
        uns={"spatial": spatial},
    )
    return _to_spatialdata(adata) if as_spatialdata else adata


def _to_spatialdata(adata: AnnData) -> Any:
    """The one-sample synthetic slide as SpatialData: multiscale image, spot circles, annotating table."""
    import geopandas as gpd
    import spatialdata as sd
    from shapely.geometry import Point
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity, Scale

    lib = next(iter(adata.uns["spatial"]))
    entry = adata.uns["spatial"][lib]
    sf = entry["scalefactors"]
    scalef = sf["tissue_hires_scalef"]
    image = Image2DModel.parse(
        np.moveaxis(entry["images"]["hires"], -1, 0),
        dims=("c", "y", "x"),
        c_coords=["r", "g", "b"],
        scale_factors=[2, 2],
        transformations={"global": Scale([1 / scalef, 1 / scalef], axes=("x", "y"))},
    )
    xy = adata.obsm["spatial"]
    spots = ShapesModel.parse(
        gpd.GeoDataFrame(
            {"radius": np.full(adata.n_obs, sf["spot_diameter_fullres"] / 2)},
            geometry=[Point(x, y) for x, y in xy],
            index=pd.RangeIndex(adata.n_obs),
        ),
        transformations={"global": Identity()},
    )
    table = adata.copy()
    del table.uns["spatial"]
    table.obs["region"] = pd.Categorical([f"{lib}_spots"] * adata.n_obs)
    table.obs["spot_id"] = np.arange(adata.n_obs)
    table = TableModel.parse(table, region=f"{lib}_spots", region_key="region", instance_key="spot_id")
    return sd.SpatialData(images={f"{lib}_hires": image}, shapes={f"{lib}_spots": spots}, tables={"table": table})
