"""Peak memory of pp.morphology on a large image read lazily from a pyramidal TIFF.

Writes a synthetic H&E-like ``--size x --size`` RGB TIFF (tiled, 2 extra pyramid levels)
tile by tile, so the full image is never in memory, then, in a fresh process, runs
``pp.morphology(adata, image=path)`` for spots on a Visium-like grid over it and prints
the process's peak resident memory next to the size of the decoded image, and the same
run on a 4x smaller image (peak memory should not grow with the image).

    python benchmarks/bench_large_image.py --size 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import peak_rss_mib  # noqa: E402

TILE = 512


def _tile(y0: int, x0: int, h: int, w: int, scale: int) -> np.ndarray:
    """Layered pink/purple tissue with dark dots, as a function of full-resolution position."""
    yy, xx = np.mgrid[y0 : y0 + h, x0 : x0 + w] * scale
    layer = (((yy + 800 * np.sin(xx / 3000.0)) // 2500) % 4).astype(np.int64)
    palette = np.array([[232, 182, 205], [200, 140, 190], [170, 110, 170], [215, 160, 160]], np.float32)
    img = palette[layer]
    rng = np.random.default_rng(y0 * 7919 + x0 + scale)
    img += rng.normal(0, 10, img.shape).astype(np.float32)
    dots = rng.random((h, w)) < 0.01 * (1 + layer)
    img[dots] = [70, 40, 110]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_tiff(path: Path, size: int) -> None:
    import tifffile

    def tiles(n: int, scale: int):
        for y in range(0, n, TILE):
            for x in range(0, n, TILE):
                yield _tile(y, x, TILE, TILE, scale)  # edge tiles are full tiles, cropped by the writer

    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            tiles(size, 1), shape=(size, size, 3), dtype=np.uint8, tile=(TILE, TILE), photometric="rgb", subifds=2
        )
        for f in (2, 4):
            n = size // f
            tif.write(tiles(n, f), shape=(n, n, 3), dtype=np.uint8, tile=(TILE, TILE), photometric="rgb", subfiletype=1)


def run_child(path: str, size: int, spot_distance: float) -> None:
    import anndata as ad

    import aestetik as ae

    g = np.arange(spot_distance, size - spot_distance, spot_distance)
    xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    adata = ad.AnnData(np.zeros((len(xy), 1), np.float32), obsm={"spatial": xy})
    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    ae.pp.morphology(adata, image=path, spot_diameter=spot_distance * 0.55, show_progress_bar=False)
    print(
        json.dumps(
            {
                "n_spots": len(xy),
                "seconds": time.perf_counter() - t0,
                "peak_rss_mib": peak_rss_mib(),
                "rss_before_mib": rss0,
            }
        )
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=20000)
    p.add_argument("--spot-distance", type=float, default=200.0, help="grid spacing of the spots (px)")
    p.add_argument("--child", nargs=2, metavar=("PATH", "SIZE"))
    args = p.parse_args()
    if args.child:
        run_child(args.child[0], int(args.child[1]), args.spot_distance)
        return
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for size in (args.size // 4, args.size):
            path = Path(tmp) / f"slide_{size}.tif"
            t0 = time.perf_counter()
            write_tiff(path, size)
            print(
                f"wrote {size} x {size} TIFF ({path.stat().st_size / 2**20:.0f} MiB) in "
                f"{time.perf_counter() - t0:.0f} s",
                flush=True,
            )
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path), str(size), "--spot-distance", str(args.spot_distance)],
                check=True,
                capture_output=True,
                text=True,
            )
            results[size] = json.loads(out.stdout.strip().splitlines()[-1])
            path.unlink()
    print("\nimage side   decoded image   spots   pp.morphology   peak RSS   (RSS before the call)")
    for size, r in results.items():
        print(
            f"{size:>10}  {size * size * 3 / 2**20:>11.0f} MiB {r['n_spots']:>7} {r['seconds']:>12.1f} s "
            f"{r['peak_rss_mib']:>7.0f} MiB   ({r['rss_before_mib']:.0f} MiB)"
        )
    small, big = results[args.size // 4], results[args.size]
    print(
        f"\nimage 16x larger: peak RSS x{big['peak_rss_mib'] / small['peak_rss_mib']:.2f}; peak RSS is "
        f"{big['peak_rss_mib'] / (args.size**2 * 3 / 2**20):.2f}x the decoded image"
    )


if __name__ == "__main__":
    main()
