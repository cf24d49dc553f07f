"""How a network's forward pass runs: eager PyTorch, eager on channels-last tensors, compiled by inductor, or
exported to ONNX Runtime; and what `auto` means on a device."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import get_args

import torch
from torch import nn

from service.inference.onnx_runtime import OnnxRuntimeForward, onnxruntime_available
from service.settings import Backend

log = logging.getLogger(__name__)

# inputs [B, ...] (and, for a conditional generator, labels [B, ...]) -> outputs [B, ...]
Forward = Callable[..., torch.Tensor]

BACKENDS: tuple[Backend, ...] = get_args(Backend)

# Dynamo keeps its compiled graphs per Python function: every generator of one class (each model served, each
# reloaded version) adds its entries to the same `forward`, two per module (batch 1 and the dynamic batch). Past
# the limit (8 by default) dynamo would quietly run the rest eagerly.
_COMPILED_MODELS_LIMIT = 256


def _allow_compiled_models(entries: int) -> None:
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, entries)


def _channels_last(module: nn.Module) -> nn.Module:
    """`module` itself, its 4-D weights converted to channels-last in place. (torch's overloads of Module.to leave
    out memory_format, which Module.to accepts: hence the ignore.)"""
    converted: nn.Module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack it
    return converted


def resolve_backend(backend: Backend, device: torch.device, onnxruntime_installed: bool | None = None) -> Backend:
    """The backend that runs: `backend` itself, unless it is `auto`, which is `onnxruntime` on the CPU when ONNX
    Runtime is installed (`onnxruntime_installed`; None: look), else `eager`; and `eager` on CUDA, where CUDA graphs
    (a setting of their own) apply to it."""
    if backend != "auto":
        return backend
    if device.type != "cpu":
        return "eager"
    installed = onnxruntime_available() if onnxruntime_installed is None else onnxruntime_installed
    return "onnxruntime" if installed else "eager"


def announce_backend(backend: Backend, device: torch.device) -> Backend:
    """`resolve_backend` once at start-up, with one log line that says what runs the generators and, when `auto`
    settles for eager on the CPU, why."""
    resolved = resolve_backend(backend, device)
    if backend == "auto" and device.type == "cpu" and resolved == "eager":
        log.warning(
            "backend auto: ONNX Runtime is not installed, so generators run eager PyTorch, slower on the CPU "
            "(pip install 'wgan-serve[serve]' installs it)"
        )
    else:
        log.info("generator backend %s on %s%s", resolved, device, " (auto)" if backend == "auto" else "")
    return resolved


def with_backend(
    module: nn.Module, backend: Backend, item_shape: tuple[int, ...], label_shape: tuple[int, ...] | None = None
) -> Forward:
    """The module (already on its device and dtype, in eval mode) prepared to run with `backend`, as a function of
    inputs [B, *item_shape] and, for a class-conditional generator (`label_shape` given), labels [B, *label_shape]
    (class weights). Every backend takes the labels.

    - `auto`: what `resolve_backend` makes of it on the module's device.
    - `eager`: the module itself.
    - `channels_last`: 4-D weights stored NHWC, so convolutions run in oneDNN's (or cuDNN's) preferred layout;
      outputs come out channels-last, which `to_uint8` turns into NHWC anyway. No effect on a network without
      4-D weights (the point MLPs).
    - `compile`: the channels-last module through `torch.compile` with the batch dimension dynamic, so one
      compiled graph serves every batch size from 2 up (batch 1 is specialised and compiled once more); the
      compile happens on the first call of each, which the warm-up makes. The wrapper shares its parameters with
      `module`.
    - `onnxruntime` (CPU, float32): the module exported to ONNX in memory (batch dimension dynamic; a conditional
      generator with its labels as a second input) and run by an ONNX Runtime session on as many intra-op threads
      as torch has now.
    """
    if backend == "auto":
        backend = resolve_backend(backend, next(module.parameters()).device)
    if backend == "eager":
        return module
    if backend == "channels_last":
        return _channels_last(module)
    if backend == "compile":
        _allow_compiled_models(_COMPILED_MODELS_LIMIT)
        return torch.compile(_channels_last(module), dynamic=True)
    if backend == "onnxruntime":
        return OnnxRuntimeForward(module, item_shape, torch.get_num_threads(), label_shape)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
