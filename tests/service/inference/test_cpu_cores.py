"""The cores a serving process may use (a container's CPU limit included) and the torch threads it takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.inference.cpu_cores import available_cores, torch_threads


def test_processes_share_the_cores_less_one_between_their_torch_threads() -> None:
    assert torch_threads(None, "cpu", processes=1, cores=8) == 7
    assert torch_threads(None, "cpu", processes=2, cores=2) == 1
    assert torch_threads(None, "cpu", processes=2, cores=8) == 3
    assert torch_threads(None, "cpu", processes=8, cores=8) == 1
    assert torch_threads(None, "cuda", processes=2, cores=8) is None
    assert torch_threads(4, "cpu", processes=2, cores=2) == 4


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
