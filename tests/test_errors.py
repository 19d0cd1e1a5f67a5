"""Bad input: a clear error before any work, and the AnnData left as it was."""

from __future__ import annotations

import numpy as np
import pytest

import aestetik as ae

from .conftest import FAST


def snapshot(adata):
    return (
        set(adata.obsm),
        set(adata.uns),
        list(adata.obs.columns),
        {k: np.asarray(v).copy() for k, v in adata.obsm.items()},
    )


def assert_untouched(adata, snap):
    keys, uns, obs, arrays = snap
    assert set(adata.obsm) == keys and set(adata.uns) == uns and list(adata.obs.columns) == obs
    for k, v in arrays.items():
        np.testing.assert_array_equal(np.asarray(adata.obsm[k]), v)


def drop_obs(cols):
    def f(a):
        a.obs.drop(columns=cols, inplace=True)

    return f


def set_obs(col, fn):
    def f(a):
        v = a.obs[col].to_numpy().astype(float)
        a.obs[col] = fn(v)

    return f


def set_obsm(key, fn):
    def f(a):
        a.obsm[key] = fn(np.asarray(a.obsm[key]).copy())

    return f


def nan_first(v):
    v[0] = np.nan
    return v


def half_first(v):
    v[0] += 0.5
    return v


def duplicate_first(v):
    v[1] = v[0]
    return v


def coarser_bins_for_every_tenth(a):
    """Every tenth spot given the row/column of a lattice twice as coarse (16 um bins among 8 um ones)."""
    for col in ("array_row", "array_col"):
        v = a.obs[col].to_numpy().copy()
        v[::10] //= 2
        a.obs[col] = v


CASES = {
    "missing expression features": (
        lambda a: a.obsm.pop("X_pca_transcriptomics"),
        {},
        KeyError,
        "X_pca_transcriptomics",
    ),
    "missing coordinates": (drop_obs(["array_row", "array_col"]), {}, KeyError, "array_row"),
    "NaN coordinate": (set_obs("array_row", nan_first), {}, ValueError, "NaN"),
    "non-integer coordinate": (set_obs("array_col", half_first), {}, ValueError, "non-integer"),
    "duplicated coordinates": (
        lambda a: (set_obs("array_row", duplicate_first)(a), set_obs("array_col", duplicate_first)(a)),
        {},
        ValueError,
        "share lattice coordinates",
    ),
    "mixed bin sizes": (coarser_bins_for_every_tenth, {}, ValueError, "do not follow the lattice"),
    "NaN features": (
        set_obsm("X_pca_transcriptomics", lambda x: np.where(np.arange(x.shape[0])[:, None] == 3, np.nan, x)),
        {},
        ValueError,
        "NaN",
    ),
    "inf features": (set_obsm("X_pca_transcriptomics", lambda x: np.where(x > 2, np.inf, x)), {}, ValueError, "inf"),
    "fewer spots than clusters": (None, {"n_clusters": 1000}, ValueError, "n_clusters"),
    "even window": (None, {"window_size": 6}, ValueError, "odd"),
    "too small window": (None, {"window_size": 1}, ValueError, "window_size"),
    "morphology weight above total": (None, {"morphology_weight": 3.5}, ValueError, "morphology_weight"),
    "negative morphology weight": (None, {"morphology_weight": -1.0}, ValueError, "morphology_weight"),
    "morphology weight without features": (None, {"morphology_weight": 1.0}, KeyError, "X_pca_morphology"),
    "unknown clustering method": (None, {"clustering_method": "dbscan"}, ValueError, "dbscan"),
    "unknown library key": (None, {"library_key": "batch"}, KeyError, "batch"),
    "trainer_kwargs not a mapping": (None, {"trainer_kwargs": ["gpu"]}, TypeError, "trainer_kwargs"),
    "n_clusters not an int": (None, {"n_clusters": 2.5}, TypeError, "n_clusters"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_embed_bad_input(adata, case):
    mutate, kwargs, exc, match = CASES[case]
    if mutate is not None:
        mutate(adata)
    snap = snapshot(adata)
    with pytest.raises(exc, match=match):
        ae.tl.embed(adata, **(FAST | kwargs))
    assert_untouched(adata, snap)


def test_transcriptomics_rejects_normalised_data(adata):
    adata.X = adata.X.astype(np.float32) * 0.5
    snap = snapshot(adata)
    with pytest.raises(ValueError, match="raw counts"):
        ae.pp.transcriptomics(adata)
    with pytest.raises(KeyError, match="counts"):
        ae.pp.transcriptomics(adata, layer="counts")
    assert_untouched(adata, snap)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"use_rep": "X_nope"}, KeyError, "X_nope"),
        ({"n_clusters": 1}, ValueError, "n_clusters"),
        ({"n_clusters": 10_000}, ValueError, "n_clusters"),
        ({"method": "hdbscan"}, ValueError, "hdbscan"),
    ],
)
def test_cluster_bad_input(adata, kwargs, exc, match):
    snap = snapshot(adata)
    with pytest.raises(exc, match=match):
        ae.tl.cluster(adata, **({"use_rep": "X_pca_transcriptomics", "n_clusters": 3} | kwargs))
    assert_untouched(adata, snap)


@pytest.mark.parametrize(
    ("call", "step"),
    [
        (lambda a: ae.tl.embed(a, n_clusters=3), "aestetik.pp.transcriptomics"),
        (lambda a: ae.tl.cluster(a, 3), "aestetik.tl.embed"),
        (lambda a: ae.tl.embed(a, n_clusters=3, expression_key="X_custom"), None),
    ],
)
def test_missing_features_name_the_step_to_run(call, step):
    adata = ae.datasets.synthetic(n_spots=50)
    with pytest.raises(KeyError) as err:
        call(adata)
    assert (f"run {step}(adata) first" in str(err.value)) if step else ("first" not in str(err.value))


def test_empty_anndata_says_so():
    import anndata as ad

    for call in (lambda a: ae.pp.transcriptomics(a), lambda a: ae.tl.embed(a, n_clusters=3)):
        with pytest.raises(ValueError, match="empty"):
            call(ad.AnnData(np.zeros((0, 5), dtype=np.float32)))
