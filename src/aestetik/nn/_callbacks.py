"""Callbacks used behind :func:`aestetik.tl.embed`."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from ._inference import mc_dropout_embedding

__all__ = ["BestWeights", "LossHistory", "PseudoLabelUpdate"]


class LossHistory(Callback):
    """Record the epoch means of every logged ``train_*`` and ``val_*`` metric.

    Strategies that train in other processes and bring only the weights back (``ddp_spawn``,
    ``ddp_notebook``) also bring back ``trainer.callback_metrics``: the history travels there
    (``history/<name>``) and :meth:`recover` reads it in the main process.
    """

    PREFIX = "history/"

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

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name, values in self.history.items():
            trainer.callback_metrics[self.PREFIX + name] = torch.tensor(values, dtype=torch.float64)

    def recover(self, trainer: L.Trainer) -> None:
        """Take the history from ``trainer.callback_metrics`` when the training ran in other processes."""
        if self.history:
            return
        for name, value in trainer.callback_metrics.items():
            if name.startswith(self.PREFIX):
                self.history[name.removeprefix(self.PREFIX)] = [float(v) for v in value.reshape(-1)]


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


class PseudoLabelUpdate(Callback):
    """Self-training: re-estimate the pseudo-labels from the current embedding at given epochs.

    At the end of each epoch in ``epochs`` (1-based: ``10`` means after ten epochs),
    every spot is encoded (``n_passes`` Monte-Carlo dropout passes), ``relabel`` maps
    the ``(N, latent)`` embedding to ``N`` integer labels in ``[0, K)``, and those labels
    replace the pseudo-labels of the modalities in ``columns`` for the remaining epochs.

    Parameters
    ----------
    epochs
        When to update.
    relabel
        ``embedding -> labels``; runs on the CPU (e.g. a mixture model).
    columns
        Label columns of the data module to replace (0 expression, 1 morphology).
    n_passes, seed
        Monte-Carlo dropout passes and seed for the intermediate embedding.
    """

    def __init__(
        self,
        epochs: Sequence[int],
        relabel: Callable[[np.ndarray], np.ndarray],
        *,
        columns: Sequence[int] = (0,),
        n_passes: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.epochs = {int(e) for e in epochs}
        self.relabel = relabel
        self.columns = list(columns)
        self.n_passes = n_passes
        self.seed = seed
        self.updated_at: list[int] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch not in self.epochs:
            return
        dm = trainer.datamodule
        embedding = mc_dropout_embedding(
            pl_module.model,
            dm.grid,
            n_passes=self.n_passes,
            batch_size=min(dm.batch_size, 4096),
            recalibrate_batch_size=dm.batch_size,
            device=pl_module.device,
            seed=self.seed + epoch,
        )
        new = torch.as_tensor(np.asarray(self.relabel(embedding)), dtype=torch.long, device=dm.labels.device)
        for c in self.columns:
            dm.labels[:, c] = new
        self.updated_at.append(epoch)
