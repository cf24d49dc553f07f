"""A real Prometheus, configured by deploy/prometheus.yml, scrapes a live wgan-serve."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from tests.deploy.processes import ROOT, wait_for
from tests.ports import free_port


def _render_config(target: str, out: Path) -> Path:
    """The project's own config, with service discovery pointed at the test instance."""
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "wgan"]
    job.pop("dns_sd_configs")
    job["static_configs"] = [{"targets": [target]}]
    out.write_text(yaml.safe_dump(config))
    return out


def _query(prom: str, expr: str) -> list[dict]:
    body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_the_service(tmp_path: Path, start_replica) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus (Debian's package) is not installed; `make test` installs it"
    replica = start_replica()
    for seed in range(5):
        assert httpx.post(f"{replica.url}/v1/sample", json={"seed": seed}, timeout=30).status_code == 200

    port = free_port()
    config = _render_config(f"127.0.0.1:{replica.port}", tmp_path / "prometheus.yml")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    prom = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{prom}/-/ready", timeout=60, proc=proc)
        deadline = time.monotonic() + 60
        samples: list[dict] = []
        while time.monotonic() < deadline:
            samples = _query(prom, 'wgan_requests_total{job="wgan", endpoint="/v1/sample", status="200"}')
            if samples:
                break
            time.sleep(0.5)
        assert samples, (tmp_path / "prometheus.log").read_text()[-2000:]
        assert float(samples[0]["value"][1]) == 5
        (up,) = _query(prom, 'up{job="wgan"}')
        assert up["value"][1] == "1"
        info = _query(prom, "wgan_model_info")
        assert info and info[0]["metric"]["model"] == "digits"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
