import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from gantry.events import (
    Frame,
    HotlistEntry,
    InvalidEvent,
    PlateRead,
    dead_letter,
    decode,
    encode,
    jpeg_size,
    normalise_plate,
)

JPEG = cv2.imencode(".jpg", np.zeros((10, 10, 3), np.uint8))[1].tobytes()


def declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with another size in its frame header (SOF0), as a decompression bomb has."""
    data = bytearray(jpeg)
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def read(**changes):
    fields = dict(read_id="r1", camera_id="cam1", ts=datetime(2026, 3, 1, 8, 0, tzinfo=UTC), plate="AB12CDE",
                  confidence=0.9)
    return PlateRead(**(fields | changes))


def test_plate_is_normalised_to_capitals_and_digits():
    assert normalise_plate(" ab-12 cde ") == "AB12CDE"
    assert read(plate="ab 12-cde").plate == "AB12CDE"


def test_cyrillic_and_greek_look_alikes_become_their_latin_letters():
    assert normalise_plate("АВ123") == "AB123"  # Cyrillic A and Ve
    assert normalise_plate("ам 777 ск") == "AM777CK"  # lower case too
    assert normalise_plate("ЕКМНОРСТУХ") == "EKMHOPCTYX"
    assert normalise_plate("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ") == "ABEZHIKMNOPTYX"  # Greek capitals
    assert normalise_plate("ικη-1234") == "IKH1234"
    assert normalise_plate("AB\u00a012\u2013CD") == "AB12CD"  # no-break space and en dash separate, as - does
    assert read(plate="АВ 123 С").plate == "AB123C"


@pytest.mark.parametrize("text", ["ÄB123", "京A12345", "AB١٢٣", "ФЯ123", "ΣΩ123", "ＡＢ123", "A\u0308B12"])
def test_a_plate_with_letters_that_have_no_latin_look_alike_is_rejected_not_shortened(text):
    with pytest.raises(ValueError, match="not a plate letter"):
        normalise_plate(text)
    with pytest.raises(InvalidEvent, match="plate"):
        decode(PlateRead, encode(read()).replace(b'"AB12CDE"', f'"{text}"'.encode()))


def test_plate_read_round_trips_through_the_wire_format():
    original = read(direction="in", frame_id="f1")
    assert decode(PlateRead, encode(original)) == original
    assert b'"v":1' in encode(original)


def test_timestamps_become_utc_milliseconds():
    cet = timezone(timedelta(hours=1))
    r = read(ts=datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=cet))
    assert r.ts == datetime(2026, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"not json", "(message)"),
        (b'{"read_id":"r","camera_id":"c","ts":"2026-03-01T08:00:00Z","plate":"AB1","confidence":1.5}', "confidence"),
        (b'{"read_id":"r","camera_id":"c","ts":"2026-03-01T08:00:00","plate":"AB1","confidence":0.5}', "ts"),
        (b'{"read_id":"r","camera_id":"c","ts":"2026-03-01T08:00:00Z","plate":"--","confidence":0.5}', "plate"),
        (b'{"read_id":"r","camera_id":"c","ts":"2026-03-01T08:00:00Z","plate":"AB1","confidence":0.5,"x":1}', "x"),
        (b'{"v":2,"read_id":"r","camera_id":"c","ts":"2026-03-01T08:00:00Z","plate":"AB1","confidence":0.5}', "v"),
    ],
)
def test_invalid_reads_are_rejected_with_the_field_named(raw, named):
    with pytest.raises(InvalidEvent) as err:
        decode(PlateRead, raw)
    assert f": {named}:" in str(err.value)


def test_empty_message_is_rejected():
    with pytest.raises(InvalidEvent, match="empty message"):
        decode(PlateRead, None)


def test_frame_carries_jpeg_as_base64_and_rejects_other_bytes():
    frame = Frame(camera_id="cam1", ts=datetime.now(UTC), frame_id="f", jpeg=JPEG, width=10, height=10)
    assert decode(Frame, encode(frame)).jpeg == JPEG
    bad = encode(frame).replace(b'"jpeg":"', b'"jpeg":"iVBO')
    with pytest.raises(InvalidEvent, match="jpeg"):
        decode(Frame, bad)


def test_a_frames_size_is_its_jpegs_own_read_from_the_header():
    assert jpeg_size(declaring(JPEG, 9000, 7000)) == (9000, 7000)  # the header alone: nothing decoded
    frame = Frame(camera_id="cam1", ts=datetime.now(UTC), frame_id="f", jpeg=JPEG, width=10, height=10)
    assert frame.pixels == 100
    lying = encode(frame).replace(b'"width":10', b'"width":1920')
    with pytest.raises(InvalidEvent, match="the JPEG is 10x10 pixels, the frame says 1920x10"):
        decode(Frame, lying)
    with pytest.raises(ValueError, match="the JPEG is 12000x12000 pixels, the frame says 10x10"):
        Frame(camera_id="cam1", ts=datetime.now(UTC), frame_id="f", jpeg=declaring(JPEG, 12000, 12000), width=10,
              height=10)


@pytest.mark.parametrize(("jpeg", "reason"), [
    (b"\xff\xd8\xff\xe0only-a-marker", "not a JPEG image (its header cannot be read)"),
    (JPEG[:12], "not a JPEG image (its header cannot be read)"),
    (declaring(JPEG, 65000, 65000), "the JPEG declares more than"),
])
def test_a_frame_whose_jpeg_header_is_unreadable_or_absurd_is_refused(jpeg, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        jpeg_size(jpeg)


def test_hotlist_validity_window_is_half_open():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    entry = HotlistEntry(plate="AB12CDE", list="stolen", valid_from=start, valid_until=start + timedelta(days=1))
    assert not entry.valid_at(start - timedelta(seconds=1))
    assert entry.valid_at(start)
    assert not entry.valid_at(start + timedelta(days=1))
    assert entry.key == "stolen:AB12CDE"


def test_dead_letter_keeps_the_payload_and_reason():
    letter = dead_letter(b"\xffbroken", "invalid PlateRead: ts", stage="jobs", source_topic="plate_reads",
                         partition=2, offset=41)
    assert letter.payload == "\\xffbroken"
    assert (letter.partition, letter.offset, letter.reason) == (2, 41, "invalid PlateRead: ts")


def test_an_oversized_dead_letter_is_cut_to_fit_and_names_the_original():
    from gantry.events import DEAD_LETTER_MAX_BYTES, dead_letter

    raw = b'"\xff' * 600_000  # escaping makes this several times the limit
    letter = dead_letter(raw, "too big to read", stage="sink", source_topic="plate_reads", partition=2, offset=9)
    assert len(encode(letter)) <= DEAD_LETTER_MAX_BYTES
    assert letter.reason == "too big to read" and letter.offset == 9
    assert hashlib.sha256(raw).hexdigest() in letter.payload and str(len(raw)) in letter.payload
    small = dead_letter(b"short", "bad", stage="sink", source_topic="plate_reads")
    assert small.payload == "short"
