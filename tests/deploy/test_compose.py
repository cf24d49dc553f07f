"""Every compose file and variant validates with docker-compose, and mounts files that exist."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {
    "default": ["docker-compose.yml"],
    "gpu": ["docker-compose.yml", "docker-compose.gpu.yml"],
    "scale": ["docker-compose.yml", "docker-compose.scale.yml"],
}


def _config(files: list[str], profile: str | None = None) -> dict:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose (Debian's package) is not installed; `make test` installs it"
    args = [compose] + (["--profile", profile] if profile else [])
    for name in files:
        args += ["-f", str(ROOT / name)]
    result = subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_compose_variant_is_valid(variant: str) -> None:
    config = _config(VARIANTS[variant])
    assert {"wgan", "lb", "prometheus", "grafana"} <= set(config["services"])
    for name, service in config["services"].items():
        if name == "train":  # its mount is the output folder for runs, which docker creates
            continue
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith(("/", ".")):
                assert Path(source).exists(), f"compose mounts a missing path: {source}"


def test_gpu_variant_reserves_an_nvidia_device() -> None:
    wgan = _config(VARIANTS["gpu"])["services"]["wgan"]
    devices = wgan["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert wgan["environment"]["WGAN_DEVICE"] == "cuda"


def test_scale_variant_runs_several_replicas_behind_the_balancer() -> None:
    config = _config(VARIANTS["scale"])
    assert int(config["services"]["wgan"]["deploy"]["replicas"]) >= 2
    assert "ports" not in config["services"]["wgan"], "replicas must not bind a fixed host port"
    assert config["services"]["lb"]["ports"]


def test_train_profile_builds_the_train_target_and_stays_out_of_up() -> None:
    train = _config(VARIANTS["default"], profile="train")["services"]["train"]
    assert train["profiles"] == ["train"], "`docker compose up` must not start training"
    assert train["build"]["target"] == "train"
    assert any(volume.split(":")[1] == "/runs" for volume in train["volumes"])
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE | re.IGNORECASE)
    assert "train" in stages


def test_grafana_dashboard_is_valid_json_with_panels() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/wgan.json").read_text())
    assert dashboard["panels"] and all(panel["targets"] for panel in dashboard["panels"])
