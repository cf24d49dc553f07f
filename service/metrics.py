"""Prometheus metrics on a registry owned by one app, so several apps in one process never collide.

A server of several worker processes uses prometheus_client's multiprocess mode instead: each worker's values live
in files of the server's private folder (`enable_multiprocess` in each worker, before any metric is made), and a
scrape of any worker reads every worker's files into one exposition: counters and histograms summed over every
worker that ever ran (a replaced worker's counts stay in the totals), the queue depth summed over the live
workers, the model info the largest value among live workers (so each model shows once, with no pid label).

Labels stay bounded: endpoints are route templates (or "unmatched" for paths no route knows), models are only
the names being served (a requested name never becomes a label), ops are "generate" and "score". A request whose
client left before its answer is counted with status 499 on the route it was addressed to, never as a 5xx.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

UNMATCHED_ENDPOINT = "unmatched"
# The status a request is counted under when its client closed the connection before it was answered (nginx's).
CLIENT_CLOSED = 499

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

CONTENT_TYPE = CONTENT_TYPE_LATEST
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def enable_multiprocess(folder: Path) -> None:
    """From now on in this process, metric values live in files under `folder`, where every worker's are summed.

    prometheus_client chooses where values live when it is imported, from `PROMETHEUS_MULTIPROC_DIR`; a worker
    forked from a server that imported it already makes that choice again here."""
    os.environ[_MULTIPROC_ENV] = str(folder)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]  # untyped in prometheus_client


class ServiceMetrics:
    """Every metric in the design's list, created on a fresh `CollectorRegistry`.

    With `multiprocess_dir` (a worker of a multi-process server, after `enable_multiprocess`), `render` reports
    the totals of every worker from the files in that folder."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self._multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "wgan_requests", "HTTP requests by route template and status", ["endpoint", "status"], registry=r
        )
        self.request_duration = Histogram(
            "wgan_request_duration_seconds", "HTTP request latency", ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            "wgan_queue_depth", "items waiting for a forward pass", ["model"], registry=r, multiprocess_mode="livesum"
        )
        self.queue_wait = Histogram(
            "wgan_queue_wait_seconds",
            "time from enqueue to the start of the item's first forward pass",
            ["model", "op"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "wgan_batch_size", "items per forward pass", ["model", "op"], buckets=_BATCH_BUCKETS, registry=r
        )
        self.inference_seconds = Histogram(
            "wgan_inference_seconds",
            "duration of one batched forward pass, host transfers included",
            ["model", "op"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.items = Counter("wgan_items", "items computed by forward passes", ["model", "op"], registry=r)
        self.model_info = Gauge(
            "wgan_model_info",
            "models being served (value 1)",
            ["model", "version", "device", "dtype"],
            registry=r,
            multiprocess_mode="livemax",
        )
        # The request counters' children by (endpoint, status): labels are bounded, so is this; looking a child up
        # here is cheaper than `labels()` on every request.
        self._request_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        children = self._request_children.get((endpoint, status))
        if children is None:
            children = (self.requests.labels(endpoint, str(status)), self.request_duration.labels(endpoint))
            self._request_children[(endpoint, status)] = children
        count, duration = children
        count.inc()
        duration.observe(seconds)

    def show_model(self, name: str, version: str, device: str, dtype: str) -> None:
        self.model_info.labels(name, version, device, dtype).set(1)

    def hide_model(self, name: str, version: str, device: str, dtype: str) -> None:
        if self._multiprocess_dir is not None:
            # Removing a child leaves its value in this worker's file: 0 there, and 0s are left out of scrapes.
            self.model_info.labels(name, version, device, dtype).set(0)
        self.model_info.remove(name, version, device, dtype)

    def render(self) -> bytes:
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry(auto_describe=False)
        collector = MultiProcessCollector(None, path=str(self._multiprocess_dir))  # type: ignore[no-untyped-call]
        registry.register(_ServedModelsOnly(collector))
        return generate_latest(registry)


class _ServedModelsOnly(Collector):
    """Every worker's metrics, less the model-info series of versions no longer served (value 0)."""

    def __init__(self, inner: MultiProcessCollector) -> None:
        self._inner = inner

    def collect(self) -> Iterable[Metric]:
        for metric in self._inner.collect():  # type: ignore[no-untyped-call]
            if metric.name == "wgan_model_info":
                metric.samples = [s for s in metric.samples if s.value != 0]
            yield metric
