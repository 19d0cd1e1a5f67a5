"""Neighbourhood windows of every spot, assembled per batch from a neighbour-index table.

A spot's input to the autoencoder is a ``(C, w, w)`` window of the features of
the spots at integer offsets of its lattice coordinates. Storing those windows
for every spot costs ``O(N * C * w^2)`` floats; here we store a neighbour-index
table of ``O(N * w^2)`` integers once and gather the windows batch by batch on
the training device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["NeighbourhoodGrid", "fill_missing_with_median", "neighbour_index"]

#: Largest dense lookup table (entries) used before falling back to a sorted search.
_DENSE_TABLE_MAX = 1 << 24
#: Spots processed at once when building the index, to bound peak memory.
_CHUNK = 1 << 18


def neighbour_index(
    rows: np.ndarray,
    cols: np.ndarray,
    window_size: int,
    samples: np.ndarray | None = None,
) -> np.ndarray:
    """Index of the spot at every offset of every spot's window.

    Parameters
    ----------
    rows, cols
        Integer lattice coordinates of the spots (e.g. Visium ``array_row``, ``array_col``).
    window_size
        Odd side ``w`` of the window.
    samples
        Integer sample code per spot; neighbours are only looked up within a sample.

    Returns
    -------
    ``(N, w*w)`` ``int32`` array. Entry ``[i, a*w + b]`` is the index of the spot at
    ``(rows[i] + a - w//2, cols[i] + b - w//2)`` in the same sample, or ``-1`` where
    there is none. The centre entry is always ``i``.

    Raises
    ------
    ValueError
        If two spots of one sample share a coordinate.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    n = rows.shape[0]
    if samples is None:
        samples = np.zeros(n, dtype=np.int64)
    samples = np.asarray(samples, dtype=np.int64)
    half = window_size // 2
    if n == 0:
        return np.empty((0, window_size * window_size), dtype=np.int32)

    # Shift coordinates so that every window stays inside a padded box; a key
    # offset then never wraps into another row or another sample.
    r = rows - rows.min() + half
    c = cols - cols.min() + half
    height = int(r.max()) + half + 1
    width = int(c.max()) + half + 1
    n_samples = int(samples.max()) + 1
    if n_samples * height * width >= 2**62:
        raise ValueError("Lattice coordinates span too large a range; map them onto a lattice first.")
    key = (samples * height + r) * width + c

    d = np.arange(-half, half + 1, dtype=np.int64)
    offsets = (d[:, None] * width + d[None, :]).ravel()  # row offset outer, column offset inner

    table_size = n_samples * height * width
    out = np.empty((n, window_size * window_size), dtype=np.int32)
    if table_size <= max(_DENSE_TABLE_MAX, 8 * n):
        table = np.full(table_size, -1, dtype=np.int32)
        table[key] = np.arange(n, dtype=np.int32)
        if np.count_nonzero(table >= 0) != n:
            _raise_duplicates(key, rows, cols, samples)
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            out[start:stop] = table[key[start:stop, None] + offsets[None, :]]
        return out

    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    if np.any(sorted_key[1:] == sorted_key[:-1]):
        _raise_duplicates(key, rows, cols, samples)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        wanted = key[start:stop, None] + offsets[None, :]
        pos = np.searchsorted(sorted_key, wanted).clip(max=n - 1)
        found = sorted_key[pos] == wanted
        out[start:stop] = np.where(found, order[pos], -1)
    return out


def _raise_duplicates(key: np.ndarray, rows: np.ndarray, cols: np.ndarray, samples: np.ndarray) -> None:
    uniq, first, counts = np.unique(key, return_index=True, return_counts=True)
    dup = first[counts > 1]
    i = int(dup[0])
    raise ValueError(
        f"{int(counts[counts > 1].sum())} spots share lattice coordinates with another spot of the same sample "
        f"(first: row={int(rows[i])}, col={int(cols[i])}, sample code {int(samples[i])}). "
        "Each spot needs its own lattice position; for imaging data use `aestetik.pp.lattice`."
    )


def fill_missing_with_median(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Replace missing window cells by the per-channel median of the present ones.

    Parameters
    ----------
    values
        ``(B, K, C)`` features of the ``K = w*w`` cells of ``B`` windows.
    valid
        ``(B, K)`` boolean mask of the cells that hold a spot (at least one per window).

    Returns
    -------
    ``(B, K, C)`` tensor. The median of an even number of values is the mean of the
    two middle ones, as :func:`numpy.nanmedian`.
    """
    b, k, c = values.shape
    inf = torch.tensor(float("inf"), dtype=values.dtype, device=values.device)
    ordered = torch.where(valid[..., None], values, inf).sort(dim=1).values
    count = valid.sum(dim=1)  # (B,)
    lo = ((count - 1) // 2).view(b, 1, 1).expand(b, 1, c)
    hi = (count // 2).view(b, 1, 1).expand(b, 1, c)
    median = 0.5 * (ordered.gather(1, lo) + ordered.gather(1, hi))
    return torch.where(valid[..., None], values, median)


class NeighbourhoodGrid(nn.Module):
    """Assemble ``(B, C, w, w)`` windows from a feature matrix and a neighbour index.

    Both are kept as non-persistent buffers, so they follow the module to the
    training device and never enter a checkpoint.

    Parameters
    ----------
    features
        ``(N, C)`` features, already scaled to ``[0, 1]`` per channel.
    index
        ``(N, w*w)`` table from :func:`neighbour_index`.
    """

    def __init__(self, features: torch.Tensor, index: torch.Tensor) -> None:
        super().__init__()
        k = index.shape[1]
        w = int(round(k**0.5))
        if w * w != k:
            raise ValueError(f"index has {k} columns, which is not a square window")
        self.window_size = w
        self.register_buffer("features", features, persistent=False)
        self.register_buffer("index", index, persistent=False)

    @property
    def n_channels(self) -> int:
        return int(self.features.shape[1])

    def forward(self, spots: torch.Tensor) -> torch.Tensor:
        """Windows of the spots with indices ``spots``: ``(B, C, w, w)``."""
        nbr = self.index[spots].long()
        valid = nbr >= 0
        values = self.features[nbr.clamp(min=0)]  # (B, K, C)
        filled = fill_missing_with_median(values, valid)
        b = filled.shape[0]
        return filled.transpose(1, 2).reshape(b, self.n_channels, self.window_size, self.window_size)
