"""/healthz and /metrics as Kubernetes probes and Prometheus see them (a real server on a free port)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from gantry import observability
from gantry.observability import ERRORS, MESSAGES_IN, MESSAGES_OUT, serve_health


def get(server: ThreadingHTTPServer, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of one GET, on a fresh connection as a kubelet probe makes."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), answer.read().decode()
    finally:
        connection.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ThreadingHTTPServer]]:
    started: list[ThreadingHTTPServer] = []

    def start(ready: Callable[[], bool] = lambda: True) -> ThreadingHTTPServer:
        server = serve_health(0, ready=ready, host="127.0.0.1")
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_port_zero_binds_a_free_port(serve: Callable[..., ThreadingHTTPServer]) -> None:
    first, second = serve(), serve()
    assert first.server_port > 0 and second.server_port > 0
    assert first.server_port != second.server_port


def test_healthz_follows_readiness(serve: Callable[..., ThreadingHTTPServer]) -> None:
    ready = threading.Event()
    server = serve(ready.is_set)
    assert get(server, "/healthz")[0] == 503
    ready.set()
    status, content_type, body = get(server, "/healthz")
    assert (status, body) == (200, "ok\n")
    assert content_type.startswith("text/plain")
    ready.clear()
    assert get(server, "/healthz") == (503, "text/plain", "not ready\n")


def test_metrics_stay_up_while_not_ready(serve: Callable[..., ThreadingHTTPServer]) -> None:
    """Liveness probes /metrics: a process that is alive but waiting for Kafka must not be killed."""
    server = serve(lambda: False)
    status, content_type, _ = get(server, "/metrics")
    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST


def test_metrics_expose_the_shared_counters(serve: Callable[..., ThreadingHTTPServer]) -> None:
    stage = f"test-{uuid.uuid4().hex[:8]}"
    MESSAGES_IN.labels(stage=stage, topic="plate_reads").inc(3)
    MESSAGES_OUT.labels(stage=stage, topic="journeys").inc(2)
    ERRORS.labels(stage=stage, reason="invalid_event").inc()
    server = serve()
    before = samples(get(server, "/metrics")[2])
    assert before[("gantry_messages_in_total", (("stage", stage), ("topic", "plate_reads")))] == 3
    assert before[("gantry_messages_out_total", (("stage", stage), ("topic", "journeys")))] == 2
    assert before[("gantry_errors_total", (("reason", "invalid_event"), ("stage", stage)))] == 1
    MESSAGES_IN.labels(stage=stage, topic="plate_reads").inc()
    after = samples(get(server, "/metrics")[2])
    assert after[("gantry_messages_in_total", (("stage", stage), ("topic", "plate_reads")))] == 4


def test_unknown_paths_are_not_found(serve: Callable[..., ThreadingHTTPServer]) -> None:
    server = serve()
    assert get(server, "/")[0] == 404
    assert get(server, "/healthz/extra")[0] == 404


def test_a_slow_readiness_check_does_not_block_metrics(serve: Callable[..., ThreadingHTTPServer]) -> None:
    release = threading.Event()
    server = serve(lambda: release.wait(10))
    probe = threading.Thread(target=get, args=(server, "/healthz"))
    probe.start()
    try:
        assert get(server, "/metrics")[0] == 200
    finally:
        release.set()
        probe.join(10)


def test_a_failing_readiness_check_is_not_healthy_and_the_server_survives(
    serve: Callable[..., ThreadingHTTPServer],
) -> None:
    def broken() -> bool:
        raise RuntimeError("consumer closed")

    server = serve(broken)
    assert get(server, "/healthz")[0] == 503
    assert get(server, "/metrics")[0] == 200


def test_lag_and_latency_are_exported(serve: Callable[..., ThreadingHTTPServer]) -> None:
    from gantry.observability import LAG, LATENCY

    LAG.labels("test-stage", "frames", "3").set(42)
    LATENCY.labels("test-stage").observe(0.02)
    body = get(serve(lambda: True), "/metrics")[2]
    assert 'gantry_consumer_lag{partition="3",stage="test-stage",topic="frames"} 42.0' in body
    assert 'gantry_latency_seconds_count{stage="test-stage"} 1.0' in body


def test_health_listens_on_loopback_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("GANTRY_HEALTH_HOST", raising=False)
    server = serve_health(0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()
    monkeypatch.setenv("GANTRY_HEALTH_HOST", "0.0.0.0")
    server = serve_health(0)
    try:
        assert server.server_address[0] == "0.0.0.0"
    finally:
        server.shutdown()
        server.server_close()


def test_a_silent_connection_is_closed_after_the_idle_timeout(monkeypatch, serve):
    monkeypatch.setattr(observability, "IDLE_TIMEOUT_S", 0.5)
    server = serve()
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as silent:
        started = time.monotonic()
        assert silent.recv(1) == b""  # the server hung up without an answer
        assert time.monotonic() - started < 4
