"""How the trainer asks DDP not to broadcast buffers at every forward, on torch releases before and after 2.13
(which renamed `broadcast_buffers` to `forward_sync_buffers`). Two real gloo ranks: tests/training/test_distributed.py,
run on the torch releases listed in docs/operations.md#torch-versions."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from packaging.version import Version
from torch import nn

from training import distributed as ddp

TWO_RANKS = ddp.DistContext(rank=1, world_size=2)


class RecordingDDP(nn.Module):
    def __init__(self, module: nn.Module, **kwargs: Any) -> None:
        super().__init__()
        self.module = module
        self.kwargs = kwargs


@pytest.fixture
def broadcasts(monkeypatch) -> list[torch.Tensor]:
    sent: list[torch.Tensor] = []
    monkeypatch.setattr(ddp, "DistributedDataParallel", RecordingDDP)
    monkeypatch.setattr(torch.distributed, "broadcast", lambda tensor, src: sent.append(tensor))
    return sent


def test_the_new_name_when_torch_has_it_and_no_extra_broadcast(monkeypatch, broadcasts):
    monkeypatch.setattr(ddp, "_FORWARD_SYNC_BUFFERS", True)
    wrapped = ddp.wrap(nn.BatchNorm1d(3), TWO_RANKS, torch.device("cpu"))
    assert isinstance(wrapped, RecordingDDP)
    assert wrapped.kwargs == {"device_ids": None, "forward_sync_buffers": False}
    assert broadcasts == []


def test_before_2_13_the_old_name_and_rank_0s_buffers_broadcast_once(monkeypatch, broadcasts):
    monkeypatch.setattr(ddp, "_FORWARD_SYNC_BUFFERS", False)
    module = nn.BatchNorm1d(3)  # 3 buffers: running mean, running var, batches tracked
    wrapped = ddp.wrap(module, TWO_RANKS, torch.device("cpu"))
    assert isinstance(wrapped, RecordingDDP)
    assert wrapped.kwargs == {"device_ids": None, "broadcast_buffers": False}
    assert [b.data_ptr() for b in broadcasts] == [b.data_ptr() for b in module.buffers()]


def test_this_torch_is_read_right():
    has_new_name = Version(torch.__version__).release >= (2, 13)
    assert has_new_name == ddp._FORWARD_SYNC_BUFFERS
