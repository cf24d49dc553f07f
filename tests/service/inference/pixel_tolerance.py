"""How far a half-precision generator's 8-bit pixels may be from the CPU fp32 ones (one level: 2/255 in [-1, 1]).

Measured, emulated on the CPU (`benchmarks/half_pixels.py`: the bundled model, seeds 0..1023, 1,048,576 pixels):
bf16 is at most 15 levels off fp32 (305 pixels more than 7 off; 0.15 levels on average), fp16 at most 2 (0.018 on
average); the previous bundled model, without a mapping network, gave 12 and 2. The bounds are those maxima;
fp16's is doubled, since a GPU's fp16 kernels sum in other orders than the CPU's. A CUDA run is held to the same
bounds (tests/service/inference/test_runner_gpu.py); its own figures are still to be measured there
(`backend_bench.py --gpu`).
"""

from __future__ import annotations

import numpy as np
import torch

MAX_LEVELS = {torch.bfloat16: 15, torch.float16: 4}
MAX_MEAN_LEVELS = 1.0  # over all pixels of a batch, either type


def level_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in 8-bit levels, for two uint8 arrays of the same shape."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    return np.abs(a.astype(np.int16) - b.astype(np.int16))
