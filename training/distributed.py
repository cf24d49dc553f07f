"""Data-parallel training under `torchrun`: process group, DDP wrapping, buffer sync, a weight digest per rank.

`torchrun --nproc_per_node N -m training --config ...` sets RANK / WORLD_SIZE / LOCAL_RANK; each rank draws its
own real and latent batches, DistributedDataParallel averages the gradients (gloo on CPU, NCCL on CUDA), so every
rank holds the same weights, and rank 0 alone writes files.

The gradient penalty differentiates the critic twice. DDP's reducer fires its all-reduce hooks when a parameter's
gradient is accumulated, which `torch.autograd.grad(..., inputs=x_hat, create_graph=True)` never does (it only
computes the input gradient); the single `loss.backward()` afterwards accumulates every parameter's gradient
(first-order terms and the penalty's double backward) once, so each hook fires once. The loop also runs the
penalty's forward pass on the unwrapped critic, so one DDP forward precedes each backward (the pattern DDP
supports; pytorch issues #47562 and #63812 show what goes wrong otherwise).
"""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context_from_env() -> DistContext:
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_process_group(ctx: DistContext, device: torch.device) -> None:
    """gloo on CPU, NCCL on CUDA; a no-op for one process or when already initialised."""
    if not ctx.enabled or dist.is_initialized():
        return
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ctx.rank, world_size=ctx.world_size)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


# torch 2.13 named DDP's per-forward buffer broadcast `forward_sync_buffers`; before, only `broadcast_buffers` (now
# deprecated) existed, and turning it off also left the buffers out of DDP's initial sync.
_FORWARD_SYNC_BUFFERS = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters


def wrap(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DDP around `module` for more than one rank (buffers synced by `sync_buffers` instead), else `module`."""
    if not ctx.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    if _FORWARD_SYNC_BUFFERS:
        return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)
    wrapped = DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)
    sync_buffers(module, ctx)  # the initial sync that broadcast_buffers=False leaves out
    return wrapped


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


@torch.no_grad()
def sync_buffers(module: nn.Module, ctx: DistContext) -> None:
    """Give every rank rank 0's buffers (batch-norm statistics, spectral-norm vectors)."""
    if ctx.enabled:
        for buf in unwrap(module).buffers():
            dist.broadcast(buf, src=0)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def gather_objects(obj: object, ctx: DistContext) -> list[object]:
    """Every rank's `obj`, in rank order (a one-element list for a single process)."""
    if not ctx.enabled:
        return [obj]
    out: list[object] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def weights_digest(*modules: nn.Module) -> str:
    """sha256 over every parameter and buffer, in order: equal digests mean bit-identical networks."""
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in unwrap(module).state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
