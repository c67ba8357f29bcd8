from pathlib import Path

import cv2
import numpy as np
import pytest

from recognize.base import BoundingBox, PlateResult
from recognize.evaluation import AnnotationError, baseline_only, evaluate, load_dataset, parse_annotation


def write_sample(folder: Path, name: str, line: str | None = None) -> None:
    cv2.imwrite(str(folder / f"{name}.jpg"), np.full((40, 60, 3), 255, np.uint8))
    (folder / f"{name}.txt").write_text(line or f"{name}.jpg\t1\t2\t30\t10\tAB123CD\n")


def test_parse_ok(tmp_path: Path) -> None:
    write_sample(tmp_path, "a", "a.jpg\t1\t2\t30\t10\tab-123 cd\n")
    s = parse_annotation(tmp_path / "a.txt")
    assert s.plates == ("AB123CD",) and s.boxes == (BoundingBox(1, 2, 30, 10),)


@pytest.mark.parametrize("line,needle", [
    ("a.jpg\t1\t2\t30\n", "a.txt:1: field 'h' missing"),
    ("a.jpg\t1\tx\t30\t10\tAB1\n", "a.txt:1: field 'y': 'x' is not a number"),
    ("b.jpg\t1\t2\t30\t10\tAB1\n", "a.txt:1: field 'image': file"),
    ("a.jpg\t1\t2\t30\t10\t--\n", "a.txt:1: field 'plate'"),
])
def test_parse_errors_name_file_line_field(tmp_path: Path, line: str, needle: str) -> None:
    write_sample(tmp_path, "a", line)
    with pytest.raises(AnnotationError, match=needle.replace("(", r"\(")):
        parse_annotation(tmp_path / "a.txt")


def test_image_without_annotation_is_skipped_not_fatal(tmp_path: Path) -> None:
    write_sample(tmp_path, "a")
    cv2.imwrite(str(tmp_path / "b.jpg"), np.zeros((4, 4, 3), np.uint8))
    dataset = load_dataset(tmp_path)
    assert [s.image.name for s in dataset.samples] == ["a.jpg"]
    assert [p.name for p in dataset.skipped] == ["b.jpg"]


def test_metrics_merge_o_and_zero(tmp_path: Path) -> None:
    write_sample(tmp_path, "a", "a.jpg\t1\t2\t30\t10\tRKO99AN\n")
    write_sample(tmp_path, "b", "b.jpg\t1\t2\t30\t10\tBA123CD\n")
    box = BoundingBox(0, 0, 1, 1)
    answers = iter([[PlateResult("RK099AN", 0.9, "eu", box)],
                    [PlateResult("XX999XX", 0.9, "eu", box)]])
    report = evaluate(lambda images: [next(answers) for _ in images], load_dataset(tmp_path).samples, warmup=0)
    s = report.summary()
    assert s["exact_rate"] == 0.5 and s["strict_exact_rate"] == 0.0
    assert s["false_reads_per_image"] == 0.5
    assert [m["image"] for m in report.misses()] == ["b.jpg"]


def test_images_only_the_baseline_reads_are_named(tmp_path: Path) -> None:
    for name in "abc":
        write_sample(tmp_path, name)
    samples = load_dataset(tmp_path).samples
    box = BoundingBox(0, 0, 1, 1)

    def reader(hits: str):  # type: ignore[no-untyped-def]
        answers = iter([[PlateResult("AB123CD" if name in hits else "XX", 0.9, None, box)] for name in "abc"])
        return lambda images: [next(answers) for _ in images]

    gantry, plain = evaluate(reader("ab"), samples, warmup=0), evaluate(reader("bc"), samples, warmup=0)
    assert gantry.summary()["exact_rate"] == plain.summary()["exact_rate"]  # a tie that hides a loss
    assert baseline_only(gantry, plain) == ["c.jpg"]
    assert baseline_only(plain, gantry) == ["a.jpg"]


def test_batches_keep_sample_order(tmp_path: Path) -> None:
    for name in "abc":
        write_sample(tmp_path, name)
    calls: list[int] = []

    def read_batch(images: list[np.ndarray]) -> list[list[PlateResult]]:
        calls.append(len(images))
        return [[PlateResult("AB123CD", 0.9, "eu", BoundingBox(0, 0, 1, 1))] for _ in images]

    report = evaluate(read_batch, load_dataset(tmp_path).samples, warmup=0, batch=2)
    assert calls == [2, 1]
    assert [o.image for o in report.outcomes] == ["a.jpg", "b.jpg", "c.jpg"]
    assert report.summary()["exact_rate"] == 1.0


def test_misses_carry_their_cause_and_the_summary_counts_them(tmp_path: Path) -> None:
    from recognize.evaluation import explain_misses

    write_sample(tmp_path, "a", "a.jpg\t1\t2\t30\t10\tAB123CD\n")
    write_sample(tmp_path, "b", "b.jpg\t5\t6\t30\t10\tKM456XY\n")
    box = BoundingBox(0, 0, 1, 1)
    answers = iter([[PlateResult("AB123CD", 0.9, "eu", box)], []])
    samples = load_dataset(tmp_path).samples
    report = evaluate(lambda images: [next(answers) for _ in images], samples, warmup=0)
    asked: list[tuple[BoundingBox, str]] = []

    def cause(image: np.ndarray, where: BoundingBox, plate: str) -> str:
        asked.append((where, plate))
        return "detection"

    explain_misses(report, samples, cause)
    assert asked == [(BoundingBox(5, 6, 30, 10), "KM456XY")]  # only the missed plate is explained
    assert report.summary()["miss_causes"] == {"detection": 1}
    assert [m["cause"] for m in report.misses()] == ["detection"]


def test_annotations_normalise_plates_as_the_pipeline_does(tmp_path: Path) -> None:
    write_sample(tmp_path, "a", "a.jpg\t1\t2\t30\t10\tАВ 123\n")  # Cyrillic look-alikes
    assert parse_annotation(tmp_path / "a.txt").plates == ("AB123",)
    write_sample(tmp_path, "b", "b.jpg\t1\t2\t30\t10\tЖ123\n")
    with pytest.raises(AnnotationError, match="b.txt:1: field 'plate'"):
        parse_annotation(tmp_path / "b.txt")
