"""benchmarks/train_bench.py runs end to end on a tiny config and reports every loop it timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import tiny_image_config_dict

ROOT = Path(__file__).resolve().parents[2]


def test_train_bench_times_textbook_and_each_precision_of_the_trainer(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_image_config_dict()), encoding="utf-8")
    out = tmp_path / "result.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "train_bench.py"), "--config", str(config), "--iterations", "1",
         "--rounds", "1", "--out", str(out)],
        check=True, capture_output=True, timeout=300,
    )
    result = json.loads(out.read_text(encoding="utf-8"))
    for loop in ("textbook", "trainer", "trainer_bf16"):
        assert result[f"{loop}_it_per_s"] > 0 and result[f"{loop}_cpu_ms_per_it"] > 0
    assert result["ratio"] > 0 and result["ratio_bf16"] > 0
    assert set(result["rounds_it_per_s"]) == {"textbook", "trainer", "trainer_bf16"}
