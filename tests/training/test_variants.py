"""Every loss variant trains a few dozen steps without NaN; the EMA generator is what the checkpoint stores."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from models import has_batch_norm, load_checkpoint
from training import TrainConfig, Trainer
from training.config import ConfigError, config_from_dict
from training.networks import ema_decay_at


@pytest.fixture(autouse=True)
def _one_thread():
    """Trainer objects used directly do not apply train.threads; one thread keeps these runs quick under load."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _image_config(loss: dict[str, Any], critic: dict[str, Any] | None = None, **train: Any) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "name": "variant",
            "data": {"dataset": "digits", "resolution": 16},
            "model": {"generator": {"z_dim": 8, "width": 8}, "critic": {"width": 8, "norm": "layer", **(critic or {})}},
            "loss": loss,
            "train": {"iterations": 30, "batch_size": 16, "sample_every": 0, "threads": 1, "resume_every": 0, **train},
            "eval": {"reference_samples": 32, "grid_size": 2},
        }
    )


VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "gp two-sided": ({"variant": "gp"}, None),
    "gp one-sided with drift": ({"variant": "gp", "gp_one_sided": True, "drift": 0.001}, None),
    "weight clipping, batch-norm critic": ({"variant": "clip"}, {"norm": "batch"}),
    "spectral norm": ({"variant": "spectral", "drift": 0.001}, {"norm": "spectral"}),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variant_trains_without_nan(tmp_path, name):
    loss, critic = VARIANTS[name]
    trainer = Trainer(_image_config(loss, critic), tmp_path, torch.device("cpu"), progress=False)
    ckpt = load_checkpoint(trainer.run())
    summary = ckpt.metadata.training
    assert summary["generator_iterations"] == 30 and summary["loss"]["variant"] == loss["variant"]
    assert all(torch.isfinite(torch.tensor(v)) for v in summary["last_batch"].values())
    for module in (trainer.nets.generator, trainer.nets.critic):
        assert all(torch.isfinite(p).all() for p in module.parameters())
    if loss["variant"] == "clip":
        assert has_batch_norm(trainer.nets.critic)
        assert summary["hyperparameters"]["optimizer"] == "rmsprop" and summary["hyperparameters"]["lr_critic"] == 5e-5
        assert max(p.abs().max().item() for p in trainer.nets.critic.parameters()) <= 0.01 + 1e-9
        assert summary["last_batch"]["gp"] == 0.0
    else:
        assert summary["hyperparameters"]["optimizer"] == "adam"
    if loss["variant"] == "gp":
        assert summary["last_batch"]["gp"] > 0.0


def test_one_sided_penalty_ignores_gentle_gradients():
    from training.losses import penalty_from_gradients

    grad = torch.tensor([[0.3, 0.4], [3.0, 4.0]])  # norms 0.5 and 5
    assert penalty_from_gradients(grad, weight=1.0).item() == pytest.approx((0.25 + 16) / 2)
    assert penalty_from_gradients(grad, weight=1.0, one_sided=True).item() == pytest.approx(16 / 2)


def test_variant_configs_are_checked():
    base = {"data": {"dataset": "ring8"}}
    with pytest.raises(ConfigError, match=r"needs model\.critic\.norm: spectral"):
        config_from_dict({**base, "loss": {"variant": "spectral"}})
    with pytest.raises(ConfigError, match="batch norm"):
        config_from_dict({**base, "model": {"critic": {"norm": "batch"}}})
    with pytest.raises(ConfigError, match="not both"):
        config_from_dict({**base, "train": {"ema_decay": 0.99, "ema_half_life": 100}})
    clip = config_from_dict({**base, "loss": {"variant": "clip"}, "model": {"critic": {"norm": "batch"}}})
    assert clip.optim.lr_critic == clip.optim.lr_generator == 5e-5 and clip.optim.resolved("clip") == "rmsprop"
    explicit = config_from_dict({**base, "loss": {"variant": "clip"}, "optim": {"lr_critic": 1e-4}})
    assert explicit.optim.lr_critic == 1e-4 and explicit.optim.lr_generator == 5e-5
    half = config_from_dict({**base, "train": {"ema_half_life": 100}})
    assert half.train.ema == pytest.approx(0.5**0.01)
    assert config_from_dict(base).train.ema == 0.999  # on by default
    assert config_from_dict({**base, "train": {"ema_decay": None}}).train.ema is None


def test_ema_warmup_follows_recent_weights_early_and_the_decay_later():
    assert ema_decay_at(0.999, 1, warmup=True) == pytest.approx(2 / 11)
    assert ema_decay_at(0.999, 100_000, warmup=True) == 0.999
    assert ema_decay_at(0.999, 1, warmup=False) == 0.999


def test_the_checkpoint_stores_the_ema_generator_which_differs_from_the_raw_one(tmp_path):
    trainer = Trainer(_image_config({"variant": "gp"}, iterations=20), tmp_path, torch.device("cpu"), progress=False)
    ckpt = load_checkpoint(trainer.run())
    stored = ckpt.generator.state_dict()
    assert trainer.nets.ema is not None
    ema, raw = trainer.nets.ema.state_dict(), trainer.nets.generator.state_dict()
    weights = [k for k in stored if k.endswith("weight")]
    assert weights and all(torch.equal(stored[k], ema[k]) for k in weights)
    assert any(not torch.equal(stored[k], raw[k]) for k in weights)


def test_without_ema_the_raw_generator_is_stored(tmp_path):
    cfg = _image_config({"variant": "gp"}, iterations=3, ema_decay=None)
    trainer = Trainer(cfg, tmp_path, torch.device("cpu"), progress=False)
    ckpt = load_checkpoint(trainer.run())
    assert trainer.nets.ema is None
    raw = trainer.nets.generator.state_dict()
    assert all(torch.equal(v, raw[k]) for k, v in ckpt.generator.state_dict().items())
    assert ckpt.metadata.training["hyperparameters"]["ema_decay"] is None
