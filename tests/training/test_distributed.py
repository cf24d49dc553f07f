"""Data-parallel training on 2 gloo ranks on the CPU: identical weights on both, files from rank 0 only, and a
run whose rank is killed mid-way continues from its last resume state when the same command is started again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from models import load_checkpoint
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 30

TINY = {
    "name": "ddp",
    "data": {"dataset": "digits", "resolution": 16},
    "model": {"generator": {"z_dim": 8, "width": 8}, "critic": {"width": 8, "norm": "layer"}},
    "train": {"iterations": ITERATIONS, "batch_size": 8, "sample_every": 10, "threads": 1, "resume_every": 2},
    "eval": {"reference_samples": 32, "grid_size": 2},
}


def _launch(config: Path, cwds: list[Path], out: str, *extra: str) -> list[subprocess.Popen]:
    """Two ranks with torchrun's environment set by hand (what torchrun gives each worker)."""
    port = free_port()
    procs = []
    for rank, cwd in enumerate(cwds):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(len(cwds)),
            "LOCAL_WORLD_SIZE": str(len(cwds)),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, "-m", "training", "--config", str(config), "--out", out, "--device", "cpu"]
        procs.append(
            subprocess.Popen(
                [*command, "--no-progress", *extra],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _finish(procs: list[subprocess.Popen]) -> list[tuple[str, str]]:
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return outputs


def _digests(outputs: list[tuple[str, str]]) -> list[str]:
    """Each rank's sha256 over generator, critic and EMA (every parameter and buffer), from its log."""
    digests = []
    for rank, (_, err) in enumerate(outputs):
        found = re.findall(r"rank (\d): weights sha256 ([0-9a-f]{64})", err)
        assert [int(r) for r, _ in found] == [rank]
        digests.append(found[0][1])
    return digests


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str]]]:
    """One run start to end. The ranks each get their own working directory and a relative --out: whatever a rank
    writes lands under its own directory, so rank 1's must stay empty."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    cwds = [tmp_path / "rank0", tmp_path / "rank1"]
    for cwd in cwds:
        cwd.mkdir()
    return tmp_path, _finish(_launch(config, cwds, "run"))


def test_two_gloo_ranks_hold_identical_weights_and_only_rank_0_writes(uninterrupted):
    tmp_path, outputs = uninterrupted
    digests = _digests(outputs)
    assert digests[0] == digests[1]

    assert list((tmp_path / "rank1").iterdir()) == []
    run = tmp_path / "rank0" / "run"
    assert {"ddp.safetensors", "resume.pt", "metrics.jsonl", "config.json", "samples"} <= {
        p.name for p in run.iterdir()
    }
    summary = load_checkpoint(run / "ddp.safetensors").metadata.training
    assert summary["hyperparameters"]["world_size"] == 2 and summary["generator_iterations"] == ITERATIONS
    assert "checkpoint:" in outputs[0][0] and "checkpoint:" not in outputs[1][0]


def test_a_killed_rank_restarted_with_the_same_command_continues_where_the_run_stopped(tmp_path, uninterrupted):
    """What a cluster does to a preempted training pod: one rank dies (SIGKILL), its peer fails on the next
    collective, and the job is started again with the same command line, on the shared run folder (the PVC)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    shared = tmp_path / "pvc" / "run"
    first = _launch(config, [tmp_path, tmp_path], str(shared), "--auto-resume")
    deadline = time.monotonic() + 180
    while not (shared / "resume.pt").exists():
        assert all(p.poll() is None for p in first), "a rank ended before the first resume state was written"
        assert time.monotonic() < deadline, "no resume state within 180 s"
        time.sleep(0.005)
    first[1].send_signal(signal.SIGKILL)
    try:
        first[0].communicate(timeout=120)
    except subprocess.TimeoutExpired:  # a peer stuck in a collective is what the job's restart policy would kill
        first[0].kill()
        first[0].communicate()
    first[1].communicate()
    assert first[0].returncode != 0, "the run ended on its own before the kill: nothing was interrupted"
    stopped_at = int(torch.load(shared / "resume.pt", weights_only=True)["iteration"])
    assert 0 < stopped_at < ITERATIONS

    outputs = _finish(_launch(config, [tmp_path, tmp_path], str(shared), "--auto-resume"))
    for rank, (_, err) in enumerate(outputs):
        assert f"rank {rank}: resumed at generator iteration {stopped_at} of {ITERATIONS}" in err
    summary = load_checkpoint(shared / "ddp.safetensors").metadata.training
    assert summary["generator_iterations"] == ITERATIONS
    # exact resume: the interrupted run ends with the very weights of the run that was never stopped
    assert _digests(outputs) == _digests(uninterrupted[1])


def test_auto_resume_goes_with_config_and_out(tmp_path, capsys):
    from training.cli import main

    for argv in (["--resume", str(tmp_path), "--auto-resume"], ["--config", "c.yaml", "--auto-resume"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "--auto-resume goes with --config and --out" in capsys.readouterr().err
