"""npz:PATH: arrays saved with numpy.savez. 2-D arrays [N, D] are points; 3-D/4-D arrays are images.

The file holds one array, or arrays named `train` (and optionally `heldout`); also accepted: `images`, `x`,
`data`, `points`. Images may be [N, H, W], [N, H, W, C] or [N, C, H, W], uint8 (0..255) or float in [0, 1] or
[-1, 1]; they are centre-cropped/resized to the configured resolution and channels. Nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.data.base import DataError, TensorDataset, default_heldout, random_split
from training.data.images import resize_uint8, uint8_to_tensor

_TRAIN_KEYS = ("train", "images", "x", "data", "points")


def _pick_arrays(path: Path, archive: np.lib.npyio.NpzFile) -> tuple[np.ndarray, np.ndarray | None]:
    keys = list(archive.files)
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


def load_npz(
    path: str | Path, kind: str, resolution: int, channels: int, heldout: int | None, heldout_seed: int
) -> TensorDataset:
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as archive:
            train, held = _pick_arrays(path, archive)
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
    if held is None:
        data = tensors[0]
        train_idx, held_idx = random_split(data.shape[0], heldout or default_heldout(data.shape[0]), heldout_seed)
        train_t, held_t = data[train_idx], data[held_idx]
    else:
        train_t, held_t = tensors
    return TensorDataset(
        name=f"npz:{path}",
        kind="points" if kind == "points" else "image",
        heldout=held_t,
        train=train_t,
        info={"source": str(path)},
    )
