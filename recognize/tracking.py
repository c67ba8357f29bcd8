"""Streaming video voting: one read per passing vehicle, not one per frame.

Frames of one camera arrive in order; each frame's plate results join the open track they
continue (by :func:`recognize.vote.continues`) or open a new one. A track closes
when its camera has moved on by more than ``max_gap_s`` of event time, or when the camera has
sent nothing for ``idle_s`` of wall time (a still-image camera, or the end of a video); closing
votes the track into one read. Until then its frames' offsets are held back from the commit, so a
crash replays them rather than losing the passage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from recognize.base import PlateResult
from recognize.vote import FrameRead, Track, continues, vote

Position = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True)
class Sighting:
    """Where a frame came from: enough to name the read and to hold back its offset."""

    camera_id: str
    frame_id: str
    ts: datetime
    position: Position
    offset: int


@dataclass
class OpenTrack:
    track: Track = field(default_factory=Track)
    sightings: list[Sighting] = field(default_factory=list)
    touched: float = 0.0  # wall clock of the last frame that extended it


@dataclass(frozen=True)
class Passage:
    """A closed track voted into one result, with the frame that shows it best."""

    result: PlateResult
    best: Sighting
    first: Sighting
    frames: int


class StreamingVoter:
    def __init__(self, *, max_gap_s: float = 1.5, idle_s: float = 2.0, min_iou: float = 0.1,
                 max_shift: float = 1.5, max_edits: int = 2) -> None:
        self.max_gap_s, self.idle_s = max_gap_s, idle_s
        self.min_iou, self.max_shift, self.max_edits = min_iou, max_shift, max_edits
        self.open: dict[str, list[OpenTrack]] = {}

    def add(self, sighting: Sighting, results: list[PlateResult], now: float) -> list[Passage]:
        """Feed one frame's results; returns the passages this frame closed on its camera."""
        t = sighting.ts.timestamp()
        tracks = self.open.setdefault(sighting.camera_id, [])
        finished = [o for o in tracks if t - o.track.last.timestamp > self.max_gap_s]
        tracks[:] = [o for o in tracks if o not in finished]
        for result in results:
            read = FrameRead(t, result)
            target = self._continued(tracks, read) or OpenTrack()
            if target not in tracks:
                tracks.append(target)
            target.track.reads.append(read)
            target.sightings.append(sighting)
            target.touched = now
        return [self._passage(o) for o in finished]

    def flush_idle(self, now: float) -> list[Passage]:
        """Close the tracks of cameras that have gone quiet."""
        passages = []
        for tracks in self.open.values():
            idle = [o for o in tracks if now - o.touched > self.idle_s]
            tracks[:] = [o for o in tracks if o not in idle]
            passages += [self._passage(o) for o in idle]
        return passages

    def held_back(self) -> dict[Position, int]:
        """Per partition, the earliest offset still needed by an open track."""
        earliest: dict[Position, int] = {}
        for tracks in self.open.values():
            for o in tracks:
                for s in o.sightings:
                    earliest[s.position] = min(earliest.get(s.position, s.offset), s.offset)
        return earliest

    def _continued(self, tracks: list[OpenTrack], read: FrameRead) -> OpenTrack | None:
        best, best_iou = None, -1.0
        for o in tracks:
            overlap = continues(o.track.last, read, max_gap_s=self.max_gap_s, min_iou=self.min_iou,
                                max_shift=self.max_shift, max_edits=self.max_edits)
            if overlap is not None and overlap > best_iou:
                best, best_iou = o, overlap
        return best

    @staticmethod
    def _passage(o: OpenTrack) -> Passage:
        best = max(range(len(o.track.reads)), key=lambda i: o.track.reads[i].result.confidence)
        return Passage(vote(o.track), o.sightings[best], o.sightings[0], len(o.track.reads))
