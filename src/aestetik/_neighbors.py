"""Nearest neighbours in space or feature space (numpy only): one k-d tree query, ``O(N log N)``.

Used by the neighbourhood smoothing of the pseudo-labels (``tl.embed``), the spatial
refinement of the domains (``tl.cluster``) and the graph clustering back ends.
"""

from __future__ import annotations

import numpy as np

__all__ = ["knn_indices", "majority_vote", "neighbour_mean"]


def knn_indices(
    x: np.ndarray,
    n_neighbors: int,
    *,
    query: np.ndarray | None = None,
    samples: np.ndarray | None = None,
    query_samples: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the ``n_neighbors`` nearest rows of ``x``, within the same sample.

    Parameters
    ----------
    x
        ``(N, d)`` points searched (coordinates or features).
    n_neighbors
        Neighbours per query point.
    query
        ``(Q, d)`` query points; ``None`` queries ``x`` itself and leaves each point out
        of its own neighbours.
    samples, query_samples
        Integer sample code of every row of ``x`` and of ``query``; neighbours are only
        searched within the query's sample. ``None``: one sample.

    Returns
    -------
    ``(Q, n_neighbors)`` int64 indices into ``x``, nearest first. Where a sample has fewer
    than ``n_neighbors`` candidates, the row is padded with its nearest neighbour (or,
    for a point alone in its sample, with itself), so that means and votes stay defined.
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, dtype=np.float64)
    self_query = query is None
    q = x if self_query else np.asarray(query, dtype=np.float64)
    samples = np.zeros(len(x), dtype=np.int64) if samples is None else np.asarray(samples)
    if self_query:
        query_samples = samples
    elif query_samples is None:
        query_samples = np.zeros(len(q), dtype=np.int64)
    out = np.empty((len(q), n_neighbors), dtype=np.int64)
    for s in np.unique(query_samples):
        rows = np.flatnonzero(query_samples == s)
        cand = np.flatnonzero(samples == s)
        extra = 1 if self_query else 0
        k = min(n_neighbors + extra, len(cand))
        if k - extra < 1:  # no other point in this sample
            out[rows] = rows[:, None] if self_query else -1
            continue
        tree = NearestNeighbors(n_neighbors=k, algorithm="kd_tree" if x.shape[1] <= 16 else "auto").fit(x[cand])
        _, idx = tree.kneighbors(q[rows])
        idx = cand[idx]
        if self_query:
            # drop the point itself (normally the first; with duplicated points any of the ties)
            is_self = idx == rows[:, None]
            keep = ~is_self
            keep[~is_self.any(1), -1] = False
            idx = idx[keep].reshape(len(rows), k - 1)
        if idx.shape[1] < n_neighbors:
            idx = np.concatenate([idx, np.repeat(idx[:, :1], n_neighbors - idx.shape[1], axis=1)], axis=1)
        out[rows] = idx
    return out


def neighbour_mean(x: np.ndarray, neighbors: np.ndarray) -> np.ndarray:
    """Mean of every row of ``x`` with its neighbours' rows (``neighbors`` from :func:`knn_indices`)."""
    x = np.asarray(x)
    out = x.astype(np.float64, copy=True)
    for j in range(neighbors.shape[1]):  # column by column: memory O(N d), not O(N k d)
        out += x[neighbors[:, j]]
    out /= neighbors.shape[1] + 1
    return out.astype(x.dtype, copy=False)


def majority_vote(labels: np.ndarray, neighbors: np.ndarray, n_labels: int | None = None) -> np.ndarray:
    """Most frequent label among each row's neighbours; ties go to the smallest label.

    ``labels`` are integers ``0..n_labels-1`` of the points that ``neighbors`` indexes.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_labels = int(labels.max()) + 1 if n_labels is None else n_labels
    votes = np.zeros((neighbors.shape[0], n_labels), dtype=np.int32)
    rows = np.arange(neighbors.shape[0])
    for j in range(neighbors.shape[1]):  # each row once per column: plain fancy-index increments
        votes[rows, labels[neighbors[:, j]]] += 1
    return votes.argmax(axis=1)
