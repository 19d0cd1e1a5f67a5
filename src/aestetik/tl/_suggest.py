"""``tl.suggest_n_clusters``: a starting point for the number of domains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from anndata import AnnData

from aestetik import _logging as logger
from aestetik._docs import doc_table_key, inject_docs
from aestetik._spatialdata import check_data, copy_data
from aestetik._utils import obsm_features

if TYPE_CHECKING:
    from spatialdata import SpatialData


@inject_docs(doc_table_key=doc_table_key)
def suggest_n_clusters(
    adata: AnnData | SpatialData,
    *,
    use_rep: str = "X_aestetik",
    k_range: Sequence[int] = tuple(range(2, 13)),
    criterion: str = "silhouette",
    max_spots: int = 5000,
    key_added: str = "aestetik_n_clusters",
    random_state: int = 0,
    table_key: str | None = None,
    copy: bool = False,
) -> int | AnnData | SpatialData:
    """Suggest a number of domains from the data.

    For every ``k`` in ``k_range`` a Gaussian mixture with tied covariance (the model
    behind ``method="bgm"``) is fitted to ``obsm[use_rep]``; each ``k`` is scored by its
    BIC (lower is better) and by the silhouette of its clusters (higher is better),
    on at most ``max_spots`` randomly chosen spots.

    Treat the result as a starting point, not an answer. Measured on LIBD DLPFC
    slides with 7 annotated layers (``benchmarks/suggest_k.py``): on the AESTETIK
    embedding the silhouette suggests 6 (151673) and 2 (151674); on the expression
    PCA it suggests 2 on both; BIC keeps falling up to 12 on all four. Layers that
    change gradually make no sharp optimum; look at the score table
    (``uns[key_added]["scores"]``) and at the domains for neighbouring ``k``.

    Parameters
    ----------
    adata
        Annotated data with an embedding (or SpatialData with ``table_key``).
    use_rep
        ``obsm`` key to score, e.g. ``"X_aestetik"`` or ``"X_pca_transcriptomics"``.
    k_range
        Candidate numbers of clusters (each at least 2).
    criterion
        ``"silhouette"`` (the ``k`` with the highest silhouette) or ``"bic"`` (the lowest BIC).
    max_spots
        Subsample for speed.
    key_added
        ``uns`` key of the score table and the parameters.
    random_state
        Seed.
    {doc_table_key}
    copy
        Write into a copy and return it instead of the number.

    Returns
    -------
    The suggested number of clusters, or the copy (``copy=True``). The scores per ``k``
    are in ``uns[key_added]["scores"]``, the number in ``uns[key_added]["suggested"]``.

    Examples
    --------
    >>> import aestetik as ae
    >>> adata = ae.datasets.synthetic(n_spots=300)
    >>> ae.pp.transcriptomics(adata)
    >>> k = ae.tl.suggest_n_clusters(adata, use_rep="X_pca_transcriptomics", k_range=range(2, 8))
    """
    from sklearn.metrics import silhouette_score
    from sklearn.mixture import GaussianMixture

    data, adata = adata, check_data(adata, table_key)
    if criterion not in ("silhouette", "bic"):
        raise ValueError(f"criterion must be 'silhouette' or 'bic', got {criterion!r}")
    ks = sorted({int(k) for k in k_range})
    if not ks or ks[0] < 2:
        raise ValueError(f"k_range must hold numbers >= 2, got {list(k_range)}")
    x = obsm_features(adata, use_rep, what="use_rep").astype(np.float64)
    if ks[-1] >= adata.n_obs:
        raise ValueError(f"k_range goes up to {ks[-1]}, but there are only {adata.n_obs} spots")
    rng = np.random.default_rng(random_state)
    if len(x) > max_spots:
        x = x[rng.choice(len(x), max_spots, replace=False)]
    rows = []
    for k in ks:
        gm = GaussianMixture(k, covariance_type="tied", n_init=3, random_state=random_state).fit(x)
        labels = gm.predict(x)
        sil = silhouette_score(x, labels) if len(np.unique(labels)) > 1 else np.nan
        rows.append({"k": k, "bic": gm.bic(x), "silhouette": sil})
    scores = pd.DataFrame(rows)
    best = int(scores.loc[scores["silhouette"].idxmax() if criterion == "silhouette" else scores["bic"].idxmin(), "k"])
    if copy:
        data, adata = copy_data(data, table_key)
    adata.uns[key_added] = {
        "params": {
            "use_rep": use_rep,
            "k_range": ks,
            "criterion": criterion,
            "max_spots": max_spots,
            "random_state": random_state,
        },
        "scores": {c: scores[c].to_numpy() for c in scores.columns},
        "suggested": best,
    }
    logger.info("suggested %d clusters (%s); scores in uns[%r]", best, criterion, key_added)
    return data if copy else best
