"""Image pyramids and per-spot patches, read lazily (numpy, dask/zarr or TIFF), for ``pp.morphology``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

#: Fewer image pixels than this across a spot's patch and the patch shows the stain's colour,
#: not tissue texture (nuclei, fibres): on a Visium low-resolution image a 55 um spot covers
#: about 4 pixels, on the high-resolution image about 14, on the full-resolution one ~100.
MIN_TEXTURE_SIDE_PX = 8


@dataclass
class Level:
    """One resolution of an image: an array with ``(y, x[, c])`` or ``(c, y, x)`` axes.

    ``downsample`` is the size of one of its pixels in pixels of the finest level.
    """

    array: Any
    channel_axis: int | None
    downsample: float

    @property
    def height(self) -> int:
        return int(self.array.shape[1 if self.channel_axis == 0 else 0])

    @property
    def width(self) -> int:
        return int(self.array.shape[2 if self.channel_axis == 0 else 1])

    @property
    def n_channels(self) -> int:
        return 1 if self.channel_axis is None else int(self.array.shape[self.channel_axis])


def _is_dask(array: Any) -> bool:
    return type(array).__module__.startswith("dask")


def check_channels(n_channels: int, what: str) -> None:
    if n_channels not in (1, 3, 4):
        raise ValueError(
            f"{what} has {n_channels} channels; expected RGB (3), RGBA (4, alpha dropped) or grayscale (1, repeated)"
        )


def level_from_array(array: Any, *, channels_first: bool | None = None, downsample: float = 1.0) -> Level:
    """Wrap a 2-D (grayscale) or 3-D image array; channels last unless ``channels_first``."""
    if array.ndim == 2:
        return Level(array, None, downsample)
    if array.ndim != 3:
        raise ValueError(f"an image must have 2 or 3 dimensions, got shape {tuple(array.shape)}")
    if channels_first is None:
        channels_first = array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4)
    level = Level(array, 0 if channels_first else 2, downsample)
    check_channels(level.n_channels, "the image")
    return level


def tiff_levels(path: str | Path) -> list[Level]:
    """The resolutions of a (pyramidal, OME-)TIFF, each opened lazily through zarr."""
    import tifffile
    import zarr

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = series.axes
        shapes = [lvl.shape for lvl in series.levels]
    levels = []
    for i, shape in enumerate(shapes):
        store = tifffile.imread(path, aszarr=True, level=i)
        arr = zarr.open(store, mode="r")
        if axes in ("YXS", "YXC", "YX"):
            ch_axis = None if axes == "YX" else 2
        elif axes in ("CYX", "SYX"):
            ch_axis = 0
        else:
            raise ValueError(f"unsupported TIFF axes {axes!r} in {path} (expected YX, YXS or CYX)")
        y_axis = 1 if ch_axis == 0 else 0
        levels.append(Level(arr, ch_axis, shapes[0][y_axis] / shape[y_axis]))
    check_channels(levels[0].n_channels, f"the image {path}")
    return levels


def choose_level(levels: Sequence[Level], side_full: float, input_size: int) -> Level:
    """The coarsest level on which a patch of ``side_full`` finest-level pixels still spans ``input_size`` pixels."""
    levels = sorted(levels, key=lambda lv: lv.downsample)
    best = levels[0]
    for lv in levels[1:]:
        if side_full / lv.downsample >= input_size:
            best = lv
    return best


def to_unit_float(patch: np.ndarray) -> np.ndarray:
    """Integer images scaled by their dtype's maximum; float images taken as ``[0, 1]`` (clipped)."""
    if np.issubdtype(patch.dtype, np.integer):
        return patch.astype(np.float32) / np.float32(np.iinfo(patch.dtype).max)
    if patch.dtype == bool:
        return patch.astype(np.float32)
    return np.clip(patch.astype(np.float32), 0.0, 1.0)


def whole_batch(batch: torch.Tensor) -> torch.Tensor:
    """``collate_fn`` for :class:`PatchDataset`: ``__getitems__`` already returns the batch tensor."""
    return batch


class PatchDataset(Dataset):
    """Square RGB patches ``(3, side, side)`` in ``[0, 1]`` centred on spots, read from one level.

    Parts of a patch outside the image are padded with white (background of a slide).
    Grayscale images are repeated over RGB; the alpha channel of RGBA is dropped.

    Parameters
    ----------
    level
        The image level to read.
    centres
        ``(N, 2)`` spot centres ``(x, y)`` in pixels of this level.
    side
        Patch side in pixels of this level.
    """

    def __init__(self, level: Level, centres: np.ndarray, side: int) -> None:
        self.level = level
        self.side = max(1, int(side))
        half = self.side / 2
        self.origin = np.floor(np.asarray(centres, dtype=np.float64) - half + 0.5).astype(np.int64)  # (x0, y0)

    def __len__(self) -> int:
        return len(self.origin)

    def _read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        lv = self.level
        if lv.channel_axis is None:
            block = np.asarray(lv.array[y0:y1, x0:x1])[..., None]
        elif lv.channel_axis == 0:
            block = np.moveaxis(np.asarray(lv.array[:, y0:y1, x0:x1]), 0, -1)
        else:
            block = np.asarray(lv.array[y0:y1, x0:x1, :])
        return block

    def _box(self, i: int) -> tuple[int, int, int, int, int, int]:
        x0, y0 = (int(v) for v in self.origin[i])
        s = self.side
        ya, yb = max(y0, 0), min(y0 + s, self.level.height)
        xa, xb = max(x0, 0), min(x0 + s, self.level.width)
        return x0, y0, ya, yb, xa, xb

    def _patch(self, box: tuple[int, ...], block: np.ndarray | None) -> torch.Tensor:
        x0, y0, ya, yb, xa, xb = box
        s = self.side
        out = np.ones((s, s, 3), dtype=np.float32)
        if block is not None:
            block = to_unit_float(block)
            if block.shape[-1] == 1:
                block = np.repeat(block, 3, axis=-1)
            out[ya - y0 : yb - y0, xa - x0 : xb - x0] = block[..., :3]
        return torch.from_numpy(out).permute(2, 0, 1)

    def __getitem__(self, i: int) -> torch.Tensor:
        box = self._box(i)
        ya, yb, xa, xb = box[2:]
        return self._patch(box, self._read(ya, yb, xa, xb) if ya < yb and xa < xb else None)

    def __getitems__(self, indices: Sequence[int]) -> torch.Tensor:
        """A whole batch of patches.

        Lazily read levels (dask, zarr) read the batch's bounding box once when it is
        compact (batches of spatially sorted spots, see :func:`spatial_order`).
        """
        boxes = [self._box(int(i)) for i in indices]
        inside = [b[2] < b[3] and b[4] < b[5] for b in boxes]  # the patch overlaps the image
        valid = [b for b, ok in zip(boxes, inside, strict=True) if ok]
        if isinstance(self.level.array, np.ndarray) or not valid:
            return torch.stack([self.__getitem__(int(i)) for i in indices])
        ya, yb = min(b[2] for b in valid), max(b[3] for b in valid)
        xa, xb = min(b[4] for b in valid), max(b[5] for b in valid)
        if (yb - ya) * (xb - xa) <= max(16 * len(valid) * self.side**2, 2**22):
            region = self._read(ya, yb, xa, xb)
            return torch.stack(
                [
                    self._patch(b, region[b[2] - ya : b[3] - ya, b[4] - xa : b[5] - xa] if ok else None)
                    for b, ok in zip(boxes, inside, strict=True)
                ]
            )
        if not _is_dask(self.level.array):
            return torch.stack([self.__getitem__(int(i)) for i in indices])
        import dask

        done = iter(dask.compute(*[self._read_lazy(*b[2:]) for b in valid]))
        return torch.stack([self._patch(b, next(done) if ok else None) for b, ok in zip(boxes, inside, strict=True)])

    def _read_lazy(self, y0: int, y1: int, x0: int, x1: int) -> Any:
        lv = self.level
        if lv.channel_axis is None:
            return lv.array[y0:y1, x0:x1][..., None]
        if lv.channel_axis == 0:
            return lv.array[:, y0:y1, x0:x1].transpose(1, 2, 0)
        return lv.array[y0:y1, x0:x1, :]


def spatial_order(centres: np.ndarray, side: float) -> np.ndarray:
    """Spot order in bands of ``8 * side`` pixels, left to right: consecutive spots are close."""
    centres = np.asarray(centres, dtype=np.float64)
    band = np.floor(centres[:, 1] / max(8.0 * side, 1.0))
    x = np.where(band % 2 == 0, centres[:, 0], -centres[:, 0])  # snake: no jump back at band ends
    return np.lexsort((x, band))
