"""Callbacks used behind :func:`aestetik.tl.embed`."""

from __future__ import annotations

import copy

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

__all__ = ["BestWeights", "LossHistory"]


class LossHistory(Callback):
    """Record the epoch means of every logged ``train_*`` and ``val_*`` metric."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}

    def _record(self, trainer: L.Trainer, prefix: str) -> None:
        for name, value in trainer.callback_metrics.items():
            if name.startswith(prefix):
                self.history.setdefault(name, []).append(float(value))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, "train_")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, "val_")


class BestWeights(Callback):
    """Keep an in-memory copy of the weights with the lowest ``monitor`` and restore it when training ends.

    A checkpoint of the best model that writes no files; pass Lightning's
    ``ModelCheckpoint`` through ``trainer_kwargs`` to get one on disk.
    """

    def __init__(self, monitor: str = "val_loss") -> None:
        super().__init__()
        self.monitor = monitor
        self.best_score: float = float("inf")
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        if score < self.best_score:
            self.best_score = score
            self.best_epoch = trainer.current_epoch
            self._state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._state is not None:
            pl_module.load_state_dict(copy.deepcopy(self._state))
