"""CUDA training with mixed precision: forward passes autocast, the penalty's gradient norm in float32."""

from __future__ import annotations

import pytest
import torch

from models import latents_for_seeds, load_checkpoint
from training import TrainConfig, train


def _config(amp: str) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": f"amp-{amp}",
            "data": {"dataset": "digits", "resolution": 16},
            "model": {"generator": {"z_dim": 8, "width": 16}, "critic": {"width": 16, "norm": "layer"}},
            "train": {"iterations": 25, "batch_size": 32, "sample_every": 0, "amp": amp},
            "eval": {"reference_samples": 64, "grid_size": 2},
        }
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_cuda_runs_with_each_precision_write_finite_cpu_loadable_checkpoints(tmp_path, amp):
    ckpt = load_checkpoint(train(_config(amp), tmp_path, device="cuda", progress=False))
    summary = ckpt.metadata.training
    assert summary["device"].startswith("cuda") and summary["generator_iterations"] == 25
    assert all(torch.isfinite(torch.tensor(v)) for v in summary["last_batch"].values())
    assert summary["last_batch"]["gp"] > 0
    with torch.no_grad():
        images = ckpt.generator(latents_for_seeds(range(8), ckpt.metadata.z_dim))
    assert images.dtype == torch.float32 and torch.isfinite(images).all()
