"""Two-process DDP training on the CPU through trainer_kwargs: same quality, only rank 0 writes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from sklearn.metrics import adjusted_rand_score

import aestetik as ae

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, warnings
    import aestetik as ae
    from sklearn.metrics import adjusted_rand_score
    warnings.filterwarnings("ignore")
    adata = ae.datasets.synthetic(n_spots=600, random_state=0)
    ae.pp.transcriptomics(adata)
    ae.tl.embed(adata, n_clusters=5, max_epochs=10, n_mc_passes=10, show_progress_bar=False,
                trainer_kwargs={"accelerator": "cpu", "strategy": "ddp", "devices": 2})
    rank = int(os.environ.get("LOCAL_RANK", 0))
    record = {"rank": rank, "wrote": "X_aestetik" in adata.obsm}
    if record["wrote"]:
        ae.tl.cluster(adata, 5)
        record["ari"] = adjusted_rand_score(adata.obs["ground_truth"], adata.obs["aestetik_clusters"])
        record["epochs"] = len(adata.uns["aestetik"]["history"]["loss"])
    with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as f:
        json.dump(record, f)
    """
)


def test_ddp_on_two_cpu_processes(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    # Lightning's "ddp" launcher starts rank 1 by running the same command again
    subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=tmp_path, check=True, timeout=600)
    ranks = {r["rank"]: r for r in (json.loads(p.read_text()) for p in tmp_path.glob("rank*.json"))}
    assert set(ranks) == {0, 1}
    assert ranks[0]["wrote"] and not ranks[1]["wrote"]  # only rank 0 writes to adata
    assert ranks[0]["epochs"] == 10

    single = ae.datasets.synthetic(n_spots=600, random_state=0)
    ae.pp.transcriptomics(single)
    ae.tl.embed(single, n_clusters=5, max_epochs=10, n_mc_passes=10, show_progress_bar=False)
    ae.tl.cluster(single, 5)
    ari_single = adjusted_rand_score(single.obs["ground_truth"], single.obs["aestetik_clusters"])
    assert ranks[0]["ari"] > 0.6 and abs(ranks[0]["ari"] - ari_single) < 0.1


def test_ddp_spawn_brings_weights_and_history_back():
    adata = ae.datasets.synthetic(n_spots=300, random_state=0)
    ae.pp.transcriptomics(adata)
    ae.tl.embed(
        adata,
        n_clusters=3,
        max_epochs=3,
        n_mc_passes=5,
        show_progress_bar=False,
        trainer_kwargs={"accelerator": "cpu", "strategy": "ddp_spawn", "devices": 2},
    )
    uns = adata.uns["aestetik"]
    assert adata.obsm["X_aestetik"].shape == (300, 16)
    assert uns["n_epochs"] == 3 and len(uns["history"]["loss"]) == 3
