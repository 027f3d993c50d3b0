"""`twostream make-dataset`: the procedural dataset, written as an ordinary UCF-101-style tree.

Clips come from `realtime.io.synthetic` (nine classes that differ only in motion, three that differ
only in appearance at rest; random backgrounds, sizes, speeds, light, noise, blur, camera shake).
Deterministic by seed. Train, test and the live demo draw from disjoint seed ranges, so the test
set and the demo show clips never used in training.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Protocol

import cv2

from ..errors import UserError
from ..io.synthetic import CLASSES, SyntheticClip

log = logging.getLogger("twostream")
TRAIN_SEEDS, TEST_SEEDS = 10_000_000, 20_000_000  # the live demo uses seeds below 10_000_000
SEEDS_PER_DATASET_SEED = 1_000_000


def clip_seed(split: str, dataset_seed: int, index: int) -> int:
    base = TRAIN_SEEDS if split == "train" else TEST_SEEDS
    return base + dataset_seed * SEEDS_PER_DATASET_SEED + index


def _write_clip(args: tuple[str, int, Path, int, tuple[int, int]]) -> str:
    label, seed, path, frames, size = args
    if path.is_file() and path.stat().st_size > 0:
        return label  # already there: generation resumes where it stopped
    clip = SyntheticClip(label, seed, size[0], size[1])
    tmp = path.with_name(path.stem + ".part.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, size)
    if not writer.isOpened():
        raise UserError(f"{path}: cannot write video")
    for t in range(frames):
        writer.write(clip.frame(t))
    writer.release()
    tmp.replace(path)
    return label


def make_dataset(
    out: str | Path,
    train_clips: int = 60,
    test_clips: int = 20,
    frames: int = 32,
    seed: int = 0,
    size: tuple[int, int] = (320, 240),
    classes: list[str] | None = None,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Write ROOT/<class>/<clip>.avi plus classInd.txt, trainlist01.txt and testlist01.txt."""
    root = Path(out)
    classes = list(classes or CLASSES)
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise UserError(f"unknown procedural classes {', '.join(unknown)}: choose from {', '.join(CLASSES)}")
    if frames < 2 or train_clips < 1 or test_clips < 0:
        raise UserError("need at least 2 frames per clip and 1 training clip per class")
    jobs: list[tuple[str, int, Path, int, tuple[int, int]]] = []
    train_lines: list[str] = []
    test_lines: list[str] = []
    for c, label in enumerate(classes):
        (root / label).mkdir(parents=True, exist_ok=True)
        for split, count, lines in (("train", train_clips, train_lines), ("test", test_clips, test_lines)):
            for i in range(count):
                rel = f"{label}/{label}_{split}_{i:04d}.avi"
                jobs.append((label, clip_seed(split, seed, i), root / rel, frames, size))
                lines.append(f"{rel} {c + 1}" if split == "train" else rel)
    bar = _progress(len(jobs), "clips", progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_write_clip, jobs, chunksize=8):
                bar.update(1)
    else:
        for job in jobs:
            _write_clip(job)
            bar.update(1)
    bar.close()
    (root / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    (root / "trainlist01.txt").write_text("\n".join(train_lines) + "\n")
    (root / "testlist01.txt").write_text("\n".join(test_lines) + "\n")
    mirrored = [(a, b) for a, b in (("swipe_left", "swipe_right"), ("circle_cw", "circle_ccw")) if a in classes and b in classes]
    (root / "flip_pairs.txt").write_text("# classes a horizontal mirror turns into each other\n" + "".join(f"{a} {b}\n" for a, b in mirrored))
    (root / "README.txt").write_text(
        f"twostream procedural dataset: {len(classes)} classes, {train_clips} train + {test_clips} test clips per class, "
        f"{frames} frames at {size[0]}x{size[1]}, dataset seed {seed}.\n"
        f"Train clip i uses synthetic seed {TRAIN_SEEDS} + seed*{SEEDS_PER_DATASET_SEED} + i; test clips {TEST_SEEDS} + ...\n"
    )
    return root


class Progress(Protocol):
    """A progress bar: tqdm's, or one that shows nothing when tqdm is not installed."""

    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...

    def set_postfix(self, **kw: object) -> None: ...


def _progress(total: int, unit: str, enabled: bool) -> Progress:
    try:
        from tqdm import tqdm

        return tqdm(total=total, unit=unit, disable=not enabled, dynamic_ncols=True, leave=False)
    except ImportError:

        class _Null:
            def update(self, n: int = 1) -> None: ...
            def close(self) -> None: ...
            def set_postfix(self, **kw: object) -> None: ...

        return _Null()
