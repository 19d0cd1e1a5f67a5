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


#: Spots farther than this many lattice steps from where their row and column put them are off the lattice.
OFF_LATTICE_STEPS = 0.5
#: Largest share of spots allowed off the lattice before the layout is rejected.
OFF_LATTICE_MAX_FRACTION = 0.01


def check_positions_follow_lattice(
    rows: np.ndarray, cols: np.ndarray, xy: np.ndarray, samples: np.ndarray, keys: Sequence[str], source: str
) -> None:
    """Raise if the spots' positions do not follow their lattice coordinates.

    Within a sample, an instrument's lattice maps to positions by one affine map (a Visium
    slide: rows and columns to pixels; Visium HD: bins to microns). A table that mixes bin
    sizes (8 um and 16 um bins), or several slides without ``library_key``, breaks it: the
    windows would join spots that are not neighbours. Fits the map by least squares per sample
    and rejects the layout when more than ``OFF_LATTICE_MAX_FRACTION`` of the spots lie more than
    ``OFF_LATTICE_STEPS`` lattice steps from it. Linear in the number of spots.
    """
    for s in np.unique(samples):
        idx = np.flatnonzero(samples == s)
        r, c = rows[idx].astype(np.float64), cols[idx].astype(np.float64)
        if len(idx) < 10 or np.ptp(r) == 0 or np.ptp(c) == 0:
            continue  # a line or a handful of spots: no map to check against
        design = np.column_stack([r - r.mean(), c - c.mean(), np.ones(len(idx))])
        coef, *_ = np.linalg.lstsq(design, xy[idx], rcond=None)
        step = min(np.linalg.norm(coef[0]), np.linalg.norm(coef[1]))
        if step == 0:
            continue
        off = np.linalg.norm(xy[idx] - design @ coef, axis=1) > OFF_LATTICE_STEPS * step
        if off.mean() > OFF_LATTICE_MAX_FRACTION:
            where = "" if len(np.unique(samples)) == 1 else f" of sample code {int(s)}"
            raise ValueError(
                f"the positions in {source} do not follow the lattice obs[{keys[0]!r}]/obs[{keys[1]!r}]: "
                f"{int(off.sum())} of {len(idx)} spots{where} ({off.mean():.0%}) lie more than half a lattice "
                "step from where their row and column put them. Mixed bin sizes in one table (e.g. 8 um and "
                "16 um bins) or several slides without `library_key`? Keep one bin size per table, pass "
                "`library_key` for several slides, or map the positions with `aestetik.pp.lattice`."
            )


def lattice_uns_key(key_added: Sequence[str]) -> str:
    """``uns`` key of :func:`aestetik.pp.lattice`'s parameters for the ``obs`` columns ``key_added``."""
    row, col = key_added
    return "aestetik_lattice" if (row, col) == ("array_row", "array_col") else f"aestetik_lattice_{row}_{col}"


def checked_lattice(
    data: object, adata: AnnData, coord_keys: Sequence[str] | None, spatial_key: str | None, samples: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[str, str], tuple[np.ndarray | None, str | None]]:
    """:func:`lattice_coordinates`, checked against the spots' positions where there are any.

    Also returns the positions it read and where they came from (``(None, None)`` when
    unread), so that callers do not read them again. A lattice made by
    :func:`aestetik.pp.lattice` is not checked: it follows the positions by construction, up
    to the cells it displaced.
    """
    rows, cols, keys = lattice_coordinates(adata, coord_keys)
    xy, source = None, None
    if lattice_uns_key(keys) not in adata.uns:
        xy, source = spatial_coordinates(data, adata, spatial_key, fallback_to_lattice=False)
        if xy is not None:
            check_positions_follow_lattice(rows, cols, xy, samples, keys, source)
    return rows, cols, keys, (xy, source)


def spatial_coordinates(
    data: object, adata: AnnData, spatial_key: str | None, *, fallback_to_lattice: bool = True
) -> tuple[np.ndarray | None, str | None]:
    """Spot positions ``(N, 2)`` for neighbourhoods in space, and where they came from.

    ``obsm[spatial_key]``; by default ``obsm["spatial"]`` (physical positions: on Visium's
    hexagonal lattice the array coordinates are not isotropic), else, for a SpatialData
    object, the centres of the spots' shapes, else the lattice coordinates in ``obs``
    (``(None, None)`` instead with ``fallback_to_lattice=False``).
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
    if not fallback_to_lattice:
        return None, None
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
