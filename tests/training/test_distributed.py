"""Data-parallel training on 2 gloo ranks on the CPU: identical weights on both, files from rank 0 only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from models import load_checkpoint
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "name": "ddp",
    "data": {"dataset": "digits", "resolution": 16},
    "model": {"generator": {"z_dim": 8, "width": 8}, "critic": {"width": 8, "norm": "layer"}},
    "train": {"iterations": 6, "batch_size": 8, "sample_every": 3, "threads": 1, "resume_every": 3},
    "eval": {"reference_samples": 32, "grid_size": 2},
}


def test_two_gloo_ranks_hold_identical_weights_and_only_rank_0_writes(tmp_path):
    """The ranks get torchrun's environment by hand, each in its own working directory, with a relative --out:
    whatever a rank writes lands under its own directory, so rank 1's must stay empty."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    port = free_port()
    procs = []
    for rank in (0, 1):
        cwd = tmp_path / f"rank{rank}"
        cwd.mkdir()
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
        }
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "training",
                    "--config",
                    str(config),
                    "--out",
                    "run",
                    "--device",
                    "cpu",
                    "--no-progress",
                ],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    digests = {}
    for rank, (_, err) in enumerate(outputs):
        found = re.findall(r"rank (\d): weights sha256 ([0-9a-f]{64})", err)
        assert [int(r) for r, _ in found] == [rank]
        digests[rank] = found[0][1]
    assert digests[0] == digests[1]  # generator, critic and EMA: every parameter and buffer

    assert list((tmp_path / "rank1").iterdir()) == []
    run = tmp_path / "rank0" / "run"
    assert {"ddp.safetensors", "resume.pt", "metrics.jsonl", "config.json", "samples"} <= {
        p.name for p in run.iterdir()
    }
    summary = load_checkpoint(run / "ddp.safetensors").metadata.training
    assert summary["hyperparameters"]["world_size"] == 2 and summary["generator_iterations"] == 6
    assert "checkpoint:" in outputs[0][0] and "checkpoint:" not in outputs[1][0]
