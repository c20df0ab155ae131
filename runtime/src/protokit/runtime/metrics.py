"""Prometheus metrics of the server: started and handled RPCs, and their latency.

`grpc_server_started_total`, `grpc_server_handled_total` (with `grpc_code`) and the
`grpc_server_handling_seconds` histogram, labelled grpc_type/grpc_service/grpc_method, as go-grpc-prometheus
and py-grpc-prometheus name them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import grpc
import prometheus_client
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["MethodStats", "Metrics"]


class MethodStats:
    """One method: what the chain decides once for it (auth, limits) and its metric values."""

    __slots__ = (
        "admit",
        "authenticate",
        "bounds",
        "buckets",
        "handled",
        "labels",
        "limited",
        "max_deadline",
        "name",
        "ok",
        "seconds_sum",
        "started",
    )

    def __init__(
        self,
        name: str,
        grpc_type: str,
        bounds: tuple[float, ...],
        authenticate: bool,
        limited: bool,
        max_deadline: float = 0.0,
    ) -> None:
        service, _, method = name.lstrip("/").rpartition("/")
        self.name = name
        self.labels = (grpc_type, service, method)
        self.authenticate = authenticate
        self.limited = limited
        self.admit = authenticate or limited
        self.max_deadline = max_deadline  # seconds, 0: none beyond the client's
        # Metric values: plain numbers, updated on the event loop thread, read at scrape time.
        self.started = 0
        self.ok = 0  # handled with OK, the common case, kept out of the dict
        self.handled: dict[grpc.StatusCode, int] = {}
        self.bounds = bounds
        self.buckets = [0] * len(bounds)  # per bucket, not cumulative
        self.seconds_sum = 0.0


_LABELS = ("grpc_type", "grpc_service", "grpc_method")


class Metrics(Collector):
    """`grpc_server_started_total`, `grpc_server_handled_total` and `grpc_server_handling_seconds`.

    A custom collector: RPCs update plain numbers on their method (no locks, no label lookups per call)
    and the Prometheus families are built only when the registry is scraped.
    """

    def __init__(
        self,
        registry: prometheus_client.CollectorRegistry,
        buckets: Sequence[float] = prometheus_client.Histogram.DEFAULT_BUCKETS,
    ) -> None:
        bounds = sorted(float(b) for b in buckets)
        if bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds = tuple(bounds)
        self._bound_labels = tuple(floatToGoString(b) for b in bounds)  # type: ignore[no-untyped-call,unused-ignore]
        self.registry = registry
        self._methods: dict[str, MethodStats] = {}
        registry.register(self)

    def method(
        self, name: str, grpc_type: str, *, authenticate: bool, limited: bool, max_deadline: float = 0.0
    ) -> MethodStats:
        method = self._methods.get(name)
        if method is None:
            method = MethodStats(name, grpc_type, self.bounds, authenticate, limited, max_deadline)
            self._methods[name] = method
        return method

    def methods(self) -> list[MethodStats]:
        return list(self._methods.values())

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> list[Metric]:
        started, handled, seconds = self._families()
        for method in list(self._methods.values()):  # list(): atomic under the GIL
            labels = list(method.labels)
            started.add_metric(labels, method.started)
            handled.add_metric([*labels, "OK"], method.ok)
            for code, count in list(method.handled.items()):
                handled.add_metric([*labels, code.name], count)
            cumulative, buckets = 0, []
            for bound, count in zip(self._bound_labels, list(method.buckets), strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            seconds.add_metric(labels, buckets, method.seconds_sum)
        return [started, handled, seconds]

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily("grpc_server_started", "RPCs started on the server.", labels=_LABELS),
            CounterMetricFamily(
                "grpc_server_handled",
                "RPCs completed on the server, regardless of success or failure.",
                labels=(*_LABELS, "grpc_code"),
            ),
            HistogramMetricFamily(
                "grpc_server_handling_seconds",
                "Latency (seconds) of RPCs handled by the server, until the status was set.",
                labels=_LABELS,
            ),
        )
