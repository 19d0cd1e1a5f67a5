"""Monte-Carlo dropout inference of the embedding: a plain torch loop in spot order."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ._grid import NeighbourhoodGrid
from ._module import AestetikAutoencoder

__all__ = ["mc_dropout_embedding", "recalibrate_batchnorm"]


@torch.no_grad()
def recalibrate_batchnorm(
    model: AestetikAutoencoder, grid: NeighbourhoodGrid, *, batch_size: int, device: torch.device | str
) -> None:
    """Set the encoder's batch-norm statistics to those of all spots under the final weights.

    The running statistics gathered during training average the last epochs' weights;
    with few optimisation steps per epoch they lag behind the final model. The
    encoder's batch norm comes before dropout, so the population statistics of its
    input are well defined: per channel, the mean and the (unbiased) variance of the
    convolution's outputs at every position of every spot's window, accumulated over
    batches of ``batch_size`` spots as sums and sums of squares (in float64), hence
    exact whatever the batch size. With all spots in one batch this is the batch's
    own statistics, as the reference's inference in train mode.
    """
    enc = model.encoder
    bn = enc.norm
    channels = bn.num_features
    total = torch.zeros(channels, dtype=torch.float64, device=device)
    squares = torch.zeros(channels, dtype=torch.float64, device=device)
    count = 0
    n = grid.index.shape[0]
    for start in range(0, n, batch_size):
        spots = torch.arange(start, min(start + batch_size, n), device=device)
        y = enc.conv(grid(spots)).double()  # (B, C, side, side): what batch norm sees in training
        total += y.sum(dim=(0, 2, 3))
        squares += (y * y).sum(dim=(0, 2, 3))
        count += y.shape[0] * y.shape[2] * y.shape[3]
    mean = total / count
    var = (squares / count - mean * mean).clamp(min=0) * (count / max(count - 1, 1))
    bn.running_mean.copy_(mean.to(bn.running_mean.dtype))
    bn.running_var.copy_(var.to(bn.running_var.dtype))
    bn.num_batches_tracked.add_(1)


@torch.no_grad()
def mc_dropout_embedding(
    model: AestetikAutoencoder,
    grid: NeighbourhoodGrid,
    *,
    n_passes: int,
    batch_size: int = 4096,
    device: torch.device | str = "cpu",
    seed: int = 0,
    recalibrate: bool = True,
    recalibrate_batch_size: int | None = None,
    show_progress_bar: bool = False,
) -> np.ndarray:
    """Average of ``n_passes`` dropout samples of the ensemble encoding of every spot.

    Batch norm uses population statistics of all spots under the final weights
    (:func:`recalibrate_batchnorm`, unless ``recalibrate=False``: then the running
    statistics of training); dropout masks are drawn from a generator seeded with
    ``seed``, so the result does not depend on the inference batch size and is repeatable.

    Returns
    -------
    ``(N, latent_dim)`` float32 array in spot order.
    """
    was_training = model.training
    model.to(device)
    grid.to(device)
    if recalibrate:
        recalibrate_batchnorm(model, grid, batch_size=recalibrate_batch_size or batch_size, device=device)
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    n = grid.index.shape[0]
    out = []
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc="MC-dropout inference", disable=not show_progress_bar, leave=False):
        spots = torch.arange(start, min(start + batch_size, n), device=device)
        out.append(model.encoder.mc_dropout(grid(spots), n_passes, generator=generator).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()
