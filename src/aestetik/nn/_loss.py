"""The multi-triplet loss, with positives and negatives drawn inside the batch, vectorised."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["multi_triplet_loss", "sample_triplets"]


def sample_triplets(
    labels: torch.Tensor,
    n_clusters: int,
    *,
    n_repeats: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw positives and negatives for every anchor of a batch, from the batch itself.

    For an anchor of cluster ``k`` (out of ``K`` pseudo-label clusters) we draw
    ``(K - 1) * n_repeats`` positives uniformly, with replacement, among the *other*
    batch members of cluster ``k`` (never the anchor itself, whose distance to itself
    is 0) and ``n_repeats`` negatives from each other cluster, as the reference does
    from the whole data set.

    Parameters
    ----------
    labels
        ``(B,)`` integer pseudo-labels in ``[0, n_clusters)``.
    n_clusters
        ``K``.
    n_repeats
        ``r``.
    generator
        Random generator on the labels' device.

    Returns
    -------
    ``positives``, ``negatives`` (both ``(B, (K-1)*r)`` batch positions) and a
    ``(B, (K-1)*r)`` boolean mask of the usable triplets (a negative cluster that
    is absent from the batch, or an anchor alone in its cluster, yields none).
    """
    device = labels.device
    b = labels.shape[0]
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=n_clusters)
    starts = torch.cumsum(counts, 0) - counts

    def draw(cluster: torch.Tensor) -> torch.Tensor:
        u = torch.rand(cluster.shape, device=device, generator=generator)
        n = counts[cluster]
        pick = (u * n).long().clamp(max=(n - 1).clamp(min=0))
        # an empty cluster (masked out below) may start past the end of the batch
        return order[(starts[cluster] + pick).clamp(max=b - 1)]

    s = (n_clusters - 1) * n_repeats
    # positives: one of the n_k - 1 other members of the anchor's cluster, skipping the anchor's own place
    place = torch.empty_like(order)
    place[order] = torch.arange(b, device=device)
    place = place - starts[labels]  # the anchor's place within its cluster, in sorted order
    others_same = (counts[labels] - 1)[:, None]
    u = torch.rand((b, s), device=device, generator=generator)
    pick = (u * others_same).long().clamp(max=(others_same - 1).clamp(min=0))
    pick = pick + (pick >= place[:, None]).long()
    pos = order[(starts[labels][:, None] + pick).clamp(max=b - 1)]
    others = torch.arange(n_clusters, device=device).expand(b, n_clusters)
    others = others[others != labels[:, None]].reshape(b, n_clusters - 1)  # the K-1 other clusters per anchor
    neg_cluster = others.repeat_interleave(n_repeats, dim=1)
    neg = draw(neg_cluster)
    usable = (counts[neg_cluster] > 0) & (others_same > 0)
    return pos, neg, usable


def multi_triplet_loss(
    z: torch.Tensor,
    labels: torch.Tensor,
    n_clusters: int,
    *,
    n_repeats: int = 1,
    margin: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean triplet margin loss (L2) of every anchor against sampled positives and negatives.

    ``z`` holds the batch's encodings; positives and negatives are other rows of ``z``.
    """
    if n_clusters < 2:
        return z.new_zeros(())
    pos, neg, usable = sample_triplets(labels, n_clusters, n_repeats=n_repeats, generator=generator)
    anchor = z[:, None, :].expand(-1, pos.shape[1], -1)
    d_pos = F.pairwise_distance(anchor, z[pos], p=2.0, eps=1e-6)
    d_neg = F.pairwise_distance(anchor, z[neg], p=2.0, eps=1e-6)
    loss = (d_pos - d_neg + margin).clamp(min=0)
    usable = usable.to(loss.dtype)
    return (loss * usable).sum() / usable.sum().clamp(min=1.0)
