"""Monte-Carlo dropout inference (METHOD step 9): a plain torch loop in spot order."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ._grid import NeighbourhoodGrid
from ._module import AestetikAutoencoder

__all__ = ["mc_dropout_embedding"]


@torch.no_grad()
def mc_dropout_embedding(
    model: AestetikAutoencoder,
    grid: NeighbourhoodGrid,
    *,
    n_passes: int,
    batch_size: int = 4096,
    device: torch.device | str = "cpu",
    seed: int = 0,
    show_progress_bar: bool = False,
) -> np.ndarray:
    """Average of ``n_passes`` dropout samples of the ensemble encoding of every spot.

    Batch norm uses its running statistics (the model is in ``eval`` mode); dropout
    masks are drawn from a generator seeded with ``seed``, so the result does not
    depend on the batch size's effect on batch statistics and is repeatable.

    Returns
    -------
    ``(N, latent_dim)`` float32 array in spot order.
    """
    was_training = model.training
    model.eval()
    model.to(device)
    grid.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    n = grid.index.shape[0]
    out = []
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc="MC-dropout inference", disable=not show_progress_bar, leave=False):
        spots = torch.arange(start, min(start + batch_size, n), device=device)
        out.append(model.encoder.mc_dropout(grid(spots), n_passes, generator=generator).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()
