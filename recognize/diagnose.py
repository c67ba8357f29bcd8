"""Why a plate was missed: the stage that lost it, for error analysis on labelled images.

The stages fail for different reasons and are fixed in different places, so a miss is put in
the first stage that lost it:

- ``detection``: no candidate line (at any scale the recogniser looks at) covers the plate box;
- ``characters``: a line covers it, but no crop variant of any such line reads its characters;
- ``interpretation``: some crop read the plate's characters (perhaps with a band or a screw
  around them), and the plate logic then changed, dropped or out-ranked that reading.
"""

from __future__ import annotations

import numpy as np

from recognize.base import BoundingBox
from recognize.candidates import overlaps
from recognize.evaluation import canonical
from recognize.recognizer import Recognizer


def miss_cause(recognizer: Recognizer, image: np.ndarray, box: BoundingBox, plate: str) -> str:
    """The first stage that lost ``plate`` (annotated at ``box``) in ``image``; O and 0 are one."""
    sides = [None] + ([recognizer.second_look_side] if recognizer.second_look_side else [])
    lines = [c for side in sides for c in recognizer.candidates(image, limit_side=side)
             if overlaps(c.bbox, box)]
    if not lines:
        return "detection"
    crops = [v for c in lines for v in recognizer.variants(image, c)]
    wanted = canonical(plate, merge_o0=True)
    if any(wanted in canonical(r.text, merge_o0=True) for r in recognizer.ocr.read_chars(crops)):
        return "interpretation"
    return "characters"
