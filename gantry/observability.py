"""Health and metrics for every long-running Gantry process.

Each process serves ``/healthz`` (200 when it is ready to work, 503 otherwise) and Prometheus
``/metrics`` on one port, so Kubernetes probes and Prometheus scrape the same place. The port
comes from ``--health-port`` or ``$GANTRY_HEALTH_PORT``; 0 picks a free one. It listens on
127.0.0.1 unless ``$GANTRY_HEALTH_HOST`` says otherwise: on one machine the metrics (topic lags,
error reasons) are nobody else's business, while a pod sets ``0.0.0.0`` for its kubelet and
Prometheus (the Helm chart does).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

MESSAGES_IN = Counter("gantry_messages_in", "Messages consumed", ["stage", "topic"])
MESSAGES_OUT = Counter("gantry_messages_out", "Messages produced or rows written", ["stage", "topic"])
ERRORS = Counter("gantry_errors", "Messages rejected or failed", ["stage", "reason"])
LAG = Gauge("gantry_consumer_lag", "Messages behind the end of the partition", ["stage", "topic", "partition"])
LATENCY = Histogram(
    "gantry_latency_seconds",
    "From a message being consumed to its output being acknowledged",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def record_lag(stage: str, consumer) -> None:
    """Set the lag gauge for every partition a kafka-python consumer holds."""
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is not None:
            LAG.labels(stage, tp.topic, str(tp.partition)).set(max(0, end - consumer.position(tp)))


IDLE_TIMEOUT_S = 10


def serve_health(port: int, ready: Callable[[], bool] = lambda: True, host: str | None = None) -> ThreadingHTTPServer:
    """Start the health/metrics server in a daemon thread; ``server.server_port`` is the bound port."""
    host = host or os.environ.get("GANTRY_HEALTH_HOST", "127.0.0.1")

    class Handler(BaseHTTPRequestHandler):
        timeout = IDLE_TIMEOUT_S  # a connection that sends nothing does not hold a thread for ever

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/metrics":
                body, status, ctype = generate_latest(), 200, CONTENT_TYPE_LATEST
            elif self.path == "/healthz":
                try:
                    ok = ready()
                except Exception:  # a failing check means not ready, never a dropped probe
                    ok = False
                body, status, ctype = (b"ok\n" if ok else b"not ready\n"), (200 if ok else 503), "text/plain"
            else:
                body, status, ctype = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
