"""The AESTETIK model: pseudo-labels, data module, network, training and inference in one object.

:func:`aestetik.tl.embed` is the scanpy-style entry point; this object is for users who
want to keep the trained network: embed other slides with it, save it and load it.
Each step lives in its own function below (options, inputs, pseudo-labels, trainer,
inference); the files are written by :mod:`aestetik._model_io`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from anndata import AnnData
from tqdm.auto import tqdm

from aestetik import _logging as logger
from aestetik._clustering import assign_clusters, check_method, check_mixture_init, fit_clusters, refine_labels
from aestetik._neighbors import knn_indices, neighbour_mean
from aestetik._patches import MIN_TEXTURE_SIDE_PX
from aestetik._spatialdata import check_data
from aestetik._utils import (
    check_int,
    checked_lattice,
    library_ids,
    obsm_features,
    sample_codes,
    spatial_coordinates,
)
from aestetik.nn import (
    AestetikDataModule,
    AestetikModule,
    BestWeights,
    LossHistory,
    NeighbourhoodGrid,
    PseudoLabelUpdate,
    mc_dropout_embedding,
    neighbour_index,
)

if TYPE_CHECKING:
    from spatialdata import SpatialData


#: Default number of Monte-Carlo dropout passes of the embedding.
N_MC_PASSES = 100
#: Default weight of the morphology terms (of ``total_weight`` 3) when the image shows texture.
MORPHOLOGY_WEIGHT = 1.5
#: Spots per training batch by default (a Visium slide fits in one).
BATCH_SIZE = 8192
#: Default training of a slide that fits in one batch; larger slides get fewer epochs of more
#: batches (see :func:`default_max_epochs`), never fewer than ``MIN_EPOCHS``.
MAX_EPOCHS = 100
MIN_EPOCHS = 1
#: Spots averaged into each spot's pseudo-label features on a hexagonal lattice (Visium spots,
#: each holding several cells): the ring around it.
SPOT_NEIGHBORS = 6
#: The same on a square lattice (Visium HD bins, cells placed by ``pp.lattice``: about one cell
#: each): two rings' worth, so that both average over about 20 cells.
CELL_NEIGHBORS = 18
#: Times the pseudo-labels are re-estimated from the embedding during training (self-training).
PSEUDO_LABEL_UPDATES = 2
_LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


@dataclass(frozen=True)
class Settings:
    """The options of an :class:`AESTETIK` model (see its docstring), validated."""

    n_clusters: int = 7
    morphology_weight: float | None = None
    window_size: int = 7
    expression_key: str = "X_pca_transcriptomics"
    morphology_key: str = "X_pca_morphology"
    library_key: str | None = None
    coord_keys: tuple[str, ...] | None = None
    spatial_key: str | None = None
    pseudo_label_neighbors: int | None = None
    clustering_method: str = "bgm"
    mixture_init: str = "kmeans"
    pseudo_label_max_spots: int | None = 100_000
    refine_pseudo_labels: int = 0
    pseudo_label_updates: int = PSEUDO_LABEL_UPDATES
    pseudo_label_reference: str | None = None
    total_weight: float = 3.0
    rec_alpha: float = 1.0
    triplet_alpha: float = 1.0
    n_repeats: int = 3
    lr: float = 1e-3
    weight_decay: float = 1e-6
    latent_dim: int = 16
    hidden_channels: int = 64
    kernel_size: int = 3
    dropout: float = 0.3
    n_ensemble: int = 3
    random_state: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (
            ("n_clusters", 2),
            ("window_size", 3),
            ("n_repeats", 1),
            ("refine_pseudo_labels", 0),
            ("pseudo_label_updates", 0),
            ("latent_dim", 1),
            ("n_ensemble", 1),
            ("hidden_channels", 1),
            ("kernel_size", 1),
        ):
            check_int(name, getattr(self, name), minimum=minimum)
        if self.pseudo_label_neighbors is not None:
            check_int("pseudo_label_neighbors", self.pseudo_label_neighbors, minimum=0)
        if self.pseudo_label_max_spots is not None:
            check_int("pseudo_label_max_spots", self.pseudo_label_max_spots, minimum=self.n_clusters)
        if self.window_size % 2 == 0:
            raise ValueError(f"window_size must be odd, got {self.window_size}")
        check_method(self.clustering_method)
        check_mixture_init(self.mixture_init)
        if not (0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.total_weight > 0:
            raise ValueError(f"total_weight must be positive, got {self.total_weight}")
        w = self.morphology_weight
        if w is not None and not (0.0 <= w <= self.total_weight):
            raise ValueError(f"morphology_weight must be in [0, total_weight={self.total_weight}], got {w}")


@dataclass
class Inputs:
    """What the network sees of one slide: scaled features, window table and samples."""

    features: np.ndarray  # (N, C) float32, expression columns first
    index: np.ndarray  # (N, w*w) neighbour table
    samples: np.ndarray  # (N,) sample codes


@contextlib.contextmanager
def quiet_lightning(enabled: bool) -> Iterator[None]:
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


# ---- the steps -----------------------------------------------------------------------------


def scale_features(x: np.ndarray, lo: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Min-max scale with the statistics of the training slide (``[0, 1]`` there)."""
    return ((x - lo) / span).astype(np.float32)


def minmax_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column minimum and range of ``x`` (constant columns get range 1)."""
    lo = x.min(axis=0, keepdims=True)
    span = x.max(axis=0, keepdims=True) - lo
    span[span == 0] = 1.0
    return lo, span


def training_features(x_expr: np.ndarray, x_morph: np.ndarray | None) -> tuple[np.ndarray, dict]:
    """The network's input channels and their scaling statistics (new slides are scaled with them).

    Expression, then morphology if used, each column min-max scaled to ``[0, 1]``.
    """
    scaling = {"expression": minmax_stats(x_expr)}
    parts = [scale_features(x_expr, *scaling["expression"])]
    if x_morph is not None:
        scaling["morphology"] = minmax_stats(x_morph)
        parts.append(scale_features(x_morph, *scaling["morphology"]))
    return (np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]), scaling


def cluster_labels(
    x: np.ndarray, s: Settings, refine: tuple, fit_on: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Pseudo-labels of one modality: the clustering of ``x``, optionally refined in space.

    ``fit_on`` (a boolean mask of the rows, e.g. one slide's spots): the clusters are fitted
    on those rows only and every row is assigned to them.
    """
    labels, proba, info = fit_clusters(
        x if fit_on is None else x[fit_on],
        s.n_clusters,
        method=s.clustering_method,
        random_state=s.random_state,
        mixture_init=s.mixture_init,
        max_spots=s.pseudo_label_max_spots,
    )
    if fit_on is not None:
        labels, proba = assign_clusters(x, info["model"])
    n_neighbors, coords, samples = refine
    if n_neighbors > 0:
        labels = refine_labels(labels, coords, proba=proba, samples=samples, n_neighbors=n_neighbors)
        labels = np.unique(labels, return_inverse=True)[1]
    return labels, int(labels.max()) + 1


def _relabel(
    embedding: np.ndarray, *, settings: Settings, refine: tuple, fit_on: np.ndarray | None = None
) -> np.ndarray:
    """The updated pseudo-labels of a self-training step: the clusters of the current embedding."""
    return cluster_labels(embedding, settings, refine, fit_on)[0]


def reference_spots(table: AnnData, s: Settings) -> np.ndarray | None:
    """The spots of the ``pseudo_label_reference`` slide (a boolean mask), or ``None`` for all spots."""
    if s.pseudo_label_reference is None:
        return None
    if s.library_key is None:
        raise ValueError(
            f"pseudo_label_reference={s.pseudo_label_reference!r} needs library_key, the obs column that "
            "names each spot's slide"
        )
    ids = library_ids(table, s.library_key)
    mask = ids == str(s.pseudo_label_reference)
    if not mask.any():
        slides = sorted(set(ids.tolist()))
        raise ValueError(
            f"pseudo_label_reference={s.pseudo_label_reference!r} is not a slide of adata.obs[{s.library_key!r}] "
            f"(its slides: {slides[:10]}{' ...' if len(slides) > 10 else ''})"
        )
    if mask.sum() < s.n_clusters:
        raise ValueError(
            f"pseudo_label_reference={s.pseudo_label_reference!r} has {int(mask.sum())} spots, fewer than "
            f"n_clusters={s.n_clusters}"
        )
    logger.info(
        f"tl.embed: pseudo-label clusters fitted on the {int(mask.sum())} spots of slide "
        f"{s.pseudo_label_reference!r}; the {int((~mask).sum())} spots of the other slides are assigned to them"
    )
    return mask


def pseudo_labels(
    x_expr: np.ndarray,
    x_morph: np.ndarray | None,
    weights: tuple[float, float],
    s: Settings,
    *,
    coords: np.ndarray | None,
    refine: tuple,
    samples: np.ndarray,
    fit_on: np.ndarray | None = None,
    show_progress_bar: bool = False,
) -> tuple[np.ndarray, list[int], tuple[float, float]]:
    """``(N, 2)`` pseudo-labels (expression, morphology), clusters found, and the weights.

    Each modality with a positive weight is clustered after averaging every spot's
    features with its ``pseudo_label_neighbors`` nearest spots (the clusters fitted on the
    ``fit_on`` spots only, if given); a modality whose labels collapse to one cluster gets
    weight 0.
    """
    w = list(weights)
    if s.pseudo_label_neighbors:
        nbrs = knn_indices(coords, s.pseudo_label_neighbors, samples=samples)
        x_expr = neighbour_mean(x_expr, nbrs)
        x_morph = neighbour_mean(x_morph, nbrs) if x_morph is not None and w[1] > 0 else None
    labels = np.zeros((len(x_expr), 2), dtype=np.int64)
    k = [1, 1]
    todo = [(m, name, x) for m, (name, x) in enumerate((("expression", x_expr), ("morphology", x_morph))) if w[m] > 0]
    bar = tqdm(todo, desc="pseudo-labels", unit="modality", disable=not show_progress_bar, leave=False)
    for m, name, x in bar:
        bar.set_postfix_str(f"{name}: {s.clustering_method}, K={s.n_clusters}")
        labels[:, m], k[m] = cluster_labels(x, s, refine, fit_on)
        if k[m] < 2:
            logger.warning("%s pseudo-labels collapsed to one cluster: %s weight set to 0", name, name)
            w[m] = 0.0
    expression_weight, morphology_weight = w
    if expression_weight == 0 and morphology_weight == 0:
        raise ValueError("Both modality weights are 0 after pseudo-labelling: nothing to train on")
    return labels, k, (expression_weight, morphology_weight)


def default_max_epochs(n_spots: int) -> int:
    """Epochs that give about as many optimisation steps as ``MAX_EPOCHS`` epochs of one full batch.

    100 epochs up to ``BATCH_SIZE`` spots (one batch per epoch, 100 steps), then
    ``100 * 8192 / n_spots`` epochs, rounded, at least ``MIN_EPOCHS``: at 100,000 spots 8 epochs
    of 13 batches (104 steps), at a million one epoch of 123 batches, instead of 12,300 steps
    for 100 epochs.
    """
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, round(MAX_EPOCHS * BATCH_SIZE / max(n_spots, 1)))))


def update_epochs(max_epochs: int, n_updates: int) -> list[int]:
    """Epochs after which the pseudo-labels are re-estimated: evenly spaced, never after the last one.

    ``n_updates`` updates split training into ``n_updates + 1`` about equal parts (100 epochs, 2
    updates: after epochs 33 and 67). An update after the last epoch would train on nothing, so
    short trainings get fewer updates (3 epochs: after 1 and 2; one epoch: none).
    """
    at = {round(max_epochs * (i + 1) / (n_updates + 1)) for i in range(n_updates)}
    return sorted(e for e in at if 1 <= e < max_epochs)


def default_pseudo_label_neighbors(rows: np.ndarray, cols: np.ndarray) -> int:
    """``SPOT_NEIGHBORS`` on a hexagonal lattice, ``CELL_NEIGHBORS`` on a square one.

    Visium's hexagonal lattice doubles its columns, so every spot's ``row + col`` is even;
    on a square lattice (Visium HD bins, ``pp.lattice``) both parities occur. A Visium spot
    (55 um) holds several cells, a bin of 8-16 um or a placed cell about one: averaging over
    the ring of 6 spots or over 18 cells covers about the same number of cells.
    """
    hexagonal = np.unique((rows + cols) % 2).size == 1
    n = SPOT_NEIGHBORS if hexagonal else CELL_NEIGHBORS
    logger.info(
        f"tl.embed: pseudo-labels from every spot averaged with its {n} nearest spots "
        f"({'hexagonal lattice: Visium spots' if hexagonal else 'square lattice: bins or cells'})"
    )
    return n


def default_morphology_weight(table: AnnData, morphology_key: str) -> float:
    """``MORPHOLOGY_WEIGHT``, or 0 where ``pp.morphology`` recorded patches too coarse to show texture.

    Features made elsewhere (no record of their patches) get the default weight.
    """
    params = table.uns.get(morphology_key.removeprefix("X_"), {})
    sides = params.get("params", {}).get("patch_side_px") if isinstance(params, Mapping) else None
    if sides is None or len(np.atleast_1d(sides)) == 0:
        return MORPHOLOGY_WEIGHT
    side = int(np.min(sides))
    if side >= MIN_TEXTURE_SIDE_PX:
        return MORPHOLOGY_WEIGHT
    logger.info(
        f"tl.embed: expression only (morphology_weight=0): the morphology patches span {side} pixels "
        f"(fewer than {MIN_TEXTURE_SIDE_PX}); pass morphology_weight to use them anyway"
    )
    return 0.0


def check_trainer_kwargs(trainer_kwargs: object) -> None:
    """``trainer_kwargs`` must be a mapping (or ``None``)."""
    if trainer_kwargs is not None and not isinstance(trainer_kwargs, Mapping):
        raise TypeError(f"trainer_kwargs must be a mapping, got {type(trainer_kwargs).__name__}")


def trainer_arguments(
    user_kwargs: Mapping[str, Any] | None,
    callbacks: list,
    *,
    max_epochs: int,
    validation: bool,
    show_progress_bar: bool,
) -> tuple[dict[str, Any], bool]:
    """Our Trainer defaults under the user's ``trainer_kwargs``; also whether the user set a logger."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    check_trainer_kwargs(user_kwargs)
    user = dict(user_kwargs or {})
    user_callbacks = user.pop("callbacks", None) or []
    if not isinstance(user_callbacks, list | tuple):
        user_callbacks = [user_callbacks]
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
        "limit_val_batches": 1.0 if validation else 0,
        "log_every_n_steps": 1,
    }
    args = defaults | user
    args["callbacks"] = [*user_callbacks, *callbacks]
    return args, bool(user.get("logger"))


# ---- the model -----------------------------------------------------------------------------


class AESTETIK:
    """A trainable, reusable AESTETIK model of one slide (or several, with ``library_key``).

    Building the model reads the slide's features and lattice and computes the
    pseudo-labels; :meth:`train` fits the network with Lightning;
    :meth:`get_latent_representation` returns the embedding of the training slide or
    of a new slide whose features were projected with ``reference=model`` (see
    :func:`aestetik.pp.transcriptomics`); :meth:`save` and :meth:`load` keep it on disk.
    :func:`aestetik.tl.embed` does all of this in one call (``return_model=True`` hands
    the model back).

    Parameters
    ----------
    adata
        The training slide(s): AnnData (or SpatialData with ``table_key``) with
        ``obsm[expression_key]``, optionally ``obsm[morphology_key]``, and lattice coordinates.
    **options
        The model options of :func:`aestetik.tl.embed` (``n_clusters``,
        ``morphology_weight``, ``window_size``, the keys, the pseudo-label options, the loss
        weights, ``lr``, ``weight_decay``, the architecture and ``random_state``), keyword only.
    table_key
        For a ``spatialdata.SpatialData`` object: the table to read.
    show_progress_bar
        Show a progress bar over the pseudo-label clusterings (a few seconds to minutes).

    Examples
    --------
    >>> import aestetik as ae
    >>> adata = ae.datasets.synthetic(n_spots=300)
    >>> ae.pp.transcriptomics(adata)
    >>> model = ae.AESTETIK(adata, n_clusters=3, show_progress_bar=False)
    >>> model.train(max_epochs=2, show_progress_bar=False)
    >>> model.get_latent_representation(n_mc_passes=5, show_progress_bar=False).shape
    (300, 16)
    """

    def __init__(
        self,
        adata: AnnData | SpatialData,
        *,
        table_key: str | None = None,
        show_progress_bar: bool = True,
        **options: Any,
    ) -> None:
        t_start = time.perf_counter()
        unknown = set(options) - set(Settings.__dataclass_fields__)
        if unknown:
            raise TypeError(
                f"unknown option(s) {sorted(unknown)}; the options are {list(Settings.__dataclass_fields__)}"
            )
        if options.get("coord_keys") is not None:
            options["coord_keys"] = tuple(options["coord_keys"])
        data, table = adata, check_data(adata, table_key)
        morphology_key = options.get("morphology_key", Settings.morphology_key)
        has_morphology = morphology_key in table.obsm
        if options.get("morphology_weight") is None:
            options["morphology_weight"] = default_morphology_weight(table, morphology_key) if has_morphology else 0.0
        s = Settings(**options)
        if s.morphology_weight > 0 and not has_morphology:
            raise KeyError(
                f"morphology_weight={s.morphology_weight} needs morphology features in adata.obsm[{s.morphology_key!r}] "
                "(see aestetik.pp.morphology), or pass morphology_weight=0 for expression only"
            )
        if table.n_obs < s.n_clusters:
            raise ValueError(f"n_clusters={s.n_clusters} is larger than the number of spots ({table.n_obs})")
        x_expr = obsm_features(table, s.expression_key, what="expression_key")
        x_morph = obsm_features(table, s.morphology_key, what="morphology_key") if has_morphology else None
        samples = sample_codes(table, s.library_key)
        fit_on = reference_spots(table, s)
        rows, cols, used_keys, positions = checked_lattice(data, table, s.coord_keys, s.spatial_key, samples)
        if s.pseudo_label_neighbors is None:
            s = replace(s, pseudo_label_neighbors=default_pseudo_label_neighbors(rows, cols))
        self.settings = s
        coords, coord_source = (None, None)
        if s.pseudo_label_neighbors:  # the positions read for the check, else the fallbacks
            coords, coord_source = (
                positions if positions[0] is not None else spatial_coordinates(data, table, s.spatial_key)
            )
        t0 = time.perf_counter()
        index = neighbour_index(rows, cols, s.window_size, samples)  # raises on duplicated coordinates
        self.timings = {"grid": time.perf_counter() - t0}

        t0 = time.perf_counter()
        L.seed_everything(s.random_state, workers=True, verbose=False)
        refine = (s.refine_pseudo_labels, np.column_stack([rows, cols]).astype(np.float64), samples)
        weights = (float(s.total_weight - s.morphology_weight), float(s.morphology_weight))
        labels, k, weights = pseudo_labels(
            x_expr,
            x_morph,
            weights,
            s,
            coords=coords,
            refine=refine,
            samples=samples,
            fit_on=fit_on,
            show_progress_bar=show_progress_bar,
        )
        self.timings["pseudo_labels"] = time.perf_counter() - t0
        self.weights = {"expression": weights[0], "morphology": weights[1]}
        self.pseudo_labels = labels
        self.n_pseudo_labels = k
        self.coord_keys = tuple(used_keys)
        self.pseudo_label_coordinates = coord_source

        # the features the network sees; with morphology weight 0, expression only
        self.uses_morphology = x_morph is not None and weights[1] > 0
        self.n_expression = x_expr.shape[1]
        features, self.scaling = training_features(x_expr, x_morph if self.uses_morphology else None)
        self._inputs = Inputs(features, index, samples)
        self._refine, self._fit_on = refine, fit_on
        self.preprocessing = _preprocessing_states(table, s, self.uses_morphology)
        self.module = self._build_module(features.shape[1])
        self._rng_state = torch.get_rng_state()  # train() starts from here, whatever runs in between
        self.has_morphology = has_morphology
        self.history: dict[str, np.ndarray] = {}
        self.trainer: L.Trainer | None = None
        self._grid: NeighbourhoodGrid | None = None
        self._batch_size: int | None = None
        self.n_epochs = 0
        self.train_params: dict[str, Any] = {}
        self.is_trained = False
        self.best_epoch: int | None = None
        self.pseudo_labels_updated_at: list[int] = []
        self.timings["init"] = time.perf_counter() - t_start

    # ---- network ---------------------------------------------------------------------------

    def _build_module(self, n_channels: int) -> AestetikModule:
        s, k = self.settings, self.n_pseudo_labels
        # with label updates, any of the K clusters may appear later on
        n_clusters = (
            (k[0], k[1])
            if not s.pseudo_label_updates
            else (s.n_clusters if k[0] > 1 else 1, s.n_clusters if k[1] > 1 else 1)
        )
        return AestetikModule(
            n_channels,
            s.window_size,
            n_expression=self.n_expression,
            n_clusters=n_clusters,
            expression_weight=self.weights["expression"],
            morphology_weight=self.weights["morphology"],
            rec_alpha=s.rec_alpha,
            triplet_alpha=s.triplet_alpha,
            n_repeats=s.n_repeats,
            lr=s.lr,
            weight_decay=s.weight_decay,
            latent_dim=s.latent_dim,
            hidden_channels=s.hidden_channels,
            kernel_size=s.kernel_size,
            dropout=s.dropout,
            n_members=s.n_ensemble,
        )

    def preprocessing_state(self, key: str) -> tuple[dict, dict]:
        """``(state, params)`` of the preprocessing that wrote ``obsm["X_" + key]`` of the training slide.

        What ``reference=model`` reads in :func:`aestetik.pp.transcriptomics`.
        """
        for entry in self.preprocessing.values():
            if entry["key"] == key:
                return dict(entry["state"]), dict(entry["params"])
        raise KeyError(
            f"the model holds no fitted preprocessing for obsm['X_{key}'] (it has "
            f"{[e['key'] for e in self.preprocessing.values()]}); the training slide's features were not "
            "made by aestetik.pp with that key_added"
        )

    # ---- training --------------------------------------------------------------------------

    def train(
        self,
        max_epochs: int | None = None,
        *,
        batch_size: int | None = None,
        validation_fraction: float = 0.0,
        early_stopping_patience: int = 10,
        trainer_kwargs: Mapping[str, Any] | None = None,
        show_progress_bar: bool = True,
    ) -> None:
        """Fit the network on the training slide with a :class:`lightning.pytorch.Trainer`.

        Parameters are those of :func:`aestetik.tl.embed` of the same names. The same
        ``random_state`` gives the same weights on the CPU, bit for bit.
        """
        if self.is_trained:
            raise RuntimeError("the model is already trained; build a new AESTETIK(adata, ...) to train again")
        if max_epochs is not None:
            max_epochs = check_int("max_epochs", max_epochs, minimum=1)
        if not (0.0 <= validation_fraction < 1.0):
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        s = self.settings
        n = len(self._inputs.features)
        if max_epochs is None:
            max_epochs = default_max_epochs(n)
        bs = batch_size or min(BATCH_SIZE, n)
        datamodule = AestetikDataModule(
            self._inputs.features,
            self._inputs.index,
            self.pseudo_labels,
            batch_size=bs,
            validation_fraction=validation_fraction,
            seed=s.random_state,
        )
        history, best = LossHistory(), BestWeights("val_loss")
        callbacks: list = [history]
        if validation_fraction > 0:
            from lightning.pytorch.callbacks import EarlyStopping

            callbacks += [EarlyStopping("val_loss", patience=early_stopping_patience), best]
        updater = self._label_updater(max_epochs)
        if updater is not None:
            callbacks.append(updater)
        args, user_logger = trainer_arguments(
            trainer_kwargs,
            callbacks,
            max_epochs=max_epochs,
            validation=validation_fraction > 0,
            show_progress_bar=show_progress_bar,
        )
        L.seed_everything(s.random_state, workers=True, verbose=False)
        torch.set_rng_state(self._rng_state)
        deterministic_before = torch.are_deterministic_algorithms_enabled()
        warn_only_before = torch.is_deterministic_algorithms_warn_only_enabled()
        t0 = time.perf_counter()
        try:
            with quiet_lightning(not user_logger):
                trainer = L.Trainer(**args)
                trainer.fit(self.module, datamodule=datamodule)
        finally:
            torch.use_deterministic_algorithms(deterministic_before, warn_only=warn_only_before)
        self.timings["training"] = time.perf_counter() - t0
        self.trainer, self._grid, self._batch_size = trainer, datamodule.grid, bs
        self._inputs = None  # the grid holds what inference needs
        history.recover(trainer)  # training in other processes (ddp_spawn, ddp_notebook)
        self.history = _history(history)
        self.best_epoch = best.best_epoch
        self.pseudo_labels_updated_at = list(updater.updated_at) if updater is not None else []
        self.n_epochs = max(int(trainer.current_epoch), len(self.history.get("loss", [])))
        self.train_params = {
            "max_epochs": max_epochs,
            "batch_size": batch_size,
            "validation_fraction": float(validation_fraction),
            "early_stopping_patience": early_stopping_patience,
        }
        self.is_trained = True

    def _label_updater(self, max_epochs: int) -> PseudoLabelUpdate | None:
        s = self.settings
        if not s.pseudo_label_updates:
            return None
        at = update_epochs(max_epochs, s.pseudo_label_updates)
        if not at:
            logger.info(
                f"tl.embed: {max_epochs} epoch(s) leave no room for pseudo-label updates; the first pseudo-labels are kept"
            )
            return None
        # a partial of a module-level function, not a closure: ddp_spawn pickles the callbacks
        relabel = functools.partial(_relabel, settings=s, refine=self._refine, fit_on=self._fit_on)
        active = [m for m, w in enumerate(self.weights.values()) if w > 0]
        return PseudoLabelUpdate(at, relabel, columns=active, seed=s.random_state)

    @property
    def is_global_zero(self) -> bool:
        """False on the other processes of a multi-process (DDP) training."""
        return self.trainer is None or self.trainer.is_global_zero

    # ---- inference -------------------------------------------------------------------------

    def get_latent_representation(
        self,
        adata: AnnData | SpatialData | None = None,
        *,
        n_mc_passes: int = N_MC_PASSES,
        batch_size: int | None = None,
        table_key: str | None = None,
        show_progress_bar: bool = True,
    ) -> np.ndarray:
        """The ``(n_obs, latent_dim)`` embedding: mean of ``n_mc_passes`` Monte-Carlo dropout passes.

        Parameters
        ----------
        adata
            ``None``: the training slide. Otherwise a slide with the model's ``obsm`` keys,
            made with ``reference=model`` in :mod:`aestetik.pp` (checked), and lattice
            coordinates in the model's ``coord_keys``. The encoder's batch-norm statistics
            are recomputed on the spots being embedded.
        n_mc_passes
            Monte-Carlo dropout passes averaged.
        batch_size
            Spots per inference batch (default: the training batch size, at most 4096).
        table_key
            For a ``spatialdata.SpatialData`` ``adata``: its table.
        show_progress_bar
            Show the inference progress bar.
        """
        if not self.is_trained:
            raise RuntimeError("the model is not trained yet: call model.train() first")
        n_mc_passes = check_int("n_mc_passes", n_mc_passes, minimum=1)
        device = (
            self.trainer.strategy.root_device if self.trainer is not None else next(self.module.parameters()).device
        )
        if adata is None:
            if self._grid is None:
                raise ValueError("this model was loaded without its training data: pass the slide to embed")
            grid, bs = self._grid, self._batch_size
        else:
            inputs = self.slide_inputs(adata, table_key=table_key)
            grid = NeighbourhoodGrid(
                torch.as_tensor(inputs.features, dtype=torch.float32), torch.as_tensor(inputs.index, dtype=torch.int32)
            )
            bs = min(8192, len(inputs.features))
        t0 = time.perf_counter()
        embedding = mc_dropout_embedding(
            self.module.model,
            grid,
            n_passes=n_mc_passes,
            batch_size=batch_size or min(bs, 4096),
            recalibrate_batch_size=bs,
            device=device,
            seed=self.settings.random_state,
            show_progress_bar=show_progress_bar,
        )
        self.timings["inference"] = time.perf_counter() - t0
        return embedding

    def slide_inputs(self, adata: AnnData | SpatialData, *, table_key: str | None = None) -> Inputs:
        """A slide's features (scaled as the training slide's) and window table, checked against the model."""
        s = self.settings
        table = check_data(adata, table_key)
        for name in ("expression", "morphology") if self.uses_morphology else ("expression",):
            if name not in self.preprocessing:
                logger.warning(
                    "the model's %s features were not made by aestetik.pp: cannot check that this slide's "
                    "obsm features were made the same way",
                    name,
                )
        for name, entry in self.preprocessing.items():
            if name == "morphology" and not self.uses_morphology:
                continue
            got = table.uns.get(entry["key"], {})
            got_id = got.get("state", {}).get("id") if isinstance(got, dict) else None
            if got_id != entry["state"]["id"]:
                step = "transcriptomics" if name == "expression" else "morphology"
                raise ValueError(
                    f"obsm['X_{entry['key']}'] of this slide was not made with the model's fitted {name} "
                    f"preprocessing: run aestetik.pp.{step}(adata, reference=model) first"
                )
        parts = [
            scale_features(obsm_features(table, s.expression_key, what="expression_key"), *self.scaling["expression"])
        ]
        if self.uses_morphology:
            parts.append(
                scale_features(
                    obsm_features(table, s.morphology_key, what="morphology_key"), *self.scaling["morphology"]
                )
            )
        features = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        if features.shape[1] != self.module.hparams.n_channels:
            raise ValueError(
                f"this slide has {features.shape[1]} feature channels, the model {self.module.hparams.n_channels}"
            )
        samples = sample_codes(table, s.library_key if s.library_key in table.obs else None)
        rows, cols, _, _ = checked_lattice(adata, table, self.coord_keys, s.spatial_key, samples)
        return Inputs(features, neighbour_index(rows, cols, s.window_size, samples), samples)

    # ---- description and files -------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The model options, as written to ``uns[...]["params"]`` by :func:`aestetik.tl.embed`."""
        p = asdict(self.settings)
        p["coord_keys"] = list(self.coord_keys)
        p["morphology_key"] = p["morphology_key"] if self.has_morphology else None
        p["pseudo_label_coordinates"] = self.pseudo_label_coordinates
        for name in (
            "morphology_weight",
            "total_weight",
            "rec_alpha",
            "triplet_alpha",
            "lr",
            "weight_decay",
            "dropout",
        ):
            p[name] = float(p[name])
        return p

    def save(self, path: str, *, overwrite: bool = False) -> None:
        """Write the trained model to the directory ``path`` (see :mod:`aestetik._model_io`)."""
        from aestetik._model_io import save_model

        save_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str, *, map_location: str | torch.device | None = "cpu") -> AESTETIK:
        """A model written by :meth:`save`; it embeds slides with :meth:`get_latent_representation`."""
        from aestetik._model_io import load_model

        return load_model(cls, path, map_location=map_location)

    def __repr__(self) -> str:
        s = self.settings
        state = "trained" if self.is_trained else "not trained"
        return (
            f"AESTETIK({state}; K={s.n_clusters}, window {s.window_size}, latent {s.latent_dim}, "
            f"weights expression {self.weights['expression']:g} / morphology {self.weights['morphology']:g})"
        )


def _history(history: LossHistory) -> dict[str, np.ndarray]:
    """Per-epoch losses: the training ones without their ``train_`` prefix, then the ``val_`` ones."""
    from aestetik.nn import LOSS_TERMS

    hist = {n.removeprefix("train_"): np.asarray(v) for n, v in history.history.items() if n.startswith("train_")}
    val = {n: np.asarray(v) for n, v in history.history.items() if n.startswith("val_")}
    return {n: hist[n] for n in LOSS_TERMS if n in hist} | val


def _preprocessing_states(table: AnnData, s: Settings, uses_morphology: bool) -> dict[str, dict]:
    """The fitted preprocessing of the features the model reads, when aestetik.pp made them."""
    out = {}
    for name, obsm_key in (("expression", s.expression_key), ("morphology", s.morphology_key)):
        if name == "morphology" and not uses_morphology:
            continue
        key = obsm_key.removeprefix("X_")
        entry = table.uns.get(key)
        if isinstance(entry, dict) and "state" in entry:
            out[name] = {"key": key, "state": dict(entry["state"]), "params": dict(entry.get("params", {}))}
    return out
