"""The networks of a run: generator, critic and the generator's EMA copy, built from the config on a device."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from models import build_critic, build_generator, has_batch_norm
from training.config import TrainConfig
from training.fold_convs import use_fold_convs


@dataclass
class Networks:
    generator: nn.Module
    critic: nn.Module
    ema: nn.Module | None = None

    @property
    def served(self) -> nn.Module:
        """The generator a checkpoint stores: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.generator


def build_networks(config: TrainConfig, device: torch.device | str) -> Networks:
    generator = build_generator(config.model.generator).to(device)
    critic = build_critic(config.model.critic).to(device)
    if config.loss.variant != "clip" and has_batch_norm(critic):  # the config refuses this; belt and braces
        raise ValueError("a critic with batch norm can only be trained with weight clipping (loss.variant clip)")
    if config.train.channels_last and config.model.kind == "image":
        # Module.to takes memory_format, which torch's overloads of it leave out: hence the two ignores.
        generator = generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack it
        critic = critic.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack it
    if torch.device(device).type == "cpu" and config.model.kind == "image":
        use_fold_convs(generator)  # the same function with faster CPU kernels for the one-channel output layer
    ema = None
    if config.train.ema is not None:
        ema = copy.deepcopy(generator).eval().requires_grad_(False)
    return Networks(generator, critic, ema)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers (batch-norm statistics) are copied."""
    ema_params: list[torch.Tensor] = list(ema.parameters())
    torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def ema_decay_at(decay: float, step: int, warmup: bool) -> float:
    """The decay for generator iteration `step` (1-based): min(decay, (1 + step) / (10 + step)) with warm-up."""
    return min(decay, (1.0 + step) / (10.0 + step)) if warmup else decay


@contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """The modules in eval mode for the block, each back in its previous mode afterwards."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, was, strict=True):
            m.train(mode)
