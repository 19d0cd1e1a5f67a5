"""Helpers shared by the benchmark scripts (run in either virtual environment: numpy/anndata only)."""

from __future__ import annotations

import json
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def annotation(adata) -> tuple:
    """``(lab, truth, k)`` of an annotated file: the mask of annotated spots, their labels as
    strings and the number of annotated domains (the K every benchmark clusters into)."""
    lab = adata.obs["is_labelled"].to_numpy(bool)
    truth = adata.obs["ground_truth"].astype(str).to_numpy()[lab]
    return lab, truth, int(adata.obs["ground_truth"].nunique())


def data_files(data_dir: str | Path, only: list[str] | None = None) -> list[Path]:
    """The annotated ``.h5ad`` files of ``data_dir`` (those named in ``only``, when given), sorted."""
    files = sorted(Path(data_dir).glob("*.h5ad"))
    return [f for f in files if f.stem in only] if only else files


def read_annotated(path: str | Path) -> tuple:
    """``(adata, lab, truth, k)`` of an annotated file (see :func:`annotation`), with lattice
    coordinates (``aestetik.pp.lattice`` for imaging data, which has none)."""
    import anndata as ad

    import aestetik as ae

    adata = ad.read_h5ad(path)
    if "array_row" not in adata.obs:
        ae.pp.lattice(adata)
    return (adata, *annotation(adata))


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


@contextmanager
def stage(timings: dict, name: str):
    t0 = time.perf_counter()
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0


def write_json(path: str | Path, obj: dict) -> None:
    Path(path).write_text(json.dumps(obj, indent=1))


def merge_records(records: list[dict], keys: tuple[str, ...] = ("data", "seed")) -> list[dict]:
    """One record per value of ``keys`` (``bench_quality.py``: data set and seed): runs saved
    separately are joined, later records replacing the keys of earlier ones."""
    merged: dict[tuple, dict] = {}
    for r in records:
        merged.setdefault(tuple(r[k] for k in keys), {}).update(r)
    return list(merged.values())
