"""The window's panels. Each draws what it was last given and nothing else: no pipeline access, no waiting."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PyQt6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QWidget

from realtime import NO_KNOWN_ACTION, flow_to_colour

SPATIAL_COLOUR = QColor("#4c9be8")
TEMPORAL_COLOUR = QColor("#f5a142")
FUSED_COLOUR = QColor("#5cd65c")
LEADER_COLOUR = QColor("#6cf06c")
WARNING_COLOUR = QColor("#ffb13b")
ERROR_COLOUR = QColor("#ff8080")  # text that says what went wrong (a name that cannot be a class, a failed recording)
OK_COLOUR = QColor("#5cd65c")  # text that says something worked
UNKNOWN_COLOUR = QColor("#d6dae0")  # "no known action": neutral, neither right nor wrong
DIM_COLOUR = QColor("#8f959d")  # the top scores under "no known action", de-emphasised
THRESHOLD_COLOUR = QColor("#e8e8e8")
BARB = math.radians(28)  # arrowhead half-angle
# Distinct, readable on a dark background; a class keeps its colour while it stays on the timeline.
CLASS_PALETTE = ("#5cd65c", "#4c9be8", "#f5a142", "#e05cb8", "#f2e14c", "#4fd6d6", "#b58cff", "#ff6b6b", "#a3d977", "#ffa3c8", "#8fb3ff", "#d9b26f")


def class_colour(index: int) -> QColor:
    return QColor(CLASS_PALETTE[index % len(CLASS_PALETTE)])


def fit_rect(bounds: QRectF, width: int, height: int) -> QRectF:
    """The largest rect of the given aspect ratio centred in `bounds`."""
    scale = min(bounds.width() / max(width, 1), bounds.height() / max(height, 1))
    w, h = width * scale, height * scale
    return QRectF(bounds.x() + (bounds.width() - w) / 2, bounds.y() + (bounds.height() - h) / 2, w, h)


def boxed_text(p: QPainter, x: float, baseline: float, text: str, colour: QColor, align_right: bool = False) -> float:
    """Text readable over any video: on a translucent dark box. Returns the box width."""
    fm = p.fontMetrics()
    w = fm.horizontalAdvance(text) + 10
    left = x - w if align_right else x
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(0, 0, 0, 150))
    p.drawRoundedRect(QRectF(left, baseline - fm.ascent() - 3, w, fm.height() + 6), 4, 4)
    p.setPen(colour)
    p.drawText(QPointF(left + 5, baseline), text)
    return w


class ScaledImage:
    """A BGR frame resized (by OpenCV, off the painter) to the size it is drawn at, so painting is a plain copy."""

    def __init__(self) -> None:
        self.source: np.ndarray | None = None  # as given
        self.scaled: np.ndarray | None = None  # what is drawn; keeps the QImage's memory alive
        self.image: QImage | None = None
        self.rect = QRectF()
        self.aspect = (4, 3)

    def set(self, array: np.ndarray, widget: QWidget, aspect: tuple[int, int] | None = None, interpolation: int = cv2.INTER_LINEAR) -> None:
        self.source = array
        self.aspect = aspect or (array.shape[1], array.shape[0])
        self.rect = fit_rect(QRectF(widget.rect()), *self.aspect)
        dpr = widget.devicePixelRatioF()
        size = (max(1, round(self.rect.width() * dpr)), max(1, round(self.rect.height() * dpr)))
        if size[0] < 2 or size[1] < 2:
            self.image = None
            return
        # BGRX is Qt's native RGB32 layout, so painting is a plain copy, not a per-pixel conversion.
        self.scaled = cv2.cvtColor(cv2.resize(array, size, interpolation=interpolation), cv2.COLOR_BGR2BGRA)
        self.image = QImage(self.scaled.data, size[0], size[1], self.scaled.strides[0], QImage.Format.Format_RGB32)  # type: ignore[call-overload]  # PyQt6's stubs omit buffer objects
        self.image.setDevicePixelRatio(dpr)

    def draw(self, p: QPainter, widget: QWidget) -> QRectF:
        """Draw at the fitted rect; after a resize (until the next frame) scale the cached image."""
        assert self.image is not None
        target = fit_rect(QRectF(widget.rect()), *self.aspect)
        if target == self.rect:
            p.drawImage(target.topLeft(), self.image)
        else:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(target, self.image)
        return target

    def clear(self) -> None:
        self.source = self.scaled = self.image = None


class FlowScale:
    """A steady brightness scale for live flow: the 99th-percentile speed, smoothed so the image does not flicker."""

    def __init__(self, decay: float = 0.9, floor: float = 0.5):
        self.decay, self.floor = decay, floor
        self.value: float | None = None

    def update(self, flow: np.ndarray) -> float:
        mag = cv2.magnitude(flow[::2, ::2, 0], flow[::2, ::2, 1]).ravel()  # every 4th vector is plenty for a percentile
        k = int(0.99 * (mag.size - 1))
        top = max(float(np.partition(mag, k)[k]), self.floor)
        self.value = top if self.value is None else self.decay * self.value + (1 - self.decay) * top
        return self.value


Arrows = list[tuple[tuple[int, int, int], np.ndarray, np.ndarray]]  # (BGR colour, shafts (N,2,2), heads (N,3,2)) in frame px


def flow_arrows(flow: np.ndarray, frame_w: int, frame_h: int, reference: float, cells: int = 22, bins: int = 12) -> Arrows:
    """Sparse flow arrows in frame pixels, grouped by direction colour (the hue of the colour image).

    `reference` is the speed (working-size px/frame) drawn as 0.9 grid cell; slower than 20% of it is not
    drawn, and arrows shorter than a third of a cell get no head (a head on a stub reads as a blot).
    """
    fh, fw = flow.shape[:2]
    step = max(frame_w, frame_h) / cells
    gx, gy = np.meshgrid(np.arange(step / 2, frame_w, step), np.arange(step / 2, frame_h, step))
    sample = flow[np.clip((gy * fh / frame_h).astype(int), 0, fh - 1), np.clip((gx * fw / frame_w).astype(int), 0, fw - 1)]
    keep = np.hypot(sample[..., 0], sample[..., 1]) > 0.2 * max(reference, 1e-6)
    if not keep.any():
        return []
    centre, s = np.stack([gx[keep], gy[keep]], 1), sample[keep]
    # Displacement in frame pixels, scaled so that `reference` speed spans 0.9 cell; capped at 1.6 cells.
    d = np.stack([s[:, 0] * frame_w / fw, s[:, 1] * frame_h / fh], 1) * (0.9 * step / max(reference, 1e-6) * fw / frame_w)
    length = np.hypot(d[:, 0], d[:, 1])
    capped = np.minimum(length, 1.6 * step)
    d *= (capped / np.maximum(length, 1e-6))[:, None]
    tail, tip = centre - d / 2, centre + d / 2
    back = -d / np.maximum(capped, 1e-6)[:, None]
    h = np.minimum(step * 0.25, capped * 0.5)[:, None]
    c, sn = math.cos(BARB), math.sin(BARB)
    barb1 = tip + h * np.stack([back[:, 0] * c - back[:, 1] * sn, back[:, 0] * sn + back[:, 1] * c], 1)
    barb2 = tip + h * np.stack([back[:, 0] * c + back[:, 1] * sn, -back[:, 0] * sn + back[:, 1] * c], 1)
    shafts, heads = np.stack([tail, tip], 1), np.stack([barb1, tip, barb2], 1)
    headed = capped >= step / 3
    hue_bin = ((np.degrees(np.arctan2(s[:, 1], s[:, 0])) + 360.0) % 360.0 * bins / 360.0).astype(int) % bins
    out: Arrows = []
    for b in np.unique(hue_bin):
        hsv = np.array([[[int((b + 0.5) * 180 / bins), 200, 255]]], np.uint8)  # OpenCV hue: degrees / 2, as in flow_to_colour
        blue, green, red = (int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
        out.append(((blue, green, red), shafts[hue_bin == b], heads[(hue_bin == b) & headed]))
    return out


def draw_arrows(image: np.ndarray, arrows: Arrows, scale_x: float, scale_y: float) -> None:
    """Burn arrows (frame px) into `image` (the frame resized by scale_x, scale_y) with OpenCV: fast, and off the GIL.

    A 3 px dark edge under a 1 px antialiased colour line reads on any background; thick antialiased
    lines cost OpenCV several times more.
    """
    to_px = np.array([scale_x, scale_y]) * 4  # shift=2: quarter-pixel precision
    for colour, shafts, heads in arrows:
        for lines in (shafts, heads):
            if not len(lines):
                continue
            pts = list(np.round(lines * to_px).astype(np.int32))
            cv2.polylines(image, pts, False, (20, 20, 20), 3, cv2.LINE_8, shift=2)
            cv2.polylines(image, pts, False, colour, 1, cv2.LINE_AA, shift=2)


class VideoView(QWidget):
    """The live frame, its top labels (leader highlighted), ground truth when known, and optional flow arrows."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.frame = ScaledImage()
        self.top: list[tuple[str, float]] = []
        self.truth: str | None = None
        self.known = True  # the fused top score reaches min_score: the leader is named
        self.min_score = 0.0
        self.ready = True
        self.status = "ok"  # Prediction.status: "reconnected" / "resized" while the temporal stream refills
        self.clip_length = 0
        self.arrows: Arrows = []
        self.placeholder = "No video yet: choose a source above"
        self.paused = False
        self.recording_text = ""
        self.teach_text = ""  # the Teach panel's countdown / clip progress, big in the middle of the video

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    @property
    def leader(self) -> str | None:
        """The class named on the video: None when there is none, or it is no known action."""
        return self.top[0][0] if self.top and self.known else None

    @property
    def headline(self) -> str | None:
        """What the overlay's first line says: the leader, or "no known action" (None before any prediction)."""
        if not self.top:
            return None
        return self.top[0][0] if self.known else NO_KNOWN_ACTION

    @property
    def has_image(self) -> bool:
        return self.frame.image is not None

    def show_frame(
        self,
        frame: np.ndarray,
        top: list[tuple[str, float]],
        truth: str | None,
        ready: bool,
        arrows: Arrows | None = None,
        status: str = "ok",
        known: bool = True,
        min_score: float = 0.0,
    ) -> None:
        self.status, self.known, self.min_score = status, known, min_score
        self.frame.set(frame, self)
        if arrows and self.frame.scaled is not None:
            draw_arrows(self.frame.scaled, arrows, self.frame.scaled.shape[1] / frame.shape[1], self.frame.scaled.shape[0] / frame.shape[0])
        self.top, self.truth, self.ready = top, truth, ready
        self.arrows = arrows or []
        self.update()

    def clear(self, placeholder: str) -> None:
        self.frame.clear()
        self.top, self.arrows, self.truth = [], [], None
        self.placeholder = placeholder
        self.update()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        if not self.has_image:
            self.update()

    def paintEvent(self, event: object) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#0d0f12"))
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        if self.frame.image is None or self.frame.source is None:
            p.setPen(QColor("#9aa4b0"))
            f = p.font()
            f.setPointSizeF(f.pointSizeF() * 1.2)
            p.setFont(f)
            p.drawText(QRectF(self.rect()).adjusted(20, 20, -20, -20), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        target = self.frame.draw(p, self)
        self._paint_labels(p, target)
        if self.teach_text:
            self._paint_teach(p, target)

    def _paint_teach(self, p: QPainter, target: QRectF) -> None:
        """A countdown digit large, or the clip being recorded, centred: readable from where the actor stands."""
        big = QFont(self.font())
        big.setBold(True)
        big.setPointSizeF(max(12.0, target.height() / (5 if len(self.teach_text) <= 2 else 16)))
        fm = QFontMetrics(big)
        w, h = fm.horizontalAdvance(self.teach_text) + fm.height(), fm.height() * 1.3
        box = QRectF(target.center().x() - w / 2, target.center().y() - h / 2, w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 150))
        p.drawRoundedRect(box, 10, 10)
        p.setFont(big)
        p.setPen(QColor("#ff5555") if self.teach_text.startswith("●") else QColor("white"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, self.teach_text)

    def _paint_labels(self, p: QPainter, target: QRectF) -> None:
        size = max(9.0, min(20.0, target.height() / 26))
        base, bold = QFont(self.font()), QFont(self.font())
        base.setPointSizeF(size)
        bold.setPointSizeF(size * 1.25)
        bold.setBold(True)
        pad = size * 0.6
        if self.known:
            lines = [
                (f"{label}  {score:.2f}", bold if i == 0 else base, LEADER_COLOUR if i == 0 else QColor("#e8e8e8")) for i, (label, score) in enumerate(self.top)
            ]
        else:  # the verdict first; what the nets think stays visible beneath it, dimmed
            lines = [(NO_KNOWN_ACTION, bold, UNKNOWN_COLOUR)] * bool(self.top) + [(f"{label}  {score:.2f}", base, DIM_COLOUR) for label, score in self.top]
            if self.top:
                why = (
                    f"top score below {self.min_score:.2f}" if self.top[0][1] < self.min_score else "unlike anything it was trained on"
                )  # the familiarity check
                lines.insert(1, (why, base, DIM_COLOUR))
        if lines:
            metrics = [QFontMetrics(f) for _, f, _ in lines]
            box = QRectF(
                target.x() + pad,
                target.y() + pad,
                max(m.horizontalAdvance(t) for m, (t, _, _) in zip(metrics, lines)) + 2.5 * pad,
                sum(m.height() for m in metrics) + pad,
            )
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 160))
            p.drawRoundedRect(box, 6, 6)
            p.setBrush(LEADER_COLOUR if self.known else DIM_COLOUR)  # a bar marks the leader's line (or the verdict)
            p.drawRoundedRect(QRectF(box.x() + 3, box.y() + pad / 2 + 2, 4, metrics[0].height() - 4), 2, 2)
            y = box.y() + pad / 2
            for (text, font, colour), m in zip(lines, metrics):
                p.setFont(font)
                p.setPen(colour)
                p.drawText(QPointF(box.x() + 1.5 * pad, y + m.ascent()), text)
                y += m.height()
        p.setFont(base)
        fm = QFontMetrics(base)
        y = target.bottom() - pad - fm.descent()
        if not self.ready:
            why = self.status if self.status in ("reconnected", "resized") else "warming up"
            boxed_text(p, target.x() + pad, y, f"{why}: spatial only until {self.clip_length or 'L'} flow fields exist", WARNING_COLOUR)
            y -= fm.height() + 8
        if self.truth is not None and not self.known:
            boxed_text(p, target.x() + pad, y, f"truth: {self.truth}  (no known action)", UNKNOWN_COLOUR)
        elif self.truth is not None:
            right = self.leader == self.truth
            boxed_text(p, target.x() + pad, y, f"truth: {self.truth}  {'✓' if right else '✗'}", LEADER_COLOUR if right else QColor("#ff8080"))
        x = target.right() - pad
        for text in (self.recording_text, "❚❚ PAUSED" if self.paused else ""):
            if text:
                x -= (
                    boxed_text(p, x, target.y() + pad + fm.ascent() + 3, text, QColor("#ff5555") if text.startswith("●") else QColor("white"), align_right=True)
                    + pad / 2
                )


def colour_wheel(size: int, rim: int = 3) -> QImage:
    """The flow colour key: the colour flow_to_colour gives each direction (image y points down), bright at the rim.

    Drawn once per size, with its dark ring and light outline, as a premultiplied image: painting it is a blend, nothing more.
    """
    inner = size - 2 * rim
    r = inner / 2
    ys, xs = np.mgrid[0:inner, 0:inner].astype(np.float32) - r + 0.5
    bgr = flow_to_colour(np.dstack([xs, ys]), max_magnitude=r)
    alpha = np.where(np.hypot(xs, ys) <= r, 255, 0).astype(np.uint8)
    bgra = np.ascontiguousarray(np.dstack([bgr, alpha]))
    # ARGB32 is B,G,R,A in memory; PyQt6 takes the array's buffer, its stubs omit buffer objects
    wheel = QImage(bgra.data, inner, inner, inner * 4, QImage.Format.Format_ARGB32)  # type: ignore[call-overload]
    out = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(Qt.GlobalColor.transparent)
    p = QPainter(out)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(0, 0, 0, 150))
    p.drawEllipse(QRectF(0, 0, size, size))
    p.drawImage(rim, rim, wheel)
    p.setPen(QPen(QColor(255, 255, 255, 160), 1))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawEllipse(QRectF(rim, rim, inner, inner))
    p.end()
    return out


class FlowView(QWidget):
    """Live optical flow as colour (hue = direction, brightness = speed), with a colour-wheel key."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.colour = ScaledImage()
        self.scale = FlowScale()
        self.full_speed = 0.0
        self._wheel: QImage | None = None
        self.placeholder = "Flow appears from the second frame"

    def sizeHint(self) -> QSize:
        return QSize(400, 300)

    @property
    def has_image(self) -> bool:
        return self.colour.image is not None

    def show_flow(self, flow: np.ndarray, frame_shape: tuple[int, ...]) -> None:
        self.full_speed = self.scale.update(flow)
        # Flow is at the working size; it is shown in the frame's shape so it lines up with the video.
        self.colour.set(flow_to_colour(flow, self.full_speed), self, aspect=(frame_shape[1], frame_shape[0]))
        self.update()

    def clear(self) -> None:
        self.colour.clear()
        self.scale = FlowScale()
        self.update()

    def _wheel_image(self, side: int) -> QImage:
        dpr = self.devicePixelRatioF()
        px = round(side * dpr)
        if self._wheel is None or self._wheel.width() != px:
            self._wheel = colour_wheel(px)
            self._wheel.setDevicePixelRatio(dpr)
        return self._wheel

    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#0d0f12"))
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.colour.image is None:
            p.setPen(QColor("#9aa4b0"))
            p.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        target = self.colour.draw(p, self)
        side = int(max(40, min(80, target.height() / 3)))
        p.drawImage(QPointF(target.right() - side - 6, target.bottom() - side - 6), self._wheel_image(side))
        fm = p.fontMetrics()
        boxed_text(p, target.x() + 6, target.y() + fm.ascent() + 8, f"full brightness = {self.full_speed:.1f} px/frame", QColor("#f0f0f0"))
        boxed_text(p, target.x() + 6, target.bottom() - fm.descent() - 8, "hue = direction, brightness = speed", QColor("#d8d8d8"))


class ScoreBars(QWidget):
    """For the top classes: spatial, temporal and fused probability side by side, so the driving stream shows.

    Each class is a row of three thin bars (spatial, temporal, fused) with their values, in stream colours;
    the leader's row is highlighted.
    """

    STREAMS = (("spatial (RGB)", SPATIAL_COLOUR), ("temporal (flow)", TEMPORAL_COLOUR), ("fused", FUSED_COLOUR))

    def __init__(self, k: int = 5, parent: QWidget | None = None):
        super().__init__(parent)
        self.k = k
        self.rows: list[tuple[str, float, float | None, float]] = []  # label, spatial, temporal, fused
        self.min_score = 0.0  # marked on the fused bars; the leader is "no known action" below it
        self._familiar = True  # False: the frame looked unlike the model's training frames
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(520, 220)

    @property
    def known(self) -> bool:
        """The prediction names its leader: its fused score reaches the threshold and the frame looked
        familiar (True before any scores)."""
        return not self.rows or (self.rows[0][3] >= self.min_score and self._familiar)

    def show_scores(
        self, labels: list[str], spatial: np.ndarray, temporal: np.ndarray | None, fused: np.ndarray, min_score: float = 0.0, known: bool | None = None
    ) -> None:
        self.min_score = min_score
        self._familiar = True if known is None else known or float(fused.max()) < min_score  # unknown for another reason
        order = np.argsort(fused)[::-1][: self.k]
        self.rows = [(labels[i], float(spatial[i]), None if temporal is None else float(temporal[i]), float(fused[i])) for i in order]
        self.update()

    def clear(self) -> None:
        self.rows = []
        self.update()

    def paintEvent(self, event: object) -> None:  # noqa: N802
        p = QPainter(self)
        fm = QFontMetrics(self.font())
        W, H = self.width(), self.height()
        x = 4.0
        for name, colour in self.STREAMS:
            p.fillRect(QRectF(x, 4 + fm.height() / 2 - 5, 10, 10), colour)
            p.setPen(QColor("#d0d4da"))
            p.drawText(QPointF(x + 14, 4 + fm.ascent()), name)
            x += 14 + fm.horizontalAdvance(name) + 18
        key = f"known from {self.min_score:.2f}"
        if self.min_score > 0 and x + 14 + fm.horizontalAdvance(key) < W - fm.horizontalAdvance("temporal: warming up") - 12:
            p.fillRect(QRectF(x + 4, 4 + fm.height() / 2 - 6, 2, 12), THRESHOLD_COLOUR)  # the key to the threshold tick
            p.setPen(QColor("#d0d4da"))
            p.drawText(QPointF(x + 14, 4 + fm.ascent()), key)
        top0 = fm.height() + 10
        if not self.rows:
            p.setPen(QColor("#9aa4b0"))
            p.drawText(QRectF(0, top0, W, H - top0), Qt.AlignmentFlag.AlignCenter, "Scores appear with the first prediction")
            return
        bold = QFont(self.font())
        bold.setBold(True)
        label_w = min(max(QFontMetrics(bold).horizontalAdvance("▶ " + r[0]) for r in self.rows) + 12, W * 0.34)
        number_w = fm.horizontalAdvance("0.00") + 8
        values_w = 3 * number_w
        span = max(20.0, W - label_w - values_w - 12)
        row_h = (H - top0) / self.k
        bar_h = max(2.0, min((row_h - 8) / 3, 9.0))
        known = self.known
        for r, (label, s, t, f) in enumerate(self.rows):
            top = top0 + r * row_h
            mid = top + row_h / 2
            if r == 0:  # the leader's row; grey when it is no known action
                p.fillRect(QRectF(0, top, W, row_h - 2), QColor(92, 214, 92, 30) if known else QColor(255, 255, 255, 18))
            p.setFont(bold if r == 0 else self.font())
            p.setPen((LEADER_COLOUR if known else UNKNOWN_COLOUR) if r == 0 else QColor("#e8e8e8"))
            text = p.fontMetrics().elidedText(("▶ " if r == 0 else "") + label, Qt.TextElideMode.ElideRight, int(label_w - 8))
            p.drawText(QPointF(4 if r == 0 else 4 + p.fontMetrics().horizontalAdvance("▶ "), mid + fm.ascent() / 2 - 1), text)
            p.setFont(self.font())
            y = mid - (3 * bar_h + 2) / 2
            vx = label_w + span + 10
            p.fillRect(QRectF(label_w, y, span, 3 * bar_h + 2), QColor(255, 255, 255, 20))  # one track behind the three bars
            for value, (_, colour) in zip((s, t, f), self.STREAMS):
                if value is not None:
                    p.fillRect(QRectF(label_w, y, max(1.0, span * value), bar_h), colour)
                p.setPen(colour if value is not None else QColor("#7a8088"))
                p.drawText(QPointF(vx, mid + fm.ascent() / 2 - 1), f"{value:.2f}" if value is not None else " –")
                vx += number_w
                y += bar_h + 1
            if self.min_score > 0:  # a thin tick at the threshold across the fused bar
                p.fillRect(QRectF(label_w + span * self.min_score - 1, y - bar_h - 2, 2, bar_h + 3), THRESHOLD_COLOUR)
        if self.rows and self.rows[0][2] is None:
            p.setPen(QColor("#8a8f96"))
            p.drawText(QPointF(W - fm.horizontalAdvance("temporal: warming up") - 6, 4 + fm.ascent()), "temporal: warming up")


class _LegendSample(pg.ItemSample):
    """Legend swatches as pyqtgraph draws them, except a filled item's (the "no known action" lane): a plain box."""

    def paint(self, p: QPainter, *args: object) -> None:
        if getattr(self.item, "swatch", False):
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(self.item.opts["fillBrush"])
            p.drawRect(QRectF(2, 5, 16, 10))
            return
        super().paint(p, *args)


LANE = (-0.085, -0.02)  # fused p: the "no known action" lane under the zero line (shown once a threshold is in use)


class Timeline(pg.PlotWidget):
    """Fused probability of the top classes over the last seconds (pyqtgraph)."""

    def __init__(self, seconds: float = 10.0, k: int = 5, parent: QWidget | None = None):
        super().__init__(parent, background="#0d0f12")
        self.seconds, self.k = seconds, k
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.setXRange(-seconds, 0, padding=0.01)
        self.setYRange(0, 1, padding=0.02)
        # A grid of plain lines: pyqtgraph's own grid belongs to the axes, which then redraw their labels with
        # every curve update (2-3 ms a time). Curves are 1 px: wider ones take the raster engine's slow path.
        grid = pg.mkPen(255, 255, 255, 28)
        for y in (0.2, 0.4, 0.6, 0.8):
            item.addItem(pg.InfiniteLine(pos=y, angle=0, pen=grid, movable=False))
        for x in range(-int(seconds) + 1, 0):
            item.addItem(pg.InfiniteLine(pos=x, angle=90, pen=grid, movable=False))
        item.getAxis("left").setTicks([[(v, f"{v:.1f}") for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]])  # the same with or without the lane
        item.setLabel("bottom", "seconds ago")
        item.setLabel("left", "fused p")
        for axis in ("left", "bottom"):
            item.getAxis(axis).setTextPen("#c8ccd2")
            item.getAxis(axis).setPen("#5a6068")
        # Top left: the newest values, at the right edge, stay in view.
        self.legend = item.addLegend(offset=(6, 4), labelTextColor="#e0e0e0", brush=pg.mkBrush(0, 0, 0, 140), labelTextSize="8pt", sampleType=_LegendSample)
        # "No known action": the stretches whose fused top score was below the threshold are shaded grey over the
        # whole height, with a solid grey band in a lane of its own under the zero line; the threshold is a dashed line.
        self.unknown_shade = pg.PlotDataItem([], [], pen=None, fillLevel=LANE[0], brush=pg.mkBrush(170, 176, 186, 52))
        self.unknown_band = pg.PlotDataItem([], [], pen=None, fillLevel=LANE[0], brush=pg.mkBrush(176, 182, 192, 215))
        self.unknown_band.swatch = True
        self._lane = False
        for shade in (self.unknown_shade, self.unknown_band):
            shade.setZValue(-10)
            item.addItem(shade)
        self.threshold_line = pg.InfiniteLine(
            pos=0.0,
            angle=0,
            movable=False,
            pen=pg.mkPen(230, 230, 230, 150, width=1, style=Qt.PenStyle.DashLine),
            label="",
            labelOpts={"position": 0.55, "color": "#c8ccd2", "anchors": [(0.5, 1), (0.5, 1)]},
        )
        self.threshold_line.hide()
        item.addItem(self.threshold_line)
        self.curves = [item.plot([], [], pen=pg.mkPen(class_colour(i), width=1), antialias=True) for i in range(k)]
        self.classes: list[str] = []
        self.min_score = 0.0  # the newest prediction's threshold (the dashed line)
        self.unknown_spans: list[tuple[float, float]] = []  # (from, to) seconds ago of the stretches of no known action
        self.unknown_fraction = 0.0  # of the predictions in the window
        self._legend_unknown = False
        self.setMinimumHeight(150)

    def show_history(
        self, ts: np.ndarray, scores: np.ndarray, labels: tuple[str, ...], now: float, min_scores: np.ndarray | None = None, known: np.ndarray | None = None
    ) -> None:
        """`min_scores`: each prediction's "no known action" threshold (None: never unknown); `known`: each
        prediction's verdict when given (it also counts a frame unlike the training frames as unknown)."""
        if ts.size == 0 or scores.shape[1] == 0:
            self.clear_history()
            return
        chosen = list(np.argsort(scores.max(axis=0))[::-1][: self.k])
        names = [labels[i] for i in chosen]
        x = ts - now
        if known is not None and len(known) == len(ts):
            unknown = ~known.astype(bool)
        elif min_scores is not None and len(min_scores) == len(ts):
            unknown = scores.max(axis=1) < min_scores
        else:
            unknown = np.zeros(len(ts), bool)
        self._show_unknown(x, unknown, float(min_scores[-1]) if min_scores is not None and len(min_scores) else 0.0)
        if names != self.classes or self._legend_unknown != bool(self.unknown_spans):
            self.legend.clear()
            for curve, i, name in zip(self.curves, chosen, names):
                curve.setPen(pg.mkPen(class_colour(int(i)), width=1))
                self.legend.addItem(curve, name)
            if self.unknown_spans:
                self.legend.addItem(self.unknown_band, "no known action")
            self.classes, self._legend_unknown = names, bool(self.unknown_spans)
        for n, curve in enumerate(self.curves):
            if n < len(chosen):
                curve.setData(x, scores[:, chosen[n]])
            else:
                curve.setData([], [])

    def _show_unknown(self, x: np.ndarray, unknown: np.ndarray, min_score: float) -> None:
        """Shade the runs of unknown predictions (each run from its first to just past its last frame) and draw the threshold."""
        self.min_score = min_score
        self.threshold_line.setVisible(min_score > 0)
        if min_score > 0:
            self.threshold_line.setPos(min_score)
            self.threshold_line.label.setFormat(f"known from {min_score:.2f}")
            below = (0.5, 0.0) if min_score > 0.75 else (0.5, 1.0)  # the label stays inside the plot
            self.threshold_line.label.anchors = [below, below]
            self.threshold_line.label.updatePosition()
        self.unknown_fraction = float(unknown.mean()) if unknown.size else 0.0
        spans: list[tuple[float, float]] = []
        if unknown.any():
            edges = np.flatnonzero(np.diff(np.concatenate([[0], unknown.astype(np.int8), [0]])))
            step = float(np.median(np.diff(x))) if x.size > 1 else 0.0
            spans = [(float(x[a]), float(x[b - 1]) + step if b < x.size else 0.0) for a, b in zip(edges[::2], edges[1::2])]
        self.unknown_spans = spans
        lane = min_score > 0 or bool(spans)
        if lane != self._lane:  # room under the zero line for the lane, only while a threshold is in use
            self._lane = lane
            self.setYRange(LANE[0] if lane else 0.0, 1.0, padding=0.02)
        xs = np.array([[a, a, b, b] for a, b in spans], np.float64).ravel()
        for shade, height in ((self.unknown_shade, 1.0), (self.unknown_band, LANE[1])):
            shade.setData(xs, np.tile([LANE[0], height, height, LANE[0]], len(spans)))

    def clear_history(self) -> None:
        for c in self.curves:
            c.setData([], [])
        for shade in (self.unknown_shade, self.unknown_band):
            shade.setData([], [])
        self.threshold_line.hide()
        if self._lane:
            self._lane = False
            self.setYRange(0.0, 1.0, padding=0.02)
        self.legend.clear()
        self.classes = []
        self.unknown_spans, self.unknown_fraction, self._legend_unknown = [], 0.0, False


class StatsPanel(QFrame):
    """Rates, latency, drops and where inference runs."""

    FIELDS = (
        ("capture", "capture fps"),
        ("flow", "flow fps"),
        ("infer", "inference fps"),
        ("display", "display fps"),
        ("latency", "latency p50 / p95"),
        ("dropped", "dropped frames"),
        ("engine", "engine"),
        ("device", "device"),
        ("model", "model"),
        ("unknown", "no known action"),
        ("source", "source"),
    )

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 4, 6, 4)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(2)
        self.values: dict[str, QLabel] = {}
        mono = QFont("DejaVu Sans Mono")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        for row, (key, title) in enumerate(self.FIELDS):
            name = QLabel(title)
            name.setStyleSheet("color: #9aa4b0;")
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if key in ("capture", "flow", "infer", "display", "latency", "dropped"):
                value.setFont(mono)
            value.setMinimumWidth(60)
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long names elide, never widen the panel
            grid.addWidget(name, row, 0)
            grid.addWidget(value, row, 1)
            self.values[key] = value
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(len(self.FIELDS), 1)

    def set(self, key: str, text: str, colour: str | None = None) -> None:
        label = self.values[key]
        label.setText(text)
        label.setToolTip(text)
        label.setStyleSheet(f"color: {colour};" if colour else "")


class Banner(QFrame):
    """A one-line notice across the window: errors, warnings (reconnecting), the untrained-model notice."""

    dismissed = pyqtSignal()
    STYLES = {"error": ("#4a1c1c", "#e05252"), "warning": ("#4a3b12", "#e0a030"), "info": ("#1c3450", "#4c9be8")}

    def __init__(self, dismissable: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.label, 1)
        self.level = ""
        if dismissable:
            close = QToolButton()
            close.setText("✕")
            close.setToolTip("Dismiss")
            close.setAutoRaise(True)
            close.clicked.connect(self.dismiss)
            row.addWidget(close)
        self.hide()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisibleTo(self.parentWidget()) else ""

    def show_message(self, level: str, text: str) -> None:
        bg, border = self.STYLES[level]
        self.level = level
        self.setStyleSheet(f"Banner {{ background: {bg}; border: 1px solid {border}; border-radius: 4px; }} QLabel {{ color: #f4f4f4; }}")
        self.label.setText(text)
        self.show()

    def dismiss(self) -> None:
        self.hide()
        self.level = ""
        self.dismissed.emit()
