"""wgan-serve's flags are generated from ServiceSettings: every field has one, flags beat WGAN_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import ServiceSettings
from service.cli import build_parser, main, settings_from_args


def test_every_setting_is_a_flag() -> None:
    help_text = build_parser().format_help()
    for name in ServiceSettings.model_fields:
        assert "--" + name.replace("_", "-") in help_text


def test_flags_are_typed_and_override_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WGAN_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("WGAN_PORT", "9000")
    settings = settings_from_args(
        [
            "--models-dir",
            str(tmp_path),
            "--max-batch-size",
            "32",
            "--max-wait-ms",
            "1.5",
            "--no-warmup",
            "--dtype",
            "float32",
            "--api-keys",
            "k-one,k-two",
            "--log-level",
            "warning",
        ]
    )
    assert settings.models_dir == tmp_path
    assert settings.max_batch_size == 32 and settings.port == 9000 and settings.max_wait_ms == 1.5
    assert settings.warmup is False and settings.log_level == "warning"
    assert [k.get_secret_value() for k in settings.api_keys] == ["k-one", "k-two"]


def test_bad_flags_exit_with_a_usage_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        settings_from_args(["--models-dir", str(tmp_path), "--max-batch-size", "0"])
    assert exc.value.code == 2
    assert "--max-batch-size: Input should be greater than 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        settings_from_args(["--models-dir", str(tmp_path), "--dtype", "int8"])
    with pytest.raises(SystemExit):
        settings_from_args(["--models-dir", str(tmp_path / "missing")])


def test_a_cuda_device_this_machine_lacks_is_refused_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--models-dir", str(tmp_path), "--device", "cuda:99"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err or "does not exist" in err
