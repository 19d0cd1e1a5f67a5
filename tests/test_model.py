"""The AESTETIK model object: same result as tl.embed, files, transfer to new slides."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import aestetik as ae

from .conftest import FAST

TRAIN = {"max_epochs": 2, "show_progress_bar": False}
INFER = {"n_mc_passes": 5, "show_progress_bar": False}


@pytest.fixture(scope="module")
def trained():
    """A slide with expression features and the model trained on it, through tl.embed."""
    adata = ae.datasets.synthetic(n_spots=300, random_state=1)
    ae.pp.transcriptomics(adata)
    model = ae.tl.embed(adata, **FAST, return_model=True)
    return adata, model


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "aestetik_model"
    trained[1].save(path)
    return path


def test_embed_is_the_model_bit_for_bit(adata):
    model = ae.AESTETIK(adata, n_clusters=3)
    model.train(**TRAIN)
    direct = model.get_latent_representation(**INFER)
    ae.tl.embed(adata, **FAST)
    np.testing.assert_array_equal(direct, adata.obsm["X_aestetik"])


def test_train_starts_from_the_same_state_whatever_runs_in_between(adata):
    a = ae.AESTETIK(adata, n_clusters=3)
    b = ae.AESTETIK(adata, n_clusters=3)
    import torch

    torch.rand(100)  # the global generator moves on between building and training
    for m in (a, b):
        m.train(**TRAIN)
    np.testing.assert_array_equal(a.get_latent_representation(**INFER), b.get_latent_representation(**INFER))


def test_embed_returns_the_model_and_the_copy(adata):
    out, model = ae.tl.embed(adata, **FAST, return_model=True, copy=True)
    assert "X_aestetik" not in adata.obsm and "X_aestetik" in out.obsm
    assert isinstance(model, ae.AESTETIK) and model.is_trained
    assert "trained" in repr(model)


def test_save_load_round_trip_bit_for_bit(trained, saved):
    adata, model = trained
    loaded = ae.AESTETIK.load(saved)
    assert sorted(p.name for p in saved.iterdir()) == ["arrays.npz", "model.json", "weights.pt"]
    again = loaded.get_latent_representation(adata, **INFER)
    np.testing.assert_array_equal(again, adata.obsm["X_aestetik"])
    np.testing.assert_array_equal(model.get_latent_representation(adata, **INFER), again)
    assert loaded.settings == model.settings and loaded.params() == model.params()
    np.testing.assert_array_equal(loaded.history["loss"], model.history["loss"])
    # the loaded model embeds slides but does not train or guess its training slide
    with pytest.raises(ValueError, match="pass the slide"):
        loaded.get_latent_representation(**INFER)
    with pytest.raises(RuntimeError, match="already trained"):
        loaded.train(**TRAIN)


def test_load_to_an_explicit_device(saved, trained):
    loaded = ae.AESTETIK.load(saved, map_location="cpu")
    assert next(loaded.module.parameters()).device.type == "cpu"


def test_save_refuses_untrained_and_non_empty(adata, trained, tmp_path):
    with pytest.raises(RuntimeError, match="not trained"):
        ae.AESTETIK(adata, n_clusters=3).save(tmp_path / "m")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "other.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        trained[1].save(tmp_path / "full")
    trained[1].save(tmp_path / "full", overwrite=True)


def _copy_model(saved, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    return target


def test_load_refuses_a_future_format(saved, tmp_path):
    path = _copy_model(saved, tmp_path)
    meta = json.loads((path / "model.json").read_text())
    meta["format_version"] = 99
    meta["aestetik_version"] = "9.0.0"
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"aestetik 9\.0\.0 .*upgrade aestetik"):
        ae.AESTETIK.load(path)


@pytest.mark.parametrize("name", ["weights.pt", "arrays.npz", "model.json"])
def test_load_refuses_truncated_files(saved, tmp_path, name):
    path = _copy_model(saved, tmp_path)
    data = (path / name).read_bytes()
    (path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"{name} is corrupt or truncated"):
        ae.AESTETIK.load(path)


def test_load_names_a_missing_file(saved, tmp_path):
    path = _copy_model(saved, tmp_path)
    (path / "weights.pt").unlink()
    with pytest.raises(FileNotFoundError, match="weights.pt is missing"):
        ae.AESTETIK.load(path)
    with pytest.raises(FileNotFoundError, match="no saved aestetik model"):
        ae.AESTETIK.load(tmp_path / "nowhere")


def test_projection_reproduces_the_fitted_features(adata):
    again = adata.copy()
    del again.obsm["X_pca_transcriptomics"]
    ae.pp.transcriptomics(again, reference=adata)
    np.testing.assert_allclose(again.obsm["X_pca_transcriptomics"], adata.obsm["X_pca_transcriptomics"], atol=1e-4)
    assert again.uns["pca_transcriptomics"]["state"]["id"] == adata.uns["pca_transcriptomics"]["state"]["id"]


def test_new_slide_with_missing_genes_is_refused(trained):
    new = ae.datasets.synthetic(n_spots=200, random_state=5)
    dropped = trained[0].uns["pca_transcriptomics"]["state"]["genes"][:3]
    new = new[:, ~new.var_names.isin(dropped)].copy()
    with pytest.raises(KeyError, match=r"3 of the reference's .* genes are not in var_names"):
        ae.pp.transcriptomics(new, reference=trained[1])


def test_new_slide_needs_the_models_preprocessing(trained):
    new = ae.datasets.synthetic(n_spots=200, random_state=5)
    ae.pp.transcriptomics(new)  # fitted anew: another space
    with pytest.raises(ValueError, match=r"reference=model"):
        ae.tl.embed(new, model=trained[1])
    ae.pp.transcriptomics(new, reference=trained[1])
    ae.tl.embed(new, model=trained[1], n_mc_passes=5, show_progress_bar=False)
    assert new.obsm["X_aestetik"].shape == (200, 16)
    assert new.uns["aestetik"]["params"]["model"] == "reused"


def test_cluster_reference_reproduces_and_transfers(trained):
    adata = trained[0].copy()
    ae.tl.cluster(adata, 3, refine=False)
    again = adata.copy()
    ae.tl.cluster(again, refine=False, reference=adata)
    assert (again.obs["aestetik_clusters"] == adata.obs["aestetik_clusters"]).all()
    np.testing.assert_allclose(again.obs["aestetik_clusters_proba"], adata.obs["aestetik_clusters_proba"])
    with pytest.raises(KeyError, match="no fitted clusters"):
        ae.tl.cluster(again, reference=adata, key_added="other")


@pytest.mark.parametrize("method", ["kmeans", "leiden"])
def test_cluster_reference_without_a_mixture(trained, method):
    adata = trained[0].copy()
    ae.tl.cluster(adata, 3, method=method, refine=False)
    again = adata.copy()
    ae.tl.cluster(again, refine=False, reference=adata)
    # k-means clusters are the centres' Voronoi cells; graph clusters only nearly so
    assert adata_ari(again, adata) > (0.999 if method == "kmeans" else 0.8)


def adata_ari(a, b):
    return adjusted_rand_score(a.obs["aestetik_clusters"], b.obs["aestetik_clusters"])


def test_transfer_to_a_slide_of_the_same_tissue():
    """Two synthetic slides with a slide effect: the model of one gives the other its domains."""
    both = ae.datasets.synthetic(n_spots=600, n_samples=2, batch_effect=0.5, random_state=0)
    first = both[both.obs["sample"] == "synthetic_0"].copy()
    second = both[both.obs["sample"] == "synthetic_1"].copy()
    ae.pp.transcriptomics(first)
    ae.pp.transcriptomics(second, reference=first)
    model = ae.tl.embed(first, n_clusters=5, max_epochs=30, show_progress_bar=False, return_model=True)
    ae.tl.cluster(first, 5)
    ae.tl.embed(second, model=model, show_progress_bar=False)
    ae.tl.cluster(second, reference=first)
    assert list(second.obs["aestetik_clusters"].cat.categories) == list(first.obs["aestetik_clusters"].cat.categories)
    assert adjusted_rand_score(second.obs["ground_truth"], second.obs["aestetik_clusters"]) > 0.7
    # the same domain has the same label on both slides: same majority truth label per domain
    for c in first.obs["aestetik_clusters"].cat.categories:
        here = first.obs["ground_truth"][first.obs["aestetik_clusters"] == c].mode()[0]
        there = second.obs["ground_truth"][second.obs["aestetik_clusters"] == c]
        assert len(there) == 0 or there.mode()[0] == here


def test_model_rejects_unknown_options(adata):
    with pytest.raises(TypeError, match="unknown option"):
        ae.AESTETIK(adata, n_cluster=3)


def test_model_docstring_example():
    import doctest

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(recurse=False).find(ae.AESTETIK, "AESTETIK", globs={}):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


def _joint_ari(both, library_key):
    both = both.copy()
    ae.pp.transcriptomics(both, library_key=library_key)
    ae.tl.embed(both, n_clusters=5, max_epochs=30, library_key="sample", show_progress_bar=False)
    ae.tl.cluster(both, 5, library_key="sample")
    return [
        adjusted_rand_score(part.obs["ground_truth"], part.obs["aestetik_clusters"])
        for part in (both[both.obs["sample"] == s] for s in ("synthetic_0", "synthetic_1"))
    ]


def test_joint_model_of_two_slides_corrects_the_slide_effect():
    """One model on two slides with a slide effect: per-slide scaling gives shared domains, pooling does not."""
    both = ae.datasets.synthetic(n_spots=400, n_samples=2, batch_effect=0.5, random_state=0)
    scaled = _joint_ari(both, "sample")
    pooled = _joint_ari(both, None)
    assert min(scaled) > 0.7
    assert min(scaled) > max(pooled) + 0.2


def test_pseudo_labels_of_a_reference_slide():
    """pseudo_label_reference: the reference slide's pseudo-labels are its own clustering, the others assigned."""
    both = ae.datasets.synthetic(n_spots=200, n_samples=2, random_state=0)
    ae.pp.transcriptomics(both)
    first = both[both.obs["sample"] == "synthetic_0"].copy()
    opts = {"n_clusters": 3, "show_progress_bar": False}
    anchored = ae.AESTETIK(both, library_key="sample", pseudo_label_reference="synthetic_0", **opts)
    alone = ae.AESTETIK(first, **opts)  # the same features: the clusters of this slide alone
    on_first = (both.obs["sample"] == "synthetic_0").to_numpy()
    np.testing.assert_array_equal(anchored.pseudo_labels[on_first], alone.pseudo_labels)
    assert set(anchored.pseudo_labels[~on_first, 0]) <= set(alone.pseudo_labels[:, 0])
    assert anchored.params()["pseudo_label_reference"] == "synthetic_0"
    anchored.train(max_epochs=3, show_progress_bar=False)  # the update after epochs 1 and 2 is anchored too
    assert anchored.pseudo_labels_updated_at == [1, 2]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pseudo_label_reference": "synthetic_0"}, "needs library_key"),
        ({"pseudo_label_reference": "synthetic_9", "library_key": "sample"}, r"not a slide of adata.obs\['sample'\]"),
    ],
)
def test_pseudo_label_reference_errors(options, message):
    both = ae.datasets.synthetic(n_spots=100, n_samples=2, random_state=0)
    ae.pp.transcriptomics(both)
    with pytest.raises(ValueError, match=message):
        ae.tl.embed(both, **FAST, **options)
    assert "X_aestetik" not in both.obsm


def test_per_slide_scaling_projects_each_slide_on_its_own():
    both = ae.datasets.synthetic(n_spots=200, n_samples=2, batch_effect=0.5, random_state=0)
    ae.pp.transcriptomics(both, library_key="sample")
    assert both.uns["pca_transcriptomics"]["state"]["per_batch"]
    again = both.copy()
    ae.pp.transcriptomics(again, reference=both, library_key="sample")
    np.testing.assert_allclose(again.obsm["X_pca_transcriptomics"], both.obsm["X_pca_transcriptomics"], atol=1e-4)
    with pytest.raises(KeyError, match="library_key 'slide' not found"):
        ae.pp.transcriptomics(both, library_key="slide")


def test_transfer_with_morphology(tmp_path):
    both = ae.datasets.synthetic(n_spots=300, n_samples=2, random_state=3)
    first = both[both.obs["sample"] == "synthetic_0"].copy()
    second = both[both.obs["sample"] == "synthetic_1"].copy()
    ae.pp.transcriptomics(first)
    ae.pp.morphology(first, library_id="synthetic_0", show_progress_bar=False)
    model = ae.tl.embed(first, **FAST, return_model=True)
    assert model.uses_morphology and set(model.preprocessing) == {"expression", "morphology"}
    ae.pp.transcriptomics(second, reference=model)
    ae.pp.morphology(second, library_id="synthetic_1", show_progress_bar=False)  # fitted anew: refused
    with pytest.raises(ValueError, match=r"pp.morphology\(adata, reference=model\)"):
        ae.tl.embed(second, model=model)
    ae.pp.morphology(second, library_id="synthetic_1", reference=model, show_progress_bar=False)
    ae.tl.embed(second, model=model, n_mc_passes=5, show_progress_bar=False)
    model.save(tmp_path / "m")
    loaded = ae.AESTETIK.load(tmp_path / "m")
    np.testing.assert_array_equal(
        loaded.get_latent_representation(second, n_mc_passes=5, show_progress_bar=False), second.obsm["X_aestetik"]
    )
    # the same slide projected on its own fitted morphology reproduces its features
    again = first.copy()
    ae.pp.morphology(again, library_id="synthetic_0", reference=first, show_progress_bar=False)
    np.testing.assert_allclose(again.obsm["X_pca_morphology"], first.obsm["X_pca_morphology"], atol=1e-4)


def test_clusters_fitted_on_a_subsample_cover_every_spot(trained):
    adata = trained[0].copy()
    ae.tl.cluster(adata, 3, max_spots=100, random_state=0)
    uns = adata.uns["aestetik_clusters"]
    assert uns["fitted_on"] == 100 and uns["params"]["max_spots"] == 100
    assert adata.obs["aestetik_clusters"].notna().all()
    full = adata.copy()
    ae.tl.cluster(full, 3, random_state=0)
    assert "fitted_on" not in full.uns["aestetik_clusters"]  # 300 spots < the default 100,000
    assert adjusted_rand_score(full.obs["aestetik_clusters"], adata.obs["aestetik_clusters"]) > 0.8
    with pytest.raises(ValueError, match="pseudo_label_max_spots must be >= 3"):
        ae.tl.embed(adata, **FAST, pseudo_label_max_spots=2)


def test_morphology_scaled_per_slide():
    both = ae.datasets.synthetic(n_spots=200, n_samples=2, random_state=3)
    with pytest.raises(ValueError, match="needs library_key"):
        ae.pp.morphology(both, library_id="synthetic_0", scale_per_library=True, show_progress_bar=False)
    ae.pp.morphology(both, library_key="sample", scale_per_library=True, show_progress_bar=False)
    state = both.uns["pca_morphology"]["state"]
    assert state["per_library"] and both.uns["pca_morphology"]["params"]["scale_per_library"]
    x = both.obsm["X_pca_morphology"]
    for s in ("synthetic_0", "synthetic_1"):  # every slide centred on its own
        assert np.abs(x[(both.obs["sample"] == s).to_numpy()].mean(0)).max() < 1e-3
    again = both.copy()
    ae.pp.morphology(again, library_key="sample", reference=both, show_progress_bar=False)
    np.testing.assert_allclose(again.obsm["X_pca_morphology"], x, atol=1e-4)
