from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

import aestetik as ae
from aestetik._patches import Level, PatchDataset, choose_level, level_from_array, tiff_levels
from aestetik.nn import HistologyFeatures

QUIET = {"show_progress_bar": False}


@pytest.fixture(scope="module")
def slide():
    return ae.datasets.synthetic(n_spots=400, n_domains=4, random_state=3)


def _same_up_to_sign(a: np.ndarray, b: np.ndarray, atol: float = 1e-3) -> bool:
    signs = np.sign((a * b).sum(0))
    return np.allclose(a, b * signs, atol=atol)


def _hires(adata):
    lib = next(iter(adata.uns["spatial"]))
    return adata.uns["spatial"][lib]["images"]["hires"], adata.uns["spatial"][lib]["scalefactors"]


def test_histology_features_shape_and_colour_sensitivity():
    enc = HistologyFeatures()
    white, pink = torch.ones(2, 3, 32, 32), torch.ones(2, 3, 32, 32) * torch.tensor([0.9, 0.6, 0.8]).view(1, 3, 1, 1)
    f_white, f_pink = enc(white), enc(pink)
    assert f_white.shape == (2, enc.n_features) == (2, 69)
    assert torch.isfinite(f_white).all()
    assert not torch.allclose(f_white, f_pink)
    noisy = pink + 0.1 * torch.randn(pink.shape, generator=torch.Generator().manual_seed(0))
    texture = slice(33, 33 + 12 * 3)  # flat patches have no texture, noisy ones do
    assert float(f_pink[:, texture].abs().max()) < 1e-3
    assert float(enc(noisy)[:, texture].abs().sum()) > 0.5


def test_morphology_anndata_recovers_domains(slide):
    adata = slide.copy()
    ae.pp.morphology(adata, **QUIET)
    x = adata.obsm["X_pca_morphology"]
    assert x.shape == (adata.n_obs, 15) and x.dtype == np.float32
    uns = adata.uns["pca_morphology"]
    assert uns["params"]["encoder"] == "histology" and uns["params"]["image"] == "hires"
    assert uns["n_features"] == 69 and len(uns["variance_ratio"]) == 15
    ae.tl.cluster(adata, 4, use_rep="X_pca_morphology", method="kmeans", refine=False, key_added="m")
    assert adjusted_rand_score(adata.obs["ground_truth"], adata.obs["m"]) > 0.5  # morphology alone


def test_morphology_image_keys_and_raw(slide):
    adata = slide.copy()
    ae.pp.morphology(adata, image="lowres", n_comps=5, raw_key="X_morph_raw", key_added="X_m", **QUIET)
    assert adata.obsm["X_m"].shape == (adata.n_obs, 5)
    assert adata.obsm["X_morph_raw"].shape == (adata.n_obs, 69)
    assert adata.uns["m"]["params"]["image"] == "lowres"


def test_morphology_array_and_tiff_sources_match_uns_image(slide, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    adata = slide.copy()
    ae.pp.morphology(adata, raw_key="raw", **QUIET)
    img, sf = _hires(adata)
    # the same image given as an array / a TIFF file in "full resolution" = hires pixels
    b = slide.copy()
    b.obsm["spatial"] = b.obsm["spatial"] * sf["tissue_hires_scalef"]
    d = sf["spot_diameter_fullres"] * sf["tissue_hires_scalef"]
    ae.pp.morphology(b, image=img, spot_diameter=d, raw_key="raw", **QUIET)
    np.testing.assert_allclose(b.obsm["raw"], adata.obsm["raw"], rtol=1e-4, atol=1e-4)
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, img, photometric="rgb", tile=(64, 64))
    c = slide.copy()
    c.obsm["spatial"] = b.obsm["spatial"]
    ae.pp.morphology(c, image=path, spot_diameter=d, raw_key="raw", **QUIET)
    np.testing.assert_allclose(c.obsm["raw"], adata.obsm["raw"], rtol=1e-4, atol=1e-4)
    assert c.uns["pca_morphology"]["params"]["image"] == str(path)


def test_pyramidal_tiff_levels_and_choice(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(256, 256, 3), dtype=np.uint8)
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(img, subifds=2, photometric="rgb", tile=(64, 64))
        tif.write(img[::2, ::2], subfiletype=1, photometric="rgb", tile=(64, 64))
        tif.write(img[::4, ::4], subfiletype=1, photometric="rgb", tile=(64, 64))
    levels = tiff_levels(path)
    assert [lv.downsample for lv in levels] == [1.0, 2.0, 4.0]
    assert levels[2].height == 64 and levels[0].n_channels == 3
    assert choose_level(levels, side_full=128, input_size=32).downsample == 4.0
    assert choose_level(levels, side_full=128, input_size=64).downsample == 2.0
    assert choose_level(levels, side_full=16, input_size=64).downsample == 1.0  # upsampled from the finest
    patch = PatchDataset(levels[1], np.array([[32.0, 32.0]]), 16)[0]
    np.testing.assert_allclose(patch.permute(1, 2, 0).numpy(), img[::2, ::2][24:40, 24:40] / 255, atol=1e-6)


def test_patches_padded_white_at_the_border():
    img = np.zeros((20, 30, 3), dtype=np.uint8)
    ds = PatchDataset(level_from_array(img), np.array([[0.0, 0.0], [15.0, 10.0]]), 6)
    corner, inside = ds[0], ds[1]
    assert corner.shape == (3, 6, 6)
    assert torch.all(corner[:, :3, :] == 1.0) and torch.all(corner[:, :, :3] == 1.0)  # outside: white
    assert torch.all(corner[:, 3:, 3:] == 0.0) and torch.all(inside == 0.0)
    batch = ds.__getitems__([0, 1])
    assert torch.equal(batch[0], corner) and torch.equal(batch[1], inside)


def test_grayscale_and_rgba_conversions(slide):
    img, sf = _hires(slide)
    base = slide.copy()
    ae.pp.morphology(base, raw_key="raw", **QUIET)
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    a = slide.copy()
    a.uns["spatial"]["synthetic"]["images"] = {"hires": rgba}
    ae.pp.morphology(a, raw_key="raw", **QUIET)
    np.testing.assert_allclose(a.obsm["raw"], base.obsm["raw"], rtol=1e-5, atol=1e-5)  # alpha dropped
    g = slide.copy()
    g.uns["spatial"]["synthetic"]["images"] = {"hires": img.mean(-1).astype(np.uint8)}
    ae.pp.morphology(g, raw_key="raw", **QUIET)
    assert g.obsm["X_pca_morphology"].shape == (slide.n_obs, 15)
    r, gch, b = np.split(g.obsm["raw"][:, :15], 5, axis=1)[0].T  # channel means are equal: repeated grey
    np.testing.assert_allclose(r, gch, atol=1e-6)


def test_spatialdata_source_matches_anndata():
    pytest.importorskip("spatialdata")
    sdata = ae.datasets.synthetic(n_spots=300, random_state=2, as_spatialdata=True)
    adata = ae.datasets.synthetic(n_spots=300, random_state=2)
    ae.pp.morphology(sdata, table_key="table", raw_key="raw", **QUIET)
    ae.pp.morphology(adata, raw_key="raw", **QUIET)
    table = sdata.tables["table"]
    np.testing.assert_allclose(table.obsm["raw"], adata.obsm["raw"], rtol=1e-4, atol=1e-4)
    params = table.uns["pca_morphology"]["params"]
    assert params["image_key"] == "synthetic_hires" and params["shapes_key"] == "synthetic_spots"
    assert params["patch_side_px"] == adata.uns["pca_morphology"]["params"]["patch_side_px"]


def test_spatialdata_chooses_a_coarser_level_for_large_patches():
    pytest.importorskip("spatialdata")
    sdata = ae.datasets.synthetic(n_spots=200, random_state=2, as_spatialdata=True)
    ae.pp.morphology(sdata, table_key="table", patch_scale=8.0, input_size=16, **QUIET)
    # a 8-diameter patch is ~88 px at full scale: level 1/4 still gives >= 16 px
    assert sdata.tables["table"].uns["pca_morphology"]["params"]["patch_side_px"] == [22]


def test_custom_module_and_callable(slide):
    class MeanColour(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    a, b = slide.copy(), slide.copy()
    ae.pp.morphology(a, encoder=MeanColour(), input_size=16, n_comps=3, raw_key="raw", **QUIET)
    ae.pp.morphology(b, encoder=lambda x: x.mean(dim=(2, 3)), input_size=16, n_comps=3, raw_key="raw", **QUIET)
    assert a.obsm["raw"].shape == (slide.n_obs, 3)
    np.testing.assert_allclose(a.obsm["raw"], b.obsm["raw"])
    assert a.uns["pca_morphology"]["params"]["encoder"] == "MeanColour"


def test_copy_returns_new_object(slide):
    a = slide.copy()
    out = ae.pp.morphology(a, copy=True, **QUIET)
    assert "X_pca_morphology" in out.obsm and "X_pca_morphology" not in a.obsm


@pytest.mark.parametrize(
    ("mutate", "kwargs", "err", "match"),
    [
        (lambda a: a.uns.pop("spatial"), {}, KeyError, "no image"),
        (lambda a: None, {"image": "highres"}, KeyError, "'highres' not in"),
        (lambda a: None, {"library_id": "nope"}, KeyError, "library id 'nope'"),
        (
            lambda a: a.uns["spatial"]["synthetic"]["scalefactors"].pop("tissue_hires_scalef"),
            {},
            KeyError,
            "tissue_hires_scalef",
        ),
        (lambda a: a.obsm.__setitem__("spatial", a.obsm["spatial"] + 1e6), {}, ValueError, "outside the image"),
        (lambda a: None, {"encoder": lambda x: x.mean(dim=1)}, ValueError, r"\(batch, features\)"),
        (lambda a: None, {"encoder": lambda x: x[:0].mean(dim=(2, 3))}, ValueError, r"\(batch, features\)"),
        (lambda a: None, {"n_comps": 0}, ValueError, "n_comps"),
        (lambda a: None, {"image": np.zeros((10, 10, 2))}, ValueError, "2 channels"),
        (lambda a: None, {"image": np.zeros((10, 10, 3))}, ValueError, "spot_diameter"),
        (lambda a: None, {"encoder": 3}, TypeError, "encoder"),
        (lambda a: a.obsm.pop("spatial"), {}, KeyError, "obsm\\['spatial'\\]"),
    ],
)
def test_bad_input_writes_nothing(slide, mutate, kwargs, err, match):
    adata = slide.copy()
    mutate(adata)
    before_obsm, before_uns = set(adata.obsm), set(adata.uns)
    with pytest.raises(err, match=match):
        ae.pp.morphology(adata, **kwargs, **QUIET)
    assert set(adata.obsm) == before_obsm and set(adata.uns) == before_uns


def test_spatialdata_bad_keys():
    pytest.importorskip("spatialdata")
    sdata = ae.datasets.synthetic(n_spots=100, random_state=2, as_spatialdata=True)
    with pytest.raises(KeyError, match="table_key 'nope'"):
        ae.pp.morphology(sdata, table_key="nope", **QUIET)
    with pytest.raises(KeyError, match="image_key 'nope'"):
        ae.pp.morphology(sdata, table_key="table", image_key="nope", **QUIET)
    with pytest.raises(TypeError, match="table_key"):
        ae.pp.morphology(sdata, **QUIET)
    assert "X_pca_morphology" not in sdata.tables["table"].obsm


@pytest.mark.vision
def test_torchvision_backbone_random_weights(slide, tmp_path):
    torchvision = pytest.importorskip("torchvision")
    a = slide.copy()
    ae.pp.morphology(a, encoder="resnet18", weights=None, input_size=64, n_comps=5, raw_key="raw", **QUIET)
    assert a.obsm["raw"].shape == (slide.n_obs, 512)
    assert a.uns["pca_morphology"]["params"]["encoder"] == "resnet18"
    # a local weights file gives the same features as the module it was saved from
    model = torchvision.models.resnet18(weights=None)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    b = slide.copy()
    ae.pp.morphology(b, encoder="resnet18", weights=tmp_path / "w.pt", input_size=64, n_comps=5, raw_key="raw", **QUIET)
    model.fc = torch.nn.Identity()
    from aestetik.nn._image import ImageNetNormalize

    c = slide.copy()
    ae.pp.morphology(c, encoder=ImageNetNormalize(model).eval(), input_size=64, n_comps=5, raw_key="raw", **QUIET)
    np.testing.assert_allclose(b.obsm["raw"], c.obsm["raw"], rtol=1e-4, atol=1e-4)


@pytest.mark.vision
def test_torchvision_inception_v3_is_the_papers_2048_features(slide):
    pytest.importorskip("torchvision")
    a = slide[:40].copy()
    ae.pp.morphology(a, encoder="inception_v3", weights=None, n_comps=5, raw_key="raw", batch_size=20, **QUIET)
    assert a.obsm["raw"].shape == (40, 2048)
    assert a.uns["pca_morphology"]["params"]["input_size"] == 299


@pytest.mark.vision
def test_unknown_torchvision_model_or_missing_weights(slide):
    pytest.importorskip("torchvision")
    with pytest.raises(ValueError, match="unknown torchvision model"):
        ae.pp.morphology(slide.copy(), encoder="resnet9000", **QUIET)
    with pytest.raises(FileNotFoundError, match="weights file"):
        ae.pp.morphology(slide.copy(), encoder="resnet18", weights="/nonexistent.pt", **QUIET)


def test_level_wraps_channels_first():
    lv = level_from_array(np.zeros((3, 40, 50)))
    assert (lv.channel_axis, lv.height, lv.width) == (0, 40, 50)
    assert isinstance(lv, Level)


def test_coarse_image_is_left_out_by_default(slide, tmp_path):
    """Patches narrower than MIN_TEXTURE_SIDE_PX pixels show colour, not texture: pp.morphology
    warns, and tl.embed trains on expression only unless morphology_weight is given."""
    import sys

    import scanpy as sc

    from aestetik._patches import MIN_TEXTURE_SIDE_PX

    from .conftest import FAST

    fine, coarse = slide.copy(), slide.copy()
    log = tmp_path / "scanpy.log"
    sc.settings.logfile = log
    try:
        for adata, image in ((fine, "hires"), (coarse, "lowres")):
            ae.pp.transcriptomics(adata)
            ae.pp.morphology(adata, image=image, **QUIET)
            side = min(adata.uns["pca_morphology"]["params"]["patch_side_px"])
            assert (side >= MIN_TEXTURE_SIDE_PX) == (image == "hires"), (image, side)
            assert ("not tissue texture" in log.read_text()) == (image == "lowres")
    finally:
        sc.settings.logfile = sys.stderr
    ae.tl.embed(fine, **FAST)
    assert fine.uns["aestetik"]["weights"] == {"expression": 1.5, "morphology": 1.5}
    ae.tl.embed(coarse, **FAST)
    assert coarse.uns["aestetik"]["weights"] == {"expression": 3.0, "morphology": 0.0}
    assert coarse.uns["aestetik"]["params"]["morphology_weight"] == 0.0
    ae.tl.embed(coarse, morphology_weight=1.5, **FAST)  # asked for: used
    assert coarse.uns["aestetik"]["weights"] == {"expression": 1.5, "morphology": 1.5}
    del coarse.uns["pca_morphology"]  # features made elsewhere, no record of their patches: the default weight
    ae.tl.embed(coarse, **FAST)
    assert coarse.uns["aestetik"]["weights"]["morphology"] == 1.5
