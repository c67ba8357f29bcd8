"""Runs the real models on a rendered plate; a few seconds on CPU."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

DATASET = Path("/work/shared/datasets/openalpr-eu")


def render_plate(text: str) -> np.ndarray:
    """A grey street-like scene with one black-on-white plate."""
    image = np.full((360, 480, 3), 90, np.uint8)
    cv2.rectangle(image, (130, 200), (350, 250), (255, 255, 255), -1)
    cv2.rectangle(image, (130, 200), (350, 250), (20, 20, 20), 2)
    cv2.putText(image, text, (142, 240), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (0, 0, 0), 3, cv2.LINE_AA)
    return image


def test_import_is_cheap() -> None:
    code = ("import sys, recognize, recognize.recognizer, recognize.cli; "
            "print(sorted(m for m in sys.modules if 'onnxruntime' in m or 'tensorrt' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def recognizer():  # type: ignore[no-untyped-def]
    from recognize.recognizer import Recognizer

    return Recognizer(preset="fast", threads=1)


@pytest.mark.parametrize("text", ["AB12CDE", "BRA2E19"])
def test_reads_rendered_plate(recognizer, text: str) -> None:  # type: ignore[no-untyped-def]
    [result] = recognizer.read(render_plate(text))
    assert result.plate == text
    assert result.region is not None  # UK/Mercosur layouts also exist in EU countries
    assert 0.5 <= result.confidence <= 1.0
    assert 120 <= result.bbox.x <= 160 and 190 <= result.bbox.y <= 230


def render_layout(top: str, main: str, bottom: str, panel: tuple[int, int, int],
                  band: tuple[int, int, int] | None = None) -> np.ndarray:
    """A plate with smaller text above and below the characters (US state, BR city, slogans)."""
    image = np.full((360, 480, 3), 90, np.uint8)
    cv2.rectangle(image, (120, 170), (360, 280), panel, -1)
    cv2.rectangle(image, (120, 170), (360, 280), (30, 30, 30), 2)
    if band is not None:
        cv2.rectangle(image, (121, 171), (359, 195), band, -1)
    top_ink = (255, 255, 255) if band is not None else (40, 40, 160)
    cv2.putText(image, top, (175, 192), cv2.FONT_HERSHEY_SIMPLEX, 0.6, top_ink, 2, cv2.LINE_AA)
    cv2.putText(image, main, (132, 250), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 4, cv2.LINE_AA)
    cv2.putText(image, bottom, (170, 272), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
    return image


@pytest.mark.parametrize("top,main,bottom,panel,band", [
    ("California", "7ABC123", "dmv.ca.gov", (235, 235, 235), None),
    ("TEXAS", "ABC1234", "THE LONE STAR STATE", (235, 235, 235), None),
    ("SAO PAULO - SP", "ABC1234", "", (190, 190, 190), None),  # pre-Mercosur grey plate
    ("BRASIL", "BRA2E19", "", (235, 235, 235), (160, 60, 20)),  # Mercosur blue band
])
def test_text_stacked_on_the_plate_is_not_read(recognizer, top: str, main: str, bottom: str,  # type: ignore[no-untyped-def]
                                               panel: tuple[int, int, int],
                                               band: tuple[int, int, int] | None) -> None:
    assert [r.plate for r in recognizer.read(render_layout(top, main, bottom, panel, band))] == [main]


def render_two_line_plate(top: str, bottom: str) -> np.ndarray:
    """A motorcycle-style plate: two rows of characters on one square-ish panel."""
    image = np.full((360, 480, 3), 90, np.uint8)
    cv2.rectangle(image, (170, 150), (330, 270), (255, 255, 255), -1)
    cv2.rectangle(image, (170, 150), (330, 270), (20, 20, 20), 2)
    for text, baseline in ((top, 200), (bottom, 255)):
        (width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.3, 3)
        cv2.putText(image, text, (250 - width // 2, baseline), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (0, 0, 0), 3,
                    cv2.LINE_AA)
    return image


@pytest.mark.parametrize("top,bottom", [("ABC", "1234"), ("QTX", "4E71"), ("AB", "1234")])
def test_a_two_line_plate_is_read_top_row_first(recognizer, top: str, bottom: str) -> None:  # type: ignore[no-untyped-def]
    [result] = recognizer.read(render_two_line_plate(top, bottom))
    assert result.plate == top + bottom
    assert 160 <= result.bbox.x <= 200 and result.bbox.h >= 60  # both rows


@pytest.mark.parametrize("badge", ["ES350", "C300"])
def test_badge_on_dark_paint_is_not_a_plate(recognizer, badge: str) -> None:  # type: ignore[no-untyped-def]
    image = np.full((480, 640, 3), 38, np.uint8)  # a black car's tailgate
    cv2.putText(image, badge, (420, 150), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (205, 205, 205), 3, cv2.LINE_AA)
    cv2.rectangle(image, (200, 300), (440, 380), (235, 235, 235), -1)
    cv2.putText(image, "7ABC123", (212, 360), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 4, cv2.LINE_AA)
    assert [r.plate for r in recognizer.read(image)] == ["7ABC123"]


def test_blank_image_reads_nothing(recognizer) -> None:  # type: ignore[no-untyped-def]
    assert recognizer.read(np.full((240, 320, 3), 128, np.uint8)) == []
    assert recognizer.read_batch([np.zeros((64, 64, 3), np.uint8)]) == [[]]


def test_batch_read_on_two_cores_keeps_order() -> None:
    from recognize.recognizer import Recognizer

    recognizer = Recognizer(preset="fast", threads=2)
    images = [render_plate("AB12CDE"), np.full((240, 320, 3), 128, np.uint8),
              render_plate("KM456XY"), render_plate("BRA2E19")]
    batched = recognizer.read_batch(images)
    assert [[r.plate for r in rs] for rs in batched] == [["AB12CDE"], [], ["KM456XY"], ["BRA2E19"]]
    assert batched == [recognizer.read(im) for im in images]  # same reads, one image at a time


def test_unknown_preset() -> None:
    from recognize.recognizer import Recognizer

    with pytest.raises(ValueError, match="accurate"):
        Recognizer(preset="turbo")


def test_cli_json_on_synthetic_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i, text in enumerate(["AB12CDE", "KM456XY"]):
        cv2.imwrite(str(data / f"p{i}.jpg"), render_plate(text))
        (data / f"p{i}.txt").write_text(f"p{i}.jpg\t130\t200\t220\t50\t{text}\n")
    misses = tmp_path / "misses.json"
    cv2.imwrite(str(data / "stray.jpg"), render_plate("ZZ99ZZZ"))  # no annotation: skipped, counted
    out = subprocess.run([sys.executable, "-m", "recognize.cli", "recognition", str(data), "--json",
                          "--preset", "fast", "--misses", str(misses), "--baseline"],
                         capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["exact_rate"] == 1.0 and summary["false_reads_per_image"] == 0.0
    assert summary["images"] == 2 and summary["skipped"] == 1 and "stray.jpg" in out.stderr
    assert 0.0 <= summary["baseline_exact_rate"] <= 1.0 and "baseline_strict_exact_rate" in summary
    assert summary["baseline_only"] == []
    assert json.loads(misses.read_text()) == []


def test_cli_reads_the_photos_as_another_camera_would(tmp_path: Path) -> None:
    for i, text in enumerate(["AB12CDE", "KM456XY", "BRA2E19"]):
        cv2.imwrite(str(tmp_path / f"p{i}.jpg"), render_plate(text))
        (tmp_path / f"p{i}.txt").write_text(f"p{i}.jpg\t130\t200\t220\t50\t{text}\n")
    for view in ("rolled", "near"):
        out = subprocess.run([sys.executable, "-m", "recognize.cli", "recognition", str(tmp_path), "--json",
                              "--misses", str(tmp_path / "misses.json"), "--view", view],
                             capture_output=True, text=True, check=True)
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        assert summary["view"] == view and summary["images"] == 3
        assert summary["exact_rate"] == 1.0, (view, json.loads((tmp_path / "misses.json").read_text()))
    out = subprocess.run([sys.executable, "-m", "recognize.cli", "recognition", str(tmp_path), "--view", "fisheye"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "rolled, near, dim" in out.stderr


def test_cli_reports_bad_annotation(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x.jpg\t1\t2\n")
    out = subprocess.run([sys.executable, "-m", "recognize.cli", "recognition", str(tmp_path)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "x.txt:1" in out.stderr


@pytest.mark.skipif(not DATASET.is_dir(), reason="OpenALPR EU benchmark not present")
def test_dataset_smoke() -> None:
    from recognize.evaluation import load_dataset

    assert len(load_dataset(DATASET).samples) > 0


def test_a_region_added_in_the_configuration_is_read() -> None:
    from gantry.config import RecognizeConfig
    from recognize.recognizer import Recognizer

    image = render_plate("A1B2C3D")  # LNLNLNL: no built-in format of the EU, UK, US or Brazil
    national = Recognizer.configured(RecognizeConfig(regions=("eu", "uk", "us", "br")), threads=1)
    assert [r.region for r in national.read(image)] in ([], [None])  # at most a vanity plate
    configured = Recognizer.configured(RecognizeConfig(regions=("eu", "xx"), formats={"xx": ["LNLNLNL"]}), threads=1)
    [result] = configured.read(image)
    assert (result.plate, result.region) == ("A1B2C3D", "xx")


def test_a_configured_region_longer_than_every_built_in_format_is_read() -> None:
    from gantry.config import RecognizeConfig
    from recognize.recognizer import Recognizer

    image = np.full((360, 560, 3), 90, np.uint8)
    cv2.rectangle(image, (100, 200), (460, 250), (255, 255, 255), -1)
    cv2.rectangle(image, (100, 200), (460, 250), (20, 20, 20), 2)
    cv2.putText(image, "MH12AB1234", (110, 240), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3, cv2.LINE_AA)
    configured = Recognizer.configured(RecognizeConfig(regions=("in", "any"), formats={"in": ["LLNNLLNNNN"]}),
                                       threads=1)
    [result] = configured.read(image)
    assert (result.plate, result.region) == ("MH12AB1234", "in")


def test_the_generic_family_reads_a_plate_no_format_describes() -> None:
    from gantry.config import RecognizeConfig
    from recognize.recognizer import Recognizer

    [result] = Recognizer.configured(RecognizeConfig(), threads=1).read(render_plate("A1B2C3D"))
    assert (result.plate, result.region) == ("A1B2C3D", "any")


def test_a_camera_reads_with_its_own_regions() -> None:
    """A Brazilian camera reads an EU-format plate in the generic family, not in the EU's format."""
    from gantry.config import RecognizeConfig
    from recognize.recognizer import Recognizer

    image = render_plate("AB123CD")  # EU LLNNNLL; no Brazilian format fits it
    recognizer = Recognizer.configured(RecognizeConfig(), threads=1, camera_regions={"cam-br": ("br", "any")})
    [global_read] = recognizer.read(image)
    [camera_read] = recognizer.read(image, camera="cam-br")
    assert (global_read.plate, global_read.region) == ("AB123CD", "eu")
    assert (camera_read.plate, camera_read.region) == ("AB123CD", "any")
    [other] = recognizer.read(image, camera="cam-elsewhere")  # not configured: the global regions
    assert other.region == "eu"


def test_a_surely_read_one_is_not_forced_to_an_i() -> None:
    """A 1 the model gives no I mass stays a 1 (generic family), though EU LLN{1,6} wants an I."""
    from gantry.config import RecognizeConfig
    from recognize.recognizer import Recognizer

    [read] = Recognizer.configured(RecognizeConfig(), threads=1).read(render_plate("K179658"))
    assert (read.plate, read.region) == ("K179658", "any")


def test_unknown_camera_region_fails_at_start() -> None:
    from recognize.recognizer import Recognizer

    with pytest.raises(ValueError, match="mars"):
        Recognizer(threads=1, camera_regions={"cam-1": ("mars",)})


def test_whole_image_baseline_keeps_every_line() -> None:
    from recognize.baseline import WholeImageBaseline
    from recognize.recognizer import Recognizer

    [reads] = WholeImageBaseline(Recognizer(threads=1)).read_batch([render_plate("AB12CDE")])
    assert "AB12CDE" in [r.plate for r in reads] and all(r.region is None for r in reads)


def test_miss_causes_name_the_stage_that_lost_the_plate() -> None:
    from recognize.base import BoundingBox
    from recognize.diagnose import miss_cause
    from recognize.recognizer import Recognizer

    recognizer, image = Recognizer(threads=1), render_plate("AB12CDE")
    plate_box, empty_box = BoundingBox(130, 200, 220, 50), BoundingBox(10, 10, 100, 40)
    assert miss_cause(recognizer, image, empty_box, "AB12CDE") == "detection"
    assert miss_cause(recognizer, image, plate_box, "XY98ZZZ") == "characters"
    assert miss_cause(recognizer, image, plate_box, "AB12CDE") == "interpretation"


def test_an_unsure_coarse_read_does_not_spare_an_image_its_second_look() -> None:
    # A date stamp or badge read at 0.7 beside a plate too small for the coarse scale must not
    # stop the finer look; a sure read does.
    from recognize.base import Candidate
    from recognize.interpret import Interpretation
    from recognize.recognizer import Scored, wants_second_look

    def read(conf: float) -> Scored:
        return Scored(Candidate(np.zeros((4, 2), np.float32), 0.9), Interpretation("AB123", conf, "any"))

    assert wants_second_look([])
    assert wants_second_look([read(0.7)])
    assert not wants_second_look([read(0.7), read(0.93)])
    assert wants_second_look([read(0.85)], sure=0.9)  # min_confidence above


def test_a_small_frame_without_a_sure_read_gets_its_second_look_too() -> None:
    # A near camera's 337 x 252 frame: its plate box at the coarse scale takes in the whole panel
    # and the plate scores below min_confidence, while the second look reads it surely.
    from recognize.recognizer import Recognizer

    recognizer = Recognizer(preset="fast")
    seen: list[int | None] = []
    detect = recognizer.detector.detect
    recognizer.detector.detect = lambda image, side=None: seen.append(side) or detect(image, side)  # type: ignore[method-assign]
    recognizer.read(np.full((252, 337, 3), 128, np.uint8))
    assert seen == [None, 960]


def test_only_unsure_plate_like_lines_ask_the_second_opinion() -> None:
    from recognize.recognizer import REFINE_FLOOR, SECOND_LOOK_SURE, unsure_line

    assert unsure_line(0.6)
    assert not unsure_line(0.93)  # surely read
    assert not unsure_line(0.1)  # a sign or a badge either way
    assert unsure_line(REFINE_FLOOR) and not unsure_line(SECOND_LOOK_SURE)
