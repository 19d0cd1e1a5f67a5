"""Pure-torch building blocks of AESTETIK (no AnnData here)."""

from ._callbacks import BestWeights, LossHistory, PseudoLabelUpdate
from ._data import AestetikDataModule
from ._grid import NeighbourhoodGrid, fill_missing_with_median, neighbour_index
from ._image import HistologyFeatures, torchvision_encoder
from ._inference import mc_dropout_embedding, recalibrate_batchnorm
from ._lightning import LOSS_TERMS, AestetikModule
from ._loss import multi_triplet_loss, sample_triplets
from ._module import AestetikAutoencoder, EnsembleDecoder, EnsembleEncoder

__all__ = [
    "LOSS_TERMS",
    "AestetikAutoencoder",
    "AestetikDataModule",
    "AestetikModule",
    "BestWeights",
    "EnsembleDecoder",
    "EnsembleEncoder",
    "HistologyFeatures",
    "LossHistory",
    "NeighbourhoodGrid",
    "PseudoLabelUpdate",
    "fill_missing_with_median",
    "mc_dropout_embedding",
    "multi_triplet_loss",
    "neighbour_index",
    "recalibrate_batchnorm",
    "sample_triplets",
    "torchvision_encoder",
]
