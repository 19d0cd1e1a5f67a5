"""The AnnData boundary: reading and validating inputs, writing results."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

#: Column pairs accepted as integer lattice coordinates, in order of preference.
LATTICE_KEYS: tuple[tuple[str, str], ...] = (("array_row", "array_col"), ("x_array", "y_array"))


def resolve_lattice_keys(adata: AnnData, coord_keys: Sequence[str] | None) -> tuple[str, str]:
    """The two ``obs`` columns holding the lattice coordinates."""
    if coord_keys is not None:
        keys = tuple(coord_keys)
        if len(keys) != 2:
            raise ValueError(f"coord_keys must name two obs columns, got {coord_keys!r}")
        missing = [k for k in keys if k not in adata.obs]
        if missing:
            raise KeyError(f"Lattice coordinate column(s) {missing} not found in adata.obs")
        return keys  # type: ignore[return-value]
    for keys in LATTICE_KEYS:
        if all(k in adata.obs for k in keys):
            return keys
    raise KeyError(
        "No lattice coordinates in adata.obs: expected integer columns 'array_row'/'array_col' "
        "(Visium) or 'x_array'/'y_array'. For imaging data with continuous coordinates, run "
        "`aestetik.pp.lattice(adata)` first, or pass `coord_keys`."
    )


def lattice_coordinates(
    adata: AnnData, coord_keys: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, str]]:
    """Integer lattice coordinates ``(rows, cols)`` of every spot, validated."""
    keys = resolve_lattice_keys(adata, coord_keys)
    out = []
    for k in keys:
        col = adata.obs[k]
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            raise TypeError(f"adata.obs[{k!r}] must be numeric lattice coordinates, got dtype {col.dtype}")
        v = col.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"adata.obs[{k!r}] has {int((~np.isfinite(v)).sum())} NaN/inf coordinate(s)")
        if np.any(v != np.round(v)):
            raise ValueError(
                f"adata.obs[{k!r}] has non-integer coordinates (e.g. {v[v != np.round(v)][0]}); "
                "map continuous coordinates with `aestetik.pp.lattice` first"
            )
        out.append(v.astype(np.int64))
    return out[0], out[1], keys


def spatial_coordinates(data: object, adata: AnnData, spatial_key: str | None) -> tuple[np.ndarray, str]:
    """Spot positions ``(N, 2)`` for neighbourhoods in space, and where they came from.

    ``obsm[spatial_key]``; by default ``obsm["spatial"]`` (physical positions: on Visium's
    hexagonal lattice the array coordinates are not isotropic), else, for a SpatialData
    object, the centres of the spots' shapes, else the lattice coordinates in ``obs``.
    """
    from aestetik._spatialdata import is_spatialdata, table_coordinates

    if spatial_key is not None:
        if spatial_key not in adata.obsm:
            raise KeyError(f"spatial_key {spatial_key!r} not found in adata.obsm (available: {list(adata.obsm)})")
        return table_coordinates(data, adata, spatial_key), f"obsm[{spatial_key!r}]"
    if "spatial" in adata.obsm:
        return table_coordinates(data, adata, "spatial"), "obsm['spatial']"
    if is_spatialdata(data):
        return table_coordinates(data, adata, None), "the spots' shapes"
    for keys in LATTICE_KEYS:
        if all(k in adata.obs for k in keys):
            return adata.obs[list(keys)].to_numpy(dtype=np.float64), f"obs{list(keys)}"
    raise KeyError(
        "No spatial coordinates: no obsm['spatial'] and no array_row/array_col in obs "
        "(for imaging data, run aestetik.pp.lattice first)"
    )


def library_ids(adata: AnnData, library_key: str) -> np.ndarray:
    """Every spot's sample (library) id as a string, from ``obs[library_key]``, checked."""
    if library_key not in adata.obs:
        raise KeyError(f"library_key {library_key!r} not found in adata.obs")
    col = adata.obs[library_key]
    if col.isna().any():
        raise ValueError(f"adata.obs[{library_key!r}] has missing sample labels")
    return col.astype(str).to_numpy()


def sample_codes(adata: AnnData, library_key: str | None) -> np.ndarray:
    """Integer code of every spot's sample (all zero without ``library_key``)."""
    if library_key is None:
        return np.zeros(adata.n_obs, dtype=np.int64)
    library_ids(adata, library_key)  # checks
    return pd.Categorical(adata.obs[library_key]).codes.astype(np.int64)


#: The function that writes each default ``obsm`` key, named in the error when the key is missing.
PRODUCED_BY = {
    "X_pca_transcriptomics": "aestetik.pp.transcriptomics",
    "X_pca_morphology": "aestetik.pp.morphology",
    "X_aestetik": "aestetik.tl.embed",
}


def obsm_features(adata: AnnData, key: str, *, what: str = "features") -> np.ndarray:
    """``adata.obsm[key]`` as a finite float32 2-D array."""
    if key not in adata.obsm:
        hint = f"; run {PRODUCED_BY[key]}(adata) first" if key in PRODUCED_BY else ""
        raise KeyError(f"{what} key {key!r} not found in adata.obsm (available: {list(adata.obsm.keys())}){hint}")
    x = adata.obsm[key]
    if hasattr(x, "toarray"):
        x = x.toarray()
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != adata.n_obs:
        raise ValueError(f"adata.obsm[{key!r}] must be a 2-D (n_obs, d) array, got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"adata.obsm[{key!r}] must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"adata.obsm[{key!r}] has {int(bad.sum())} NaN/inf value(s) in {int(bad.any(1).sum())} spot(s)"
        )
    return x


def standardise_per_group(
    x: np.ndarray, groups: np.ndarray, *, ddof: int = 0, max_value: float | None = None
) -> np.ndarray:
    """Centre every column and scale it to unit variance within each group (e.g. each slide).

    A constant column keeps scale 1; a group of at most ``ddof`` rows is only centred;
    ``max_value`` clips the result at ``+-max_value``. Float64 inside, float32 out.
    """
    out = np.empty(x.shape, dtype=np.float32)
    for g in np.unique(groups):
        rows = groups == g
        xg = np.asarray(x[rows], dtype=np.float64)
        std = xg.std(axis=0, ddof=ddof) if rows.sum() > ddof else np.ones(xg.shape[1])
        std[std == 0] = 1.0
        z = (xg - xg.mean(axis=0)) / std
        out[rows] = z if max_value is None else np.clip(z, -max_value, max_value)
    return out


def check_int(name: str, value: object, *, minimum: int) -> int:
    """An integer option ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def state_id(state: dict) -> str:
    """A short fingerprint of a fitted preprocessing state (its arrays and settings)."""
    import hashlib

    h = hashlib.sha1()
    for name in sorted(state):
        if name == "id":
            continue
        value = state[name]
        h.update(name.encode())
        h.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
    return h.hexdigest()[:16]


def reference_state(reference: object, key: str, *, produced_by: str) -> tuple[dict, dict]:
    """``(state, params)`` fitted under ``uns[key]`` of a reference AnnData, or held by a model."""
    from aestetik._spatialdata import check_data

    if hasattr(reference, "preprocessing_state"):  # an AESTETIK model
        return reference.preprocessing_state(key)
    table = check_data(reference, None)
    entry = table.uns.get(key)
    if not isinstance(entry, dict) or "state" not in entry:
        raise KeyError(
            f"the reference has no fitted state in uns[{key!r}]: run {produced_by}(reference) first "
            "(with the same key_added)"
        )
    return dict(entry["state"]), dict(entry.get("params", {}))
