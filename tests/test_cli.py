from __future__ import annotations

import anndata as ad

from aestetik.__main__ import main


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
