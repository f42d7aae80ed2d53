"""A small Prometheus text exposition: request counts and latency per route, plus gauges."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
        self._sums: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1
            buckets = self._buckets[(method, route)]
            for i, bound in enumerate(LATENCY_BUCKETS_S):
                if seconds <= bound:
                    buckets[i] += 1
            buckets[-1] += 1
            self._sums[(method, route)] += seconds

    def render(self, gauges: dict[str, float]) -> str:
        lines = ["# TYPE jindou_http_requests_total counter"]
        with self._lock:
            for (method, route, status), count in sorted(self._requests.items()):
                lines.append(f'jindou_http_requests_total{{method="{method}",route="{route}",status="{status}"}} {count}')
            lines.append("# TYPE jindou_http_request_duration_seconds histogram")
            for (method, route), buckets in sorted(self._buckets.items()):
                labels = f'method="{method}",route="{route}"'
                for bound, count in zip(LATENCY_BUCKETS_S, buckets, strict=False):
                    lines.append(f'jindou_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {count}')
                lines.append(f'jindou_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {buckets[-1]}')
                lines.append(f"jindou_http_request_duration_seconds_sum{{{labels}}} {self._sums[(method, route)]:.6f}")
                lines.append(f"jindou_http_request_duration_seconds_count{{{labels}}} {buckets[-1]}")
        for name, value in gauges.items():
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


METRICS = Metrics()
