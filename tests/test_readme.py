"""The README documents every setting and every metric the service really has."""

import re
from pathlib import Path

from service.settings import ServiceSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
DESIGN_METRICS = (
    "wgan_requests_total",
    "wgan_request_duration_seconds",
    "wgan_queue_depth",
    "wgan_queue_wait_seconds",
    "wgan_batch_size",
    "wgan_inference_seconds",
    "wgan_items_total",
    "wgan_model_info",
)


def test_every_setting_is_in_the_settings_table() -> None:
    missing = [
        name
        for name in ServiceSettings.model_fields
        if f"`WGAN_{name.upper()}`" not in README or f"`--{name.replace('_', '-')}`" not in README
    ]
    assert missing == [], f"README's settings table lacks {missing}"


def test_every_metric_is_listed() -> None:
    listed = set(re.findall(r"\| `(wgan_[a-z_]+)` \|", README))
    assert set(DESIGN_METRICS) <= listed


def test_quick_start_names_the_two_commands() -> None:
    assert "make serve" in README and "make test" in README
