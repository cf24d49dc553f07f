"""Prometheus metrics on a registry owned by one app, so several apps in one process never collide.

Labels stay bounded: endpoints are route templates (or "unmatched" for paths no route knows), models are only
the names being served (a requested name never becomes a label), ops are "generate" and "score". A request whose
client left before its answer is counted with status 499 on the route it was addressed to, never as a 5xx.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

UNMATCHED_ENDPOINT = "unmatched"
# The status a request is counted under when its client closed the connection before it was answered (nginx's).
CLIENT_CLOSED = 499

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """Every metric in the design's list, created on a fresh `CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "wgan_requests", "HTTP requests by route template and status", ["endpoint", "status"], registry=r
        )
        self.request_duration = Histogram(
            "wgan_request_duration_seconds", "HTTP request latency", ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("wgan_queue_depth", "items waiting for a forward pass", ["model"], registry=r)
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
            "wgan_model_info", "models being served (value 1)", ["model", "version", "device", "dtype"], registry=r
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
