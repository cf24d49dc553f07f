"""Every metric the Grafana dashboard queries is one a live wgan-serve exports."""

from __future__ import annotations

import base64
import io
import json
import re

import httpx
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.processes import ROOT

PROMQL_FUNCTIONS_AND_LABELS = {"rate", "sum", "by", "histogram_quantile", "le"}


def _dashboard_metrics() -> set[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/wgan.json").read_text())
    names: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\bwgan_[a-z_]+", target["expr"]))
    return names - PROMQL_FUNCTIONS_AND_LABELS


def test_dashboard_queries_only_exported_metrics(start_replica) -> None:
    replica = start_replica()
    # exercise every op so that labelled histograms and counters have samples
    assert httpx.post(f"{replica.url}/v1/sample", json={"seed": 1, "n": 2}, timeout=30).status_code == 200
    frames = httpx.post(
        f"{replica.url}/v1/interpolate", json={"points": [{"seed": 1}, {"seed": 2}], "steps": 3}, timeout=30
    )
    assert frames.status_code == 200
    png = base64.b64decode(frames.json()["frames"][0]["data"])
    assert Image.open(io.BytesIO(png)).size[0] > 0
    assert (
        httpx.post(f"{replica.url}/v1/score", json={"images": [base64.b64encode(png).decode()]}, timeout=30).status_code
        == 200
    )
    text = httpx.get(f"{replica.url}/metrics", timeout=5).text
    exported = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    wanted = _dashboard_metrics()
    assert {"wgan_requests_total", "wgan_batch_size_bucket", "wgan_queue_depth"} <= wanted
    assert wanted - exported == set()
