"""LightningDataModule: batches of spot indices, turned into windows on the training device."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ._grid import NeighbourhoodGrid

__all__ = ["AestetikDataModule"]


class _SpotIndices(Dataset):
    """A dataset of spot indices, fetched a whole batch at a time."""

    def __init__(self, spots: np.ndarray) -> None:
        self.spots = torch.as_tensor(spots, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.spots)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.spots[i]

    def __getitems__(self, idx: Sequence[int]) -> torch.Tensor:
        return self.spots[torch.as_tensor(idx, dtype=torch.long)]


def _as_batch(x: torch.Tensor) -> torch.Tensor:
    return x


class AestetikDataModule(L.LightningDataModule):
    """Serve spot-index batches; assemble ``(windows, labels)`` after the transfer to the device.

    Parameters
    ----------
    features
        ``(N, C)`` float32 features in ``[0, 1]``.
    index
        ``(N, w*w)`` neighbour table from :func:`~aestetik.nn.neighbour_index`.
    labels
        ``(N, 2)`` integer pseudo-labels (expression, morphology).
    batch_size
        Spots per batch.
    validation_fraction
        Share of spots held out for validation (``0`` for none).
    seed
        Seed of the train/validation split.
    num_workers
        DataLoader workers (the batches are index lists; ``0`` is the fast choice).
    """

    def __init__(
        self,
        features: np.ndarray,
        index: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        validation_fraction: float = 0.0,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.grid = NeighbourhoodGrid(
            torch.as_tensor(np.ascontiguousarray(features), dtype=torch.float32),
            torch.as_tensor(np.ascontiguousarray(index), dtype=torch.int32),
        )
        self.labels = torch.as_tensor(np.ascontiguousarray(labels), dtype=torch.long)
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.num_workers = num_workers
        n = len(self.labels)
        n_val = int(round(n * validation_fraction))
        if validation_fraction > 0 and not 0 < n_val < n:
            raise ValueError(f"validation_fraction={validation_fraction} leaves an empty train or validation set")
        perm = np.random.default_rng(seed).permutation(n)
        self.val_spots = np.sort(perm[:n_val])
        self.train_spots = np.sort(perm[n_val:])

    def _loader(self, spots: np.ndarray, shuffle: bool) -> DataLoader:
        return DataLoader(
            _SpotIndices(spots),
            batch_size=min(self.batch_size, len(spots)),
            shuffle=shuffle,
            collate_fn=_as_batch,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_spots, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_spots, shuffle=False) if len(self.val_spots) else []

    def on_after_batch_transfer(self, batch: torch.Tensor, dataloader_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.grid.index.device != batch.device:
            self.grid.to(batch.device)
            self.labels = self.labels.to(batch.device)
        return self.grid(batch), self.labels[batch]
