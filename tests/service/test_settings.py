"""ServiceSettings: defaults, WGAN_* variables, and clear refusals of unsafe values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service import ServiceSettings


def test_defaults_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ServiceSettings.model_fields:
        monkeypatch.delenv(f"WGAN_{name.upper()}", raising=False)
    monkeypatch.setenv("WGAN_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("WGAN_MAX_BATCH_SIZE", "32")
    monkeypatch.setenv("WGAN_API_KEYS", "one-key, two-key")
    settings = ServiceSettings()
    assert settings.models_dir == tmp_path and settings.max_batch_size == 32
    assert [k.get_secret_value() for k in settings.api_keys] == ["one-key", "two-key"]
    assert "one-key" not in repr(settings) and "one-key" not in str(settings.model_dump())
    assert (settings.host, settings.port, settings.device, settings.dtype) == ("127.0.0.1", 8000, "auto", "float32")
    monkeypatch.setenv("WGAN_API_KEYS", "")
    assert ServiceSettings().api_keys == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_batch_size": 0}, "greater than 0"),
        ({"max_queue_items": -1}, "greater than 0"),
        ({"max_wait_ms": -5}, "greater than or equal to 0"),
        ({"port": 70000}, "less than or equal to 65535"),
        ({"device": "tpu"}, "device must be auto, cpu, cuda or cuda:N"),
        ({"dtype": "float16", "device": "cpu"}, "needs a CUDA device"),
        ({"dtype": "int8"}, "float32"),
        ({"api_keys": ["has space"]}, "whitespace"),
        ({"max_frames": 1}, "greater than or equal to 2"),
        ({"unknown_setting": 1}, "Extra inputs"),
        ({"admin_key": "has space"}, "no whitespace"),
        ({"admin_key": "shared-key", "api_keys": ["shared-key"]}, "must differ from every API key"),
        ({"reload_poll_s": -1}, "greater than or equal to 0"),
        ({"drain_timeout_s": 0}, "greater than 0"),
        ({"max_header_bytes": 10}, "greater than or equal to 1024"),
    ],
)
def test_unsafe_values_are_refused_with_a_clear_message(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceSettings(models_dir=tmp_path, **overrides)


def test_a_missing_models_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is not a folder"):
        ServiceSettings(models_dir=tmp_path / "absent")
