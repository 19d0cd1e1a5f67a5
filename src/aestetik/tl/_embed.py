"""``tl.embed``: the scanpy-style entry point, a thin wrapper over :class:`aestetik.AESTETIK`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from anndata import AnnData

from aestetik import _logging as logger
from aestetik._docs import doc_copy, doc_table_key, inject_docs
from aestetik._model import AESTETIK, N_MC_PASSES, PSEUDO_LABEL_UPDATES, check_trainer_kwargs
from aestetik._spatialdata import check_data, copy_data
from aestetik._utils import check_int

if TYPE_CHECKING:
    from spatialdata import SpatialData


@inject_docs(doc_table_key=doc_table_key, doc_copy=doc_copy)
def embed(
    adata: AnnData | SpatialData,
    *,
    n_clusters: int = 7,
    morphology_weight: float | None = None,
    window_size: int = 7,
    max_epochs: int | None = None,
    expression_key: str = "X_pca_transcriptomics",
    morphology_key: str = "X_pca_morphology",
    library_key: str | None = None,
    coord_keys: Sequence[str] | None = None,
    spatial_key: str | None = None,
    pseudo_label_neighbors: int | None = None,
    clustering_method: str = "bgm",
    mixture_init: str = "kmeans",
    pseudo_label_max_spots: int | None = 100_000,
    refine_pseudo_labels: int = 0,
    pseudo_label_updates: int = PSEUDO_LABEL_UPDATES,
    pseudo_label_reference: str | None = None,
    total_weight: float = 3.0,
    rec_alpha: float = 1.0,
    triplet_alpha: float = 1.0,
    n_repeats: int = 3,
    batch_size: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 1e-6,
    latent_dim: int = 16,
    hidden_channels: int = 64,
    kernel_size: int = 3,
    dropout: float = 0.3,
    n_ensemble: int = 3,
    n_mc_passes: int = N_MC_PASSES,
    validation_fraction: float = 0.0,
    early_stopping_patience: int = 10,
    key_added: str = "X_aestetik",
    random_state: int = 0,
    trainer_kwargs: Mapping[str, Any] | None = None,
    show_progress_bar: bool = True,
    table_key: str | None = None,
    model: AESTETIK | None = None,
    return_model: bool = False,
    copy: bool = False,
) -> AnnData | SpatialData | AESTETIK | tuple[AnnData | SpatialData, AESTETIK] | None:
    """Learn the AESTETIK embedding of every spot.

    Each modality's features are clustered into ``n_clusters`` pseudo-labels (after
    averaging every spot's features with its nearest spots'), every spot becomes a
    ``window_size x window_size`` window of its lattice neighbours' features, and an
    ensemble of convolutional autoencoders is trained with Lightning on an L1
    reconstruction loss plus a multi-triplet loss per modality that pulls spots with the
    same pseudo-label together. The embedding is the mean of ``n_mc_passes`` Monte-Carlo
    dropout passes of the encoder. The documentation's "Method" page says what each step
    computes, and "The parameters that matter" what was measured for the defaults.

    Parameters
    ----------
    adata
        Annotated data with ``obsm[expression_key]`` (see :func:`aestetik.pp.transcriptomics`),
        optionally ``obsm[morphology_key]`` (:func:`aestetik.pp.morphology`), and integer
        lattice coordinates in ``obs`` (``array_row``/``array_col`` or ``x_array``/``y_array``;
        :func:`aestetik.pp.lattice` makes them for imaging data).
    n_clusters
        Pseudo-label clusters per modality (``K``), e.g. the expected number of domains.
    morphology_weight
        Weight of the morphology terms in the loss, in ``[0, total_weight]``; expression
        gets ``total_weight - morphology_weight``. ``None``: 1.5 when ``obsm[morphology_key]``
        exists, else 0 (expression only; then the morphology features are not used at all);
        also 0 when :func:`aestetik.pp.morphology` recorded patches narrower than 8 image
        pixels (e.g. Visium spots on the low-resolution image), which show colour, not
        texture, and did not improve the domains on the DLPFC slides we measured ("The
        parameters that matter" in the documentation). A modality whose pseudo-labels
        collapse to one cluster gets weight 0.
    window_size
        Odd side of the neighbourhood window, at least 3 (on Visium, where ``array_col``
        steps by 2, 7 reaches 3 rows and 1.5 spot spacings sideways).
    max_epochs
        Training epochs. ``None``: 100 for a slide of up to 8,192 spots (one batch of 8,192
        spots per epoch), then as many as give about the same number of optimisation steps
        (``100 * 8192 / n_spots``, at least one): 8 epochs at 100,000 spots, one at a million
        ("Large slides, several GPUs" in the documentation has the measurements).
    expression_key, morphology_key
        ``obsm`` keys of the modality features.
    library_key
        ``obs`` column of the sample of each spot; windows and neighbours stay within a sample.
    coord_keys
        ``obs`` columns of the lattice coordinates, if not the defaults.
    spatial_key
        ``obsm`` key of the spots' positions for ``pseudo_label_neighbors``; default
        ``obsm["spatial"]``, else (SpatialData) the centres of the spots' shapes, else the
        lattice coordinates.
    pseudo_label_neighbors
        Before clustering a modality's features into pseudo-labels, average every spot's
        features with those of its this many nearest spots (within its sample), so that the
        pseudo-labels follow tissue domains rather than the noise of single spots. ``None``:
        6 on a hexagonal lattice (Visium: the ring of spots around each spot, each spot holding
        several cells), 18 on a square one (Visium HD bins, cells placed by
        :func:`aestetik.pp.lattice`: about one cell each), so that both average over about 20
        cells. ``0``: cluster each spot's own features, as the published method.
    clustering_method
        Pseudo-label clustering: ``"bgm"``, ``"kmeans"``, ``"leiden"`` or ``"louvain"``.
    mixture_init
        Starts of the ``"bgm"`` mixture: ``"kmeans"`` or ``"random"`` (the published method);
        see :func:`aestetik.tl.cluster`.
    pseudo_label_max_spots
        Fit each pseudo-label clustering on at most this many spots (drawn with
        ``random_state``) and assign every spot to it, as ``max_spots`` of
        :func:`aestetik.tl.cluster`; ``None`` fits on all spots.
    refine_pseudo_labels
        If positive, relabel the pseudo-labels by the kNN vote of :func:`aestetik.tl.cluster`
        with this many neighbours on the lattice coordinates before training (off by default).
    pseudo_label_updates
        Self-training: re-estimate the pseudo-labels this many times during training, at
        evenly spaced epochs (the default 2: after a third and two thirds of the epochs, never
        after the last one, so one-epoch trainings keep the first labels), by clustering the
        current embedding (10 Monte-Carlo passes) with ``clustering_method`` (and
        ``refine_pseudo_labels``). The new labels replace those of every modality in use. The
        embedding sees each spot's whole window, the first pseudo-labels only its nearest
        spots, so the later labels follow the domains more closely. ``0``: the first
        pseudo-labels for the whole training, as the published method.
    pseudo_label_reference
        With ``library_key``: the slide (a value of ``obs[library_key]``) whose clusters are
        the pseudo-labels of all slides. Each pseudo-label clustering (the first one and every
        update) is fitted on this slide's spots only, and the spots of the other slides are
        assigned to its clusters, as :func:`aestetik.tl.cluster` with ``reference`` does. For
        slides of different donors or protocols, where one clustering of all slides splits
        them by slide rather than by domain; pick the slide with the clearest structure.
        ``None``: one clustering of all spots. "A model across slides" in the documentation
        has the measurements.
    total_weight
        Sum of the two modality weights.
    rec_alpha, triplet_alpha
        Weights of the reconstruction and triplet terms within each modality.
    n_repeats
        Negatives drawn per other pseudo-label cluster for every anchor (and ``(K - 1) *
        n_repeats`` positives), from the batch; the published method draws 1.
    batch_size
        Spots per batch; default ``min(8192, n_obs)``.
    lr, weight_decay
        Adam (amsgrad) learning rate and weight decay.
    latent_dim
        Size of the embedding.
    hidden_channels
        Convolution channels of each ensemble member.
    kernel_size
        Side of the convolution kernel (reduced to ``window_size - 1`` for small windows).
    dropout
        Channel dropout probability, in training and in the Monte-Carlo passes.
    n_ensemble
        Number of encoder/decoder pairs whose median is the output.
    n_mc_passes
        Monte-Carlo dropout passes averaged for the embedding (the published method uses
        1000; 100 gives the same domains at a tenth of the cost). Before them, the encoder's
        batch-norm statistics are recomputed on all spots under the final weights (see
        :func:`aestetik.nn.recalibrate_batchnorm`).
    validation_fraction
        Share of spots held out to monitor ``val_loss``; when > 0, training stops early
        after ``early_stopping_patience`` epochs without improvement and the best weights
        are restored (kept in memory, no files written).
    early_stopping_patience
        See ``validation_fraction``.
    key_added
        ``obsm`` key of the embedding; other results go to ``uns[key_added.removeprefix("X_")]``.
    random_state
        Seed of everything random (pseudo-labels, initialisation, batches, triplets,
        dropout). The same seed gives the same embedding on the CPU, bit for bit; on GPUs
        some kernels are not deterministic (a warning says which).
    trainer_kwargs
        Passed to :class:`lightning.pytorch.Trainer` over our defaults (``accelerator="auto"``,
        ``devices=1``, ``logger=False``, ``enable_checkpointing=False``, ``max_epochs``),
        e.g. ``{"accelerator": "gpu", "devices": 4, "strategy": "ddp"}``, ``precision``,
        ``callbacks`` or a ``logger``.
    show_progress_bar
        Show Lightning's and the inference progress bars.
    {doc_table_key}
    model
        A trained :class:`aestetik.AESTETIK` (e.g. from ``return_model=True`` on another
        slide, or :meth:`aestetik.AESTETIK.load`): embed this slide with it, without
        training; the model options above are then ignored. The slide's features must be
        made with ``reference=model`` (:func:`aestetik.pp.transcriptomics`).
    return_model
        Also return the trained :class:`aestetik.AESTETIK` (to embed other slides or save it).
    {doc_copy}

    Returns
    -------
    ``None`` or the copy; with ``return_model``, the model (or ``(copy, model)``). Writes ``obsm[key_added]`` (``(n_obs, latent_dim)``) and
    ``uns[key]`` with ``params``, ``history`` (per-epoch ``loss``, ``rec_expression``,
    ``triplet_expression``, ``rec_morphology``, ``triplet_morphology``, and the ``val_``
    ones; ``loss`` is the weighted total, ``total_weight``-scaled as in the formula of the
    Method page), ``weights`` (effective modality weights), ``pseudo_label_sizes`` and
    ``timings`` (seconds per stage).

    Examples
    --------
    >>> import aestetik as ae
    >>> adata = ae.datasets.synthetic(n_spots=300)
    >>> ae.pp.transcriptomics(adata)
    >>> ae.tl.embed(adata, n_clusters=3, max_epochs=2, show_progress_bar=False)
    >>> adata.obsm["X_aestetik"].shape
    (300, 16)
    """
    t_start = time.perf_counter()
    if model is not None:
        return _embed_with(model, adata, n_mc_passes, key_added, show_progress_bar, table_key, copy, t_start)
    data, table = adata, check_data(adata, table_key)
    if max_epochs is not None:
        max_epochs = check_int("max_epochs", max_epochs, minimum=1)
    n_mc_passes = check_int("n_mc_passes", n_mc_passes, minimum=1)
    if not (0.0 <= validation_fraction < 1.0):
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    check_trainer_kwargs(trainer_kwargs)
    options = {
        "n_clusters": n_clusters,
        "morphology_weight": morphology_weight,
        "window_size": window_size,
        "expression_key": expression_key,
        "morphology_key": morphology_key,
        "library_key": library_key,
        "coord_keys": coord_keys,
        "spatial_key": spatial_key,
        "pseudo_label_neighbors": pseudo_label_neighbors,
        "clustering_method": clustering_method,
        "mixture_init": mixture_init,
        "pseudo_label_max_spots": pseudo_label_max_spots,
        "refine_pseudo_labels": refine_pseudo_labels,
        "pseudo_label_updates": pseudo_label_updates,
        "pseudo_label_reference": pseudo_label_reference,
        "total_weight": total_weight,
        "rec_alpha": rec_alpha,
        "triplet_alpha": triplet_alpha,
        "n_repeats": n_repeats,
        "lr": lr,
        "weight_decay": weight_decay,
        "latent_dim": latent_dim,
        "hidden_channels": hidden_channels,
        "kernel_size": kernel_size,
        "dropout": dropout,
        "n_ensemble": n_ensemble,
        "random_state": random_state,
    }
    trained = AESTETIK(data, table_key=table_key, show_progress_bar=show_progress_bar, **options)
    trained.train(
        max_epochs,
        batch_size=batch_size,
        validation_fraction=validation_fraction,
        early_stopping_patience=early_stopping_patience,
        trainer_kwargs=trainer_kwargs,
        show_progress_bar=show_progress_bar,
    )
    embedding = trained.get_latent_representation(n_mc_passes=n_mc_passes, show_progress_bar=show_progress_bar)
    if not trained.is_global_zero:  # other DDP ranks: only rank 0 writes
        return None
    if copy:
        data, table = copy_data(data, table_key)
    _write(table, trained, embedding, key_added, n_mc_passes, t_start)
    if return_model:
        return (data, trained) if copy else trained
    return data if copy else None


def _params(model: AESTETIK, n_mc_passes: int) -> dict[str, Any]:
    """``uns[...]["params"]``: the model's options, its training options and the inference passes."""
    p = model.params()
    t = model.train_params
    order = [
        "n_clusters", "morphology_weight", "window_size", "max_epochs", "expression_key", "morphology_key",
        "library_key", "coord_keys", "clustering_method", "mixture_init", "spatial_key",
        "pseudo_label_neighbors", "pseudo_label_coordinates", "pseudo_label_max_spots", "refine_pseudo_labels",
        "pseudo_label_updates", "pseudo_label_reference",
        "total_weight", "rec_alpha", "triplet_alpha", "n_repeats", "batch_size", "lr", "weight_decay",
        "latent_dim", "hidden_channels", "kernel_size", "dropout", "n_ensemble", "n_mc_passes",
        "validation_fraction", "early_stopping_patience", "random_state",
    ]  # fmt: skip
    merged = p | t | {"n_mc_passes": n_mc_passes}
    return {name: merged[name] for name in order}


def _write(table: AnnData, model: AESTETIK, embedding: np.ndarray, key_added: str, n_mc_passes: int, t_start) -> None:
    """Write the embedding and ``uns[key]`` (params, history, weights, pseudo-label sizes, timings)."""
    uns_key = key_added.removeprefix("X_")
    table.obsm[key_added] = embedding
    labels, weights = model.pseudo_labels, model.weights
    timings = model.timings
    table.uns[uns_key] = {
        "params": _params(model, n_mc_passes),
        "history": dict(model.history),
        "weights": dict(weights),
        "pseudo_label_sizes": {
            name: np.bincount(labels[:, m]) if weights[name] > 0 else np.zeros(0, dtype=np.int64)
            for m, name in enumerate(("expression", "morphology"))
        },
        "n_epochs": model.n_epochs,
        "timings": {
            "grid": timings["grid"],
            "pseudo_labels": timings["pseudo_labels"],
            "training": timings["training"],
            "inference": timings["inference"],
            "total": time.perf_counter() - t_start,
        },
    }
    if model.best_epoch is not None:
        table.uns[uns_key]["best_epoch"] = model.best_epoch
    if model.settings.pseudo_label_updates:
        table.uns[uns_key]["pseudo_labels_updated_at"] = np.asarray(model.pseudo_labels_updated_at, dtype=np.int64)
    logger.info("added obsm[%r] and uns[%r] in %.1f s", key_added, uns_key, time.perf_counter() - t_start)


def _embed_with(model: AESTETIK, adata, n_mc_passes, key_added, show_progress_bar, table_key, copy, t_start):
    """:func:`embed` with a trained ``model``: embed this slide without training."""
    if not isinstance(model, AESTETIK):
        raise TypeError(f"model must be an aestetik.AESTETIK, got {type(model).__name__}")
    n_mc_passes = check_int("n_mc_passes", n_mc_passes, minimum=1)
    data = adata
    embedding = model.get_latent_representation(
        data, n_mc_passes=n_mc_passes, table_key=table_key, show_progress_bar=show_progress_bar
    )
    if copy:
        data, _ = copy_data(data, table_key)
    table = check_data(data, table_key)
    uns_key = key_added.removeprefix("X_")
    table.obsm[key_added] = embedding
    table.uns[uns_key] = {
        "params": _params(model, n_mc_passes) | {"model": "reused"},
        "weights": dict(model.weights),
        "timings": {"inference": model.timings["inference"], "total": time.perf_counter() - t_start},
    }
    logger.info("added obsm[%r] and uns[%r] with a trained model", key_added, uns_key)
    return data if copy else None
