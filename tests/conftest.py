"""Shared test fixtures: real video files written with OpenCV, small models, offscreen Qt."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the suite on 2 workers. Each worker (and every child process it starts) then does
    # torch's math on one thread: two workers with a thread per core each would oversubscribe the cores,
    # and OpenMP threads spinning against each other starve a training run beside a live pipeline for minutes.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TWOSTREAM_CACHE", str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "twostream"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from realtime.nets.checkpoint import ModelConfig, TwoStreamModel  # noqa: E402
from realtime.io.synthetic import SyntheticClip  # noqa: E402


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """Write BGR frames to a real video file (MJPG .avi or mp4v .mp4) and check it reads back."""
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def synthetic_frames(label: str, n: int, seed: int = 0, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    clip = SyntheticClip(label, seed, size[0], size[1])
    return [clip.frame(t) for t in range(n)]


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    """A 40-frame 160x120 MJPG video of a synthetic swipe."""
    return write_video(tmp_path / "clip.avi", synthetic_frames("swipe_right", 40))


@pytest.fixture(scope="session")
def tiny_model() -> TwoStreamModel:
    """An untrained small model (4 labels, L=3, 64 px): fast enough for many pipeline tests."""
    from realtime.stream.flow import FlowSettings

    cfg = ModelConfig(
        labels=["a", "b", "c", "d"],
        spatial_arch="mobilenet_v2_035",
        temporal_arch="mobilenet_v2_035",
        input_size=64,
        clip_length=3,
        flow=FlowSettings(width=72, height=72),
        trained=False,
        provenance={"name": "tiny-test"},
    )
    return TwoStreamModel.create(cfg, seed=0)


def informative(model: TwoStreamModel) -> TwoStreamModel:
    """A copy whose scores depend on the input.

    An untrained net's BatchNorm statistics (mean 0, var 1) shrink its features to ~1e-8 and every
    softmax to uniform, which would hide any disagreement; statistics measured on random inputs
    and a louder head give peaked, input-dependent scores.
    """
    import copy

    import torch
    from torch import nn

    from realtime.nets.models import classifier_layer

    model = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(1)
    s = model.config.input_size
    for net, chans in ((model.spatial, 3), (model.temporal, model.config.temporal_channels)):
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration batch
        net.train()
        with torch.no_grad():
            net(torch.randn(8, chans, s, s, generator=gen))
            classifier_layer(net).weight.mul_(10)
        net.eval()
    return model
