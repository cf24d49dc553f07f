"""TensorBoard logging: the event file holds the metrics records' scalars, a resume purges what it replays."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from training import TrainConfig, train
from training.cli import main as train_main
from training.resume import RESUME_FILE


def _config_dict(iterations: int) -> dict:
    return {
        "name": "tb-ring8",
        "seed": 0,
        "data": {"dataset": "ring8", "heldout": 200},
        "model": {"generator": {"hidden": 16, "depth": 2}, "critic": {"hidden": 16, "depth": 2}},
        "train": {
            "iterations": iterations,
            "batch_size": 32,
            "sample_every": 3,
            "log_every": 1,
            "resume_every": 0,
            "threads": 1,
        },
        "eval": {"reference_samples": 64, "point_samples": 200},
    }


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_flag_writes_the_metrics_records_as_scalars(tmp_path):
    config = tmp_path / "tb.yaml"
    config.write_text(yaml.safe_dump(_config_dict(6)))
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--out", str(run), "--no-progress", "--tensorboard"]) == 0

    scalars = _scalars(run)
    assert {"loss/wasserstein", "loss/gp", "loss/critic_loss", "loss/generator_loss"} <= scalars.keys()
    records = _records(run)
    losses = [r for r in records if "wasserstein" in r]
    for key in ("wasserstein", "gp", "generator_loss"):
        logged = scalars[f"loss/{key}"]
        assert [step for step, _ in logged] == [r["iteration"] for r in losses] == list(range(1, 7))
        assert [value for _, value in logged] == pytest.approx([r[key] for r in losses], rel=1e-6, abs=1e-7)
    coverage = [r for r in records if "high_quality_share" in r]
    assert [step for step, _ in scalars["samples/modes_covered"]] == [r["iteration"] for r in coverage] == [3, 6, 6]
    assert [v for _, v in scalars["samples/high_quality_share"]] == pytest.approx(
        [r["high_quality_share"] for r in coverage]
    )


def test_tensorboard_is_off_by_default(tmp_path):
    train(TrainConfig.model_validate(_config_dict(2)), tmp_path, device="cpu", progress=False)
    assert not (tmp_path / "tb").exists()


def test_resuming_replaces_the_events_logged_after_the_resume_state(tmp_path):
    with_tb = {**_config_dict(3), "train": {**_config_dict(3)["train"], "tensorboard": True}}
    train(TrainConfig.model_validate(with_tb), tmp_path, device="cpu", progress=False)
    shutil.copy(tmp_path / RESUME_FILE, tmp_path / "at_3.pt")
    with_tb["train"]["iterations"] = 5
    train(TrainConfig.model_validate(with_tb), tmp_path, device="cpu", progress=False, resume=True)
    # A crash after iteration 5, before the next resume state: continue from the one at iteration 3.
    shutil.copy(tmp_path / "at_3.pt", tmp_path / RESUME_FILE)
    train(TrainConfig.model_validate(with_tb), tmp_path, device="cpu", progress=False, resume=True)

    logged = _scalars(tmp_path)["loss/wasserstein"]
    losses = [r for r in _records(tmp_path) if "wasserstein" in r]
    assert [step for step, _ in logged] == list(range(1, 6))  # 4 and 5 once each: the replayed ones
    assert [value for _, value in logged] == pytest.approx([r["wasserstein"] for r in losses], rel=1e-6, abs=1e-7)


def test_tensorboard_without_the_package_is_a_clear_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what an install without it gives
    config = tmp_path / "tb.yaml"
    config.write_text(yaml.safe_dump(_config_dict(2)))
    with pytest.raises(SystemExit) as exc:
        train_main(["--config", str(config), "--out", str(tmp_path / "run"), "--no-progress", "--tensorboard"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "train.tensorboard needs the tensorboard package" in err and "pip install" in err
    assert not (tmp_path / "run" / "tb-ring8.safetensors").exists()
