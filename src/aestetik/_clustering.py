"""Clustering back ends shared by the pseudo-labels of ``tl.embed`` and by ``tl.cluster`` (numpy only)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from threadpoolctl import threadpool_limits

from aestetik import _logging as logger
from aestetik._neighbors import knn_indices, majority_vote

ClusterMethod = Literal["bgm", "kmeans", "leiden", "louvain"]
CLUSTER_METHODS: tuple[str, ...] = ("bgm", "kmeans", "leiden", "louvain")
MIXTURE_INITS: tuple[str, ...] = ("kmeans", "random")


def check_method(method: str) -> None:
    """Raise ``ValueError`` for an unknown clustering method."""
    if method not in CLUSTER_METHODS:
        raise ValueError(f"Unknown clustering method {method!r}; choose one of {list(CLUSTER_METHODS)}")


def check_mixture_init(mixture_init: str) -> None:
    """Raise ``ValueError`` for an unknown start of the Gaussian mixture."""
    if mixture_init not in MIXTURE_INITS:
        raise ValueError(f"Unknown mixture_init {mixture_init!r}; choose one of {list(MIXTURE_INITS)}")


def fit_clusters(
    x: np.ndarray,
    n_clusters: int,
    *,
    method: str = "bgm",
    random_state: int = 0,
    resolution: float | None = None,
    n_init: int | None = None,
    mixture_init: str = "kmeans",
    max_spots: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Cluster the rows of ``x``.

    Parameters
    ----------
    x
        ``(N, d)`` data.
    n_clusters
        Number of clusters (for graph methods: the target of the resolution search).
    method
        ``"bgm"``: Bayesian Gaussian mixture, tied covariance, up to 1000 iterations,
        10 restarts; ``"kmeans"``; ``"leiden"``, ``"louvain"`` on a 15-nearest-neighbour graph.
    random_state
        Seed.
    resolution
        Graph methods only: use this resolution instead of searching one that gives ``n_clusters``.
    n_init
        Restarts of ``bgm`` (default 10) or ``kmeans`` (default 10).
    mixture_init
        Starts of ``bgm``: ``"kmeans"`` (responsibilities from a k-means solution) or
        ``"random"`` (random responsibilities, the published method), as scikit-learn's
        ``init_params``.
    max_spots
        Fit on at most this many rows, drawn with ``random_state``, then assign every row
        with :func:`assign_clusters` (``None``: fit on all).

    Returns
    -------
    labels
        ``(N,)`` int labels, renumbered ``0..k-1`` by decreasing cluster size.
    proba
        ``(N,)`` probability of the assigned cluster (``bgm`` only), else ``None``.
    info
        Details worth recording (e.g. the resolution search), and under ``"model"`` what
        :func:`assign_clusters` needs to put new points into these clusters.
    """
    check_method(method)
    check_mixture_init(mixture_init)
    x = np.asarray(x, dtype=np.float64)
    if max_spots is not None and len(x) > max_spots:
        return _fit_on_subsample(x, n_clusters, max_spots, method, random_state, resolution, n_init, mixture_init)
    info: dict = {}
    proba = None
    model: dict = {}
    n_init = 10 if n_init is None else n_init
    if method in ("bgm", "kmeans"):
        # small dense matrices: BLAS threads synchronise more than they compute
        with threadpool_limits(1):
            if method == "bgm":
                labels, proba, info, model = _mixture(x, n_clusters, mixture_init, n_init, random_state)
            else:
                from sklearn.cluster import KMeans

                km = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state).fit(x)
                labels, model = km.labels_, {"kind": "centroids", "centres": km.cluster_centers_}
    else:
        labels, info = _graph_clusters(x, n_clusters, method=method, random_state=random_state, resolution=resolution)
    labels, rank = _renumber(labels)
    if method in ("bgm", "kmeans"):
        n_components = len(model["means"] if method == "bgm" else model["centres"])
        label_of = np.full(n_components, -1, dtype=np.int64)
        label_of[list(rank)] = list(rank.values())
        model["label_of_component"] = label_of
    else:  # graph partitions: the centroid of each cluster
        model = {"kind": "centroids", "centres": np.stack([x[labels == c].mean(0) for c in range(labels.max() + 1)])}
        model["label_of_component"] = np.arange(len(model["centres"]), dtype=np.int64)
    info["model"] = model
    return labels, proba, info


def _fit_on_subsample(x, n_clusters, max_spots, method, random_state, resolution, n_init, mixture_init):
    """:func:`fit_clusters` on ``max_spots`` random rows, every row then assigned to those clusters."""
    rows = np.sort(np.random.default_rng(random_state).choice(len(x), max_spots, replace=False))
    _, _, info = fit_clusters(
        x[rows],
        n_clusters,
        method=method,
        random_state=random_state,
        resolution=resolution,
        n_init=n_init,
        mixture_init=mixture_init,
    )
    labels, proba = assign_clusters(x, info["model"])
    labels, rank = _renumber(labels)  # by size over all rows
    old = info["model"]["label_of_component"]
    info["model"]["label_of_component"] = np.array([rank.get(int(o), -1) for o in old], dtype=np.int64)
    info["fitted_on"] = max_spots
    return labels, proba, info


def assign_clusters(x: np.ndarray, model: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """Put new points into clusters fitted by :func:`fit_clusters` (its ``info["model"]``).

    A mixture assigns each point to its most probable component, as it did the points it
    was fitted on (components that got no point then are left out); k-means and graph
    clusters assign each point to the nearest cluster centre.
    """
    x = np.asarray(x, dtype=np.float64)
    label_of = np.asarray(model["label_of_component"], dtype=np.int64)
    if model["kind"] == "bgm":
        with threadpool_limits(1):
            p = _restore_mixture(model, x.shape[1]).predict_proba(x)
        p = p[:, label_of >= 0]
        best = p.argmax(axis=1)
        return label_of[label_of >= 0][best], p.max(axis=1)
    centres = np.asarray(model["centres"], dtype=np.float64)
    if centres.shape[1] != x.shape[1]:
        raise ValueError(f"the clusters were fitted on {centres.shape[1]} dimensions, the data has {x.shape[1]}")
    # squared distances up to the per-point constant |x|^2: memory (N, K), not (N, K, d)
    d = (centres**2).sum(axis=1)[None, :] - 2.0 * (x @ centres.T)
    return label_of[d.argmin(axis=1)], None


def _restore_mixture(model: dict, n_features: int):
    """The fitted ``BayesianGaussianMixture`` back from its arrays (no pickle)."""
    from sklearn.mixture import BayesianGaussianMixture

    means = np.asarray(model["means"], dtype=np.float64)
    if means.shape[1] != n_features:
        raise ValueError(f"the clusters were fitted on {means.shape[1]} dimensions, the data has {n_features}")
    bgm = BayesianGaussianMixture(n_components=len(means), covariance_type="tied")
    bgm.weight_concentration_ = (
        np.asarray(model["weight_concentration_alpha"], dtype=np.float64),
        np.asarray(model["weight_concentration_beta"], dtype=np.float64),
    )
    bgm.mean_precision_ = np.asarray(model["mean_precision"], dtype=np.float64)
    bgm.means_ = means
    bgm.precisions_cholesky_ = np.asarray(model["precisions_cholesky"], dtype=np.float64)
    bgm.degrees_of_freedom_ = np.asarray(model["degrees_of_freedom"], dtype=np.float64)
    bgm.covariances_ = np.asarray(model["covariances"], dtype=np.float64)
    bgm.n_features_in_ = n_features
    bgm.converged_ = True
    return bgm


def _mixture(x: np.ndarray, n_clusters: int, init: str, n_init: int, random_state: int):
    from sklearn.mixture import BayesianGaussianMixture

    bgm = BayesianGaussianMixture(
        n_components=n_clusters,
        covariance_type="tied",
        init_params=init,
        max_iter=1000,
        n_init=n_init,
        random_state=random_state,
    ).fit(x)
    p = bgm.predict_proba(x)
    model = {
        "kind": "bgm",
        "weight_concentration_alpha": bgm.weight_concentration_[0],
        "weight_concentration_beta": bgm.weight_concentration_[1],
        "mean_precision": bgm.mean_precision_,
        "means": bgm.means_,
        "precisions_cholesky": bgm.precisions_cholesky_,
        "degrees_of_freedom": bgm.degrees_of_freedom_,
        "covariances": bgm.covariances_,
    }
    return p.argmax(axis=1), p.max(axis=1), {"converged": bool(bgm.converged_)}, model


def _renumber(labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Labels ``0..k-1`` by decreasing size (ties by first label), and the new label of every old one.

    The numbering then does not depend on the clustering's internal ids.
    """
    uniq, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.lexsort((uniq, -counts))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64), {int(u): int(r) for u, r in zip(uniq, rank, strict=True)}


def _knn_graph(x: np.ndarray, n_neighbors: int = 15):
    import igraph as ig

    k = min(n_neighbors, len(x) - 1)
    idx = knn_indices(x, k)
    src = np.repeat(np.arange(len(x)), k)
    dst = idx.ravel()
    edges = np.unique(np.sort(np.stack([src, dst], axis=1), axis=1), axis=0)
    return ig.Graph(n=len(x), edges=edges.tolist(), directed=False)


def _graph_partition(graph, method: str, resolution: float, random_state: int) -> np.ndarray:
    import random

    import igraph as ig

    ig.set_random_number_generator(random.Random(random_state))
    try:
        if method == "leiden":
            part = graph.community_leiden(objective_function="modularity", resolution=resolution, n_iterations=-1)
        else:
            part = graph.community_multilevel(resolution=resolution)
    finally:
        ig.set_random_number_generator(random)  # igraph's default: Python's global generator
    return np.asarray(part.membership)


def _graph_clusters(
    x: np.ndarray, n_clusters: int, *, method: str, random_state: int, resolution: float | None
) -> tuple[np.ndarray, dict]:
    graph = _knn_graph(x)
    if resolution is not None:
        labels = _graph_partition(graph, method, resolution, random_state)
        return labels, {"resolution": float(resolution), "n_found": int(labels.max() + 1)}
    # Bisection on the resolution: the number of communities grows with it.
    lo, hi = 0.01, 5.0
    tried: list[tuple[float, int]] = []
    best: tuple[int, float, np.ndarray] | None = None
    for _ in range(30):
        res = 0.5 * (lo + hi)
        labels = _graph_partition(graph, method, res, random_state)
        k = int(labels.max() + 1)
        tried.append((round(res, 5), k))
        if best is None or abs(k - n_clusters) < best[0]:
            best = (abs(k - n_clusters), res, labels)
        if k == n_clusters:
            break
        if k < n_clusters:
            lo = res
        else:
            hi = res
    assert best is not None
    if best[0] != 0:
        raise ValueError(
            f"{method} found no resolution giving {n_clusters} clusters (closest: "
            f"{n_clusters + best[0]} or {n_clusters - best[0]}); pass `resolution` or use method='bgm'"
        )
    search = {"resolution": np.array([r for r, _ in tried]), "n_clusters": np.array([k for _, k in tried])}
    return best[2], {"resolution": float(best[1]), "search": search}


def refine_labels(
    labels: np.ndarray,
    coords: np.ndarray,
    *,
    proba: np.ndarray | None = None,
    samples: np.ndarray | None = None,
    n_neighbors: int = 10,
    min_proba: float = 0.9,
) -> np.ndarray:
    """Spatial refinement by a k-nearest-neighbour vote.

    Within each sample, every spot takes the most frequent label of its ``n_neighbors``
    nearest spots among those whose cluster probability exceeds ``min_proba`` (all
    spots when ``proba`` is ``None``); ties go to the smaller label. A k-d tree finds
    the neighbours, so the cost grows as ``N log N``.
    """
    labels = np.asarray(labels)
    out = labels.copy()
    samples = np.zeros(len(labels), dtype=np.int64) if samples is None else np.asarray(samples)
    for s in np.unique(samples):
        in_sample = np.flatnonzero(samples == s)
        train = in_sample if proba is None else in_sample[proba[in_sample] > min_proba]
        if len(train) < n_neighbors or np.unique(labels[train]).size < 2:
            logger.info("sample %s: too few confident spots for spatial refinement; labels kept", s)
            continue
        classes, train_codes = np.unique(labels[train], return_inverse=True)
        nbrs = knn_indices(coords[train], n_neighbors, query=coords[in_sample])
        out[in_sample] = classes[majority_vote(train_codes, nbrs, len(classes))]
    return out
