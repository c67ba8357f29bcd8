"""Licence plate recognition: detection, OCR, region formats and video voting.

Only light data types are exported here; model code is imported on first use so that importing
``recognize`` stays cheap.
"""

from recognize.base import BoundingBox, PlateResult

__all__ = ["BoundingBox", "PlateResult"]
