"""Files of a trained :class:`aestetik.AESTETIK`: a directory of plain files, no pickled code.

``model.json``
    Format and package versions, the options, the modality weights, the training
    history and the preprocessing parameters (JSON).
``weights.pt``
    The network's ``state_dict`` (tensors only; read with ``torch.load(weights_only=True)``).
``arrays.npz``
    The min-max statistics of the features and the fitted preprocessing states
    (genes, scaling, principal axes) as plain arrays (read without pickle).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "aestetik-model"
#: Version of the file layout; a newer one than this package knows is refused.
FORMAT_VERSION = 1
FILES = ("model.json", "weights.pt", "arrays.npz")


def _plain(value: Any) -> Any:
    """JSON-friendly: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_model(model: Any, path: str | Path, *, overwrite: bool = False) -> None:
    """Write ``model`` to the directory ``path`` (created; an existing model there needs ``overwrite``)."""
    from aestetik import __version__

    if not model.is_trained:
        raise RuntimeError("the model is not trained yet: call model.train() before model.save()")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} is not empty; pass overwrite=True to replace the model there")
    path.mkdir(parents=True, exist_ok=True)

    arrays: dict[str, np.ndarray] = {}
    for name, (lo, span) in model.scaling.items():
        arrays[f"scaling/{name}/lo"], arrays[f"scaling/{name}/span"] = lo, span
    preprocessing = {}
    for name, entry in model.preprocessing.items():
        scalars = {}
        for k, v in entry["state"].items():
            if isinstance(v, np.ndarray):
                arrays[f"state/{name}/{k}"] = v.astype(str) if v.dtype.kind in "OUS" else v
            else:
                scalars[k] = v
        preprocessing[name] = {"key": entry["key"], "params": entry["params"], "state": scalars}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aestetik_version": __version__,
        "torch_version": torch.__version__,
        "settings": asdict(model.settings),
        "coord_keys": list(model.coord_keys),
        "pseudo_label_coordinates": model.pseudo_label_coordinates,
        "weights": model.weights,
        "n_pseudo_labels": list(model.n_pseudo_labels),
        "n_expression": model.n_expression,
        "has_morphology": model.has_morphology,
        "uses_morphology": model.uses_morphology,
        "module": dict(model.module.hparams),
        "train_params": model.train_params,
        "n_epochs": model.n_epochs,
        "best_epoch": model.best_epoch,
        "history": model.history,
        "preprocessing": preprocessing,
    }
    (path / "model.json").write_text(json.dumps(_plain(meta), indent=1))
    torch.save({k: v.detach().cpu() for k, v in model.module.state_dict().items()}, path / "weights.pt")
    np.savez(path / "arrays.npz", **arrays)


def _read(path: Path) -> tuple[dict, dict, dict]:
    """The three files of a saved model, with a clear error for anything missing or unreadable."""
    if not path.is_dir():
        raise FileNotFoundError(f"no saved aestetik model at {path} (expected a directory written by model.save)")
    for name in FILES:
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} is missing: {path} is not a complete aestetik model")
    try:
        meta = json.loads((path / "model.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path / 'model.json'} is corrupt or truncated: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path / 'model.json'} is not an aestetik model file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by aestetik {meta.get('aestetik_version')} in model format {version}; this "
            f"aestetik reads format {FORMAT_VERSION} and older: upgrade aestetik to load it"
        )
    try:
        state_dict = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as err:
        raise ValueError(f"{path / 'weights.pt'} is corrupt or truncated: {err}") from None
    try:
        with np.load(path / "arrays.npz", allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise ValueError(f"{path / 'arrays.npz'} is corrupt or truncated: {err}") from None
    return meta, state_dict, arrays


def load_model(cls: type, path: str | Path, *, map_location: str | torch.device | None = "cpu") -> Any:
    """Rebuild a trained model from the files written by :func:`save_model`."""
    from aestetik._model import Settings
    from aestetik.nn import AestetikModule

    path = Path(path)
    meta, state_dict, arrays = _read(path)
    settings = dict(meta["settings"])
    if settings.get("coord_keys") is not None:
        settings["coord_keys"] = tuple(settings["coord_keys"])
    model = cls.__new__(cls)
    model.settings = Settings(**settings)
    model.coord_keys = tuple(meta["coord_keys"])
    model.pseudo_label_coordinates = meta["pseudo_label_coordinates"]
    model.weights = {k: float(v) for k, v in meta["weights"].items()}
    model.n_pseudo_labels = list(meta["n_pseudo_labels"])
    model.n_expression = int(meta["n_expression"])
    model.has_morphology = bool(meta["has_morphology"])
    model.uses_morphology = bool(meta["uses_morphology"])
    model.scaling = {
        name: (arrays[f"scaling/{name}/lo"], arrays[f"scaling/{name}/span"])
        for name in ("expression", "morphology")
        if f"scaling/{name}/lo" in arrays
    }
    model.preprocessing = {}
    for name, entry in meta["preprocessing"].items():
        state = dict(entry["state"])
        prefix = f"state/{name}/"
        state |= {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
        model.preprocessing[name] = {"key": entry["key"], "params": entry["params"], "state": state}
    hp = dict(meta["module"])
    hp["n_clusters"] = tuple(hp["n_clusters"])
    model.module = AestetikModule(**hp)
    try:
        model.module.load_state_dict(state_dict)
    except RuntimeError as err:
        raise ValueError(f"{path / 'weights.pt'} does not match the network described in model.json: {err}") from None
    if map_location is not None:
        model.module.to(map_location)
    model.history = {k: np.asarray(v) for k, v in meta["history"].items()}
    model.train_params = dict(meta["train_params"])
    model.n_epochs = int(meta["n_epochs"])
    model.best_epoch = meta["best_epoch"]
    model.pseudo_labels = None
    model.pseudo_labels_updated_at = []
    model.trainer = None
    model.is_trained = True
    model.timings = {}
    model._inputs = None
    model._grid = None
    model._batch_size = None
    model._refine = None
    return model
