import asyncio
import hashlib
import hmac
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gantry.config import HotlistConfig, Subscriber
from gantry.events import HotlistHit
from stream_jobs.simulator import Noise, simulate
from stream_jobs.webhooks import Route, deliver, delivery_id, sign, subscriber_client


def hit(list_: str = "stolen", priority: int = 1, hit_id: str = "h1") -> HotlistHit:
    return HotlistHit(hit_id=hit_id, read_id="r", camera_id="c", ts=datetime(2026, 11, 21, tzinfo=UTC),
                      plate="AB12CDE", listed_plate="AB12CDE", list=list_, priority=priority, match="exact",
                      confidence=0.9)


def test_signature_is_hmac_sha256_of_the_timestamp_and_the_body():
    assert sign(b"k", 1764547200, b"{}") == "sha256=" + hmac.new(b"k", b"1764547200.{}", hashlib.sha256).hexdigest()
    assert sign(b"k", 1764547201, b"{}") != sign(b"k", 1764547200, b"{}")  # a replay a minute on fails


def test_subscriber_filters_and_stable_delivery_ids():
    route = Route(Subscriber(id="police", url="https://x", lists=["stolen"], max_priority=2), b"k")
    assert route.wants(hit()) and not route.wants(hit(list_="permit")) and not route.wants(hit(priority=3))
    other = Subscriber(id="council", url="https://y")
    assert delivery_id(hit(), route.subscriber) == delivery_id(hit(), route.subscriber) != delivery_id(hit(), other)


class SlowSubscriber(BaseHTTPRequestHandler):
    """Answers every delivery after 0.8 s."""

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(0.8)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        return


def test_deliveries_waiting_for_a_connection_are_not_timed_out_unsent():
    """Eight deliveries over two connections to a subscriber that takes 0.8 s: the last two wait
    2.4 s for a connection, longer than an attempt may take (2 s), and are still delivered at
    their first attempt."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowSubscriber)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    route = Route(Subscriber(id="police", url=f"http://127.0.0.1:{server.server_port}/hits"), b"k")
    settings = HotlistConfig(webhook_retries=0)

    async def send_all() -> list[str | None]:
        async with subscriber_client(timeout_s=2.0, connections=2) as client:
            return await asyncio.gather(*(deliver(client, route, hit(hit_id=f"h{n}"), settings) for n in range(8)))

    try:
        assert asyncio.run(send_all()) == [None] * 8
    finally:
        server.shutdown()


def test_simulation_is_deterministic_and_noise_adds_reads_not_answers():
    clean = simulate(cameras=6, vehicles=200, hours=3, seed=3)
    again = simulate(cameras=6, vehicles=200, hours=3, seed=3)
    assert [r.read_id for r in clean.reads] == [r.read_id for r in again.reads]
    assert clean.expected.journeys and clean.expected.charges and clean.expected.hits
    noisy = simulate(cameras=6, vehicles=200, hours=3, seed=3, noise=Noise(duplicates=0.1, late=2))
    assert len(noisy.reads) > len(clean.reads)
    assert noisy.expected.journeys == clean.expected.journeys and len(noisy.expected.late_reads) == 2
