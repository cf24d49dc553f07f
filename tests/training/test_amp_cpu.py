"""Mixed precision on the CPU: bf16 and fp16 (loss-scaled) autocast; weights and the penalty's norm stay float32."""

from __future__ import annotations

import json
import math

import torch

from models import load_checkpoint
from training import TrainConfig, Trainer, train
from training.losses import input_gradients


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


# -- fp16 with loss scaling: the same logic as on CUDA, slow on the CPU but exact enough to test ---------------------


def test_fp16_on_cpu_trains_30_iterations_with_finite_figures(tmp_path):
    config = _config("fp16").model_copy(deep=True)
    config.train.iterations = 30
    ckpt = load_checkpoint(train(config, tmp_path, device="cpu", progress=False))
    last = ckpt.metadata.training["last_batch"]
    assert ckpt.metadata.training["generator_iterations"] == 30
    assert all(math.isfinite(v) for v in last.values()) and last["gp"] > 0
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in records if "critic_loss" in r]
    assert losses and all(math.isfinite(r[k]) for r in losses for k in ("wasserstein", "gp", "critic_loss"))


def test_penalty_gradient_is_finite_at_gradscalers_initial_scale():
    # GradScaler starts at 65,536, above float16's largest value (65,504): as the seed of an fp16 backward it is inf.
    x = torch.randn(4, 3, requires_grad=True)
    weight = torch.randn(3, 1)
    scores = (x.half() @ weight.half()).squeeze(1)  # [4] float16, as under autocast
    plain = input_gradients(scores, x)
    for scale in (65536.0, torch.tensor(65536.0), 2.0**24):
        scaled = input_gradients(scores, x, scale=scale)
        assert torch.isfinite(scaled).all()
        torch.testing.assert_close(scaled, plain)


def test_fp16_steps_that_gradscaler_skips_neither_abort_nor_poison_the_figures(tmp_path):
    trainer = Trainer(_config("fp16"), tmp_path, torch.device("cpu"), progress=False)
    # A scale of 2**40 overflows every backward until GradScaler has halved it enough: the first steps are skipped.
    trainer.scalers = {k: torch.amp.GradScaler("cpu", init_scale=2.0**40) for k in trainer.scalers}
    figures = [trainer.step() for _ in range(4)]
    assert figures[0]["skipped_steps"] > 0
    assert all(math.isfinite(v) for f in figures for v in f.values())
    assert trainer.scalers["critic"].get_scale() < 2.0**40
