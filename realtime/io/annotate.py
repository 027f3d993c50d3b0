"""Draw Predictions onto frames, and write the annotated video (`twostream run --out FILE`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import UserError
from ..stream.flow import flow_to_colour

if TYPE_CHECKING:
    from ..stream.prediction import Prediction

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".mov": "mp4v"}


def annotate(pred: Prediction, k: int = 3) -> np.ndarray:
    """The frame with the top-k fused labels (the leader highlighted) and a flow inset."""
    if pred.frame is None:
        raise ValueError("annotate: the prediction carries no frame")
    img = pred.frame.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 480)
    y = int(24 * scale)
    if not pred.known:  # the top scores stay visible, in grey, under the verdict
        text = f"no known action (below {pred.min_score:.2f})"
        cv2.putText(img, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), max(2, int(4 * scale)), cv2.LINE_AA)
        cv2.putText(img, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 200, 255), max(1, int(1.5 * scale)), cv2.LINE_AA)
        y += int(22 * scale)
    for i, (label, score) in enumerate(pred.top(k)):
        text = f"{label} {score:.2f}"
        colour = (60, 255, 60) if i == 0 and pred.known else (235, 235, 235) if pred.known else (150, 150, 150)
        cv2.putText(img, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (0, 0, 0), max(2, int(4 * scale)), cv2.LINE_AA)
        cv2.putText(img, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, colour, max(1, int(1.5 * scale)), cv2.LINE_AA)
        y += int(22 * scale)
    if not pred.ready:
        cv2.putText(img, "warming up", (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 200, 255), 1, cv2.LINE_AA)
    if pred.flow is not None:
        iw = max(32, w // 4)
        ih = max(32, int(iw * pred.flow.shape[0] / pred.flow.shape[1]))
        inset = cv2.resize(flow_to_colour(pred.flow), (iw, ih), interpolation=cv2.INTER_NEAREST)
        img[h - ih - 4 : h - 4, w - iw - 4 : w - 4] = inset
        cv2.rectangle(img, (w - iw - 5, h - ih - 5), (w - 4, h - 4), (255, 255, 255), 1)
    return img


class AnnotatedWriter:
    """Writes annotated frames to a video file; the container is chosen by the file's extension."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        if self.path.suffix.lower() not in _FOURCC:
            raise UserError(f"{self.path}: unsupported video extension; use one of {', '.join(sorted(_FOURCC))}")
        if not self.path.parent.exists():
            raise UserError(f"{self.path}: the folder {self.path.parent} does not exist")
        self.fps = fps if fps and fps > 0 else 30.0
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*_FOURCC[self.path.suffix.lower()]), self.fps, (w, h))
            if not self._writer.isOpened():
                raise UserError(f"{self.path}: cannot be written (check permissions and free space)")
            self._size = (w, h)
        if (image.shape[1], image.shape[0]) != self._size:  # a source that changed resolution mid-stream
            image = cv2.resize(image, self._size)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
