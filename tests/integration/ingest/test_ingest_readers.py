"""Camera readers against the real broker: sampling and motion gating counted, outages survived."""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest

from gantry import topics
from gantry.config import IngestConfig, MotionConfig, StreamSource
from gantry.events import Frame, decode
from ingest.publish import Publisher
from ingest.readers import FRAMES, OUTAGES, CameraReader
from ingest.synthetic import Footage, frame_at, street, write_video

pytestmark = pytest.mark.integration
SETTINGS = IngestConfig(reconnect_backoff_s=0.1, reconnect_backoff_max_s=0.4, motion=MotionConfig(hold_s=0))


def counted(camera: str, outcome: str) -> float:
    return FRAMES.labels(camera, outcome)._value.get()


def run_reader(
    camera: str, url: str, publisher: Publisher, fps: float, stop: threading.Event
) -> CameraReader:
    reader = CameraReader(camera, StreamSource(url=url, fps=fps), SETTINGS, publisher.fire_frame, stop)
    reader.start()
    return reader


def test_video_through_the_reader_is_sampled_and_gated(broker, topic_records, tmp_path: Path) -> None:
    footage = Footage(seconds=6, fps=25, car_from_s=2, car_to_s=4)
    video = write_video(tmp_path / "street.avi", footage)
    publisher = Publisher(broker.bootstrap_servers)
    reader = run_reader("rd-file", str(video), publisher, fps=5, stop=threading.Event())
    reader.join(30)
    publisher.close()
    sent, still, skipped = (counted("rd-file", o) for o in ("sent", "still", "skipped"))
    assert sent + still + skipped == footage.frame_count == 150
    assert sent + still == 30  # 5 of every 25 decoded frames are sampled
    assert 8 <= sent <= 11  # the car moves for 2 s: 10 sampled frames, plus the one where it has left
    frames = [
        decode(Frame, r.value) for r in topic_records(broker.bootstrap_servers, topics.FRAMES, b"rd-file", int(sent))
    ]
    assert len(frames) == sent
    offsets = sorted((f.ts - frames[0].ts).total_seconds() for f in frames)
    assert offsets[-1] <= 2.2  # all within the car's two seconds


def test_reader_waits_out_a_missing_source_with_backoff(
    broker, topic_records, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.WARNING, "ingest.readers")
    video = tmp_path / "later.avi"
    publisher = Publisher(broker.bootstrap_servers)
    stop = threading.Event()
    reader = run_reader("rd-late", str(video), publisher, fps=2, stop=stop)
    time.sleep(1.0)
    outages = OUTAGES.labels("rd-late")._value.get()
    assert 2 <= outages <= 6  # backoff 0.1, 0.2, 0.4, 0.4...: a handful in a second, not a busy loop
    assert f"camera rd-late: cannot open {video}" in caplog.text
    write_video(tmp_path / "tmp.avi", Footage(seconds=2, car_from_s=0, car_to_s=2)).rename(video)
    reader.join(30)
    publisher.close()
    assert not reader.is_alive() and counted("rd-late", "sent") >= 3
    assert topic_records(broker.bootstrap_servers, topics.FRAMES, b"rd-late", 3)


class MjpegCamera:
    """An HTTP MJPEG camera that serves ``frames_per_connection`` frames, then drops the connection."""

    def __init__(self, frames_per_connection: int) -> None:
        footage = Footage(seconds=100, fps=10, car_from_s=0, car_to_s=100, width=320, height=240)
        background = street(footage)
        jpegs = [cv2.imencode(".jpg", frame_at(footage, i * 7, background))[1].tobytes() for i in range(60)]
        self.connections = 0
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                camera.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for n in range(frames_per_connection):
                        jpeg = jpegs[n % len(jpegs)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpeg)).encode()
                            + b"\r\n\r\n"
                            + jpeg
                            + b"\r\n"
                        )
                        time.sleep(0.04)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/video.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_live_mjpeg_stream_reconnects_after_the_camera_drops(broker, topic_records) -> None:
    camera = MjpegCamera(frames_per_connection=40)
    publisher = Publisher(broker.bootstrap_servers)
    stop = threading.Event()
    try:
        reader = run_reader("rd-live", camera.url, publisher, fps=5, stop=stop)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and camera.connections < 3:
            time.sleep(0.2)
        stop.set()
        reader.join(10)
    finally:
        camera.close()
        publisher.close()
    assert camera.connections >= 3 and OUTAGES.labels("rd-live")._value.get() >= 2
    sent = counted("rd-live", "sent")
    assert sent >= 5 and counted("rd-live", "skipped") > sent  # 25 fps delivered, 5 fps kept
    assert len(topic_records(broker.bootstrap_servers, topics.FRAMES, b"rd-live", int(sent))) == sent
