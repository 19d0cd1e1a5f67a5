from __future__ import annotations

from pathlib import Path

import pytest

import aestetik as ae

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(name: str) -> Path:
    """Path of a file in ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture(autouse=True)
def _quiet():
    """scanpy's default verbosity (warnings) for every test, whatever a test set before."""
    import scanpy as sc

    before = sc.settings.verbosity
    sc.settings.verbosity = "warning"
    yield
    sc.settings.verbosity = before


@pytest.fixture(scope="session")
def _synthetic_features():
    adata = ae.datasets.synthetic(n_spots=300, random_state=1)
    ae.pp.transcriptomics(adata)
    return adata


@pytest.fixture
def adata(_synthetic_features):
    """A 300-spot synthetic slide with expression features (a fresh copy per test)."""
    return _synthetic_features.copy()


FAST = {"max_epochs": 2, "show_progress_bar": False, "n_mc_passes": 5, "n_clusters": 3}
