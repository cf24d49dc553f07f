"""npz:PATH: arrays saved with numpy.savez. 2-D arrays [N, D] are points; 3-D/4-D arrays are images.

The file holds one array, or arrays named `train` (and optionally `heldout`); also accepted: `images`, `x`,
`data`, `points`. Images may be [N, H, W], [N, H, W, C] or [N, C, H, W], uint8 (0..255) or float in [0, 1] or
[-1, 1]; they are centre-cropped/resized to the configured resolution and channels. Nothing is unpickled.

Labels (optional): an integer array `y`, one class index per sample of the training array (or of the whole set
when there is no `heldout` array), and `heldout_y` beside `heldout`; an optional string array `classes` names
them (default: "0", "1", ...). Labelled data is split stratified by class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.data.base import DataError, TensorDataset, default_heldout, random_split, stratified_split
from training.data.images import resize_uint8, uint8_to_tensor

_TRAIN_KEYS = ("train", "images", "x", "data", "points")
_LABEL_KEYS = ("y", "heldout_y", "classes")


def _pick_arrays(path: Path, archive: np.lib.npyio.NpzFile) -> tuple[np.ndarray, np.ndarray | None]:
    keys = [k for k in archive.files if k not in _LABEL_KEYS]
    if not keys:
        raise DataError(f"npz dataset {path}: the file holds no arrays")
    if "heldout" in keys and "train" in keys:
        return archive["train"], archive["heldout"]
    for key in _TRAIN_KEYS:
        if key in keys:
            return archive[key], None
    if len(keys) == 1:
        return archive[keys[0]], None
    raise DataError(f"npz dataset {path}: cannot tell which array to use among {keys}; name it 'train'")


def _to_uint8_nhwc(path: Path, array: np.ndarray) -> np.ndarray:
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise DataError(f"npz dataset {path}: image arrays must be 3-D or 4-D, got shape {array.shape}")
    if array.shape[-1] not in (1, 3, 4) and array.shape[1] in (1, 3, 4):
        array = array.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    if array.shape[-1] == 4:
        array = array[..., :3]
    if array.shape[-1] not in (1, 3):
        raise DataError(f"npz dataset {path}: cannot find a channel axis of size 1 or 3 in shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"npz dataset {path}: unsupported dtype {array.dtype}")
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"npz dataset {path}: images contain NaN or infinite values")
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0 and hi <= 1:
        values = values * 255.0
    elif lo >= -1 and hi <= 1:
        values = (values + 1) * 127.5
    elif not (lo >= 0 and hi <= 255):
        raise DataError(f"npz dataset {path}: image values span [{lo}, {hi}]; use uint8, [0, 1] or [-1, 1]")
    return np.rint(values).astype(np.uint8)


def _label_array(path: Path, archive: np.lib.npyio.NpzFile, key: str, n: int) -> np.ndarray:
    y = archive[key]
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"npz dataset {path}: {key!r} must hold one label per sample ({n}), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"npz dataset {path}: {key!r} must hold integer class indices, got {y.dtype}")
    if y.size and y.min() < 0:
        raise DataError(f"npz dataset {path}: {key!r} holds negative class indices")
    return y.astype(np.int64)


def _read_labels(
    path: Path, archive: np.lib.npyio.NpzFile, train: np.ndarray, held: np.ndarray | None
) -> tuple[list[str], torch.Tensor, torch.Tensor | None] | None:
    """(class names, training labels, held-out labels or None) when the file has `y`, else None."""
    keys = set(archive.files)
    if "y" not in keys:
        if "heldout_y" in keys or "classes" in keys:
            raise DataError(f"npz dataset {path}: 'heldout_y' and 'classes' need a 'y' array of training labels")
        return None
    y = _label_array(path, archive, "y", train.shape[0])
    y_held = None
    if held is not None:
        if "heldout_y" not in keys:
            raise DataError(f"npz dataset {path}: labelled data with a 'heldout' array needs 'heldout_y' too")
        y_held = _label_array(path, archive, "heldout_y", held.shape[0])
    top = int(max(y.max(initial=0), y_held.max(initial=0) if y_held is not None else 0))
    if "classes" in keys:
        names = archive["classes"]
        if names.ndim != 1 or names.dtype.kind != "U":
            raise DataError(f"npz dataset {path}: 'classes' must be a 1-D array of strings")
        classes = [str(name) for name in names]
        if not all(classes):
            raise DataError(f"npz dataset {path}: 'classes' has an empty class name; every class needs a name")
        if len(set(classes)) != len(classes):
            raise DataError(f"npz dataset {path}: 'classes' names a class twice; class names must be distinct")
        if top >= len(classes):
            raise DataError(f"npz dataset {path}: label {top} but only {len(classes)} class names")
    else:
        classes = [str(i) for i in range(top + 1)]
    return classes, torch.from_numpy(y), torch.from_numpy(y_held) if y_held is not None else None


def load_npz(
    path: str | Path, kind: str, resolution: int, channels: int, heldout: int | None, heldout_seed: int
) -> TensorDataset:
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as archive:
            train, held = _pick_arrays(path, archive)
            labels = _read_labels(path, archive, train, held)
    except (OSError, ValueError) as exc:
        raise DataError(f"npz dataset {path}: cannot read it ({exc})") from exc
    if kind == "points":
        if train.ndim != 2 or (held is not None and held.ndim != 2):
            raise DataError(f"npz dataset {path}: point data must be 2-D [N, D], got shape {train.shape}")
        tensors = [torch.as_tensor(a, dtype=torch.float32) for a in (train, held) if a is not None]
        if not all(torch.isfinite(t).all() for t in tensors):
            raise DataError(f"npz dataset {path}: points contain NaN or infinite values")
    else:
        if train.ndim == 2:
            raise DataError(f"npz dataset {path}: 2-D arrays are points; set model.generator.kind: points")
        tensors = [
            uint8_to_tensor(resize_uint8(_to_uint8_nhwc(path, a), resolution, channels))
            for a in (train, held)
            if a is not None
        ]
    classes, y_train, y_held = labels if labels is not None else (None, None, None)
    if held is None:
        data = tensors[0]
        n_held = heldout or default_heldout(data.shape[0])
        if y_train is not None:
            train_idx, held_idx = stratified_split(y_train.numpy(), n_held, heldout_seed)
            y_train, y_held = y_train[train_idx], y_train[held_idx]
        else:
            train_idx, held_idx = random_split(data.shape[0], n_held, heldout_seed)
        train_t, held_t = data[train_idx], data[held_idx]
    else:
        train_t, held_t = tensors
    return TensorDataset(
        classes=classes,
        train_labels=y_train,
        heldout_labels=y_held,
        name=f"npz:{path}",
        kind="points" if kind == "points" else "image",
        heldout=held_t,
        train=train_t,
        info={"source": str(path)},
    )
