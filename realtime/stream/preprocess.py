"""Net inputs built from working-size frames and flow: one code path for live inference and training.

Live inference takes the centre crop without flip; training passes random crops and flips. Both
call these functions, so a net never sees inputs built two different ways.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..nets.checkpoint import ModelConfig
from .flow import FlowSettings


def centre_crop(settings: FlowSettings, size: int) -> tuple[int, int]:
    """(top, left) of the centred size x size crop inside the working size."""
    return (settings.height - size) // 2, (settings.width - size) // 2


def to_working_size(frame_bgr: np.ndarray, settings: FlowSettings) -> np.ndarray:
    if frame_bgr.shape[1] == settings.width and frame_bgr.shape[0] == settings.height:
        return frame_bgr
    return cv2.resize(frame_bgr, settings.size, interpolation=cv2.INTER_AREA)


class FlowFrontEnd:
    """Frames as read -> (the frame at the working size, the flow field to the previous one, or None).

    The one front end of the live flow stage (realtime.stream.pipeline) and the training flow cache
    (realtime.train.cache): what the nets are trained on is what they are fed live, by construction
    (tests/test_sources_flow.py checks a clip gives both the same frames and flow codes).
    """

    def __init__(self, settings: FlowSettings):
        from .flow import FlowEstimator

        self.settings = settings
        self.estimator = FlowEstimator(settings)

    def push(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        small = to_working_size(frame_bgr, self.settings)
        return small, self.estimator.push(small)

    def reset(self) -> None:
        """Forget the previous frame (after a gap: no flow across it)."""
        self.estimator.reset()


def rgb_input(
    frame_bgr: np.ndarray, config: ModelConfig, top: int, left: int, flip: bool = False, out: np.ndarray | None = None, crop_size: int | None = None
) -> np.ndarray:
    """Working-size BGR uint8 frame -> (3, S, S) float32, RGB order, normalised.

    `crop_size` (training's scale jitter) takes a larger square and resizes it to S.
    """
    s = config.input_size
    c = crop_size or s
    crop = frame_bgr[top : top + c, left : left + c, ::-1]
    if c != s:
        crop = cv2.resize(np.ascontiguousarray(crop), (s, s), interpolation=cv2.INTER_AREA)
    if flip:
        crop = crop[:, ::-1]
    if out is None:
        out = np.empty((3, s, s), np.float32)
    for c in range(3):
        np.multiply(crop[..., c], np.float32(1 / (255 * config.rgb_std[c])), out=out[c], casting="unsafe")
        out[c] -= np.float32(config.rgb_mean[c] / config.rgb_std[c])
    return out


def flow_input(
    codes: np.ndarray,
    config: ModelConfig,
    top: int,
    left: int,
    flip: bool = False,
    out: np.ndarray | None = None,
    order: np.ndarray | None = None,
    crop_size: int | None = None,
) -> np.ndarray:
    """L quantised flow fields (L, H, W, 2) uint8 -> (2L, S, S) float32: x0, y0, x1, y1, ...

    Each field's mean displacement is subtracted (the paper's camera-motion compensation) and the
    result divided by `flow_scale`. A flip mirrors the fields and negates x. `order` picks the ring
    slots oldest first (live ring buffers); by default the fields are taken in the given order.
    `crop_size` (training's scale jitter) takes a larger square, resized to S with the
    displacements scaled by the same factor.
    """
    s, n = config.input_size, config.clip_length
    cs = crop_size or s
    if out is None:
        out = np.empty((2 * n, s, s), np.float32)
    inv_scale = np.float32(1.0 / config.flow_scale)
    for i in range(n):
        field = codes[i if order is None else order[i], top : top + cs, left : left + cs]
        if flip:
            field = field[:, ::-1]
        if cs != s:
            resized = cv2.resize(config.flow.dequantise(field), (s, s), interpolation=cv2.INTER_AREA) * np.float32(s / cs)
        for c in range(2):
            dst = out[2 * i + c]
            if cs != s:
                dst[:] = resized[..., c]
            else:
                config.flow.dequantise(field[..., c], out=dst)
            if config.subtract_mean_flow:
                dst -= dst.mean(dtype=np.float32)
            dst *= -inv_scale if (flip and c == 0) else inv_scale
    return out
