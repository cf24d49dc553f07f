"""bf16 autocast on the CPU: the forward passes run in bfloat16, weights and the penalty's norm stay float32."""

from __future__ import annotations

import torch

from models import load_checkpoint
from training import TrainConfig, Trainer, train


def _config(amp: str) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": f"cpu-{amp}",
            "seed": 5,
            "data": {"dataset": "digits", "resolution": 16},
            "model": {"generator": {"z_dim": 8, "width": 16}, "critic": {"width": 16, "norm": "layer"}},
            "train": {"iterations": 20, "batch_size": 32, "sample_every": 0, "threads": 1, "amp": amp},
            "eval": {"reference_samples": 64, "grid_size": 2},
        }
    )


def test_bf16_on_cpu_trains_finite_float32_weights_that_differ_from_the_fp32_run(tmp_path):
    bf16 = load_checkpoint(train(_config("bf16"), tmp_path / "bf16", device="cpu", progress=False))
    fp32 = load_checkpoint(train(_config("none"), tmp_path / "fp32", device="cpu", progress=False))
    last = bf16.metadata.training["last_batch"]
    assert all(torch.isfinite(torch.tensor(v)) for v in last.values()) and last["gp"] > 0
    weights = bf16.generator.state_dict()
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    # Same seed and data: only the arithmetic differs, so the weights are close but not equal.
    reference = fp32.generator.state_dict()
    assert any(not torch.equal(weights[k], reference[k]) for k in weights)
    assert all(torch.allclose(weights[k].float(), reference[k].float(), atol=0.05) for k in weights)


def test_bf16_forward_passes_run_in_bfloat16_on_cpu(tmp_path):
    trainer = Trainer(_config("bf16"), tmp_path, torch.device("cpu"), progress=False)
    seen: set[torch.dtype] = set()
    hook = trainer.nets.critic.get_submodule("features.0").register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    try:
        stats = trainer.critic_phase()
    finally:
        hook.remove()
    assert seen == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in trainer.nets.critic.parameters())
    assert stats["gp"] > 0
