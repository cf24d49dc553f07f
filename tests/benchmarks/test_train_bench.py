"""benchmarks/train_bench.py runs end to end on a tiny config and reports every loop it timed; its figures are the
median rounds and their ratios, checked on made-up timings."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

from tests.conftest import tiny_image_config_dict

ROOT = Path(__file__).resolve().parents[2]


def test_train_bench_times_textbook_and_each_precision_of_the_trainer(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_image_config_dict()), encoding="utf-8")
    out = tmp_path / "result.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "train_bench.py"),
            "--config",
            str(config),
            "--iterations",
            "1",
            "--rounds",
            "1",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = json.loads(out.read_text(encoding="utf-8"))
    for loop in ("textbook", "trainer", "trainer_bf16"):
        assert result[f"{loop}_it_per_s"] > 0 and result[f"{loop}_cpu_ms_per_it"] > 0
    assert result["ratio"] > 0 and result["ratio_bf16"] > 0
    assert set(result["rounds_it_per_s"]) == {"textbook", "trainer", "trainer_bf16"}


def _train_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_bench", ROOT / "benchmarks" / "train_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_takes_each_loops_median_round_and_its_ratios_to_the_textbook_loop():
    summarise = _train_bench().summarise
    rates = {"textbook": [2.0, 1.0, 3.0], "trainer": [5.0, 4.0, 6.0], "trainer_bf16": [8.0, 100.0, 7.0]}
    cpu_s = {"textbook": [0.6, 0.5, 0.4], "trainer": [0.25, 0.3, 0.2], "trainer_bf16": [0.1, 0.125, 9.0]}
    figures = summarise(rates, cpu_s, {"trainer": "", "trainer_bf16": "_bf16"})
    assert figures == {
        "textbook_it_per_s": 2.0,
        "textbook_cpu_ms_per_it": 500.0,
        "trainer_it_per_s": 5.0,
        "ratio": 2.5,  # 5 / 2 it/s: faster is above 1
        "trainer_cpu_ms_per_it": 250.0,
        "cpu_time_ratio": 2.0,  # 0.5 / 0.25 CPU s per iteration: cheaper is above 1
        "trainer_bf16_it_per_s": 8.0,  # the median ignores the 100 it/s outlier
        "ratio_bf16": 4.0,
        "trainer_bf16_cpu_ms_per_it": 125.0,
        "cpu_time_ratio_bf16": 4.0,
        "rounds_it_per_s": rates,
    }
    slower = summarise(
        {"textbook": [3.0, 1.0], "trainer": [1.0, 2.0]}, {"textbook": [0.1, 0.2], "trainer": [0.3]}, {"trainer": ""}
    )
    assert slower["textbook_it_per_s"] == 2.0 and slower["trainer_it_per_s"] == 1.5  # even counts: mean of the middle
    assert slower["ratio"] == 0.75 and slower["cpu_time_ratio"] == 0.5
    assert slower["textbook_cpu_ms_per_it"] == 150.0 and slower["trainer_cpu_ms_per_it"] == 300.0
    rounded = summarise(
        {"textbook": [3.0], "trainer": [1.0]}, {"textbook": [0.001], "trainer": [0.0030004]}, {"trainer": ""}
    )
    assert rounded["ratio"] == 0.333 and rounded["trainer_cpu_ms_per_it"] == 3.0 and rounded["cpu_time_ratio"] == 0.333
