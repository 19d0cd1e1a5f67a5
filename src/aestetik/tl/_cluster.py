"""``tl.cluster``: spatial domains from an embedding (the AnnData side; the algorithms are in ``_clustering``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from aestetik import _logging as logger
from aestetik._clustering import assign_clusters, check_method, check_mixture_init, fit_clusters, refine_labels
from aestetik._docs import doc_copy, doc_table_key, inject_docs
from aestetik._spatialdata import check_data, copy_data
from aestetik._utils import check_int, obsm_features, sample_codes, spatial_coordinates

if TYPE_CHECKING:
    from spatialdata import SpatialData


@inject_docs(doc_table_key=doc_table_key, doc_copy=doc_copy)
def cluster(
    adata: AnnData | SpatialData,
    n_clusters: int = 7,
    *,
    method: str = "bgm",
    mixture_init: str = "kmeans",
    refine: bool = True,
    n_neighbors: int = 10,
    min_proba: float = 0.9,
    use_rep: str = "X_aestetik",
    library_key: str | None = None,
    spatial_key: str | None = None,
    resolution: float | None = None,
    max_spots: int | None = 100_000,
    key_added: str = "aestetik_clusters",
    reference: AnnData | None = None,
    random_state: int = 0,
    table_key: str | None = None,
    copy: bool = False,
) -> AnnData | SpatialData | None:
    """Spatial domains from an embedding.

    Clusters ``obsm[use_rep]`` into ``n_clusters`` domains and, with ``refine``,
    relabels every spot by a vote of its ``n_neighbors`` nearest spots within its
    sample, trained on the spots whose cluster probability exceeds ``min_proba``
    (all spots for methods without probabilities).

    With ``reference`` (a slide clustered before, whose embedding came from the same
    model), nothing is fitted: every spot goes to the reference's domain it is most
    probable under (``bgm``) or nearest to (the other methods' cluster centres), so the
    labels mean the same thing on both slides; the refinement then runs on this slide.

    Parameters
    ----------
    adata
        Annotated data with an embedding in ``obsm[use_rep]``.
    n_clusters
        Number of domains.
    method
        ``"bgm"`` (Bayesian Gaussian mixture, tied covariance), ``"kmeans"``, ``"leiden"``
        or ``"louvain"`` (resolution searched until ``n_clusters`` are found, unless ``resolution``).
    mixture_init
        Starts of the ``"bgm"`` mixture's 10 restarts: ``"kmeans"`` (from k-means solutions)
        or ``"random"`` (random responsibilities, the published method). Random starts
        let components merge or die depending on the seed; k-means starts give the same
        domains from seed to seed far more often (see "The parameters that matter").
    refine
        Apply the spatial kNN refinement.
    n_neighbors
        Neighbours of the refinement vote.
    min_proba
        Confidence needed to take part in the vote (``bgm`` only).
    use_rep
        ``obsm`` key to cluster, e.g. ``"X_aestetik"`` or ``"X_pca_transcriptomics"``.
    library_key
        ``obs`` column of the sample; refinement stays within a sample.
    spatial_key
        ``obsm`` key of the coordinates for refinement; default ``obsm["spatial"]`` (physical
        positions: on Visium's hexagonal lattice the array coordinates are not isotropic),
        else (SpatialData) the centres of the spots' shapes, else the lattice coordinates
        (``array_row``/``array_col``).
    resolution
        Fixed resolution for ``leiden``/``louvain``.
    max_spots
        Fit the clusters on at most this many spots, drawn with ``random_state``, and assign
        every spot to them (as a ``reference`` does), so that the fit does not grow with
        the slide; ``None`` fits on all spots. Measured cost: "The parameters that matter".
    key_added
        ``obs`` column of the domains; the probability goes to ``obs[f"{key_added}_proba"]``
        (``bgm``) and the parameters to ``uns[key_added]``, with the fitted clusters (``model``).
    reference
        An AnnData (for SpatialData: its table) clustered by this function with the same
        ``key_added``: assign the spots to its domains instead of clustering anew
        (``n_clusters``, ``method`` and ``mixture_init`` then come from the reference).
    random_state
        Seed.
    {doc_table_key}
    {doc_copy}

    Returns
    -------
    ``None`` or the copy.

    Examples
    --------
    >>> import aestetik as ae
    >>> from sklearn.metrics import adjusted_rand_score
    >>> adata = ae.datasets.synthetic(n_spots=300, n_domains=3)
    >>> ae.pp.transcriptomics(adata)
    >>> ae.tl.cluster(adata, 3, use_rep="X_pca_transcriptomics")
    >>> adata.obs["aestetik_clusters"].cat.categories.size
    3
    >>> adjusted_rand_score(adata.obs["ground_truth"], adata.obs["aestetik_clusters"]) > 0.8
    True
    """
    data, adata = adata, check_data(adata, table_key)
    check_method(method)
    check_mixture_init(mixture_init)
    x = obsm_features(adata, use_rep, what="use_rep")
    n_clusters = check_int("n_clusters", n_clusters, minimum=2)
    if n_clusters > adata.n_obs:
        raise ValueError(f"n_clusters={n_clusters} is larger than the number of spots ({adata.n_obs})")
    n_neighbors = check_int("n_neighbors", n_neighbors, minimum=1)
    if max_spots is not None:
        check_int("max_spots", max_spots, minimum=n_clusters)
    samples = sample_codes(adata, library_key)
    coords, coord_source = spatial_coordinates(data, adata, spatial_key) if refine else (None, None)

    if reference is None:
        labels, proba, info = fit_clusters(
            x,
            n_clusters,
            method=method,
            random_state=random_state,
            resolution=resolution,
            mixture_init=mixture_init,
            max_spots=max_spots,
        )
    else:
        fitted = _reference_clusters(reference, key_added)
        labels, proba = assign_clusters(x, fitted["model"])
        info = {"model": fitted["model"]}
        n_clusters, method, mixture_init = (fitted["params"][k] for k in ("n_clusters", "method", "mixture_init"))
    if refine:
        labels = refine_labels(
            labels, coords, proba=proba, samples=samples, n_neighbors=n_neighbors, min_proba=min_proba
        )

    if copy:
        data, adata = copy_data(data, table_key)
    categories = (
        range(int(np.max(info["model"]["label_of_component"])) + 1) if reference is not None else np.unique(labels)
    )
    adata.obs[key_added] = pd.Categorical(labels.astype(str), categories=[str(i) for i in categories])
    if proba is not None:
        adata.obs[f"{key_added}_proba"] = proba
    adata.uns[key_added] = {
        "params": {
            "n_clusters": n_clusters,
            "method": method,
            "mixture_init": mixture_init,
            "refine": refine,
            "n_neighbors": n_neighbors,
            "min_proba": min_proba,
            "use_rep": use_rep,
            "library_key": library_key,
            "spatial_key": spatial_key,
            "resolution": resolution,
            "max_spots": max_spots,
            "random_state": random_state,
            "reference": reference is not None,
        },
        **({"refinement_coordinates": coord_source} if refine else {}),
        **{k: v for k, v in info.items() if k in ("resolution", "search", "converged", "model", "fitted_on")},
    }
    logger.info("added obs[%r] (%d domains) and uns[%r]", key_added, len(np.unique(labels)), key_added)
    return data if copy else None


def _reference_clusters(reference: Any, key: str) -> dict:
    """``uns[key]`` of a slide clustered before: its fitted clusters and parameters."""
    from aestetik._spatialdata import check_data

    table = check_data(reference, None)
    entry = table.uns.get(key)
    if not isinstance(entry, dict) or "model" not in entry:
        raise KeyError(
            f"the reference has no fitted clusters in uns[{key!r}]: run aestetik.tl.cluster(reference, "
            f"key_added={key!r}) first"
        )
    return entry
