"""One signature convention for the public pp/tl/pl functions, in the spirit of scanpy's test_package_structure."""

from __future__ import annotations

import inspect

import pytest

import aestetik as ae

FUNCTIONS = {
    f"{mod.__name__.split('.')[-1]}.{name}": getattr(mod, name) for mod in (ae.pp, ae.tl, ae.pl) for name in mod.__all__
}
#: Options that may also be given by position, as in scanpy (``sc.tl.leiden(adata, 1.0)``, ``sc.pl.spatial(adata, color)``).
POSITIONAL = {"tl.cluster": {"n_clusters"}, "pl.spatial": {"color"}}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_adata_first_then_keyword_only_options(name):
    params = list(inspect.signature(FUNCTIONS[name]).parameters.values())
    assert params[0].name == "adata" and params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for p in params[1:]:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        allowed = p.name in POSITIONAL.get(name, set())
        assert p.kind is inspect.Parameter.KEYWORD_ONLY or allowed, f"{name}: {p.name} should be keyword-only"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_spatialdata_everywhere(name):
    sig = inspect.signature(FUNCTIONS[name])
    assert "table_key" in sig.parameters
    assert "SpatialData" in str(sig.parameters["adata"].annotation)


@pytest.mark.parametrize("name", sorted(n for n in FUNCTIONS if not n.startswith("pl.")))
def test_writers_have_key_added_and_copy(name):
    sig = inspect.signature(FUNCTIONS[name])
    assert {"key_added", "copy"} <= set(sig.parameters)
    assert sig.parameters["copy"].default is False
    assert "SpatialData" in str(sig.return_annotation)


@pytest.mark.parametrize("name", sorted(n for n in FUNCTIONS if n.startswith("pl.")))
def test_plots_take_ax_show_return_fig(name):
    assert {"ax", "show", "return_fig"} <= set(inspect.signature(FUNCTIONS[name]).parameters)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_spatialdata_without_table_key_is_a_type_error(name):
    from aestetik._spatialdata import check_data

    sdata = ae.datasets.synthetic(n_spots=30, as_spatialdata=True)
    with pytest.raises(TypeError, match="table_key"):
        check_data(sdata, None)
    with pytest.raises(TypeError, match="table_key"):
        FUNCTIONS[name](sdata)


def test_lattice_parameters_follow_key_added():
    import anndata as ad
    import numpy as np

    a = ad.AnnData(np.ones((50, 1)), obsm={"spatial": np.random.default_rng(0).uniform(0, 100, (50, 2))})
    ae.pp.lattice(a)
    ae.pp.lattice(a, key_added=("r", "c"))
    assert "aestetik_lattice" in a.uns and "aestetik_lattice_r_c" in a.uns
