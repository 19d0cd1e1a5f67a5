from __future__ import annotations

import numpy as np
import pytest
import torch

from aestetik.nn import NeighbourhoodGrid, _grid, fill_missing_with_median, neighbour_index


def slow_index(rows, cols, samples, w):
    """Obviously correct: scan every offset of every spot with a dict lookup."""
    where = {(s, r, c): i for i, (r, c, s) in enumerate(zip(rows, cols, samples, strict=True))}
    h = w // 2
    out = np.full((len(rows), w * w), -1)
    for i, (r, c, s) in enumerate(zip(rows, cols, samples, strict=True)):
        for a in range(w):
            for b in range(w):
                out[i, a * w + b] = where.get((s, r + a - h, c + b - h), -1)
    return out


def random_lattice(rng, n_samples=3, hexagonal=True, size=14, keep=0.7):
    rows, cols, samples = [], [], []
    for s in range(n_samples):
        r, c = np.meshgrid(np.arange(size), np.arange(2 * size), indexing="ij")
        r, c = r.ravel(), c.ravel()
        if hexagonal:  # Visium: array_row + array_col even
            m = (r + c) % 2 == 0
            r, c = r[m], c[m]
        m = rng.random(len(r)) < keep  # holes and ragged tissue edges
        shift = rng.integers(-5, 5)
        rows.append(r[m] + shift)
        cols.append(c[m] - shift)
        samples.append(np.full(m.sum(), s))
    perm = rng.permutation(sum(len(x) for x in rows))
    return (np.concatenate(rows)[perm], np.concatenate(cols)[perm], np.concatenate(samples)[perm])


@pytest.mark.parametrize("hexagonal", [True, False])
@pytest.mark.parametrize("w", [3, 5, 7])
@pytest.mark.parametrize("dense", [True, False])
def test_index_matches_slow_construction(hexagonal, w, dense, monkeypatch):
    if not dense:
        monkeypatch.setattr(_grid, "_DENSE_TABLE_MAX", 0)
    rng = np.random.default_rng(w + 10 * hexagonal)
    rows, cols, samples = random_lattice(rng, hexagonal=hexagonal)
    got = neighbour_index(rows, cols, w, samples)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, slow_index(rows, cols, samples, w))
    centre = (w * w) // 2
    np.testing.assert_array_equal(got[:, centre], np.arange(len(rows)))


def test_index_keeps_samples_apart():
    rows = np.array([0, 0, 0, 0])
    cols = np.array([0, 2, 0, 2])
    samples = np.array([0, 0, 1, 1])
    idx = neighbour_index(rows, cols, 5, samples)
    assert set(idx[0][idx[0] >= 0]) == {0, 1}
    assert set(idx[2][idx[2] >= 0]) == {2, 3}


@pytest.mark.parametrize("dense", [True, False])
def test_duplicated_coordinates_raise(dense, monkeypatch):
    if not dense:
        monkeypatch.setattr(_grid, "_DENSE_TABLE_MAX", 0)
    with pytest.raises(ValueError, match="share lattice coordinates"):
        neighbour_index(np.array([0, 1, 1]), np.array([0, 3, 3]), 3, np.array([0, 0, 0]))
    # the same position in two samples is fine
    neighbour_index(np.array([1, 1]), np.array([3, 3]), 3, np.array([0, 1]))


def slow_windows(features, rows, cols, samples, w):
    """The reference construction: NaN for empty offsets, then the per-channel nanmedian."""
    idx = slow_index(rows, cols, samples, w)
    out = np.empty((len(rows), features.shape[1], w, w))
    for i in range(len(rows)):
        g = np.full((w * w, features.shape[1]), np.nan)
        g[idx[i] >= 0] = features[idx[i][idx[i] >= 0]]
        med = np.nanmedian(g, axis=0)
        g = np.where(np.isnan(g), med, g)
        out[i] = g.T.reshape(-1, w, w)
    return out


@pytest.mark.parametrize("w", [3, 7])
def test_windows_match_slow_construction(w):
    rng = np.random.default_rng(0)
    rows, cols, samples = random_lattice(rng, n_samples=2, size=10)
    feats = rng.random((len(rows), 4)).astype(np.float32)
    grid = NeighbourhoodGrid(torch.from_numpy(feats), torch.from_numpy(neighbour_index(rows, cols, w, samples)))
    got = grid(torch.arange(len(rows))).numpy()
    assert got.shape == (len(rows), 4, w, w)
    np.testing.assert_allclose(got, slow_windows(feats, rows, cols, samples, w), rtol=1e-6, atol=1e-6)


def test_median_fill_even_and_odd_counts():
    values = torch.tensor([[[1.0], [5.0], [2.0], [9.0]], [[4.0], [0.0], [0.0], [7.0]]])
    valid = torch.tensor([[True, True, False, False], [True, False, False, True]])
    out = fill_missing_with_median(values, valid)
    assert out[0, 2, 0] == 3.0 and out[0, 3, 0] == 3.0  # median of {1, 5}
    assert out[1, 1, 0] == 5.5  # median of {4, 7}
    assert out[0, 0, 0] == 1.0  # present cells unchanged
