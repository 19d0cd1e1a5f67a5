"""Image encoders for morphology features: pure torch, no AnnData here.

Every encoder takes a ``(B, 3, S, S)`` float32 batch of RGB patches in ``[0, 1]`` and
returns ``(B, D)`` features. ``HistologyFeatures`` is the built-in default: it needs no
downloaded weights. :func:`torchvision_encoder` wraps a torchvision backbone by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["HistologyFeatures", "ImageNetNormalize", "torchvision_encoder"]

#: Ruifrok & Johnston's optical-density vectors of haematoxylin, eosin and DAB (rows).
_HED_FROM_RGB = torch.linalg.inv(
    torch.tensor(
        [
            [0.65, 0.70, 0.29],
            [0.07, 0.99, 0.11],
            [0.27, 0.57, 0.78],
        ],
        dtype=torch.float64,
    )
).float()

_QUANTILES = (0.1, 0.5, 0.9)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with reflected borders."""
    k = _gaussian_kernel(sigma).to(x)
    r = (k.numel() - 1) // 2
    c = x.shape[1]
    pad_h, pad_w = min(r, x.shape[-2] - 1), min(r, x.shape[-1] - 1)
    if pad_h < r or pad_w < r:  # tiny patches: replicate instead of reflect
        x = F.pad(x, (r, r, r, r), mode="replicate")
    else:
        x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _stats(x: torch.Tensor) -> torch.Tensor:
    """Mean, standard deviation and 10/50/90 % quantiles (order statistics) per channel of ``(B, C, N)``."""
    n = x.shape[-1]
    sub = x[..., :: max(1, n // 1024)]  # quantiles from about 1024 evenly spread pixels
    m = sub.shape[-1]
    idx = torch.tensor([int(q * (m - 1) + 0.5) for q in _QUANTILES], device=x.device)
    q = sub.sort(dim=-1).values.index_select(-1, idx)  # (B, C, 3)
    return torch.cat([x.mean(-1), x.std(-1, unbiased=False), q.flatten(1)], dim=1)


def _at_scale(x: torch.Tensor, sigma: float) -> tuple[torch.Tensor, float]:
    """Gaussian smoothing at ``sigma`` pixels through a pyramid: average-pool by the integer part, then blur.

    Returns the smoothed planes and the pixel size (in input pixels) they are sampled at.
    """
    factor = max(1, min(int(sigma), x.shape[-1] // 3, x.shape[-2] // 3))
    if factor > 1:
        x = F.avg_pool2d(x, factor)
    return _blur(x, sigma / factor), float(factor)


class HistologyFeatures(nn.Module):
    """Colour, stain and texture statistics of H&E patches; no learned weights.

    Per patch it returns

    * colour: mean, standard deviation and 10/50/90 % quantiles of R, G, B (15);
    * stains: the same five statistics of the haematoxylin, eosin and residual
      optical densities after Ruifrok-Johnston colour deconvolution (15);
    * texture: at each Gaussian scale of ``sigmas`` (pixels of the encoder input), for
      the grey level and the haematoxylin density: mean, standard deviation and
      median of the gradient magnitude, mean and standard deviation of the absolute
      (scale-normalised) Laplacian, and the standard deviation of the smoothed plane
      (``12 * len(sigmas)``);
    * nuclei: the share of pixels whose haematoxylin density exceeds 0.3, 0.6 and 0.9 (3).

    That is ``33 + 12 * len(sigmas)`` features (69 at the default three scales), all
    computed on the input device in one pass per batch.

    Parameters
    ----------
    sigmas
        Texture scales in pixels.
    input_size
        Side the patches are resized to before encoding (see :func:`aestetik.pp.morphology`).
    """

    def __init__(self, sigmas: tuple[float, ...] = (1.0, 2.0, 4.0), input_size: int = 64) -> None:
        super().__init__()
        self.sigmas = tuple(float(s) for s in sigmas)
        self.input_size = int(input_size)
        self.register_buffer("hed_from_rgb", _HED_FROM_RGB.clone(), persistent=False)

    @property
    def n_features(self) -> int:
        return 33 + 12 * len(self.sigmas)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().clamp(0.0, 1.0)
        if min(x.shape[-2:]) < 8:  # texture needs a few pixels: enlarge tiny patches
            x = F.interpolate(x, size=(max(8, x.shape[-2]), max(8, x.shape[-1])), mode="nearest")
        b = x.shape[0]
        od = -torch.log(x.clamp(min=1.0 / 255))  # optical density, 0 for white
        hed = torch.einsum("bchw,cd->bdhw", od, self.hed_from_rgb.to(x))
        feats = [_stats(x.reshape(b, 3, -1)), _stats(hed.reshape(b, 3, -1))]
        grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
        planes = torch.cat([grey, hed[:, :1]], dim=1)  # (B, 2, H, W)
        for sigma in self.sigmas:
            smooth, step = _at_scale(planes, sigma)
            gy, gx = torch.gradient(smooth, dim=(-2, -1))
            gy, gx = gy / step, gx / step
            grad = torch.sqrt(gx**2 + gy**2 + 1e-12).flatten(2)
            dyy = torch.gradient(gy, dim=-2)[0] / step
            dxx = torch.gradient(gx, dim=-1)[0] / step
            lap = (dxx + dyy).abs().flatten(2) * sigma**2
            feats += [grad.mean(-1), grad.std(-1, unbiased=False), grad.median(-1).values]
            feats += [lap.mean(-1), lap.std(-1, unbiased=False), smooth.flatten(2).std(-1, unbiased=False)]
        h = hed[:, 0].flatten(1)
        feats.append(torch.stack([(h > t).float().mean(-1) for t in (0.3, 0.6, 0.9)], dim=1))
        return torch.cat(feats, dim=1)


class ImageNetNormalize(nn.Module):
    """Standardise ``[0, 1]`` RGB with the ImageNet mean and standard deviation, then run ``body``."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body((x - self.mean) / self.std)
        return out.logits if hasattr(out, "logits") else out


#: Input side of the torchvision backbones that do not take 224 x 224 patches.
_INPUT_SIZE = {"inception_v3": 299}


def torchvision_encoder(name: str, weights: str | Path | None = "imagenet") -> tuple[nn.Module, int]:
    """A torchvision classification backbone without its classifier head.

    Parameters
    ----------
    name
        Any name of ``torchvision.models.list_models(torchvision.models)``, e.g.
        ``"inception_v3"`` (the paper's choice, 2048 features), ``"resnet50"``.
    weights
        ``"imagenet"``: torchvision's default pretrained weights (downloaded once into
        the torch hub cache when the machine can reach it); a path to a local
        ``state_dict`` file of the full classifier; ``None``: random weights (tests).

    Returns
    -------
    The encoder (ImageNet normalisation included, in eval mode) and its input side in pixels.
    """
    try:
        import torchvision
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"encoder={name!r} needs torchvision: pip install 'aestetik[vision]' "
            "(or pass encoder='histology', or your own torch.nn.Module)"
        ) from err
    available = torchvision.models.list_models(torchvision.models)
    if name not in available:
        raise ValueError(f"unknown torchvision model {name!r}; available: {', '.join(sorted(available))}")
    kwargs: dict = {}
    if name == "inception_v3":
        kwargs = {"aux_logits": weights is not None, "init_weights": weights is None}  # weights: with aux head
    if weights == "imagenet":
        model = torchvision.models.get_model(name, weights="DEFAULT", **kwargs)
    else:
        model = torchvision.models.get_model(name, weights=None, **kwargs)
        if weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"weights file not found: {path}")
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
            missing, unexpected = model.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.startswith("AuxLogits.")]  # the aux head is dropped anyway
            unexpected = [k for k in unexpected if not k.startswith("AuxLogits.")]
            if missing or unexpected:
                raise ValueError(
                    f"weights file {path} does not fit {name!r}: missing {missing[:3]}, unexpected {unexpected[:3]}"
                )
    if hasattr(model, "AuxLogits"):
        model.AuxLogits = None
        model.aux_logits = False
    for head in ("fc", "classifier", "heads", "head"):
        if hasattr(model, head) and isinstance(getattr(model, head), nn.Module):
            setattr(model, head, nn.Identity())
            break
    else:  # pragma: no cover - every classification model of torchvision has one of them
        raise ValueError(f"cannot find the classifier head of {name!r}")
    return ImageNetNormalize(model).eval(), _INPUT_SIZE.get(name, 224)


def as_encoder(encoder: nn.Module | Callable[[torch.Tensor], torch.Tensor]) -> nn.Module:
    """Wrap a callable as a module (so it can be moved to a device when it is one)."""
    if isinstance(encoder, nn.Module):
        return encoder
    if not callable(encoder):
        raise TypeError(f"encoder must be a name, a torch.nn.Module or a callable, got {type(encoder).__name__}")

    class _Callable(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return encoder(x)

    return _Callable()
