"""The latent path of an interpolation: K key latents, `steps` frames per segment, shared keyframes once.

A class-conditional model's keyframes also carry class weights (one-hot): between two keyframes they are lerped with
the same schedule, whatever the latents' method, so the class embedding joined to z moves in a straight line from
one class's to the other's (the generator's input is [z, sum_k w_k embed(k)], linear in the weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from models import lerp, slerp

Method = Literal["slerp", "lerp"]


def frame_count(n_points: int, steps: int) -> int:
    """(K - 1) * (steps - 1) + 1: each segment has `steps` frames counting both ends, keyframes appear once."""
    return (n_points - 1) * (steps - 1) + 1


@dataclass(frozen=True)
class LatentPath:
    latents: torch.Tensor  # [F, z_dim]
    segments: np.ndarray  # [F] int: the segment each frame belongs to
    ts: np.ndarray  # [F] float: position within that segment, 0..1


def schedule(n_points: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The segment [F] (int) and position t [F] (0..1) of every frame."""
    if n_points < 2 or steps < 2:
        raise ValueError(f"need at least 2 points and 2 steps, got {n_points} and {steps}")
    t_segment = np.linspace(0.0, 1.0, steps)  # [steps]
    segments = np.concatenate([np.zeros(1, dtype=np.int64)] + [np.full(steps - 1, s) for s in range(n_points - 1)])
    ts = np.concatenate([t_segment[:1]] + [t_segment[1:]] * (n_points - 1))  # [F]
    return segments, ts


def walk(keys: torch.Tensor, steps: int, method: Method) -> LatentPath:
    """keys [K, z_dim] -> the frames' latents. Frame 0 is keys[0] and the last frame is keys[-1], exactly."""
    segments, ts = schedule(keys.shape[0], steps)
    index = torch.from_numpy(segments)
    fn = slerp if method == "slerp" else lerp
    z = fn(keys[index], keys[index + 1], torch.from_numpy(ts))  # [F, z_dim]
    return LatentPath(latents=z.float().contiguous(), segments=segments, ts=ts)


def walk_labels(keys: torch.Tensor, steps: int) -> torch.Tensor:
    """Class weights of the keyframes [K, n_classes] -> of every frame [F, n_classes], lerped per segment.
    Frame 0 and the last frame are keys[0] and keys[-1] exactly (one-hot rows stay exact at t = 0 and 1)."""
    segments, ts = schedule(keys.shape[0], steps)
    index = torch.from_numpy(segments)
    return lerp(keys[index], keys[index + 1], torch.from_numpy(ts)).float().contiguous()  # [F, n_classes]
