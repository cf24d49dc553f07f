"""The resume state: everything a run needs to continue bit for bit, in RUN_DIR/resume.pt.

It is separate from the checkpoint (the service never reads it) and holds both networks, the EMA, both optimisers
and their schedulers and loss scalers, the iteration, the elapsed time and every random stream: torch's global CPU
and CUDA generators, numpy's and Python's global generators, and the loop's own data, noise and interpolation
generators (one set per rank). Only tensors, numbers, strings and containers of them are stored, so
`torch.load(weights_only=True)` reads it without unpickling code; the trainer only ever loads files it wrote.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESUME_FILE = "resume.pt"
FORMAT = "wgan-resume/1"


class ResumeError(ValueError):
    """A resume state is missing, unreadable or belongs to a different run layout."""


def global_rng_state() -> dict[str, Any]:
    """torch CPU/CUDA, numpy and Python global generator states, as weights_only-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [
            str(kind),
            torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "python": random.getstate(),
    }


def set_global_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch_cpu"])
    if state["torch_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_resume_state(path: Path, state: dict[str, Any]) -> Path:
    """Write atomically (temporary file, then rename), so an interrupted write leaves the previous state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)
    return path


def load_resume_state(path: Path) -> dict[str, Any]:
    """Read a resume state this trainer wrote (weights_only: tensors and plain containers only)."""
    if not path.is_file():
        raise ResumeError(f"no resume state at {path}; a run writes one every train.resume_every iterations")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise ResumeError(f"cannot read the resume state {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ResumeError(f"{path} is not a resume state written by this trainer (format {FORMAT})")
    return state
