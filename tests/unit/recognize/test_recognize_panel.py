"""Plate-panel evidence on rendered scenes: bounded panels, dark panels on dark bumpers, text on a scene."""

import cv2
import numpy as np

from recognize.panel import panel_evidence

TEXT_QUAD = np.array([[140, 205], [340, 205], [340, 245], [140, 245]], np.float32)


def scene(background: np.ndarray, panel: int | None, ink: int) -> np.ndarray:
    """Grey scene with (optionally) a plate panel around TEXT_QUAD and text drawn in ``ink``."""
    gray = background.copy()
    if panel is not None:
        cv2.rectangle(gray, (125, 195), (355, 255), panel, -1)
    cv2.putText(gray, "AB 123 CD", (145, 240), cv2.FONT_HERSHEY_SIMPLEX, 1.2, ink, 3, cv2.LINE_AA)
    return gray


def test_dark_text_on_bounded_light_panel() -> None:
    evidence = panel_evidence(scene(np.full((360, 480), 90, np.uint8), 235, 20), TEXT_QUAD)
    assert evidence.dark_on_light and evidence.spill < 0.1 and not evidence.flat_surround


def test_dark_text_on_light_paint_runs_on() -> None:
    # Lettering on a white van: the light background reaches the whole window border.
    evidence = panel_evidence(scene(np.full((360, 480), 235, np.uint8), None, 20), TEXT_QUAD)
    assert evidence.dark_on_light and evidence.spill > 0.9


def test_dark_panel_on_dark_bumper_counts_as_bounded() -> None:
    # Light characters on a black plate whose edge vanishes into an equally dark bumper.
    evidence = panel_evidence(scene(np.full((360, 480), 45, np.uint8), 42, 190), TEXT_QUAD)
    assert not evidence.dark_on_light and evidence.spill > 0.9 and evidence.flat_surround


def test_light_text_on_a_busy_dark_scene_runs_on() -> None:
    # A watermark or sign text on grass: dark around the letters, but not a flat panel.
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(10, 120, (36, 48)).astype(np.uint8), (480, 360))
    evidence = panel_evidence(scene(texture, None, 235), TEXT_QUAD)
    assert evidence.spill > 0.5 and not evidence.flat_surround
