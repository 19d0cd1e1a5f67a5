from __future__ import annotations

import anndata as ad
import pytest

import aestetik
from aestetik.__main__ import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"aestetik {aestetik.__version__}"


def test_help_shows_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "--version" in top and "demo" in top
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    assert "Run the whole AESTETIK pipeline" in text  # the subcommand's description
    defaults = ["(default: 100 up to 8,192 spots", "(default: 1000)", "(default: 0)", "(default: aestetik_demo)"]
    for default in defaults:
        assert default in text, default
    assert "(default: None)" not in text and "(default: False)" not in text
    for option in ["--input", "--n-clusters", "--layer", "--truth-key", "--n-spots", "--max-epochs", "--seed"]:
        assert option in text
    assert "--no-morphology" in text and "--out" in text


def test_demo_writes_figure_and_h5ad(tmp_path, capsys):
    assert main(["demo", "--n-spots", "300", "--max-epochs", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ARI aestetik_clusters" in out and "ARI expression_clusters" in out
    assert (tmp_path / "aestetik_demo.png").stat().st_size > 10_000
    assert (tmp_path / "aestetik_loss.png").exists()
    a = ad.read_h5ad(tmp_path / "aestetik_demo.h5ad")
    assert "X_aestetik" in a.obsm and "aestetik_clusters" in a.obs


def test_demo_on_user_file(tmp_path, capsys):
    import aestetik as ae

    path = tmp_path / "in.h5ad"
    src = ae.datasets.synthetic(n_spots=250)
    del src.uns["spatial"]  # no image: plain spatial scatter
    src.write_h5ad(path)
    assert (
        main(["demo", "--input", str(path), "--n-clusters", "4", "--max-epochs", "2", "--out", str(tmp_path / "o")])
        == 0
    )
    assert (tmp_path / "o" / "aestetik_demo.png").exists()


@pytest.mark.parametrize("flags", [[], ["--no-morphology"]], ids=["image", "no-morphology"])
def test_demo_uses_the_image_of_the_input(tmp_path, caplog, flags):
    import aestetik as ae

    path = tmp_path / "in.h5ad"
    src = ae.datasets.synthetic(n_spots=200, n_genes=100, random_state=1)
    assert src.uns["spatial"]["synthetic"]["images"]["hires"].ndim == 3  # scanpy layout, RGB uint8
    src.write_h5ad(path)
    out = tmp_path / "o"
    args = ["demo", "--input", str(path), "--n-clusters", "3", "--max-epochs", "2", "--out", str(out)]
    with caplog.at_level("INFO", logger="aestetik"):
        assert main(args + flags) == 0
    a = ad.read_h5ad(out / "aestetik_demo.h5ad")
    weights = a.uns["aestetik"]["weights"]
    if flags:
        assert "X_pca_morphology" not in a.obsm and "pca_morphology" not in a.uns
        assert weights["morphology"] == 0
        assert "--no-morphology" in caplog.text
    else:
        assert a.obsm["X_pca_morphology"].shape == (200, 15)
        assert a.uns["pca_morphology"]["params"]["library_ids"] == ["synthetic"]
        assert weights["morphology"] == 1.5  # the default weight once morphology features exist
        assert "aestetik.pp.morphology" in caplog.text
