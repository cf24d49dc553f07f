"""Half-precision serving emulated on the CPU: the bundled model's bf16 and fp16 pixels within the tolerance that
the CUDA tests hold a GPU to (tests/service/inference/pixel_tolerance.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import latents_for_seeds, load_checkpoint
from service.inference import ForwardOptions, ModelRunner
from tests.service.inference.pixel_tolerance import MAX_LEVELS, MAX_MEAN_LEVELS, level_diff

BUNDLED = Path(__file__).resolve().parents[3] / "bundled_models" / "mnist5k.safetensors"
CPU = torch.device("cpu")
SEEDS = range(256)  # enough for bf16's rare large differences to show: 11 levels at most on these


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_precision_pixels_stay_within_the_tolerance(dtype):
    z = latents_for_seeds(SEEDS, load_checkpoint(BUNDLED).metadata.z_dim)  # [256, z_dim]
    with torch.inference_mode():
        want = ModelRunner(load_checkpoint(BUNDLED), CPU, torch.float32, ForwardOptions("eager")).generate(z)
        got = ModelRunner(load_checkpoint(BUNDLED), CPU, dtype, ForwardOptions("eager")).generate(z)
    diff = level_diff(got, want)
    assert 0 < diff.max() <= MAX_LEVELS[dtype]  # (0: the half-precision path did not run in half precision)
    assert diff.mean() <= MAX_MEAN_LEVELS
