"""wgan-train and wgan-eval end to end, in subprocesses, with a tiny budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from models import read_metadata

TINY = {
    "name": "cli-ring8",
    "data": {"dataset": "ring8", "heldout": 200},
    "model": {"generator": {"hidden": 16, "depth": 2}, "critic": {"hidden": 16, "depth": 2}},
    "train": {"iterations": 1000, "batch_size": 32, "sample_every": 0, "threads": 1},
    "eval": {"reference_samples": 64, "point_samples": 200},
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_wgan_train_then_wgan_eval(tmp_path, config_file):
    out = tmp_path / "run"
    proc = _run(
        "-m",
        "training",
        "--config",
        str(config_file),
        "--out",
        str(out),
        "--iterations",
        "5",
        "--device",
        "cpu",
        "--set",
        "train.batch_size=16",
        "--set",
        "name=renamed",
        "--no-progress",
    )
    assert proc.returncode == 0, proc.stderr
    checkpoint = out / "renamed.safetensors"
    assert f"checkpoint: {checkpoint}" in proc.stdout
    meta = read_metadata(checkpoint)
    assert meta.training["generator_iterations"] == 5 and meta.training["hyperparameters"]["batch_size"] == 16

    proc = _run("-m", "training.eval_cli", str(checkpoint), "--json", "--samples", "300")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["kind"] == "points" and report["mode_coverage"]["modes_total"] == 8
    assert report["mode_coverage"]["samples"] == 300

    proc = _run("-m", "training.eval_cli", str(checkpoint))
    assert proc.returncode == 0 and "modes" in proc.stdout and "percentile" in proc.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "train.nope=1"], "train.nope: unknown key"),
        (["--set", "model.critic.norm=batch"], "batch norm"),
        (["--iterations", "0"], "--iterations must be a positive"),
        (["--set", "novalue"], "KEY.PATH=VALUE"),
        (["--set", "data.dataset=digits"], "model.generator.hidden: unknown key for an image generator"),
        (["--set", "data.dataset=npz:/does/not/exist.npz", "--set", "model.generator.kind=points"], "cannot read"),
    ],
)
def test_wgan_train_errors_are_usage_messages(tmp_path, config_file, extra, message):
    proc = _run("-m", "training", "--config", str(config_file), "--out", str(tmp_path / "x"), "--no-progress", *extra)
    assert proc.returncode == 2
    assert "usage: wgan-train" in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_wgan_eval_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "model.safetensors"
    bogus.write_bytes(b"\x80\x04not a checkpoint")
    proc = _run("-m", "training.eval_cli", str(bogus))
    assert proc.returncode == 2 and "not a valid WGAN checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr
