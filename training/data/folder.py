"""folder:PATH: a user's own images (PNG/JPEG/WebP), centre-cropped and resized; unreadable files are skipped.

When every image lies in a subfolder of PATH, the data is labelled the way torchvision's ImageFolder labels it:
one class per subfolder (images in deeper folders belong to their top subfolder), classes in sorted name order,
and the held-out split is stratified by class. A folder with images directly under PATH is unlabelled.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from training.data.base import DataError, TensorDataset, default_heldout, random_split, stratified_split
from training.data.images import as_mode, centre_crop_resize, pil_to_uint8, uint8_to_tensor

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
MAX_LISTED_SKIPS = 50  # the summary (stored in the checkpoint) names at most this many skipped files


def _read_image(path: Path, resolution: int, channels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image.load()
            return as_mode(centre_crop_resize(image, resolution), channels)


def load_folder(
    root: str | Path, resolution: int, channels: int, heldout: int | None, heldout_seed: int
) -> TensorDataset:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"folder dataset: {root} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"folder dataset: no PNG/JPEG/WebP files under {root}")
    relative = [path.relative_to(root).parts for path in files]
    classes = sorted({parts[0] for parts in relative}) if all(len(parts) > 1 for parts in relative) else None
    images: list[Image.Image] = []
    labels: list[int] = []
    skipped: list[str] = []
    for path, parts in zip(files, relative, strict=True):
        try:
            images.append(_read_image(path, resolution, channels))
            labels.append(classes.index(parts[0]) if classes is not None else 0)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # PIL raises UnidentifiedImageError (an OSError) for non-images, OSError for truncated data,
            # SyntaxError/ValueError for some malformed headers.
            log.warning("skipping unreadable image %s: %s", path, exc)
            skipped.append(str(path.relative_to(root)))
    if len(images) < 2:
        raise DataError(f"folder dataset: {root} has {len(images)} readable image(s); need at least 2")
    pixels = uint8_to_tensor(pil_to_uint8(images))
    n_held = heldout or default_heldout(len(images))
    targets = np.asarray(labels, dtype=np.int64)
    if classes is not None:
        classes = [name for i, name in enumerate(classes) if (targets == i).any()]  # classes left after skips
        targets = np.searchsorted(np.unique(targets), targets)
        train_idx, held_idx = stratified_split(targets, max(n_held, len(classes)), heldout_seed)
    else:
        train_idx, held_idx = random_split(len(images), n_held, heldout_seed)
    y = torch.from_numpy(targets)
    if skipped:
        log.warning("folder dataset %s: skipped %d unreadable file(s) of %d", root, len(skipped), len(files))
    return TensorDataset(
        name=f"folder:{root}",
        kind="image",
        heldout=pixels[held_idx],
        train=pixels[train_idx],
        classes=classes,
        train_labels=y[train_idx] if classes is not None else None,
        heldout_labels=y[held_idx] if classes is not None else None,
        info={
            "source": str(root),
            "files": len(files),
            "skipped_count": len(skipped),
            "skipped": skipped[:MAX_LISTED_SKIPS],
        },
    )
