"""Dense optical flow, computed and encoded the same way live and in training.

`FlowSettings` is the one definition of how flow is made (algorithm, preset, working size, clip
bound, quantisation). A checkpoint stores it; the trainer's flow cache and the live pipeline both
build a `FlowEstimator` from it, so a net always sees flow made exactly as in its training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from ..errors import UserError
from ..options import FLOW_ALGORITHM, FLOW_ALGORITHMS, FLOW_PRESET, FLOW_PRESETS, FLOW_SIZE

DIS_PRESETS = dict(zip(FLOW_PRESETS, (cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, cv2.DISOPTICAL_FLOW_PRESET_FAST, cv2.DISOPTICAL_FLOW_PRESET_MEDIUM), strict=True))


@dataclass(frozen=True)
class FlowSettings:
    """How flow is computed and stored. Displacements are in working-size pixels."""

    algorithm: str = FLOW_ALGORITHM
    preset: str = FLOW_PRESET  # DIS preset; ignored by Farneback
    width: int = FLOW_SIZE  # frames are resized (not cropped) to this working size before flow
    height: int = FLOW_SIZE
    bound: float = 20.0  # displacements are clipped to +-bound pixels, as in the paper
    levels: int = 256  # quantisation: uint8 codes 0..255 span [-bound, bound]
    # Farneback's parameters (cv2.calcOpticalFlowFarneback), used when algorithm is "farneback"
    farneback_pyr_scale: float = 0.5
    farneback_levels: int = 3
    farneback_winsize: int = 15
    farneback_iterations: int = 3
    farneback_poly_n: int = 5
    farneback_poly_sigma: float = 1.2

    def __post_init__(self) -> None:
        if self.algorithm not in FLOW_ALGORITHMS:
            raise UserError(f"unknown flow algorithm '{self.algorithm}': choose one of {', '.join(FLOW_ALGORITHMS)}")
        if self.algorithm == "dis" and self.preset not in DIS_PRESETS:
            raise UserError(f"unknown DIS preset '{self.preset}': choose one of {', '.join(DIS_PRESETS)}")
        if self.levels != 256:
            raise UserError("flow quantisation supports 256 levels (uint8) only")

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FlowSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def quantise(self, flow: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Float flow (px) -> uint8 codes, clipped to +-bound."""
        scale = (self.levels - 1) / (2 * self.bound)
        scaled = (np.clip(flow, -self.bound, self.bound) + self.bound) * scale + 0.5
        if out is None:
            return scaled.astype(np.uint8)
        np.copyto(out, scaled, casting="unsafe")
        return out

    def dequantise(self, codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """uint8 codes -> float32 flow in pixels: the inverse of `quantise` up to one step."""
        step = np.float32(2 * self.bound / (self.levels - 1))
        if out is None:
            out = np.empty(codes.shape, np.float32)
        np.multiply(codes, step, out=out, casting="unsafe")
        out -= np.float32(self.bound)
        return out


class FlowEstimator:
    """Computes flow between consecutive frames at the working size. Not thread-safe: one per thread."""

    def __init__(self, settings: FlowSettings):
        self.settings = settings
        if settings.algorithm == "dis":
            self._dis = cv2.DISOpticalFlow.create(DIS_PRESETS[settings.preset])
        self._prev: np.ndarray | None = None

    def prepare(self, frame_bgr: np.ndarray) -> np.ndarray:
        """BGR frame at any size -> grey uint8 at the working size."""
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
        if grey.shape[1] != self.settings.width or grey.shape[0] != self.settings.height:
            grey = cv2.resize(grey, self.settings.size, interpolation=cv2.INTER_AREA)
        return grey

    def between(self, prev_grey: np.ndarray, next_grey: np.ndarray) -> np.ndarray:
        """Flow (H, W, 2) float32 from prev to next, both already at the working size."""
        if self.settings.algorithm == "dis":
            return self._dis.calc(prev_grey, next_grey, None)  # type: ignore[call-overload]  # OpenCV's stubs omit flow=None
        out = np.empty((*prev_grey.shape[:2], 2), np.float32)  # a new array each time (callers keep it); flags 0: not read as a first guess
        f = self.settings
        return cv2.calcOpticalFlowFarneback(
            prev_grey,
            next_grey,
            out,
            f.farneback_pyr_scale,
            f.farneback_levels,
            f.farneback_winsize,
            f.farneback_iterations,
            f.farneback_poly_n,
            f.farneback_poly_sigma,
            0,
        )

    def push(self, frame_bgr: np.ndarray) -> np.ndarray | None:
        """Feed the next frame; returns flow from the previous frame to it, or None for the first."""
        grey = self.prepare(frame_bgr)
        prev, self._prev = self._prev, grey
        return None if prev is None else self.between(prev, grey)

    def reset(self) -> None:
        """Forget the previous frame (after a gap in the stream, so no flow spans the gap)."""
        self._prev = None


def flow_to_colour(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Flow (H, W, 2) -> BGR image: hue is direction, brightness is magnitude."""
    mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1], angleInDegrees=True)
    top = max_magnitude if max_magnitude else max(float(np.percentile(mag, 99)), 1.0)
    hsv = np.empty(flow.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = (ang * 0.5).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag * (255.0 / top), 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def end_point_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Mean Euclidean distance between two flow fields of the same shape (pixels)."""
    return float(np.linalg.norm(estimate - truth, axis=-1).mean())


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a flow field to (width, height), scaling the displacements with the image."""
    h, w = flow.shape[:2]
    out = cv2.resize(flow, size, interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= size[0] / w
    out[..., 1] *= size[1] / h
    return out
