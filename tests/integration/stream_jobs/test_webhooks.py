import hashlib
import hmac
import json
import threading
import time
from collections import Counter
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
            stamp = self.headers["X-Gantry-Timestamp"]
            expected = "sha256=" + hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
            fresh = abs(time.time() - int(stamp)) < 300  # the age check a subscriber makes against replays
            valid = self.headers["X-Gantry-Signature"] == expected and fresh
            Receiver.received.append((json.loads(body), delivery, "valid" if valid else "bad"))
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


RETRIES = 3


def test_a_stuck_subscriber_holds_back_no_other(broker, tmp_path, workers, monkeypatch):
    """One subscriber's endpoint accepts connections and never answers; the other gets every hit
    while the stuck one is still on its first attempt at the first hit."""
    release = threading.Event()
    stuck_attempts: Counter[str] = Counter()  # per delivery
    prompt: list[tuple[str, int]] = []  # (read id, the stuck one's most attempts at a delivery) as each arrives

    class Stuck(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            stuck_attempts[self.headers["X-Gantry-Delivery"]] += 1
            release.wait(60)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            return

    class Prompt(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt.append((body["read_id"], max(stuck_attempts.values(), default=0)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            return

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for handler in (Stuck, Prompt)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    subscribers = [{"id": name, "url": f"http://127.0.0.1:{server.server_port}/hits", "secret_env": "WEBHOOK_SECRET"}
                   for name, server in zip(("stuck", "prompt"), servers, strict=True)]
    config = write_config(tmp_path / "gantry.yaml", broker,
                          {"hotlist": {"subscribers": subscribers, "webhook_retries": RETRIES, "webhook_backoff_s": 0.05}})
    store.publish(broker, [HotlistEntry(plate="WH03CCC", list="stolen", priority=1)])
    try:
        workers.append(worker := Worker(config, 0, tmp_path))
        worker.wait_ready()
        send = producer(broker)
        for n in range(2):
            read = PlateRead(read_id=f"wh-stuck-{n}", camera_id="cam-x", ts=now_utc(), plate="WH03CCC", confidence=0.9)
            send.send(topics.PLATE_READS, key=read.plate.encode(), value=encode(read))
            send.flush()
            deadline = time.monotonic() + 60
            while not any(read_id == read.read_id for read_id, _ in prompt):
                assert time.monotonic() < deadline, f"{read.read_id} never reached the prompt subscriber"
                time.sleep(0.05)
    finally:
        release.set()
        for server in servers:
            server.shutdown()
    ours = [(read_id, attempts) for read_id, attempts in prompt if read_id.startswith("wh-stuck-")]
    assert [read_id for read_id, _ in ours] == ["wh-stuck-0", "wh-stuck-1"]
    # One group for both would send the second hit only after every attempt at the first (a
    # 5 s timeout each); with a group each it comes while those attempts still run.
    assert ours[-1][1] <= RETRIES, "the second hit waited for the stuck subscriber's retries"
