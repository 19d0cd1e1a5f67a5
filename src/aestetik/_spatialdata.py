"""SpatialData input: the annotating table, the spots' shapes and the image levels."""

from __future__ import annotations

from typing import Any

import numpy as np
from anndata import AnnData


def is_spatialdata(data: Any) -> bool:
    """True for a ``spatialdata.SpatialData`` object (without importing spatialdata otherwise)."""
    return any(c.__module__.startswith("spatialdata") and c.__name__ == "SpatialData" for c in type(data).__mro__)


def check_data(data: Any, table_key: str | None) -> AnnData:
    """The AnnData to work on: ``data`` itself, or ``data.tables[table_key]`` for SpatialData.

    Raises ``TypeError`` for SpatialData without ``table_key`` (as squidpy) and ``ValueError``
    for a table without spots.
    """
    if isinstance(data, AnnData):
        table = data
    elif is_spatialdata(data):
        if table_key is None:
            raise TypeError(f"pass table_key= for SpatialData input (as squidpy); tables: {list(data.tables)}")
        if not len(data.tables):
            raise KeyError(
                f"table_key {table_key!r}: this SpatialData has no table. aestetik reads the counts from the table "
                "that annotates the spots (spatialdata-io writes one per Visium HD bin size, e.g. 'square_008um', "
                "and one 'table' of Xenium cells); add one with spatialdata.models.TableModel"
            )
        if table_key not in data.tables:
            raise KeyError(f"table_key {table_key!r} not in the SpatialData tables {list(data.tables)}")
        table = data.tables[table_key]
    else:
        raise TypeError(f"expected an AnnData or a SpatialData object, got {type(data).__name__}")
    if table.n_obs == 0:
        raise ValueError("the AnnData is empty: it has no spots (n_obs == 0)")
    return table


def copy_data(data: Any, table_key: str | None) -> tuple[Any, AnnData]:
    """A copy of ``data`` (a deep copy for SpatialData, lazily backed images stay lazy) and its table."""
    if isinstance(data, AnnData):
        new = data.copy()
        return new, new
    import spatialdata as sd

    new = sd.deepcopy(data)
    return new, new.tables[table_key]


def _affine(element: Any, coordinate_system: str) -> np.ndarray:
    from spatialdata.transformations import get_transformation

    return np.asarray(
        get_transformation(element, to_coordinate_system=coordinate_system).to_affine_matrix(
            input_axes=("x", "y"), output_axes=("x", "y")
        ),
        dtype=np.float64,
    )


def table_shapes(sdata: Any, table: AnnData, shapes_key: str | None) -> tuple[str, np.ndarray]:
    """The shapes element annotated by ``table`` and, per table row, the position of its shape."""
    attrs = table.uns.get("spatialdata_attrs", {})
    region = attrs.get("region")
    regions = [region] if isinstance(region, str) else list(region or [])
    if shapes_key is None:
        cand = [r for r in regions if r in sdata.shapes]
        if len(cand) != 1:
            raise ValueError(
                f"cannot tell which shapes the table annotates (regions {regions}); pass shapes_key= "
                f"(one of {list(sdata.shapes)})"
            )
        shapes_key = cand[0]
    if shapes_key not in sdata.shapes:
        raise KeyError(f"shapes_key {shapes_key!r} not in the SpatialData shapes {list(sdata.shapes)}")
    shapes = sdata.shapes[shapes_key]
    instance_key, region_key = attrs.get("instance_key"), attrs.get("region_key")
    if instance_key is None or instance_key not in table.obs:
        if len(table) != len(shapes):
            raise ValueError(
                f"the table has no instance_key column and {len(table)} rows for {len(shapes)} shapes of {shapes_key!r}"
            )
        return shapes_key, np.arange(len(shapes))
    if region_key in table.obs and (table.obs[region_key].astype(str) != shapes_key).any():
        raise ValueError(f"the table annotates other elements than {shapes_key!r}; subset it first")
    pos = shapes.index.get_indexer(table.obs[instance_key].to_numpy())
    if (pos < 0).any():
        missing = table.obs[instance_key].to_numpy()[pos < 0][:3]
        raise KeyError(f"table rows with {instance_key} {list(missing)} have no shape in {shapes_key!r}")
    return shapes_key, pos


def shape_centres(
    sdata: Any, table: AnnData, shapes_key: str | None, *, target: Any | None = None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Centres ``(N, 2)`` (x, y) and diameters ``(N,)`` of the table's spots.

    In the intrinsic coordinates of ``target`` (an image element) when given, else in
    the first coordinate system of the shapes. Circles give their radius; other
    geometries their centroid and the diameter of the circle of the same area.
    """
    shapes_key, pos = table_shapes(sdata, table, shapes_key)
    shapes = sdata.shapes[shapes_key].iloc[pos]
    geom = shapes.geometry
    if (geom.geom_type == "Point").all():
        if "radius" not in shapes:
            raise KeyError(f"the point shapes {shapes_key!r} have no 'radius' column")
        xy = np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()])
        diam = 2.0 * shapes["radius"].to_numpy(dtype=np.float64)
    else:
        c = geom.centroid
        xy = np.column_stack([c.x.to_numpy(), c.y.to_numpy()])
        diam = 2.0 * np.sqrt(geom.area.to_numpy() / np.pi)
    from spatialdata.transformations import get_transformation

    shape_cs = list(get_transformation(sdata.shapes[shapes_key], get_all=True))
    if target is None:
        m = _affine(sdata.shapes[shapes_key], shape_cs[0])
    else:
        shared = [cs for cs in get_transformation(target, get_all=True) if cs in shape_cs]
        if not shared:
            raise ValueError(f"the shapes {shapes_key!r} and the image share no coordinate system")
        cs = "global" if "global" in shared else shared[0]
        m = np.linalg.inv(_affine(target, cs)) @ _affine(sdata.shapes[shapes_key], cs)
    xy = xy @ m[:2, :2].T + m[:2, 2]
    diam = diam * np.sqrt(abs(np.linalg.det(m[:2, :2])))
    return xy, diam, shapes_key


def image_levels(sdata: Any, image_key: str | None) -> tuple[str, Any, list]:
    """The image element (by key; the only one when ``None``) and its levels, finest first, as dask arrays."""
    import spatialdata as sd

    from aestetik._patches import Level, check_channels

    if image_key is None:
        if len(sdata.images) != 1:
            raise ValueError(f"pass image_key= (one of {list(sdata.images)})")
        image_key = next(iter(sdata.images))
    if image_key not in sdata.images:
        raise KeyError(f"image_key {image_key!r} not in the SpatialData images {list(sdata.images)}")
    element = sdata.images[image_key]
    try:
        n = len(list(element.children))
    except AttributeError:
        n = 1
    arrays = [sd.get_pyramid_levels(element, n=i) for i in range(n)] if n > 1 else [_single(element)]
    finest = arrays[0]
    levels = []
    for arr in arrays:
        dims = list(arr.dims)
        levels.append(Level(arr.data, dims.index("c"), finest.sizes["y"] / arr.sizes["y"]))
    check_channels(levels[0].n_channels, f"the image {image_key!r}")
    return image_key, element, levels


def _single(element: Any) -> Any:
    if hasattr(element, "children") and element.children:  # a one-level DataTree
        node = next(iter(element.children.values()))
        return next(iter(node.ds.data_vars.values()))
    return element


def table_coordinates(data: Any, table: AnnData, spatial_key: str | None) -> np.ndarray:
    """Spot coordinates ``(N, 2)``: ``table.obsm[spatial_key]``, else (SpatialData) the centres of the spots' shapes."""
    key = spatial_key or "spatial"
    if key in table.obsm:
        xy = np.asarray(table.obsm[key], dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] < 2:
            raise ValueError(f"obsm[{key!r}] must be (n_obs, 2) coordinates, got shape {xy.shape}")
        return xy[:, :2]
    if is_spatialdata(data) and key == "spatial":
        return shape_centres(data, table, None)[0]
    raise KeyError(f"spatial_key {key!r} not found in obsm (available: {list(table.obsm.keys())})")
