"""Checks that need CUDA (marked ``gpu``; skipped elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.fixture(scope="module")
def slide():
    adata = ae.datasets.synthetic(n_spots=400, random_state=0)
    ae.pp.transcriptomics(adata)
    return adata


def test_embed_on_gpu_recovers_domains(slide):
    adata = slide.copy()
    ae.tl.embed(adata, n_clusters=5, max_epochs=40, show_progress_bar=False, trainer_kwargs={"accelerator": "gpu"})
    ae.tl.cluster(adata, 5, refine=False)
    assert adjusted_rand_score(adata.obs["ground_truth"], adata.obs["aestetik_clusters"]) > 0.85


def test_gpu_runs_repeat_closely(slide):
    a, b = slide.copy(), slide.copy()
    kw = {"n_clusters": 5, "max_epochs": 10, "show_progress_bar": False, "trainer_kwargs": {"accelerator": "gpu"}}
    ae.tl.embed(a, **kw)
    ae.tl.embed(b, **kw)
    np.testing.assert_allclose(a.obsm["X_aestetik"], b.obsm["X_aestetik"], rtol=1e-3, atol=1e-3)
