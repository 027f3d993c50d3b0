"""Shot cuts: found where a new scene starts and nowhere else; at a cut smoothing restarts and the
spatial stream leads for the first frames; `--cut-threshold 1` turns it off; the JSON says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import informative, synthetic_frames, write_video
from realtime.errors import UserError
from realtime.io.synthetic import SyntheticClip
from realtime.nets.checkpoint import FusionConfig
from realtime.stream.cuts import CUT_RAMP, CutDetector
from realtime.stream.fusion import Fusion
from realtime.stream.pipeline import Pipeline
from test_cli import twostream


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tiny_model):
    return tiny_model.save(tmp_path_factory.mktemp("models") / "tiny")


def _cuts(frames: list[np.ndarray]) -> list[int]:
    det = CutDetector()
    return [i for i, f in enumerate(frames) if det.push(f)]


def test_a_cut_is_found_where_one_clip_gives_way_to_another_and_not_inside_a_shaking_moving_clip() -> None:
    # every class moves or shakes its camera; each clip is one shot, each boundary a new scene
    labels = ["swipe_left", "circle_cw", "push", "wave", "hold_star", "pull"]
    frames: list[np.ndarray] = []
    for n, label in enumerate(labels):
        frames += synthetic_frames(label, 25, seed=50 + n, size=(128, 128))
    assert _cuts(frames) == [25 * n for n in range(1, len(labels))]


def test_cut_threshold_must_be_in_0_1_and_1_never_fires() -> None:
    for bad in (0.0, -0.2, 1.5):
        with pytest.raises(UserError, match="outside"):
            CutDetector(bad)
    black, white = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)
    det = CutDetector(1.0)
    assert [det.push(f) for f in (black, white, black)] == [False, False, False] and det.distance == pytest.approx(1.0)
    det = CutDetector()
    assert [det.push(f) for f in (black, white)] == [False, True]
    det.reset()  # a gap: the next frame is a first frame again
    assert det.push(black) is False


def test_after_a_cut_fusion_hands_the_temporal_weight_back_a_frame_at_a_time() -> None:
    sp, tp = np.array([0.8, 0.2]), np.array([0.1, 0.9])
    weighted = Fusion(FusionConfig(mode="weighted", spatial_weight=0.4))
    assert np.allclose(weighted(sp, tp, 0), sp)  # the stack is all the previous shot: spatial alone
    for k in range(1, CUT_RAMP):
        w = 1 - 0.6 * k / CUT_RAMP
        assert np.allclose(weighted(sp, tp, k), w * sp + (1 - w) * tp)
    steady = 0.4 * sp + 0.6 * tp
    assert np.allclose(weighted(sp, tp, CUT_RAMP), steady) and np.allclose(weighted(sp, tp, None), steady)
    # a model that deploys one stream alone keeps it: validation found the other stream no help
    temporal_only = Fusion(FusionConfig(mode="weighted", spatial_weight=0.0))
    assert np.allclose(temporal_only(sp, tp, 0), tp)


def test_a_video_file_with_a_cut_restarts_smoothing_and_leads_with_the_spatial_stream(tmp_path, tiny_model) -> None:
    model = informative(tiny_model)
    a = SyntheticClip("circle_cw", seed=3, width=160, height=120)
    b = SyntheticClip("swipe_up", seed=8, width=160, height=120)
    path = write_video(tmp_path / "two_shots.avi", [a.frame(t) for t in range(20)] + [b.frame(t) for t in range(20)])

    def predictions(**kw):
        with Pipeline(str(path), model, engine="torch", smoothing=4, **kw) as p:
            return list(p)

    preds = predictions()
    assert [p.index for p in preds if p.since_cut == 0] == [20]
    assert [p.since_cut for p in preds[:20]] == [None] * 20 and preds[23].since_cut == 3
    cut, after = preds[20], preds[21]
    assert cut.ready and np.allclose(cut.fused, cut.spatial, atol=1e-6)  # nothing of the old shot, and spatial alone
    w = 1 - 0.5 * 1 / CUT_RAMP  # the tiny model averages (0.5): one frame into the ramp
    first, second = cut.spatial, w * after.spatial + (1 - w) * after.temporal  # smoothed, each weighted by its top score
    assert np.allclose(after.fused, (first.max() * first + second.max() * second) / (first.max() + second.max()), atol=1e-5)
    off = predictions(cut_threshold=1.0)
    assert all(p.since_cut is None for p in off)
    assert not np.allclose(off[20].fused, off[20].spatial, atol=1e-3)  # without it the old shot's scores carry over


def test_json_lines_mark_the_frames_that_start_a_shot(tiny_model_dir) -> None:
    args = ("run", "synthetic:demo?fps=0&clip=6", "--model", str(tiny_model_dir), "--max-frames", "14", "--json", "--engine", "torch")
    r = twostream(*args)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["cut"] for line in r.stdout.splitlines()] == [i in (6, 12) for i in range(14)]
    r = twostream(*args, "--cut-threshold", "1")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["cut"] for line in r.stdout.splitlines()] == [False] * 14
