"""Shot cuts: a frame whose colours are unlike the previous frame's starts a new shot.

An edited video, a camera switcher or a stream that skips ahead shows a new scene from one frame to
the next. The spatial stream sees the new shot at once; the temporal stream's stack still holds the
previous shot's motion for up to L-1 frames, and the scores smoothed over the last frames are the
previous shot's. So at a cut the pipeline restarts its smoothing and, for the first `CUT_RAMP`
frames, moves the fusion weight from the temporal stream to the spatial one (`Fusion(..., since_cut)`).

The test is the Bhattacharyya distance between the two frames' colour histograms (8x8x8 BGR bins at
the working size): camera motion, a moving person and sensor noise leave the histogram nearly as it
was; a new scene does not. Measured (`benchmarks/demo.py` counts them): every one of 360 changes
between procedural clips is at or above 0.27 and no frame pair inside a clip above 0.17; of 29 real
clips of people only one frame pair passes 0.25, a decoder glitch in the Kinetics sample where the
picture jumps (a cut as far as the nets are concerned).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import UserError

CUT_THRESHOLD = 0.25  # histogram distance above which a frame starts a new shot (1: never)
CUT_RAMP = 3  # frames after a cut over which the temporal stream's weight returns (chosen on synthetic:demo seeds 1-3)
_BINS = [8, 8, 8]
_RANGES = [0, 256] * 3


def check_cut_threshold(threshold: float) -> float:
    if not 0.0 < threshold <= 1.0:
        raise UserError(f"cut threshold {threshold} is outside (0, 1]: 1 turns shot-cut detection off, lower values find more cuts")
    return float(threshold)


class CutDetector:
    """`push(frame)` -> True when the frame starts a new shot (never for the first frame after `reset`)."""

    def __init__(self, threshold: float = CUT_THRESHOLD):
        self.threshold = check_cut_threshold(threshold)
        self._previous: np.ndarray | None = None
        self.distance = 0.0  # the last frame's distance to the one before (0 for the first)

    def push(self, frame_bgr: np.ndarray) -> bool:
        hist = cv2.calcHist([frame_bgr], [0, 1, 2], None, _BINS, _RANGES)
        cv2.normalize(hist, hist, 1.0, 0.0, cv2.NORM_L1)
        previous, self._previous = self._previous, hist
        if previous is None:
            self.distance = 0.0
            return False
        self.distance = float(cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA))
        return self.distance > self.threshold

    def reset(self) -> None:
        """Forget the previous frame (after a gap in the stream: that is a restart already)."""
        self._previous = None
        self.distance = 0.0
