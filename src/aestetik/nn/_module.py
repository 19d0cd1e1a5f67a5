"""The AESTETIK ensemble convolutional autoencoder, pure torch.

The ensemble members are fused: the ``M`` encoders share one convolution with
``M * c_hid`` output channels (the members see the same input, and batch norm,
dropout, ReLU and max-pooling act per channel), followed by one batched linear
map per member; the decoders likewise run as one grouped transposed
convolution. This is the same function as ``M`` separate encoders/decoders with
PyTorch's default initialisation, at a fraction of the kernel launches.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "AestetikAutoencoder",
    "EnsembleDecoder",
    "EnsembleEncoder",
    "effective_kernel_size",
    "ensemble_median",
]


def ensemble_median(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Median over ensemble members (the lower middle value for an even count, as :func:`torch.median`).

    Uses a sort rather than :func:`torch.median`, whose index output has no
    deterministic CUDA implementation.
    """
    m = x.shape[dim]
    if m == 1:
        return x.squeeze(dim)
    if m == 2:
        return x.amin(dim=dim)
    if m == 3:  # the default ensemble: max(min(a, b), min(max(a, b), c)), much cheaper than a sort
        a, b, c = x.unbind(dim)
        return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))
    return x.sort(dim=dim, stable=True).values.select(dim, (m - 1) // 2)


def effective_kernel_size(window_size: int, kernel_size: int = 3) -> int:
    """The convolution kernel actually used: ``kernel_size`` if smaller than the window, else ``window_size - 1``."""
    return kernel_size if kernel_size < window_size else max(1, window_size - 1)


def _pooled_size(window_size: int, kernel_size: int) -> tuple[int, int]:
    conv_out = window_size - kernel_size + 1
    pooled = math.floor((conv_out - kernel_size) / 3 + 1)
    if pooled < 1:
        raise ValueError(f"window_size={window_size} is too small for kernel_size={kernel_size}")
    return conv_out, pooled


class _MemberLinear(nn.Module):
    """``M`` independent linear layers applied to ``(B, M, F)`` inputs."""

    def __init__(self, n_members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(n_members, out_features))
        bound = 1.0 / math.sqrt(in_features)
        for m in range(n_members):  # torch.nn.Linear's default initialisation, member by member
            nn.init.kaiming_uniform_(self.weight[m], a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bmf,mof->bmo", x, self.weight) + self.bias


class EnsembleEncoder(nn.Module):
    """``M`` encoders ``Conv -> BN -> Dropout2d -> ReLU -> MaxPool -> Linear``; median over members."""

    def __init__(
        self,
        n_channels: int,
        window_size: int,
        *,
        latent_dim: int = 16,
        hidden_channels: int = 64,
        kernel_size: int = 3,
        dropout: float = 0.3,
        n_members: int = 3,
    ) -> None:
        super().__init__()
        k = effective_kernel_size(window_size, kernel_size)
        _, pooled = _pooled_size(window_size, k)
        self.n_members = n_members
        self.hidden_channels = hidden_channels
        self.kernel_size = k
        self.dropout = dropout
        self.conv = nn.Conv2d(n_channels, n_members * hidden_channels, kernel_size=k)
        self.norm = nn.BatchNorm2d(n_members * hidden_channels)
        self.drop = nn.Dropout2d(p=dropout)
        self.pool = nn.MaxPool2d(kernel_size=k, stride=3)
        self.linear = _MemberLinear(n_members, hidden_channels * pooled * pooled, latent_dim)
        # max-pooling with stride 3 reads only the first 3*(pooled-1)+k rows and columns
        self.crop = 3 * (pooled - 1) + k

    def pre_dropout(self, x: torch.Tensor) -> torch.Tensor:
        """``BN(Conv(x))`` on the part the pooling reads: the deterministic part before dropout.

        Same values, gradients and running statistics as ``self.norm(self.conv(x))``
        cropped to the rows and columns that max-pooling reads, computed without the
        rest of the convolution: the batch mean and variance of a convolution output
        channel are linear and quadratic in its filter, ``w @ mean(u) + b`` and
        ``w @ cov(u) @ w``, where ``u`` are the input patches. The patch covariance
        costs one small matrix product, and the input needs no gradient.
        """
        if type(self.norm) is not nn.BatchNorm2d or x.requires_grad:  # e.g. SyncBatchNorm under DDP
            return self.norm(self.conv(x))[:, :, : self.crop, : self.crop]
        k, crop = self.kernel_size, self.crop
        b = x.shape[0]
        side = x.shape[-1] - k + 1
        patches = F.unfold(x, k)  # (B, C*k*k, side*side), row-major positions
        weight = self.conv.weight.flatten(1)  # (M*H, C*k*k)
        used = patches.view(b, -1, side, side)[:, :, :crop, :crop].reshape(b, patches.shape[1], crop * crop)
        y = torch.matmul(weight, used) + self.conv.bias[:, None]  # (B, M*H, crop*crop)
        bn = self.norm
        if bn.training or not bn.track_running_stats:
            n = b * side * side
            # statistics in float32 even under mixed precision: a covariance of many rows
            with torch.autocast(device_type=x.device.type, enabled=False):
                u = patches.transpose(1, 2).reshape(n, -1).float()
                mu = u.mean(0)
                uc = u - mu
                cov = (uc.T @ uc) / n
                w32 = weight.float()
                mean = w32 @ mu + self.conv.bias.float()
                var = ((w32 @ cov) * w32).sum(1)  # biased, as BatchNorm normalises with
            if bn.training and bn.track_running_stats:
                with torch.no_grad():
                    bn.num_batches_tracked.add_(1)
                    m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                    bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                    bn.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1)), alpha=m)
        else:
            mean, var = bn.running_mean, bn.running_var
        scale = torch.rsqrt(var + bn.eps) * bn.weight
        out = (y - mean[:, None]) * scale[:, None] + bn.bias[:, None]
        return out.view(b, -1, crop, crop)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Per-member latent codes ``(B, M, latent)`` from post-dropout activations."""
        h = self.pool(F.relu(h))
        return self.linear(h.reshape(h.shape[0], self.n_members, -1))

    def members(self, x: torch.Tensor) -> torch.Tensor:
        """Latent codes of every member, ``(B, M, latent)``."""
        return self.head(self.drop(self.pre_dropout(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ensemble_median(self.members(x), 1)

    @torch.no_grad()
    def mc_dropout(self, x: torch.Tensor, n_passes: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean over ``n_passes`` dropout samples of the ensemble's latent code, ``(B, latent)``.

        Batch norm uses its running statistics. Dropout2d zeroes whole channels and
        ReLU and max-pooling commute with a non-negative per-channel scale, so a pass
        is ``Linear(mask * pool(relu(h)) / (1 - p))``: the convolution runs once and
        each pass costs one masked linear map.
        """
        b = x.shape[0]
        pooled = self.pool(F.relu(self.pre_dropout(x)))  # (B, M*H, s, s)
        pooled = pooled.reshape(b, self.n_members, self.hidden_channels, -1)  # (B, M, H, s*s)
        keep = 1.0 - self.dropout
        total = torch.zeros(b, self.linear.weight.shape[1], device=x.device, dtype=x.dtype)
        weight = self.linear.weight.reshape(self.n_members, -1, self.hidden_channels, pooled.shape[-1])
        # per (member, channel) contribution of each latent dim: (B, M, H, latent)
        contrib = torch.einsum("bmhs,mohs->bmho", pooled, weight)
        chunk = max(1, min(n_passes, (1 << 24) // max(1, b * self.n_members * self.hidden_channels)))
        done = 0
        while done < n_passes:
            n = min(chunk, n_passes - done)
            if self.dropout > 0:
                mask = torch.rand(n, b, self.n_members, self.hidden_channels, device=x.device, generator=generator)
                mask = (mask < keep).to(x.dtype) / keep
            else:
                mask = torch.ones(n, b, self.n_members, self.hidden_channels, device=x.device, dtype=x.dtype)
            z = torch.einsum("nbmh,bmho->nbmo", mask, contrib) + self.linear.bias  # (n, B, M, latent)
            total += ensemble_median(z, 2).sum(dim=0)
            done += n
        return total / n_passes


class EnsembleDecoder(nn.Module):
    """``M`` decoders ``Linear -> ReLU -> Upsample -> Dropout2d -> ConvT -> BN -> Sigmoid``; median over members."""

    def __init__(
        self,
        n_channels: int,
        window_size: int,
        *,
        latent_dim: int = 16,
        hidden_channels: int = 64,
        kernel_size: int = 3,
        dropout: float = 0.3,
        n_members: int = 3,
    ) -> None:
        super().__init__()
        k = effective_kernel_size(window_size, kernel_size)
        conv_out, pooled = _pooled_size(window_size, k)
        self.n_members = n_members
        self.hidden_channels = hidden_channels
        self.pooled = pooled
        self.n_channels = n_channels
        self.linear = nn.Linear(latent_dim, n_members * hidden_channels * pooled * pooled)
        # nearest-neighbour upsampling from (s, s) to (conv_out, conv_out) as an index gather
        self.register_buffer("up_index", (torch.arange(conv_out) * pooled) // conv_out, persistent=False)
        self.drop = nn.Dropout2d(p=dropout)
        self.deconv = nn.ConvTranspose2d(
            n_members * hidden_channels, n_members * n_channels, kernel_size=k, groups=n_members
        )
        self.norm = nn.BatchNorm2d(n_members * n_channels)
        # Each member's Linear(latent, H*s*s) has the default init of nn.Linear; the fused
        # layer has the same fan-in, hence the same distribution.

    def _constant_input_deconv(self, h: torch.Tensor) -> torch.Tensor:
        """``deconv`` of an input that is constant over space (``pooled == 1``), as one matmul per member.

        Output pixel ``(y, x)`` of a transposed convolution sums the kernel taps that
        reach it; with a spatially constant input that is ``h @ A`` where ``A`` folds
        the kernel over the output grid. Same result as ``self.deconv`` on the
        upsampled input, at a fraction of the cost.
        """
        k = self.deconv.kernel_size[0]
        co = self.up_index.shape[0]
        wo = co + k - 1
        y = torch.arange(wo, device=h.device)[:, None] - torch.arange(k, device=h.device)[None, :]
        reach = ((y >= 0) & (y < co)).to(h.dtype)  # (wo, k): tap ky reaches output row y
        a = torch.einsum("yk,cokl,xl->coyx", reach, self.deconv.weight, reach)  # (M*H, C, wo, wo)
        a = a.reshape(self.n_members, self.hidden_channels, -1)  # (M, H, C*wo*wo)
        out = torch.einsum("bmh,mhf->bmf", h.reshape(h.shape[0], self.n_members, self.hidden_channels), a)
        out = out.reshape(h.shape[0], self.n_members * self.n_channels, wo, wo)
        return out + self.deconv.bias[None, :, None, None]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        h = F.relu(self.linear(z)).reshape(b, self.n_members * self.hidden_channels, self.pooled, self.pooled)
        if self.pooled == 1:
            # Dropout2d zeroes whole channels, so it may act before the (constant) upsampling.
            out = self._constant_input_deconv(self.drop(h))
        else:
            out = self.deconv(self.drop(h[:, :, self.up_index[:, None], self.up_index[None, :]]))
        out = torch.sigmoid(self.norm(out))
        out = out.reshape(b, self.n_members, self.n_channels, *out.shape[-2:])
        return ensemble_median(out, 1)


class AestetikAutoencoder(nn.Module):
    """Ensemble convolutional autoencoder: ``M`` encoders and decoders whose outputs are their median.

    Parameters
    ----------
    n_channels
        Input channels ``C`` (expression plus morphology dimensions).
    window_size
        Side ``w`` of the input windows.
    latent_dim
        Size of the embedding.
    hidden_channels
        Convolution channels per member.
    kernel_size
        Convolution kernel; reduced to ``w - 1`` when it is not smaller than ``w``.
    dropout
        ``Dropout2d`` probability, also used by Monte-Carlo inference.
    n_members
        Ensemble size of the encoder and of the decoder.
    """

    def __init__(
        self,
        n_channels: int,
        window_size: int,
        *,
        latent_dim: int = 16,
        hidden_channels: int = 64,
        kernel_size: int = 3,
        dropout: float = 0.3,
        n_members: int = 3,
    ) -> None:
        super().__init__()
        kw = {
            "latent_dim": latent_dim,
            "hidden_channels": hidden_channels,
            "kernel_size": kernel_size,
            "dropout": dropout,
            "n_members": n_members,
        }
        self.encoder = EnsembleEncoder(n_channels, window_size, **kw)
        self.decoder = EnsembleDecoder(n_channels, window_size, **kw)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return z, self.decoder(z)
