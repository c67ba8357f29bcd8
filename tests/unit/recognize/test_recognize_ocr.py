"""Recogniser output handling: folding model classes into plate characters, batch-independent reads."""

import cv2
import numpy as np
import pytest
from recognize_reads import make_read

from recognize.ocr import (
    COLON,
    INPUT_HEIGHT,
    MAX_INPUT_WIDTH,
    OTHER,
    PLATE_CHARSET,
    SEP,
    WIDTH_STEP,
    CTCRecognizer,
    ctc_decode,
    fold_matrix,
    input_width,
    join_rows,
    prepare_batch,
    with_second_opinion,
)


def test_gathered_fold_equals_full_product() -> None:
    characters = ["<blank>", *"abcXYZ09", "-", "€", "漢", "字", " "]
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 5, len(characters)))
    probs = (np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)).astype(np.float32)
    ocr = CTCRecognizer.__new__(CTCRecognizer)
    ocr.fold = fold_matrix(characters)
    ocr.plate_classes = np.flatnonzero(ocr.fold[:, :-1].any(axis=1))
    folded = ocr.fold_probs(probs)
    assert folded.shape == (2, 5, len(PLATE_CHARSET) + 4)
    np.testing.assert_allclose(folded, probs @ ocr.fold, atol=1e-5)


def test_a_read_shows_its_separators_and_colons_but_its_text_has_plate_characters_only() -> None:
    # Time steps: 1 1 blank 2 : 3 4 space A, then a symbol that is not a plate character.
    steps = [1 + PLATE_CHARSET.index("1"), 1 + PLATE_CHARSET.index("1"), 0, 1 + PLATE_CHARSET.index("2"),
             COLON, 1 + PLATE_CHARSET.index("3"), 1 + PLATE_CHARSET.index("4"), SEP, 1 + PLATE_CHARSET.index("A"),
             OTHER]
    folded = np.full((len(steps), OTHER + 1), 0.01, dtype=np.float32)
    folded[np.arange(len(steps)), steps] = 0.9
    read = ctc_decode(folded)
    assert read.text == "1234A"
    assert read.shown == "12:34-A"
    assert fold_matrix(["<blank>", ":", "/", "-", "€", " "]).argmax(axis=1).tolist() == [0, COLON, SEP, SEP, OTHER, SEP]


def test_input_width_rounds_up_to_step_and_caps() -> None:
    assert input_width(np.zeros((48, 100, 3), np.uint8)) == 128
    assert input_width(np.zeros((24, 64, 3), np.uint8)) == 128
    assert input_width(np.zeros((10, 2000, 3), np.uint8)) == MAX_INPUT_WIDTH
    assert input_width(np.zeros((100, 5, 3), np.uint8)) == WIDTH_STEP


def line(text: str, width: int) -> np.ndarray:
    crop = np.full((48, width, 3), 255, np.uint8)
    cv2.putText(crop, text, (6, 38), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3, cv2.LINE_AA)
    return crop


@pytest.fixture(scope="module")
def ocr() -> CTCRecognizer:
    return CTCRecognizer("v6-small", threads=1)


def test_read_does_not_depend_on_the_rest_of_the_batch(ocr: CTCRecognizer) -> None:
    plate = line("AB123CD", 200)
    [alone] = ocr.read_chars([plate])
    together = ocr.read_chars([line("KM45", 110), plate, line("XY987654321", 460)])
    assert together[1].text == alone.text == "AB123CD"
    np.testing.assert_allclose(together[1].alternatives, alone.alternatives, atol=1e-5)
    assert together[0].text == "KM45"


def test_a_second_opinion_raises_alternatives_and_never_lowers_the_read() -> None:
    first = make_read("6HP995", {0: {"6": 0.61, "B": 0.05}})
    second = make_read("BHP995", {0: {"B": 0.50, "6": 0.10}})
    backed = with_second_opinion(first, second)
    assert backed.text == "6HP995" and backed.char_probs == first.char_probs  # reading and confidence kept
    b, six = PLATE_CHARSET.index("B"), PLATE_CHARSET.index("6")
    assert backed.alternatives[0, b] == pytest.approx(0.275)  # raised to the mean
    assert backed.alternatives[0, six] == pytest.approx(0.61)  # the mean (0.355) is lower: kept


def test_a_second_opinion_of_another_length_is_not_aligned() -> None:
    first = make_read("WSG6979", {3: {"6": 0.49}})
    assert with_second_opinion(first, make_read("HS6979")) is first


def test_the_rows_of_a_two_line_plate_join_with_their_evidence() -> None:
    top, bottom = make_read("AB", {1: {"8": 0.3}}), make_read("123")
    joined = join_rows(top, bottom)
    assert joined.text == "AB123"
    assert joined.char_probs == top.char_probs + bottom.char_probs
    assert joined.alternatives.shape == (5, len(PLATE_CHARSET))
    assert joined.alternatives[1, PLATE_CHARSET.index("8")] == pytest.approx(0.3)


def test_a_thin_stroke_of_a_large_crop_survives_the_shrink_to_the_model_height() -> None:
    # A near camera's plate, four times the model's height, its strokes one pixel thin: every
    # fourth row is dark, where sampling at the model's rows would see only the light ones.
    crop = np.full((4 * INPUT_HEIGHT, 4 * 96, 3), 255, np.uint8)
    crop[::4] = 0
    model_input = prepare_batch([crop], 96)[0]
    assert model_input.max() < 0.9  # the strokes darken every row instead of vanishing
    small = cv2.resize(crop, (96, INPUT_HEIGHT), interpolation=cv2.INTER_AREA)
    assert np.allclose(prepare_batch([small], 96)[0], (small.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1))
