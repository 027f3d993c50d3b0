"""Training and test samples for each stream, built from the flow cache with the live preprocessing code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..nets.checkpoint import ModelConfig
from ..stream.flow import FlowEstimator
from ..stream.preprocess import centre_crop, flow_input, rgb_input
from .cache import FlowCache
from .datasets import Clip


def flow_window(num_fields: int, start: int, length: int) -> np.ndarray:
    """Indices of L consecutive flow fields from `start`.

    A clip with fewer than L fields is padded by repeating its last field (documented behaviour);
    a single-frame clip has no field and gets zero flow.
    """
    return np.clip(np.arange(start, start + length), 0, max(0, num_fields - 1))


def zero_flow_codes(config: ModelConfig) -> np.ndarray:
    return config.flow.quantise(np.zeros((1, config.flow.height, config.flow.width, 2), np.float32))


def protocol_positions(count_available: int, samples: int = 25) -> np.ndarray:
    """The paper's test protocol: `samples` positions equally spaced over what the clip offers."""
    return np.unique(np.linspace(0, max(0, count_available - 1), samples).round().astype(int))


def protocol_crops(config: ModelConfig, ten_crop: bool) -> list[tuple[int, int, bool]]:
    """(top, left, flip): the centre crop, or the paper's 4 corners + centre and their flips."""
    s, h, w = config.input_size, config.flow.height, config.flow.width
    centre = centre_crop(config.flow, s)
    if not ten_crop:
        return [(centre[0], centre[1], False)]
    spots = [(0, 0), (0, w - s), (h - s, 0), (h - s, w - s), centre]
    return [(t, left, flip) for flip in (False, True) for t, left in spots]


class StreamSamples(torch.utils.data.Dataset):
    """One random sample per clip per epoch: a frame (spatial) or a stack of L flow fields (temporal).

    Training samples take a random crop with scale jitter and a random horizontal flip (x flow negated,
    and the label of a mirror-pair class swapped);
    randomness is a function of (seed, epoch, index), so runs are reproducible.

    `transitions` (temporal stream, training only): the share of flow stacks that begin in another
    class's clip and end in the first fields of this one, labelled with this clip's class: live, the
    stack after a change of action holds the old motion for up to L-1 frames, and a net that only saw
    one action per stack keeps naming the old one. Half of them have the flow across a cut between the
    two clips (what a file's scene change gives), half join the two motions directly (a camera).
    """

    def __init__(
        self,
        clips: list[Clip],
        root: Path,
        cache: FlowCache,
        config: ModelConfig,
        stream: str,
        train: bool = True,
        seed: int = 0,
        scale_jitter: bool = True,
        repeats: int = 1,
        flips: bool = True,
        transitions: float = 0.0,
    ):
        self.clips, self.root, self.cache, self.config = clips, root, cache, config
        self.stream, self.train, self.seed, self.scale_jitter, self.repeats = stream, train, seed, scale_jitter, repeats
        self.flips = flips  # off for classes whose mirror image may be another action (a user's own classes)
        self.transitions = transitions if train and stream == "temporal" and len({c.label for c in clips}) > 1 else 0.0
        self._estimator: FlowEstimator | None = None
        self._labels = np.array([c.label for c in clips])
        self.epoch = 0
        self._zero = zero_flow_codes(config)
        self._mirror = config.flip_permutation()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips) * self.repeats

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        clip = self.clips[i % len(self.clips)]
        cfg = self.config
        rng = np.random.default_rng([self.seed, self.epoch, i])
        s, h, w = cfg.input_size, cfg.flow.height, cfg.flow.width
        if self.train:
            c = int(rng.integers(s, min(h, w) + 1)) if self.scale_jitter else s
            top, left, flip = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1)), self.flips and bool(rng.random() < 0.5)
        else:
            c = s
            (top, left), flip = centre_crop(cfg.flow, s), False
        key = clip.key(self.root)
        if self.stream == "spatial":
            rgb = self.cache.load(key, "rgb")
            t = int(rng.integers(len(rgb))) if self.train else len(rgb) // 2
            x = rgb_input(rgb[t], cfg, top, left, flip, crop_size=c)
        else:
            codes = self.cache.load(key, "flow")
            if len(codes) == 0:
                codes = self._zero
            if self.transitions and rng.random() < self.transitions:
                x = flow_input(self._transition(clip, codes, rng), cfg, top, left, flip, crop_size=c)
            else:
                start = int(rng.integers(0, max(1, len(codes) - cfg.clip_length + 1))) if self.train else max(0, (len(codes) - cfg.clip_length) // 2)
                x = flow_input(codes, cfg, top, left, flip, order=flow_window(len(codes), start, cfg.clip_length), crop_size=c)
        return torch.from_numpy(x), (self._mirror[clip.label] if flip else clip.label)  # a mirrored swipe_left is a swipe_right

    def _transition(self, clip: Clip, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """L flow codes: the end of a random other-class clip's motion, then this clip's first fields."""
        n = self.config.clip_length
        others = np.flatnonzero(self._labels != clip.label)
        other = self.clips[int(others[rng.integers(len(others))])]
        old = self.cache.load(other.key(self.root), "flow")
        if len(old) == 0:
            old = self._zero
        fresh = int(rng.integers(max(1, n // 3), n))  # fields of the new action: at least L/3, so there is some of it to see
        cut = bool(rng.random() < 0.5)
        keep = n - fresh - cut
        end = int(rng.integers(min(keep, len(old)), len(old) + 1))  # the old motion stops at a random point of its clip
        parts = [old[flow_window(len(old), end - keep, keep)]]
        if cut:
            parts.append(self._cut_field(other, min(end, len(old)), clip))
        parts.append(codes[flow_window(len(codes), 0, fresh)])
        return np.concatenate(parts)

    def _cut_field(self, other: Clip, frame: int, clip: Clip) -> np.ndarray:
        """The flow codes the live flow stage makes across a cut from `other`'s frame to `clip`'s first frame."""
        if self._estimator is None:
            self._estimator = FlowEstimator(self.config.flow)
        old_rgb, new_rgb = self.cache.load(other.key(self.root), "rgb"), self.cache.load(clip.key(self.root), "rgb")
        e = self._estimator
        field = e.between(e.prepare(old_rgb[min(frame, len(old_rgb) - 1)]), e.prepare(new_rgb[0]))
        return self.config.flow.quantise(field[None])


def stream_input_batches(clip_key: str, cache: FlowCache, config: ModelConfig, stream: str, samples: int, ten_crop: bool) -> np.ndarray:
    """All test-protocol inputs for one clip: (positions x crops, C, S, S)."""
    crops = protocol_crops(config, ten_crop)
    if stream == "spatial":
        rgb = cache.load(clip_key, "rgb")
        positions = protocol_positions(len(rgb), samples)
        return np.stack([rgb_input(rgb[t], config, top, left, flip) for t in positions for top, left, flip in crops])
    codes = cache.load(clip_key, "flow")
    if len(codes) == 0:
        codes = zero_flow_codes(config)
    starts = protocol_positions(max(1, len(codes) - config.clip_length + 1), samples)
    return np.stack(
        [flow_input(codes, config, top, left, flip, order=flow_window(len(codes), st, config.clip_length)) for st in starts for top, left, flip in crops]
    )
