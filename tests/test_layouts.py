"""Visium HD bins and Xenium cells, in the SpatialData layout spatialdata-io writes (built here, no downloads).

Visium HD (``spatialdata_io.visium_hd``): a table per bin size (``square_008um``) annotating
square polygons (``<dataset>_square_008um``) through ``location_id``, with ``array_row`` and
``array_col`` of the square lattice (no hexagonal column step), and the H&E images.
Xenium (``spatialdata_io.xenium``): one ``table`` of cells annotating ``cell_circles``
through ``cell_id``, the centroids in ``obsm["spatial"]`` (microns), no lattice.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import aestetik as ae
from aestetik.nn import neighbour_index

pytest.importorskip("spatialdata")


def _domains_on_rows(rows: np.ndarray, n_domains: int) -> np.ndarray:
    return np.minimum(rows * n_domains // (rows.max() + 1), n_domains - 1)


def _counts(rng, domain, n_genes=120, n_markers=15, fold=3.0):
    from scipy import sparse

    n_domains = domain.max() + 1
    base = rng.lognormal(0.0, 1.0, n_genes)
    log_fc = np.zeros((n_domains, n_genes))
    for d in range(n_domains):
        log_fc[d, rng.choice(n_genes, n_markers, replace=False)] = np.log(fold)
    mu = base * np.exp(log_fc[domain]) * rng.lognormal(0.0, 0.3, len(domain))[:, None]
    return sparse.csr_matrix(rng.poisson(rng.gamma(5.0, mu / 5.0)).astype(np.int32))


def visium_hd(n_side: int = 24, bin_um: float = 8.0, seed: int = 0):
    """A small Visium HD slide at one bin size, as spatialdata-io lays it out."""
    import anndata as ad
    import geopandas as gpd
    import pandas as pd
    import spatialdata as sd
    from shapely.geometry import box
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity, Scale

    rng = np.random.default_rng(seed)
    rows, cols = np.divmod(np.arange(n_side * n_side), n_side)
    domain = _domains_on_rows(rows, 4)
    px_per_um = 2.0  # full-resolution pixels per micron
    side = bin_um * px_per_um
    x0, y0 = cols * side, rows * side
    squares = ShapesModel.parse(
        gpd.GeoDataFrame(
            geometry=[box(x, y, x + side, y + side) for x, y in zip(x0, y0, strict=True)],
            index=pd.Index(np.arange(len(rows)), name="location_id"),
        ),
        transformations={"global": Identity()},
    )
    scalef = 0.25
    h = w = int(np.ceil(n_side * side * scalef))
    yy = np.arange(h)[:, None] / scalef / side
    img = np.zeros((3, h, w), dtype=np.uint8)
    shade = (60 + 45 * _domains_on_rows(np.minimum(yy.astype(int), n_side - 1), 4)).astype(np.uint8)
    img[:] = shade[None, :, :] + rng.integers(0, 20, (3, h, w), dtype=np.uint8)
    image = Image2DModel.parse(
        img, dims=("c", "y", "x"), transformations={"global": Scale([1 / scalef, 1 / scalef], axes=("x", "y"))}
    )
    obs = pd.DataFrame(
        {
            "location_id": np.arange(len(rows)),
            "region": pd.Categorical(["hd_square_008um"] * len(rows)),
            "array_row": rows,
            "array_col": cols,
            "domain": pd.Categorical(domain.astype(str)),
        },
        index=[f"s_008um_{r:05d}_{c:05d}-1" for r, c in zip(rows, cols, strict=True)],
    )
    table = TableModel.parse(
        ad.AnnData(_counts(rng, domain), obs=obs),
        region="hd_square_008um",
        region_key="region",
        instance_key="location_id",
    )
    return sd.SpatialData(
        images={"hd_hires_image": image}, shapes={"hd_square_008um": squares}, tables={"square_008um": table}
    )


def xenium(n_cells: int = 900, seed: int = 0):
    """A small Xenium section: cells with continuous centroids (microns), as spatialdata-io lays it out."""
    import anndata as ad
    import geopandas as gpd
    import pandas as pd
    import spatialdata as sd
    from shapely.geometry import Point
    from spatialdata.models import ShapesModel, TableModel
    from spatialdata.transformations import Identity

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 600, size=(n_cells, 2))
    domain = np.minimum((xy[:, 1] // 150).astype(int), 3)
    ids = np.array([f"cell{i:05d}" for i in range(n_cells)])
    circles = ShapesModel.parse(
        gpd.GeoDataFrame(
            {"radius": np.full(n_cells, 5.0)},
            geometry=[Point(x, y) for x, y in xy],
            index=pd.Index(ids, name="cell_id"),
        ),
        transformations={"global": Identity()},
    )
    obs = pd.DataFrame(
        {"cell_id": ids, "region": pd.Categorical(["cell_circles"] * n_cells), "domain": domain.astype(str)},
        index=ids,
    )
    table = TableModel.parse(
        ad.AnnData(_counts(rng, domain, n_genes=80), obs=obs, obsm={"spatial": xy}),
        region="cell_circles",
        region_key="region",
        instance_key="cell_id",
    )
    return sd.SpatialData(shapes={"cell_circles": circles}, tables={"table": table})


def test_visium_hd_square_bins_end_to_end():
    sdata = visium_hd()
    key = "square_008um"
    table = sdata.tables[key]
    rows, cols = table.obs["array_row"].to_numpy(), table.obs["array_col"].to_numpy()
    # a square lattice: a 3 x 3 window holds the 8 bins around each inner bin (no hexagonal step)
    index = neighbour_index(rows, cols, 3)
    inner = (rows > 0) & (rows < rows.max()) & (cols > 0) & (cols < cols.max())
    assert (index[inner] >= 0).all()
    ae.pp.transcriptomics(sdata, table_key=key)
    ae.pp.morphology(sdata, table_key=key, image_key="hd_hires_image", show_progress_bar=False)
    ae.tl.embed(sdata, table_key=key, n_clusters=4, max_epochs=20, n_mc_passes=10, show_progress_bar=False)
    ae.tl.cluster(sdata, 4, table_key=key)
    ari = adjusted_rand_score(table.obs["domain"], table.obs["aestetik_clusters"])
    assert ari > 0.7
    assert table.uns["aestetik"]["params"]["pseudo_label_coordinates"] == "the spots' shapes"
    fig = ae.pl.spatial(sdata, color=["domain", "aestetik_clusters"], table_key=key, return_fig=True)
    assert len(fig.axes) >= 2


def test_xenium_cells_through_the_lattice():
    sdata = xenium()
    ae.pp.lattice(sdata, table_key="table")
    table = sdata.tables["table"]
    assert len(set(zip(table.obs["array_row"], table.obs["array_col"], strict=True))) == table.n_obs
    ae.pp.transcriptomics(sdata, table_key="table")
    ae.tl.embed(sdata, table_key="table", n_clusters=4, max_epochs=20, n_mc_passes=10, show_progress_bar=False)
    ae.tl.cluster(sdata, 4, table_key="table")
    assert adjusted_rand_score(table.obs["domain"], table.obs["aestetik_clusters"]) > 0.6


def test_synthetic_square_lattice():
    """datasets.synthetic(lattice="square"): Visium-HD-like bins, one step apart, tiling the slide."""
    adata = ae.datasets.synthetic(n_spots=400, lattice="square", random_state=0)
    rows, cols = adata.obs["array_row"].to_numpy(), adata.obs["array_col"].to_numpy()
    assert rows.max() == cols.max() == 19 and len(set(zip(rows, cols, strict=True))) == adata.n_obs
    xy = adata.obsm["spatial"]
    assert np.allclose(np.diff(np.unique(xy[:, 0])), 100.0) and np.allclose(np.diff(np.unique(xy[:, 1])), 100.0)
    assert adata.uns["spatial"]["synthetic"]["scalefactors"]["spot_diameter_fullres"] == 100.0
    index = neighbour_index(rows, cols, 3)
    inner = (rows > 0) & (rows < rows.max()) & (cols > 0) & (cols < cols.max())
    assert (index[inner] >= 0).all()  # the 8 bins around each inner bin
    with pytest.raises(ValueError, match="lattice"):
        ae.datasets.synthetic(n_spots=10, lattice="triangular")


def test_synthetic_bins_with_visium_hd_counts():
    """mean_counts: a few hundred counts per bin over thousands of genes, as 8 um Visium HD bins."""
    adata = ae.datasets.synthetic(n_spots=500, n_genes=2000, mean_counts=300, lattice="square", with_image=False)
    per_bin = np.asarray(adata.X.sum(axis=1)).ravel()
    assert 250 < per_bin.mean() < 350 and adata.X.nnz / adata.n_obs < 300
    with pytest.raises(ValueError, match="mean_counts"):
        ae.datasets.synthetic(n_spots=10, mean_counts=0)


def test_bad_layouts_at_scale_are_refused_before_any_work():
    """Mixed bin sizes in one table, a SpatialData without a table, a table whose shapes are
    not in the object: each a clear error from tl.embed, before pseudo-labels or training."""
    import anndata as ad
    import spatialdata as sd

    fine, coarse = visium_hd(n_side=24, bin_um=8.0), visium_hd(n_side=12, bin_um=16.0, seed=1)
    tables = []
    for sdata in (fine, coarse):  # both tables as one, with the bins' centres (pixels) in obsm["spatial"]
        table = sdata.tables["square_008um"].copy()
        centres = sdata.shapes["hd_square_008um"].geometry.centroid
        table.obsm["spatial"] = np.column_stack([centres.x, centres.y])
        tables.append(table)
    mixed = ad.concat(tables, index_unique="-")
    ae.pp.transcriptomics(mixed)
    with pytest.raises(ValueError, match="do not follow the lattice.*[Mm]ixed bin sizes"):
        ae.tl.embed(mixed, n_clusters=4, max_epochs=1, show_progress_bar=False)
    assert "X_aestetik" not in mixed.obsm

    no_table = sd.SpatialData(shapes={"hd_square_008um": fine.shapes["hd_square_008um"]})
    with pytest.raises(KeyError, match="has no table"):
        ae.pp.transcriptomics(no_table, table_key="square_008um")

    orphan = sd.SpatialData(tables={"square_008um": fine.tables["square_008um"]})  # its shapes left behind
    ae.pp.transcriptomics(orphan, table_key="square_008um")
    with pytest.raises(ValueError, match="cannot tell which shapes the table annotates"):
        ae.tl.embed(orphan, table_key="square_008um", n_clusters=4, max_epochs=1, show_progress_bar=False)
