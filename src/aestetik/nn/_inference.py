"""Monte-Carlo dropout inference (METHOD step 9): a plain torch loop in spot order."""

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
    encoder's batch norm comes before dropout, so its population statistics are
    exact: the mean of the batch means and variances over all spots (one batch
    for up to ``batch_size`` spots, as the reference's inference in train mode).
    """
    bn = model.encoder.norm
    was_training, momentum = bn.training, bn.momentum
    bn.reset_running_stats()
    bn.momentum = None  # cumulative average over the batches
    bn.train()
    n = grid.index.shape[0]
    for start in range(0, n, batch_size):
        spots = torch.arange(start, min(start + batch_size, n), device=device)
        model.encoder.pre_dropout(grid(spots))
    bn.momentum = momentum
    bn.train(was_training)


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
