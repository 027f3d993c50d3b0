"""A procedural video world that knows its ground truth: the action label and the exact flow of every frame.

A textured object moves over a textured background seen by a shaking camera, under changing light,
with sensor noise and optional blur. Nine classes differ only in how the object moves (its shape is
drawn from the same set for all of them, so one frame cannot tell them apart); three classes are a
still object that differs only in shape (so motion cannot tell them apart). A recognizer needs both
streams to get all twelve right. Three more motions (EXTRA_CLASSES: spin, bounce, zigzag) are never
in the shipped model's training set: they are what a user teaches it (`synthetic:spin`, ...).

Everything is a pure function of (label, seed, t), so clips are reproducible frame by frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import UserError
from .sources import FrameSource, Pacer, SourceSpec

MOTION_CLASSES = ("swipe_left", "swipe_right", "swipe_up", "swipe_down", "circle_cw", "circle_ccw", "push", "pull", "wave")
STILL_CLASSES = ("hold_star", "hold_cross", "hold_ring")
CLASSES = MOTION_CLASSES + STILL_CLASSES
EXTRA_CLASSES = ("spin", "bounce", "zigzag")  # motions the shipped model never saw: for teaching new classes
ALL_CLASSES = CLASSES + EXTRA_CLASSES
MOVER_SHAPES = ("disc", "square", "triangle", "diamond")
_STILL_SHAPE = {"hold_star": "star", "hold_cross": "cross", "hold_ring": "ring"}
SPRITE = 64  # sprite side in pixels before scaling


def _smooth_texture(rng: np.random.Generator, h: int, w: int, octaves: tuple[int, ...] = (4, 12, 40)) -> np.ndarray:
    """Coloured multi-scale noise: trackable texture for dense flow, different for every seed."""
    out = np.zeros((h, w, 3), np.float32)
    for cells in octaves:
        gh, gw = max(2, h * cells // max(h, w)), max(2, w * cells // max(h, w))
        grid = rng.random((gh, gw, 3), dtype=np.float32)
        out += cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) / len(octaves)
    lo, hi = out.min(), out.max()
    tint = rng.uniform(0.3, 1.0, 3).astype(np.float32)
    return np.clip((out - lo) / max(hi - lo, 1e-6) * 255 * tint + rng.uniform(0, 60), 0, 255).astype(np.uint8)


def _shape_mask(shape: str, size: int = SPRITE) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    c, r = size // 2, size // 2 - 2
    if shape == "disc":
        cv2.circle(m, (c, c), r, 255, -1, cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(m, (c - r + 6, c - r + 6), (c + r - 6, c + r - 6), 255, -1)
    elif shape == "triangle":
        pts = np.array([[c, 2], [size - 3, size - 8], [2, size - 8]], np.int32)
        cv2.fillPoly(m, [pts], 255, cv2.LINE_AA)
    elif shape == "diamond":
        pts = np.array([[c, 2], [size - 3, c], [c, size - 3], [2, c]], np.int32)
        cv2.fillPoly(m, [pts], 255, cv2.LINE_AA)
    elif shape == "star":
        ang = np.arange(10) * math.pi / 5 - math.pi / 2
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.42)
        pts = np.stack([c + rad * np.cos(ang), c + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(m, [pts], 255, cv2.LINE_AA)
    elif shape == "cross":
        t = size // 7
        cv2.rectangle(m, (c - t, 3), (c + t, size - 4), 255, -1)
        cv2.rectangle(m, (3, c - t), (size - 4, c + t), 255, -1)
    elif shape == "ring":
        cv2.circle(m, (c, c), r, 255, -1, cv2.LINE_AA)
        cv2.circle(m, (c, c), int(r * 0.55), 0, -1, cv2.LINE_AA)
    else:
        raise ValueError(shape)
    return m


@dataclass
class SyntheticClip:
    """One procedural clip: `frame(t)` renders frame t, `flow(t)` is the true flow from frame t to t+1."""

    label: str
    seed: int
    width: int = 320
    height: int = 240

    def __post_init__(self) -> None:
        if self.label not in ALL_CLASSES:
            raise UserError(f"unknown synthetic class '{self.label}': choose one of {', '.join(ALL_CLASSES)} or 'demo'")
        rng = np.random.default_rng([self.seed, ALL_CLASSES.index(self.label)])
        w, h = self.width, self.height
        self.margin = m = 16
        texture = _smooth_texture(rng, h + 2 * m, w + 2 * m)
        # Half-contrast clutter: enough texture for flow to see the camera shake, without hiding the object.
        self.background = cv2.addWeighted(texture, 0.55, np.full_like(texture, int(texture.mean())), 0.45, 0)
        shape = _STILL_SHAPE.get(self.label) or MOVER_SHAPES[rng.integers(len(MOVER_SHAPES))]
        self.shape = shape
        self.mask = _shape_mask(shape)
        hsv = np.array([[[rng.integers(0, 180), rng.integers(170, 256), rng.integers(150, 256)]]], np.uint8)
        colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
        sprite = _smooth_texture(rng, SPRITE, SPRITE, octaves=(3, 8))
        self.sprite = cv2.addWeighted(sprite, 0.35, np.full_like(sprite, colour), 0.75, 0)
        outline = (self.mask > 127) & (cv2.erode(self.mask, np.ones((5, 5), np.uint8)) <= 127)
        self.sprite[outline] = (self.sprite[outline] * 0.3).astype(np.uint8)  # a dark rim: shape reads at any colour
        s = min(w, h)
        self.base_scale = rng.uniform(1.1, 1.6) * s / 240
        self.speed = rng.uniform(0.012, 0.03) * s  # pixels per frame for swipes
        self.centre = np.array([rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h])
        self.radius = rng.uniform(0.12, 0.22) * s
        self.omega = rng.uniform(0.14, 0.3)  # rad/frame for circles
        self.wave_period = rng.uniform(8, 12)
        self.wave_amp = rng.uniform(0.04, 0.07) * s
        self.zoom_rate = rng.uniform(0.03, 0.06)
        self.phase = rng.uniform(0, 1000)
        self.tilt = rng.uniform(-0.4, 0.4)
        self.spin = rng.uniform(-0.02, 0.02) if self.label in MOTION_CLASSES else 0.0
        # Camera shake: a few sinusoids, continuous and reproducible.
        amp = rng.uniform(0.0, 1.6) * s / 240
        self.shake = [(amp * rng.uniform(0.3, 1), rng.uniform(0.1, 0.9), rng.uniform(0, 6.3), rng.uniform(0, 6.3)) for _ in range(3)]
        self.light = (rng.uniform(0.75, 1.15), rng.uniform(0.0, 0.12), rng.uniform(0.02, 0.12))
        self.blur = int(rng.choice([0, 0, 0, 3, 5]))
        noise = rng.uniform(0, 6)
        self._noise = (rng.standard_normal((2 * h, 2 * w, 3), dtype=np.float32) * noise).astype(np.int16) if noise > 0.5 else None
        if self.label in EXTRA_CLASSES:  # drawn after every other parameter: the shipped classes' clips do not change
            self.spin_rate = rng.uniform(0.08, 0.18) * rng.choice([-1.0, 1.0])  # rad/frame, either way round
            self.bounce_period = rng.uniform(16, 26)  # frames per bounce
            self.bounce_height = rng.uniform(0.25, 0.4) * s
            self.zig_period = rng.uniform(14, 22)
            self.zig_amp = rng.uniform(0.08, 0.14) * s
            self.zig_dir = rng.choice([-1.0, 1.0])

    # -- motion model -------------------------------------------------------
    def camera(self, t: float) -> np.ndarray:
        """Screen shift of the world at frame t (pixels): the shaking camera."""
        return np.array([sum(a * math.sin(f * t + p) for a, f, p, _ in self.shake), sum(a * math.sin(f * t + q) for a, f, _, q in self.shake)])

    def _pose(self, t: float) -> tuple[np.ndarray, float, float]:
        """Object centre in world pixels, rotation (rad) and scale at frame t."""
        w, h, lab = self.width, self.height, self.label
        c, scale, angle = self.centre.copy(), self.base_scale, self.tilt + self.spin * t
        tt = t + self.phase
        if lab.startswith("swipe"):
            # The path runs from fully off one edge to fully off the other, so the wrap back to the
            # start happens out of view and no frame pair holds a teleport.
            reach = SPRITE * scale * 0.75
            horizontal = lab in ("swipe_left", "swipe_right")
            span = (w if horizontal else h) + 2 * reach
            pos = (self.speed * tt) % span - reach
            forward = lab in ("swipe_right", "swipe_down")
            c[0 if horizontal else 1] = pos if forward else (w if horizontal else h) - pos
        elif lab.startswith("circle"):
            sign = 1.0 if lab == "circle_cw" else -1.0  # image y points down: +angle is clockwise on screen
            a = sign * self.omega * tt
            c = c + self.radius * np.array([math.cos(a), math.sin(a)])
        elif lab in ("push", "pull"):
            cycle = math.log(2.2) / self.zoom_rate  # frames from smallest to largest
            k = (tt % cycle) * self.zoom_rate
            scale = self.base_scale * 0.6 * (math.exp(k) if lab == "push" else 2.2 / math.exp(k))
        elif lab == "wave":
            c[0] += self.wave_amp * math.sin(2 * math.pi * tt / self.wave_period)
        elif lab == "spin":  # turning in place
            angle = self.tilt + self.spin_rate * tt
        elif lab == "bounce":  # a ball bouncing on a floor: |sin| is a parabola-like hop with a sharp reversal
            c[1] = min(h * 0.8, c[1] + self.bounce_height / 2) - self.bounce_height * abs(math.sin(math.pi * tt / self.bounce_period))
        elif lab == "zigzag":  # drifting sideways while going up and down in straight strokes
            reach = SPRITE * scale * 0.75
            span = w + 2 * reach
            pos = (self.speed * tt) % span - reach
            c[0] = pos if self.zig_dir > 0 else w - pos
            phase = (tt / self.zig_period) % 1.0
            c[1] += self.zig_amp * (4 * abs(phase - 0.5) - 1)
        else:  # still classes: hand tremor only
            c = c + 0.4 * np.array([math.sin(0.7 * tt), math.cos(0.9 * tt)])
        return c, angle, scale

    def _object_matrix(self, t: float) -> np.ndarray:
        """3x3 map from sprite pixels to screen pixels at frame t (camera included)."""
        c, angle, scale = self._pose(t)
        c = c + self.camera(t)  # the camera shift moves the whole world on screen
        ca, sa = math.cos(angle) * scale, math.sin(angle) * scale
        half = SPRITE / 2
        return np.array([[ca, -sa, c[0] - ca * half + sa * half], [sa, ca, c[1] - sa * half - ca * half], [0, 0, 1]])

    # -- rendering ----------------------------------------------------------
    def object_mask(self, t: float) -> np.ndarray:
        """Where the object covers frame t (uint8 0..255)."""
        return cv2.warpAffine(self.mask, self._object_matrix(t)[:2], (self.width, self.height), flags=cv2.INTER_LINEAR)

    def frame(self, t: int) -> np.ndarray:
        """Render frame t as BGR uint8 (height, width, 3)."""
        w, h, m = self.width, self.height, self.margin
        cam = self.camera(t)
        shift = np.array([[1, 0, -m + cam[0]], [0, 1, -m + cam[1]]], np.float64)
        bg = cv2.warpAffine(self.background, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mat = self._object_matrix(t)[:2]
        obj = cv2.warpAffine(self.sprite, mat, (w, h), flags=cv2.INTER_LINEAR)
        inside = cv2.warpAffine(self.mask, mat, (w, h), flags=cv2.INTER_LINEAR) > 127
        bg[inside] = obj[inside]
        gain, flicker, freq = self.light
        img = cv2.convertScaleAbs(bg, alpha=gain * (1 + flicker * math.sin(freq * t + self.phase)))
        if self.blur:
            img = cv2.GaussianBlur(img, (self.blur, self.blur), 0)
        if self._noise is not None:
            # A window of a per-clip noise field, offset per frame: fresh-looking noise at no per-frame cost.
            oy, ox = (t * 7919) % h, (t * 104729) % w
            img = cv2.add(img, self._noise[oy : oy + h, ox : ox + w], dtype=cv2.CV_8U)
        return img

    def flow(self, t: int) -> np.ndarray:
        """True flow from frame t to frame t+1, (height, width, 2) float32 in pixels (x, y)."""
        w, h = self.width, self.height
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        step = self._object_matrix(t + 1) @ np.linalg.inv(self._object_matrix(t))
        obj_u = step[0, 0] * xs + step[0, 1] * ys + step[0, 2] - xs
        obj_v = step[1, 0] * xs + step[1, 1] * ys + step[1, 2] - ys
        cam = self.camera(t + 1) - self.camera(t)
        inside = self.object_mask(t) > 127
        out = np.empty((h, w, 2), np.float32)
        out[..., 0] = np.where(inside, obj_u, cam[0])
        out[..., 1] = np.where(inside, obj_v, cam[1])
        return out


class SyntheticSource(FrameSource):
    """`synthetic:NAME`: an endless run of procedural clips, paced like a camera unless fps=0.

    NAME is `demo` (cycle through the twelve shipped classes) or one class name (EXTRA_CLASSES included). Query options:
    fps (default 30; 0 = as fast as possible), size (WxH, default 320x240), seed, clip (frames per
    clip, default 60), frames (stop after this many; default endless).
    """

    def __init__(
        self, name: str = "demo", fps: float = 30.0, size: tuple[int, int] = (320, 240), seed: int = 0, clip_frames: int = 60, max_frames: int | None = None
    ):
        if name != "demo" and name not in ALL_CLASSES:
            raise UserError(f"unknown synthetic source '{name}': use synthetic:demo or one of {', '.join(ALL_CLASSES)}")
        self.name = f"synthetic:{name}"
        self.classes = CLASSES if name == "demo" else (name,)
        self.fps = float(fps) if fps > 0 else None
        self.is_live = fps > 0
        self.size = size
        self.seed = seed
        self.clip_frames = clip_frames
        self.frame_count = max_frames
        self.index = -1
        self._clip: SyntheticClip | None = None
        self._clip_no = -1
        self._pacer = Pacer(self.fps) if self.fps else None

    @classmethod
    def from_spec(cls, spec: SourceSpec) -> "SyntheticSource":
        o = spec.options
        try:
            size = tuple(int(v) for v in o.get("size", "320x240").lower().split("x"))
            if len(size) != 2 or min(size) < 16:
                raise ValueError
            return cls(
                spec.target,
                fps=float(o.get("fps", 30)),
                size=size,
                seed=int(o.get("seed", 0)),
                clip_frames=max(2, int(o.get("clip", 60))),
                max_frames=int(o["frames"]) if "frames" in o else None,
            )
        except ValueError:
            raise UserError(
                f"{spec.name}: bad option in '?{'&'.join(f'{k}={v}' for k, v in o.items())}' (expected fps=N, size=WxH, seed=N, clip=N, frames=N)"
            ) from None

    def _clip_at(self, index: int) -> tuple[SyntheticClip, int]:
        n = index // self.clip_frames
        if n != self._clip_no:
            self._clip_no = n
            label = self.classes[n % len(self.classes)]
            self._clip = SyntheticClip(label, seed=self.seed * 100_003 + n, width=self.size[0], height=self.size[1])
        assert self._clip is not None
        return self._clip, index % self.clip_frames

    @property
    def label(self) -> str | None:
        """Ground-truth class of the frame last read."""
        return self._clip.label if self._clip is not None and self.index >= 0 else None

    def truth(self) -> str | None:
        return self.label

    def ground_truth_flow(self) -> np.ndarray | None:
        """True flow from the previous frame to the frame last read, or None across a clip boundary."""
        clip, t = self._clip_at(self.index)
        return clip.flow(t - 1) if t > 0 else None

    def read(self) -> np.ndarray | None:
        if self.frame_count is not None and self.index + 1 >= self.frame_count:
            return None
        if self._pacer is not None:
            self._pacer.wait()
        self.index += 1
        clip, t = self._clip_at(self.index)
        return clip.frame(t)


def open_synthetic(spec: SourceSpec) -> SyntheticSource:
    """`synthetic:NAME?options` (realtime.io.sources.SOURCE_KINDS)."""
    return SyntheticSource.from_spec(spec)
