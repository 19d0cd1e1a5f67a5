from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from anndata import AnnData

from aestetik._clustering import check_method, check_mixture_init, fit_clusters, refine_labels
from aestetik._neighbors import knn_indices, neighbour_mean
from aestetik._spatialdata import check_data, copy_data
from aestetik._utils import (
    check_int,
    lattice_coordinates,
    minmax_scale,
    obsm_features,
    sample_codes,
    spatial_coordinates,
)
from aestetik.nn import (
    LOSS_TERMS,
    AestetikDataModule,
    AestetikModule,
    BestWeights,
    LossHistory,
    PseudoLabelUpdate,
    mc_dropout_embedding,
    neighbour_index,
)

logger = logging.getLogger("aestetik")

#: Default number of Monte-Carlo dropout passes, see :func:`embed`.
N_MC_PASSES = 100
_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


@contextlib.contextmanager
def _quiet_lightning(enabled: bool) -> Iterator[None]:
    """Silence Lightning's info messages (GPU available, seed set, ...) unless asked for."""
    if not enabled:
        yield
        return
    saved = {name: logging.getLogger(name).level for name in _LIGHTNING_LOGGERS}
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _pseudo_labels(
    x: np.ndarray,
    n_clusters: int,
    method: str,
    mixture_init: str,
    random_state: int,
    refine_neighbors: int = 0,
    coords: np.ndarray | None = None,
    samples: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    labels, proba, _ = fit_clusters(x, n_clusters, method=method, random_state=random_state, mixture_init=mixture_init)
    if refine_neighbors > 0:
        labels = refine_labels(labels, coords, proba=proba, samples=samples, n_neighbors=refine_neighbors)
        labels = np.unique(labels, return_inverse=True)[1]
    return labels, int(labels.max()) + 1


def embed(
    adata: AnnData | Any,
    *,
    n_clusters: int = 7,
    morphology_weight: float | None = None,
    window_size: int = 7,
    max_epochs: int = 100,
    expression_key: str = "X_pca_transcriptomics",
    morphology_key: str = "X_pca_morphology",
    library_key: str | None = None,
    coord_keys: Sequence[str] | None = None,
    spatial_key: str | None = None,
    pseudo_label_neighbors: int = 6,
    clustering_method: str = "bgm",
    mixture_init: str = "kmeans",
    refine_pseudo_labels: int = 0,
    pseudo_label_updates: int = 0,
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
    copy: bool = False,
) -> AnnData | Any | None:
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
        exists, else 0 (expression only; then the morphology features are not used at all).
        A modality whose pseudo-labels collapse to one cluster gets weight 0. With only a
        low-resolution image (a few pixels per spot), 0 did as well or better on the DLPFC
        slides we measured ("The parameters that matter" in the documentation).
    window_size
        Odd side of the neighbourhood window, at least 3 (on Visium, where ``array_col``
        steps by 2, 7 reaches 3 rows and 1.5 spot spacings sideways).
    max_epochs
        Training epochs.
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
        pseudo-labels follow tissue domains rather than the noise of single spots. ``6``: on
        Visium, the ring of spots around each spot. ``0``: cluster each spot's own features,
        as the published method.
    clustering_method
        Pseudo-label clustering: ``"bgm"``, ``"kmeans"``, ``"leiden"`` or ``"louvain"``.
    mixture_init
        Starts of the ``"bgm"`` mixture: ``"kmeans"`` or ``"random"`` (the published method);
        see :func:`aestetik.tl.cluster`.
    refine_pseudo_labels
        If positive, relabel the pseudo-labels by the kNN vote of :func:`aestetik.tl.cluster`
        with this many neighbours on the lattice coordinates before training (off by default).
    pseudo_label_updates
        Self-training (off by default): re-estimate the pseudo-labels this many times during
        training, at evenly spaced epochs, by clustering the current embedding (10
        Monte-Carlo passes) with ``clustering_method`` (and ``refine_pseudo_labels``). The
        new labels replace those of every modality in use.
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
    table_key
        For a ``spatialdata.SpatialData`` object: the table to read and write (as squidpy).
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None`` or the copy. Writes ``obsm[key_added]`` (``(n_obs, latent_dim)``) and
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
    # ---- validate everything before any work --------------------------------------------
    data, adata = adata, check_data(adata, table_key)
    n_clusters = check_int("n_clusters", n_clusters, minimum=2)
    window_size = check_int("window_size", window_size, minimum=3)
    if window_size % 2 == 0:
        raise ValueError(f"window_size must be odd, got {window_size}")
    max_epochs = check_int("max_epochs", max_epochs, minimum=1)
    n_mc_passes = check_int("n_mc_passes", n_mc_passes, minimum=1)
    n_repeats = check_int("n_repeats", n_repeats, minimum=1)
    refine_pseudo_labels = check_int("refine_pseudo_labels", refine_pseudo_labels, minimum=0)
    pseudo_label_neighbors = check_int("pseudo_label_neighbors", pseudo_label_neighbors, minimum=0)
    pseudo_label_updates = check_int("pseudo_label_updates", pseudo_label_updates, minimum=0)
    latent_dim = check_int("latent_dim", latent_dim, minimum=1)
    n_ensemble = check_int("n_ensemble", n_ensemble, minimum=1)
    check_method(clustering_method)
    check_mixture_init(mixture_init)
    if not (0.0 <= dropout < 1.0):
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if not (0.0 <= validation_fraction < 1.0):
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if not total_weight > 0:
        raise ValueError(f"total_weight must be positive, got {total_weight}")
    has_morphology = morphology_key in adata.obsm
    if morphology_weight is None:
        morphology_weight = 1.5 if has_morphology else 0.0
    if not (0.0 <= morphology_weight <= total_weight):
        raise ValueError(f"morphology_weight must be in [0, total_weight={total_weight}], got {morphology_weight}")
    if morphology_weight > 0 and not has_morphology:
        raise KeyError(
            f"morphology_weight={morphology_weight} needs morphology features in adata.obsm[{morphology_key!r}] "
            "(see aestetik.pp.morphology), or pass morphology_weight=0 for expression only"
        )
    if trainer_kwargs is not None and not isinstance(trainer_kwargs, Mapping):
        raise TypeError(f"trainer_kwargs must be a mapping, got {type(trainer_kwargs).__name__}")
    if adata.n_obs < n_clusters:
        raise ValueError(f"n_clusters={n_clusters} is larger than the number of spots ({adata.n_obs})")

    x_expr = obsm_features(adata, expression_key, what="expression_key")
    x_morph = obsm_features(adata, morphology_key, what="morphology_key") if has_morphology else None
    rows, cols, used_coord_keys = lattice_coordinates(adata, coord_keys)
    samples = sample_codes(adata, library_key)
    coords, coord_source = spatial_coordinates(data, adata, spatial_key) if pseudo_label_neighbors else (None, None)
    t0 = time.perf_counter()
    index = neighbour_index(rows, cols, window_size, samples)  # raises on duplicated coordinates
    t_grid = time.perf_counter() - t0

    params = {
        "n_clusters": n_clusters,
        "morphology_weight": float(morphology_weight),
        "window_size": window_size,
        "max_epochs": max_epochs,
        "expression_key": expression_key,
        "morphology_key": morphology_key if has_morphology else None,
        "library_key": library_key,
        "coord_keys": list(used_coord_keys),
        "clustering_method": clustering_method,
        "mixture_init": mixture_init,
        "spatial_key": spatial_key,
        "pseudo_label_neighbors": pseudo_label_neighbors,
        "pseudo_label_coordinates": coord_source,
        "refine_pseudo_labels": refine_pseudo_labels,
        "pseudo_label_updates": pseudo_label_updates,
        "total_weight": float(total_weight),
        "rec_alpha": float(rec_alpha),
        "triplet_alpha": float(triplet_alpha),
        "n_repeats": n_repeats,
        "batch_size": batch_size,
        "lr": float(lr),
        "weight_decay": float(weight_decay),
        "latent_dim": latent_dim,
        "hidden_channels": hidden_channels,
        "kernel_size": kernel_size,
        "dropout": float(dropout),
        "n_ensemble": n_ensemble,
        "n_mc_passes": n_mc_passes,
        "validation_fraction": float(validation_fraction),
        "early_stopping_patience": early_stopping_patience,
        "random_state": random_state,
    }

    # ---- pseudo-labels and modality weights -------------------------------------------
    t0 = time.perf_counter()
    L.seed_everything(random_state, workers=True, verbose=False)
    expression_weight = float(total_weight - morphology_weight)
    labels = np.zeros((adata.n_obs, 2), dtype=np.int64)
    k = [1, 1]
    refine_args = (refine_pseudo_labels, np.column_stack([rows, cols]).astype(np.float64), samples)
    x_expr_pl, x_morph_pl = x_expr, x_morph
    if pseudo_label_neighbors:
        nbrs = knn_indices(coords, pseudo_label_neighbors, samples=samples)
        x_expr_pl = neighbour_mean(x_expr, nbrs)
        x_morph_pl = neighbour_mean(x_morph, nbrs) if x_morph is not None and morphology_weight > 0 else None
    if expression_weight > 0:
        labels[:, 0], k[0] = _pseudo_labels(
            x_expr_pl, n_clusters, clustering_method, mixture_init, random_state, *refine_args
        )
        if k[0] < 2:
            logger.warning("expression pseudo-labels collapsed to one cluster: expression weight set to 0")
            expression_weight = 0.0
    if morphology_weight > 0:
        assert x_morph is not None
        labels[:, 1], k[1] = _pseudo_labels(
            x_morph_pl, n_clusters, clustering_method, mixture_init, random_state, *refine_args
        )
        if k[1] < 2:
            logger.warning("morphology pseudo-labels collapsed to one cluster: morphology weight set to 0")
            morphology_weight = 0.0
    if expression_weight == 0 and morphology_weight == 0:
        raise ValueError("Both modality weights are 0 after pseudo-labelling: nothing to train on")
    t_labels = time.perf_counter() - t0

    # ---- data, model, trainer ----------------------------------------------------------
    features = minmax_scale(x_expr)
    if x_morph is not None and morphology_weight > 0:  # weight 0: expression only, no morphology input
        features = np.concatenate([features, minmax_scale(x_morph)], axis=1)
    bs = batch_size or min(8192, adata.n_obs)
    datamodule = AestetikDataModule(
        features, index, labels, batch_size=bs, validation_fraction=validation_fraction, seed=random_state
    )
    module = AestetikModule(
        features.shape[1],
        window_size,
        n_expression=x_expr.shape[1],
        # with label updates, any of the K clusters may appear later on
        n_clusters=(k[0], k[1])
        if not pseudo_label_updates
        else (n_clusters if k[0] > 1 else 1, n_clusters if k[1] > 1 else 1),
        expression_weight=expression_weight,
        morphology_weight=float(morphology_weight),
        rec_alpha=rec_alpha,
        triplet_alpha=triplet_alpha,
        n_repeats=n_repeats,
        lr=lr,
        weight_decay=weight_decay,
        latent_dim=latent_dim,
        hidden_channels=hidden_channels,
        kernel_size=kernel_size,
        dropout=dropout,
        n_members=n_ensemble,
    )
    history = LossHistory()
    best = BestWeights("val_loss")
    callbacks: list = [history]
    if validation_fraction > 0:
        from lightning.pytorch.callbacks import EarlyStopping

        callbacks += [EarlyStopping("val_loss", patience=early_stopping_patience), best]
    if pseudo_label_updates:
        at = sorted({round(max_epochs * (i + 1) / (pseudo_label_updates + 1)) for i in range(pseudo_label_updates)})

        def relabel(emb: np.ndarray) -> np.ndarray:
            return _pseudo_labels(emb, n_clusters, clustering_method, mixture_init, random_state, *refine_args)[0]

        active = [m for m, w in enumerate((expression_weight, morphology_weight)) if w > 0]
        updater = PseudoLabelUpdate(at, relabel, columns=active, seed=random_state)
        callbacks.append(updater)
    user = dict(trainer_kwargs or {})
    user_callbacks = user.pop("callbacks", None) or []
    if not isinstance(user_callbacks, list | tuple):
        user_callbacks = [user_callbacks]
    from lightning.pytorch.callbacks import ModelCheckpoint

    defaults: dict[str, Any] = {
        "max_epochs": max_epochs,
        "accelerator": "auto",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": any(isinstance(c, ModelCheckpoint) for c in user_callbacks),
        "enable_progress_bar": show_progress_bar,
        "enable_model_summary": False,
        "deterministic": "warn",
        "num_sanity_val_steps": 0,
        "limit_val_batches": 1.0 if validation_fraction > 0 else 0,
        "log_every_n_steps": 1,
    }
    trainer_args = defaults | user
    trainer_args["callbacks"] = [*user_callbacks, *callbacks]

    deterministic_before = torch.are_deterministic_algorithms_enabled()
    warn_only_before = torch.is_deterministic_algorithms_warn_only_enabled()
    t0 = time.perf_counter()
    try:
        with _quiet_lightning(not user.get("logger")):
            trainer = L.Trainer(**trainer_args)
            trainer.fit(module, datamodule=datamodule)
    finally:
        torch.use_deterministic_algorithms(deterministic_before, warn_only=warn_only_before)
    t_train = time.perf_counter() - t0

    # ---- Monte-Carlo dropout inference, in spot order -----------------------------------
    t0 = time.perf_counter()
    device = trainer.strategy.root_device  # Lightning moves the module back to the CPU after fitting
    embedding = mc_dropout_embedding(
        module.model,
        datamodule.grid,
        n_passes=n_mc_passes,
        batch_size=min(bs, 4096),
        recalibrate_batch_size=bs,
        device=device,
        seed=random_state,
        show_progress_bar=show_progress_bar,
    )
    t_infer = time.perf_counter() - t0

    # ---- write results --------------------------------------------------------------------
    if not trainer.is_global_zero:
        return None
    if copy:
        data, adata = copy_data(data, table_key)
    uns_key = key_added.removeprefix("X_")
    adata.obsm[key_added] = embedding
    hist = {
        name.removeprefix("train_"): np.asarray(v) for name, v in history.history.items() if name.startswith("train_")
    }
    hist |= {name: np.asarray(v) for name, v in history.history.items() if name.startswith("val_")}
    adata.uns[uns_key] = {
        "params": params,
        "history": {name: hist[name] for name in LOSS_TERMS if name in hist}
        | {n: v for n, v in hist.items() if n.startswith("val_")},
        "weights": {"expression": expression_weight, "morphology": float(morphology_weight)},
        "pseudo_label_sizes": {
            "expression": np.bincount(labels[:, 0]) if expression_weight > 0 else np.zeros(0, dtype=np.int64),
            "morphology": np.bincount(labels[:, 1]) if morphology_weight > 0 else np.zeros(0, dtype=np.int64),
        },
        "n_epochs": int(trainer.current_epoch),
        "timings": {
            "grid": t_grid,
            "pseudo_labels": t_labels,
            "training": t_train,
            "inference": t_infer,
            "total": time.perf_counter() - t_start,
        },
    }
    if best.best_epoch is not None:
        adata.uns[uns_key]["best_epoch"] = best.best_epoch
    if pseudo_label_updates:
        adata.uns[uns_key]["pseudo_labels_updated_at"] = np.asarray(updater.updated_at, dtype=np.int64)
    logger.info("added obsm[%r] and uns[%r] in %.1f s", key_added, uns_key, time.perf_counter() - t_start)
    return data if copy else None
