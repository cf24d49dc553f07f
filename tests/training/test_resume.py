"""Exact resume: k steps, stop, resume to n equals n uninterrupted steps, bit for bit on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import torch
import yaml

from models import load_checkpoint
from training import TrainConfig, train
from training.resume import RESUME_FILE, ResumeError, load_resume_state


def _config(iterations: int, **train_overrides) -> TrainConfig:
    """digits 16x16 with a batch-norm generator, EMA and fp32 Adam: every piece of state a resume must carry."""
    return TrainConfig.model_validate(
        {
            "name": "resume",
            "seed": 3,
            "data": {"dataset": "digits", "resolution": 16},
            "model": {"generator": {"z_dim": 8, "width": 8}, "critic": {"width": 8, "norm": "layer"}},
            "loss": {"drift": 0.001},
            "train": {
                "iterations": iterations,
                "batch_size": 16,
                "sample_every": 0,
                "threads": 1,
                "log_every": 1,
                "resume_every": 0,
                "ema_decay": 0.9,
                **train_overrides,
            },
            "eval": {"reference_samples": 32, "grid_size": 2},
        }
    )


def _assert_same_state(a: object, b: object, where: str = "state") -> None:
    """Equal resume states, entry by entry: the same keys and lengths at every level, bit-equal tensors and equal
    values below them. Only the clock (`elapsed_s`) may differ between two runs."""
    if isinstance(a, dict):
        assert isinstance(b, dict), f"{where}: {b!r} is not a dict"
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            if key != "elapsed_s":
                _assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_the_state_comparison_fails_on_a_missing_or_different_entry():
    state: dict[str, Any] = {
        "opt": {"state": {0: {"step": torch.tensor(3.0)}, 1: {"step": torch.tensor(3.0)}}},
        "rng": [{"data": torch.arange(4)}],
        "schedulers": [{"last_epoch": 5}],
        "elapsed_s": 1.0,
    }
    _assert_same_state(state, {**state, "elapsed_s": 2.0})
    for broken in (
        {**state, "opt": {"state": {0: state["opt"]["state"][0]}}},  # an optimiser entry missing
        {**state, "rng": [*state["rng"], {"data": torch.arange(4)}]},  # an extra rank
        {**state, "schedulers": []},  # a scheduler missing
        {**state, "rng": [{"data": torch.arange(4).flip(0)}]},  # a different stream
        {k: v for k, v in state.items() if k != "schedulers"},  # a whole part missing
    ):
        with pytest.raises(AssertionError):
            _assert_same_state(state, broken)


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_stopping_at_k_and_resuming_to_n_equals_an_uninterrupted_run(tmp_path, amp):
    straight = train(_config(12, amp=amp), tmp_path / "straight", device="cpu", progress=False)
    train(_config(5, amp=amp), tmp_path / "split", device="cpu", progress=False)
    assert load_resume_state(tmp_path / "split" / RESUME_FILE)["iteration"] == 5
    resumed = train(_config(12, amp=amp), tmp_path / "split", device="cpu", progress=False, resume=True)

    _assert_same_state(
        load_resume_state(tmp_path / "straight" / RESUME_FILE), load_resume_state(tmp_path / "split" / RESUME_FILE)
    )
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    _assert_same_state(a.generator.state_dict(), b.generator.state_dict(), "checkpoint generator")
    _assert_same_state(a.critic.state_dict(), b.critic.state_dict(), "checkpoint critic")
    assert b.metadata.training["generator_iterations"] == 12
    logged = [json.loads(line)["iteration"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 13))  # the records continue where the state left off, none repeated
    straight_log = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    split_log = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in lines]  # noqa: E731
    assert strip(straight_log) == strip(split_log)


def test_resume_without_a_state_is_a_clear_error(tmp_path):
    with pytest.raises(ResumeError, match="no resume state"):
        train(_config(3), tmp_path, device="cpu", progress=False, resume=True)
    (tmp_path / RESUME_FILE).write_bytes(b"not a torch file")
    with pytest.raises(ResumeError, match="cannot read the resume state"):
        load_resume_state(tmp_path / RESUME_FILE)


def test_cli_resume_extends_a_finished_run(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(_config(3).model_dump(mode="json")))
    run = tmp_path / "run"
    train(_config(3), run, device="cpu", progress=False)
    again = subprocess.run(
        [sys.executable, "-m", "training", "--resume", str(run), "--iterations", "5", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(run / "resume.safetensors").metadata.training["generator_iterations"] == 5
    both = subprocess.run(
        [sys.executable, "-m", "training", "--resume", str(run), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert both.returncode == 2 and "leave out --config" in both.stderr
