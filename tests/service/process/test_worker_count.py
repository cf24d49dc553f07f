"""How many workers `auto` runs and how many torch threads each gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.process.worker_count import worker_count
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
