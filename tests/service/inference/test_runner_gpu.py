"""The CUDA generator path against the CPU fp32 one: same seeds, same images within tolerance.

Tolerances, on the served 8-bit pixels (one level is 2/255 ≈ 0.0078 in [-1, 1]):
- fp32 on CUDA: at most one level (raw outputs agree to about 1e-3 in [-1, 1], which can flip a rounding), on at
  most 2 % of the pixels;
- bf16 and fp16: at most 12 and 4 levels, mean difference at most one level (pixel_tolerance.py: the figures
  measured on the CPU in emulation, until a GPU's are);
- a batch padded up to its bucket: the same pixels as the same graph at the bucket's own size, to the bit.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from models import latents_for_seeds, load_checkpoint
from service.inference.runner import ForwardOptions, ModelRunner, warm_up_sizes
from tests.service.inference.pixel_tolerance import MAX_LEVELS, MAX_MEAN_LEVELS, level_diff
from tests.service.toolchain import backend_params

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
SEEDS = list(range(300, 311))  # 11: padded to the bucket of 16
MAX_BATCH = 16


def _cpu_pixels(path, z: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return ModelRunner(load_checkpoint(path), CPU, torch.float32).generate(z)


@pytest.mark.parametrize("graphs", [False, True], ids=["eager", "graphs"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=["fp32", "bf16", "fp16"])
def test_cuda_images_equal_the_cpu_fp32_ones(tiny_image_checkpoint, dtype, graphs):
    options = ForwardOptions("eager", graphs, MAX_BATCH)
    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CUDA, dtype, options)
    runner.warm_up(warm_up_sizes(MAX_BATCH))
    z = latents_for_seeds(SEEDS, runner.z_dim)  # [11, z_dim]
    want = _cpu_pixels(tiny_image_checkpoint, z)
    with torch.inference_mode():
        for got, reference in ((runner.generate(z), want), (runner.generate(z[:1]), want[:1])):
            diff = level_diff(got, reference)
            if dtype == torch.float32:
                assert diff.max() <= 1 and (diff > 0).mean() <= 0.02
            else:
                assert diff.max() <= MAX_LEVELS[dtype] and diff.mean() <= MAX_MEAN_LEVELS


def test_a_padded_batch_equals_the_unpadded_result(tiny_image_checkpoint):
    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CUDA, torch.float32, ForwardOptions("eager", True, 16))
    eager = ModelRunner(load_checkpoint(tiny_image_checkpoint), CUDA, torch.float32)
    z = latents_for_seeds(range(16), runner.z_dim)  # [16, z_dim]
    with torch.inference_mode():
        full = runner.generate(z)  # bucket 16, no padding
        padded = runner.generate(z[:11])  # bucket 16, 5 padding rows
        unbucketed = eager.generate(z[:11])
        assert np.array_equal(padded, full[:11])
        assert level_diff(padded, unbucketed).max() <= 1
        # Two calls in a row reuse the staging buffer and the static output: the first answer must be a copy.
        first = runner.generate(z[:3])
        runner.generate(z[8:])
        assert np.array_equal(first, full[:3])


def test_a_batch_beyond_the_largest_bucket_runs_uncaptured(tiny_image_checkpoint):
    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CUDA, torch.float32, ForwardOptions("eager", True, 4))
    z = latents_for_seeds(range(9), runner.z_dim)  # [9, z_dim]: more than max_batch_size 4
    with torch.inference_mode():
        assert level_diff(runner.generate(z), _cpu_pixels(tiny_image_checkpoint, z)).max() <= 1


@pytest.mark.parametrize("graphs", [False, True], ids=["eager", "graphs"])
def test_cuda_points_equal_the_cpu_fp32_ones(tiny_points_checkpoint, graphs):
    runner = ModelRunner(
        load_checkpoint(tiny_points_checkpoint), CUDA, torch.float32, ForwardOptions("eager", graphs, MAX_BATCH)
    )
    z = latents_for_seeds(SEEDS, runner.z_dim)  # [11, z_dim]
    with torch.inference_mode():
        got = runner.generate(z)  # [11, out_dim]
        want = ModelRunner(load_checkpoint(tiny_points_checkpoint), CPU, torch.float32).generate(z)
    assert got.dtype == np.float32 and np.abs(got - want).max() <= 1e-3


@pytest.mark.parametrize("backend", backend_params(["channels_last", "compile"]))
def test_cuda_backends_equal_the_cpu_fp32_images(tiny_image_checkpoint, backend):
    runner = ModelRunner(load_checkpoint(tiny_image_checkpoint), CUDA, torch.float32, ForwardOptions(backend))
    runner.warm_up(warm_up_sizes(MAX_BATCH))
    z = latents_for_seeds(SEEDS, runner.z_dim)  # [11, z_dim]
    with torch.inference_mode():
        diff = level_diff(runner.generate(z), _cpu_pixels(tiny_image_checkpoint, z))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.02


def test_closing_a_retired_runner_returns_its_device_memory(tiny_image_checkpoint):
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    before = torch.cuda.memory_reserved()
    runner = ModelRunner(
        load_checkpoint(tiny_image_checkpoint), CUDA, torch.float32, ForwardOptions(cuda_graphs=True, max_batch_size=8)
    )
    runner.warm_up(warm_up_sizes(8))
    assert torch.cuda.memory_reserved() > before
    runner.close()
    del runner
    torch.cuda.empty_cache()
    assert torch.cuda.memory_reserved() <= before


def test_two_models_on_their_own_streams_give_their_own_pixels_side_by_side(tiny_image_checkpoint):
    runners = [ModelRunner(load_checkpoint(tiny_image_checkpoint), CUDA, torch.float32) for _ in range(2)]
    z = latents_for_seeds(SEEDS, runners[0].z_dim)
    want = runners[0].generate(z)
    results: list[np.ndarray] = []

    def work(runner: ModelRunner) -> None:
        with torch.inference_mode():
            for _ in range(20):
                results.append(runner.generate(z))

    threads = [threading.Thread(target=work, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40 and all(np.array_equal(r, want) for r in results)
