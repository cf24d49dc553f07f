"""benchmarks/gpu_check.py's plumbing on the CPU: each step under its own limit, failures and timeouts recorded and
passed over, at most 8 files with the one-line-per-step summary first, and one real step (fp16 training) end to end.
The whole dry run (every step with --device cpu) is run by hand; its wall time is in docs/gpu.md."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_the_check_runs_each_step_under_its_limit_and_goes_on_past_failures(tmp_path):
    gc = _gpu_check()
    py = sys.executable
    # The real step as the check defines it, with room for a loaded CI machine (its own limit is for an idle one).
    real = dataclasses.replace(next(s for s in gc.STEPS if s.name == "train-fp16"), dry_budget_s=240)
    steps = (
        gc.Step("fails", [py, "-c", "raise SystemExit(3)"], [py, "-c", "raise SystemExit(3)"], 30, 30),
        gc.Step("hangs", [py, "-c", "import time; time.sleep(60)"], [py, "-c", "import time; time.sleep(60)"], 30, 6),
        gc.Step("env", [py, "-c", "pass"], [py, "-c", "import os; print(os.environ['D'])"], 30, 30, {"D": "{DEVICE}"}),
        real,
    )
    out = tmp_path / "out"
    assert gc.check(steps, dry=True, out=out, wheels=tmp_path / "none") == 1
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and "summary.txt" in files
    summary = (out / "summary.txt").read_text().splitlines()
    assert [line.split()[:2] for line in summary[:4]] == [
        ["fails", "FAILED"],
        ["hangs", "TIMEOUT"],
        ["env", "ok"],
        ["train-fp16", "ok"],
    ], summary
    assert "rc=3" in summary[0] and "rc=124" in summary[1]
    assert (out / "3-env.log").read_text().strip().endswith("cpu")
    train_log = (out / "4-train-fp16.log").read_text()
    assert "--device cpu" in train_log and "train.amp=fp16" in train_log


def test_the_whole_check_fits_its_budget_and_writes_at_most_8_files():
    gc = _gpu_check()
    assert 1 + len(gc.STEPS) <= 8
    assert sum(s.budget_s for s in gc.STEPS) + 60 <= gc.TOTAL_BUDGET_S  # 60 s for the install and the probe
    specs = gc.locked_versions(gc.WHEELS)
    assert all("==" in spec for spec in specs), specs  # every wheel at the lock's version
    assert not any(name in ("torch", "mlxtend") for name in gc.WHEELS)
