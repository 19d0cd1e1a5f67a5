"""``pp.lattice``: integer lattice coordinates for cells with continuous positions (imaging data)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from anndata import AnnData

from aestetik import _logging as logger
from aestetik._docs import doc_copy, doc_table_key, inject_docs
from aestetik._spatialdata import check_data, copy_data, table_coordinates
from aestetik._utils import lattice_uns_key, sample_codes

if TYPE_CHECKING:
    from spatialdata import SpatialData


def _nearest_neighbour_distance(xy: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    d, _ = cKDTree(xy).query(xy, k=2)
    return d[:, 1]


def _snap(xy: np.ndarray, bin_size: float, max_radius: int = 64) -> tuple[np.ndarray, int]:
    """Give every point its own square-lattice cell, as close to its position as possible.

    Points are binned with ``floor(xy / bin_size)``. In a cell shared by several
    points the one nearest the cell centre stays; the others move to the nearest
    free cell (ties resolved by distance), round after round, vectorised over the
    displaced points.
    """
    pos = (xy - xy.min(axis=0)) / bin_size  # continuous lattice units
    cell = np.floor(pos).astype(np.int64)
    n = len(pos)
    pad = max_radius + 1
    width = int(cell[:, 1].max()) + 2 * pad + 1

    def key_of(c: np.ndarray) -> np.ndarray:
        return (c[..., 0] + pad) * width + (c[..., 1] + pad)

    keys = key_of(cell)
    centre_dist = np.linalg.norm(pos - (cell + 0.5), axis=1)
    order = np.lexsort((centre_dist, keys))
    first = np.ones(n, dtype=bool)
    first[1:] = keys[order][1:] != keys[order][:-1]
    placed = np.zeros(n, dtype=bool)
    placed[order[first]] = True
    occupied = np.sort(keys[placed])
    todo = np.flatnonzero(~placed)
    n_moved = len(todo)
    radius = 1
    while len(todo):
        if radius > max_radius:
            raise ValueError("Could not place all points on the lattice; use a smaller bin_size")
        d = np.arange(-radius, radius + 1)
        offs = np.stack(np.meshgrid(d, d, indexing="ij"), axis=-1).reshape(-1, 2)
        cand = cell[todo][:, None, :] + offs[None, :, :]  # (T, K, 2)
        cand_keys = key_of(cand)
        taken = np.isin(cand_keys, occupied)
        dist = np.linalg.norm(pos[todo][:, None, :] - (cand + 0.5), axis=2)
        dist[taken] = np.inf
        choice = dist.argmin(axis=1)
        best = dist[np.arange(len(todo)), choice]
        has = np.isfinite(best)
        if not has.any():
            radius += 1
            continue
        t, k, bd = todo[has], cand_keys[has, choice[has]], best[has]
        # one point per free cell and round: the nearest wins
        o = np.lexsort((bd, k))
        win = np.ones(len(o), dtype=bool)
        win[1:] = k[o][1:] != k[o][:-1]
        winners, wkeys = t[o[win]], k[o[win]]
        cell[winners] = np.stack([wkeys // width - pad, wkeys % width - pad], axis=1)
        occupied = np.sort(np.concatenate([occupied, wkeys]))
        placed[winners] = True
        todo = np.flatnonzero(~placed)
        if not has.all():
            radius += 1
    return cell, n_moved


@inject_docs(doc_table_key=doc_table_key, doc_copy=doc_copy)
def lattice(
    adata: AnnData | SpatialData,
    *,
    spatial_key: str = "spatial",
    bin_size: float | None = None,
    library_key: str | None = None,
    key_added: tuple[str, str] = ("array_row", "array_col"),
    table_key: str | None = None,
    copy: bool = False,
) -> AnnData | SpatialData | None:
    """Map continuous coordinates (imaging-based single-cell data) onto an integer lattice.

    AESTETIK reads each spot's neighbourhood off integer lattice coordinates, as
    Visium's ``array_row``/``array_col``. Cells of imaging-based data (STARmap,
    osmFISH, MERFISH, ...) have micron or pixel coordinates instead. This function
    bins them on a square lattice of side ``bin_size`` (default: the median distance
    between a cell and its nearest neighbour, so a lattice cell holds about one cell
    and a ``w x w`` window spans about ``w`` cell-to-cell distances). Where several
    cells fall into one lattice cell, the one closest to the centre keeps it and the
    others move to the nearest free lattice cell, so every cell gets a unique
    position and the layout is preserved up to less than one bin for most cells.

    Parameters
    ----------
    adata
        Annotated data with coordinates in ``obsm[spatial_key]``.
    spatial_key
        ``obsm`` key of the ``(n_obs, 2)`` coordinates (x, y).
    bin_size
        Lattice spacing in coordinate units. ``None``: median nearest-neighbour distance
        (per sample with ``library_key``).
    library_key
        ``obs`` column with the sample of each cell; samples are mapped separately.
    key_added
        ``obs`` columns for the lattice row (from y) and column (from x).
    {doc_table_key}
    {doc_copy}

    Returns
    -------
    ``None`` or the copy. Writes ``obs[key_added[0]]``, ``obs[key_added[1]]`` (int) and
    ``uns["aestetik_lattice"]`` (``uns[f"aestetik_lattice_{row}_{col}"]`` for other
    ``key_added``; ``params``, the ``bin_size`` used per sample and the
    number of displaced cells).

    Examples
    --------
    >>> import numpy as np, anndata as ad, aestetik as ae
    >>> a = ad.AnnData(np.ones((3, 1)), obsm={"spatial": np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])})
    >>> ae.pp.lattice(a)
    >>> a.obs[["array_row", "array_col"]].to_numpy().tolist()
    [[0, 0], [0, 1], [1, 0]]
    """
    data, adata = adata, check_data(adata, table_key)
    xy = table_coordinates(data, adata, spatial_key)
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise ValueError(f"adata.obsm[{spatial_key!r}] must be (n_obs, 2) coordinates, got shape {xy.shape}")
    xy = xy[:, :2]
    if not np.all(np.isfinite(xy)):
        raise ValueError(f"adata.obsm[{spatial_key!r}] has NaN/inf coordinates")
    if bin_size is not None and not (np.isfinite(bin_size) and bin_size > 0):
        raise ValueError(f"bin_size must be a positive number, got {bin_size!r}")
    if len(key_added) != 2:
        raise ValueError(f"key_added must name two obs columns, got {key_added!r}")
    codes = sample_codes(adata, library_key)

    rows = np.zeros(adata.n_obs, dtype=np.int64)
    cols = np.zeros(adata.n_obs, dtype=np.int64)
    sizes, moved = {}, {}
    for s in np.unique(codes):
        idx = np.flatnonzero(codes == s)
        pts = xy[idx][:, ::-1]  # (y, x): row from y, column from x
        if len(idx) == 1:
            b = 1.0 if bin_size is None else float(bin_size)
        else:
            b = float(np.median(_nearest_neighbour_distance(pts))) if bin_size is None else float(bin_size)
            if b <= 0:
                raise ValueError("Cells with identical coordinates make the median neighbour distance 0; pass bin_size")
        cell, n_moved = _snap(pts, b)
        rows[idx], cols[idx] = cell[:, 0], cell[:, 1]
        sizes[str(s)], moved[str(s)] = b, int(n_moved)

    if copy:
        data, adata = copy_data(data, table_key)
    adata.obs[key_added[0]] = rows
    adata.obs[key_added[1]] = cols
    adata.uns[lattice_uns_key(key_added)] = {
        "params": {
            "spatial_key": spatial_key,
            "bin_size": bin_size,
            "library_key": library_key,
            "key_added": list(key_added),
        },
        "bin_size": sizes,
        "n_displaced": moved,
    }
    logger.info("added obs[%r], obs[%r] (lattice, %d cells displaced)", *key_added, sum(moved.values()))
    return data if copy else None
