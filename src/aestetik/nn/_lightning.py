"""LightningModule: the autoencoder, its weighted reconstruction + multi-triplet loss and the optimiser."""

from __future__ import annotations

import lightning as L
import torch
from torch.nn import functional as F

from ._loss import multi_triplet_loss
from ._module import AestetikAutoencoder

__all__ = ["LOSS_TERMS", "AestetikModule"]

#: Names of the logged loss terms: the total, then reconstruction and triplet terms per modality.
LOSS_TERMS = ("loss", "rec_expression", "triplet_expression", "rec_morphology", "triplet_morphology")


class AestetikModule(L.LightningModule):
    """Train :class:`~aestetik.nn.AestetikAutoencoder` on neighbourhood windows.

    Batches are ``(x, labels)``: windows ``(B, C, w, w)`` whose first
    ``n_expression`` channels are expression and the rest morphology, and ``(B, 2)``
    pseudo-labels (expression, morphology).

    Parameters
    ----------
    n_channels, window_size
        Input shape.
    n_expression
        Number of expression channels ``d_T``; the remaining ``C - d_T`` are morphology.
    n_clusters
        Pseudo-label clusters of (expression, morphology); ``< 2`` disables that triplet term.
    expression_weight, morphology_weight
        ``w_T`` and ``w_M``.
    rec_alpha, triplet_alpha
        Weights of the reconstruction and triplet terms inside each modality.
    n_repeats
        Triplets per other cluster and anchor.
    margin
        Triplet margin.
    lr, weight_decay
        Adam (amsgrad) settings.
    latent_dim, hidden_channels, kernel_size, dropout, n_members
        Architecture, see :class:`~aestetik.nn.AestetikAutoencoder`.
    """

    def __init__(
        self,
        n_channels: int,
        window_size: int,
        *,
        n_expression: int,
        n_clusters: tuple[int, int],
        expression_weight: float,
        morphology_weight: float,
        rec_alpha: float = 1.0,
        triplet_alpha: float = 1.0,
        n_repeats: int = 3,
        margin: float = 1.0,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        latent_dim: int = 16,
        hidden_channels: int = 64,
        kernel_size: int = 3,
        dropout: float = 0.3,
        n_members: int = 3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = AestetikAutoencoder(
            n_channels,
            window_size,
            latent_dim=latent_dim,
            hidden_channels=hidden_channels,
            kernel_size=kernel_size,
            dropout=dropout,
            n_members=n_members,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encoder(x)

    def compute_losses(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """All loss terms of a batch, keyed by :data:`LOSS_TERMS`."""
        hp = self.hparams
        z, x_rec = self.model(x)
        zero = x.new_zeros(())
        d = hp.n_expression
        terms = dict.fromkeys(LOSS_TERMS[1:], zero)
        weights = {"expression": hp.expression_weight, "morphology": hp.morphology_weight}
        for m, (name, sl) in enumerate((("expression", slice(0, d)), ("morphology", slice(d, None)))):
            if weights[name] <= 0:
                continue
            if hp.rec_alpha:
                terms[f"rec_{name}"] = F.l1_loss(x_rec[:, sl], x[:, sl])
            if hp.triplet_alpha and hp.n_clusters[m] > 1:
                terms[f"triplet_{name}"] = multi_triplet_loss(
                    z, labels[:, m], hp.n_clusters[m], n_repeats=hp.n_repeats, margin=hp.margin
                )
        total = zero
        for name in ("expression", "morphology"):
            total = total + weights[name] * (
                hp.rec_alpha * terms[f"rec_{name}"] + hp.triplet_alpha * terms[f"triplet_{name}"]
            )
        return {"loss": total, **terms}

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], prefix: str) -> torch.Tensor:
        x, labels = batch
        losses = self.compute_losses(x, labels)
        for name, value in losses.items():
            self.log(
                f"{prefix}_{name}",
                value.detach(),
                on_step=False,
                on_epoch=True,
                prog_bar=name == "loss",
                sync_dist=True,
                batch_size=x.shape[0],
            )
        return losses["loss"]

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay, amsgrad=True
        )
