import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from jobs_helpers import Worker, read_topic, write_config

from gantry import topics
from gantry.broker import free_port
from gantry.events import DeadLetter, HotlistEntry, PlateRead, decode, encode, now_utc
from gantry.kafka import producer
from stream_jobs.hotlist import store

pytestmark = pytest.mark.integration
SECRET = "s3cret"


class Receiver(BaseHTTPRequestHandler):
    """A subscriber that fails each delivery's first attempt, to exercise the retry."""

    received: list[tuple[dict, str, str]] = []
    attempts: dict[str, int] = {}

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        delivery = self.headers["X-Gantry-Delivery"]
        Receiver.attempts[delivery] = Receiver.attempts.get(delivery, 0) + 1
        status = 500 if Receiver.attempts[delivery] == 1 else 200
        if status == 200:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            Receiver.received.append((json.loads(body), delivery, "valid" if self.headers["X-Gantry-Signature"] == expected else "bad"))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args) -> None:
        return


def test_signed_retried_deliveries_and_dead_letters(broker, tmp_path, workers, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    subscribers = [
        {"id": "control-room", "url": f"http://127.0.0.1:{server.server_port}/hits", "secret_env": "WEBHOOK_SECRET",
         "lists": ["stolen"], "max_priority": 2},
        {"id": "offline", "url": f"http://127.0.0.1:{free_port()}/hits", "secret_env": "WEBHOOK_SECRET"},
    ]
    config = write_config(tmp_path / "gantry.yaml", broker,
                          {"hotlist": {"subscribers": subscribers, "webhook_retries": 2, "webhook_backoff_s": 0.05}})
    store.publish(broker, [HotlistEntry(plate="WH01AAA", list="stolen", priority=1),
                           HotlistEntry(plate="WH02BBB", list="permit", priority=1)])
    try:
        workers.append(worker := Worker(config, 0, tmp_path))
        worker.wait_ready()
        send = producer(broker)
        for n, plate in enumerate(["WH01AAA", "WH02BBB"]):
            read = PlateRead(read_id=f"wh-{n}", camera_id="cam-x", ts=now_utc(), plate=plate, confidence=0.9)
            send.send(topics.PLATE_READS, key=plate.encode(), value=encode(read))
        send.flush()
        letters = read_topic(broker, topics.WEBHOOK_DEAD_LETTERS, timeout_s=60,
                             until=lambda m: sum(b'"wh-' in x for x in m) >= 2)
    finally:
        server.shutdown()
    ours = [r for r in Receiver.received if r[0]["read_id"].startswith("wh-")]
    assert [(body["plate"], signature) for body, _, signature in ours] == [("WH01AAA", "valid")]
    assert Receiver.attempts[ours[0][1]] == 2  # failed once, delivered on the retry
    dead = [decode(DeadLetter, m) for m in letters if b'"wh-' in m]
    assert sorted(json.loads(d.payload)["plate"] for d in dead) == ["WH01AAA", "WH02BBB"]  # both hits reach "offline"
    assert all("subscriber offline" in d.reason and "3 attempts" in d.reason for d in dead)
