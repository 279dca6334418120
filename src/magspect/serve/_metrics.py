"""Prometheus metrics, one registry per app (never the process-global one, so apps do not collide)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "magspect_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "magspect_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
            buckets=LATENCY_BUCKETS_S, registry=r,
        )
        self.inspections = Counter(
            "magspect_inspections", "Inspections recorded, by spec and verdict", ["spec", "verdict"], registry=r
        )
        self.inference = Histogram(
            "magspect_inference_duration_seconds", "Decode + inspection time in a worker", buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.queue_depth = Gauge("magspect_inference_queue_depth", "Inspections running or waiting", registry=r)
        self.queue_capacity = Gauge("magspect_inference_queue_capacity", "Most inspections running or waiting",
                                    registry=r)
        self.queue_rejected = Counter(
            "magspect_inference_queue_rejected", "Requests refused with 503 because the queue was full", registry=r
        )
        self.model_ready = Gauge("magspect_model_ready", "1 when the model is loaded and warmed", registry=r)

    def bind_queue(self, depth: Callable[[], float], capacity: int) -> None:
        self.queue_depth.set_function(depth)
        self.queue_capacity.set(capacity)

    def render(self) -> bytes:
        return generate_latest(self.registry)
