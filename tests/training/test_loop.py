"""Tiny real training runs: checkpoints the loader accepts, determinism, budgets, periodic outputs."""

from __future__ import annotations

import json

import pytest
import torch

from models import has_batch_norm, latents_for_seeds, load_checkpoint
from training import TrainConfig, Trainer, train
from training.config import ConfigError
from training.loop import resolve_device


def _points_config(**train_overrides) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": "pts",
            "data": {"dataset": "grid25", "heldout": 300},
            "model": {"generator": {"hidden": 16, "depth": 2}, "critic": {"hidden": 16, "depth": 2}},
            "train": {"iterations": 30, "batch_size": 32, "sample_every": 0, "threads": 1, **train_overrides},
            "eval": {"reference_samples": 100, "point_samples": 400},
        }
    )


def test_point_run_writes_a_loadable_checkpoint_with_mode_figures(tiny_points_checkpoint):
    ckpt = load_checkpoint(tiny_points_checkpoint)
    summary = ckpt.metadata.training
    assert summary["dataset"]["name"] == "ring8" and summary["loss"]["variant"] == "gp"
    assert summary["generator_iterations"] == 20 and summary["wall_time_s"] > 0
    assert summary["hyperparameters"]["n_critic"] == 5
    metrics = summary["final_metrics"]
    assert metrics["modes_total"] == 8 and 0 <= metrics["modes_covered"] <= 8
    assert 0.0 <= metrics["high_quality_share"] <= 1.0
    z = latents_for_seeds(range(64), ckpt.metadata.z_dim)
    with torch.no_grad():
        assert torch.isfinite(ckpt.generator(z)).all()


def test_image_run_writes_a_loadable_checkpoint(tiny_image_checkpoint):
    ckpt = load_checkpoint(tiny_image_checkpoint)
    ref = ckpt.metadata.critic_reference
    assert ref.real.count == 180 and ref.fake is not None and ref.fake.count == 128
    assert ckpt.metadata.training["dataset"]["name"] == "digits"
    assert not has_batch_norm(ckpt.critic)
    with torch.no_grad():
        images = ckpt.generator(latents_for_seeds(range(4), ckpt.metadata.z_dim))
    assert images.shape == (4, 1, 16, 16) and torch.isfinite(images).all()
    assert (tiny_image_checkpoint.parent / "samples" / "final.png").is_file()


def test_same_config_and_seed_give_the_same_run_on_cpu(tmp_path):
    cfg = _points_config(iterations=10)
    a = load_checkpoint(train(cfg, tmp_path / "a", device="cpu", progress=False))
    b = load_checkpoint(train(cfg, tmp_path / "b", device="cpu", progress=False))
    sa, sb = a.generator.state_dict(), b.generator.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    other = cfg.model_copy(update={"seed": 1})
    c = load_checkpoint(train(other, tmp_path / "c", device="cpu", progress=False))
    assert not torch.equal(a.generator.state_dict()["net.0.weight"], c.generator.state_dict()["net.0.weight"])


def test_periodic_outputs_ema_and_metrics_log(tmp_path):
    cfg = _points_config(iterations=20, sample_every=10, checkpoint_every=10, ema_decay=0.9, log_every=5)
    final = train(cfg, tmp_path, device="cpu", progress=False)
    assert final == tmp_path / "pts.safetensors"
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "final.png",
        "iter_000010.png",
        "iter_000020.png",
    ]
    snapshots = sorted((tmp_path / "checkpoints").iterdir())
    assert [p.name for p in snapshots] == ["pts-000010.safetensors", "pts-000020.safetensors"]
    assert load_checkpoint(snapshots[0]).metadata.training["stopped_by"] == "in progress"
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if "wasserstein" in r] == [5, 10, 15, 20]
    assert any("modes_covered" in r for r in records)
    assert load_checkpoint(final).metadata.training["hyperparameters"]["ema_decay"] == 0.9


def test_the_time_budget_stops_early_and_still_writes_the_checkpoint(tmp_path):
    cfg = _points_config(iterations=10_000, max_seconds=0.5)
    summary = load_checkpoint(train(cfg, tmp_path, device="cpu", progress=False)).metadata.training
    assert summary["stopped_by"] == "time budget"
    assert 0 < summary["generator_iterations"] < 10_000


def test_the_trainer_builds_no_batch_norm_critic(tmp_path):
    trainer = Trainer(_points_config(), tmp_path, torch.device("cpu"), progress=False)
    assert not has_batch_norm(trainer.nets.critic)


def test_threads_apply_during_the_run_only(tmp_path):
    before = torch.get_num_threads()
    train(_points_config(iterations=2, threads=1), tmp_path, device="cpu", progress=False)
    assert torch.get_num_threads() == before


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_run_writes_a_cpu_loadable_checkpoint(tmp_path):
    ckpt = load_checkpoint(train(_points_config(iterations=5), tmp_path, device="cuda", progress=False))
    assert ckpt.metadata.training["device"].startswith("cuda")
    with torch.no_grad():
        assert torch.isfinite(ckpt.generator(latents_for_seeds([1, 2], ckpt.metadata.z_dim))).all()


def test_the_mapping_layers_learn_at_their_share_of_the_generators_rate():
    from models import build_critic, build_generator
    from training.loop import make_optimizers

    raw = {
        "name": "mapping-lr",
        "data": {"dataset": "digits", "resolution": 16},
        "model": {
            "generator": {"z_dim": 8, "width": 8, "mapping_layers": 2, "mapping_width": 16},
            "critic": {"width": 8},
        },
        "optim": {"lr_generator": 1e-3, "mapping_lr_scale": 0.01, "lr_decay": True},
        "train": {"iterations": 10},
    }
    config = TrainConfig.model_validate(raw)
    generator, critic = build_generator(config.model.generator), build_critic(config.model.critic)
    opt_g, opt_c, schedulers = make_optimizers(config, generator, critic, torch.device("cpu"))
    rest, mapping = opt_g.param_groups
    assert isinstance(generator.mapping, torch.nn.Module)
    assert [p is q for p, q in zip(mapping["params"], generator.mapping.parameters(), strict=True)] == [True] * 4
    assert len(rest["params"]) + len(mapping["params"]) == len(list(generator.parameters()))
    assert (rest["lr"], mapping["lr"]) == pytest.approx((1e-3, 1e-5))
    opt_g.step()  # no gradients yet: nothing moves, but the schedulers may step
    opt_c.step()
    for scheduler in schedulers:
        scheduler.step()
    assert (rest["lr"], mapping["lr"]) == pytest.approx((0.9e-3, 0.9e-5))  # the decay scales both groups
    plain = TrainConfig.model_validate(
        {**raw, "model": {"generator": {"z_dim": 8, "width": 8}, "critic": {"width": 8}}}
    )
    opt_plain, _, _ = make_optimizers(plain, build_generator(plain.model.generator), critic, torch.device("cpu"))
    assert len(opt_plain.param_groups) == 1
