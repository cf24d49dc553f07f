"""Scale-out for real: two wgan-serve replicas behind nginx with the project's deploy/nginx/nginx.conf."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from models import latents_for_seeds, load_checkpoint, to_uint8
from tests.deploy.processes import ROOT, Replica, wait_for
from tests.ports import free_port

N_BEFORE = 200
N_AFTER = 100


def _render_nginx(upstreams: list[int], port: int, folder: Path) -> Path:
    """The project's config with the upstream servers, listen port and writable paths of this test."""
    conf = (ROOT / "deploy/nginx/nginx.conf").read_text()
    servers = "".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in upstreams)
    conf, n = re.subn(r"        server wgan:8000[^\n]*\n", servers, conf)
    assert n == 1, "deploy/nginx/nginx.conf must name the upstream `server wgan:8000`"
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};").replace("/tmp/", f"{folder}/")
    out = folder / "nginx.conf"
    out.write_text(conf)
    return out


def _sample_count(replica: Replica) -> float:
    text = httpx.get(f"{replica.url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "wgan_requests_total"
        and sample.labels.get("endpoint") == "/v1/sample"
        and sample.labels.get("status") == "200"
    )


def test_two_replicas_behind_nginx(tmp_path: Path, start_replica, models_dir: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx (Debian's package) is not installed; `make test` installs it"
    first, second = start_replica(), start_replica()
    port = free_port()
    conf = _render_nginx([first.port, second.port], port, tmp_path)
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    lb = f"http://127.0.0.1:{port}"
    checkpoint = load_checkpoint(next(models_dir.glob("*.safetensors")))
    z_dim = checkpoint.metadata.z_dim

    def expected(seed: int) -> np.ndarray:
        with torch.inference_mode():
            return to_uint8(checkpoint.generator(latents_for_seeds([seed], z_dim)))[0].numpy()  # [H, W, C]

    def fetch(client: httpx.Client, seed: int) -> tuple[int, int]:
        response = client.post(f"{lb}/v1/sample", json={"seed": seed}, headers={"accept": "image/png"})
        if response.status_code != 200:
            return seed, response.status_code
        image = np.asarray(Image.open(io.BytesIO(response.content)))
        image = image.reshape(expected(seed).shape)
        worst = int(np.abs(image.astype(int) - expected(seed).astype(int)).max())
        return seed, 200 if worst <= 1 else -worst

    try:
        wait_for(f"{lb}/healthz", timeout=30, proc=proc)
        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
            before = list(pool.map(lambda s: fetch(client, s), range(N_BEFORE)))
            assert [r for r in before if r[1] != 200] == []
            assert _sample_count(first) > 0 and _sample_count(second) > 0, "both replicas should have served"
            assert _sample_count(first) + _sample_count(second) == N_BEFORE

            # stop one replica while requests are flowing: every request still succeeds through the other
            futures = [pool.submit(fetch, client, 10_000 + s) for s in range(N_AFTER)]
            assert second.stop() == 0
            after = [f.result() for f in futures]
            after += [fetch(client, 20_000 + s) for s in range(20)]
        assert [r for r in after if r[1] != 200] == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
