"""How many workers `auto` runs and how many torch threads each gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.process.worker_count import available_cores, threads_per_worker, worker_count
from service.settings import ServiceSettings


def _settings(tmp_path: Path, **values: object) -> ServiceSettings:
    return ServiceSettings(models_dir=tmp_path, **values)  # type: ignore[arg-type]


def test_auto_is_one_worker_per_core_on_the_cpu_and_one_on_cuda(tmp_path: Path) -> None:
    auto = _settings(tmp_path)
    assert auto.workers == "auto"
    assert worker_count(auto, "cpu", cores=2) == 2
    assert worker_count(auto, "cpu", cores=1) == 1
    assert worker_count(auto, "cuda", cores=16) == 1
    assert worker_count(_settings(tmp_path, workers=3), "cuda", cores=16) == 3


def test_the_setting_is_read_from_flags_and_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings(tmp_path, workers="2").workers == 2
    monkeypatch.setenv("WGAN_WORKERS", "auto")
    assert ServiceSettings(models_dir=tmp_path).workers == "auto"
    for wrong in ("0", "many", "-1"):
        with pytest.raises(ValueError):
            _settings(tmp_path, workers=wrong)


def test_workers_share_the_cores_less_one_between_their_torch_threads(tmp_path: Path) -> None:
    auto = _settings(tmp_path)
    assert threads_per_worker(auto, "cpu", workers=2, cores=2) == 1
    assert threads_per_worker(auto, "cpu", workers=2, cores=8) == 3
    assert threads_per_worker(auto, "cpu", workers=8, cores=8) == 1
    assert threads_per_worker(auto, "cuda", workers=2, cores=8) is None
    assert threads_per_worker(_settings(tmp_path, torch_threads=4), "cpu", workers=2, cores=2) == 4


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),  # cgroup v2: 1.5 cores, rounded up
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_a_containers_cpu_limit_caps_the_cores(tmp_path: Path, files: dict[str, str], limit: int | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    unlimited = available_cores(tmp_path / "nowhere")
    assert available_cores(tmp_path) == (unlimited if limit is None else min(unlimited, limit))
