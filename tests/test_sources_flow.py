"""Sources (one parser for every input, credentials redacted) and flow (accuracy, encoding, flips)."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from realtime.nets.checkpoint import ModelConfig
from realtime.errors import SourceError, UserError
from realtime.stream.flow import FlowEstimator, FlowSettings, end_point_error, resize_flow
from realtime.stream.preprocess import flow_input
from realtime.io.sources import open_source, parse_source, redact
from realtime.io.synthetic import CLASSES, MOTION_CLASSES, SyntheticClip, SyntheticSource


@pytest.mark.parametrize(
    "text,kind",
    [
        ("0", "camera"),
        ("/dev/video2", "camera"),
        ("rtsp://cam/1", "stream"),
        ("http://host/x.mjpg", "stream"),
        ("https://host/live.m3u8", "stream"),
        ("clip.mp4", "file"),
        ("file:///tmp/a.avi", "file"),
        ("synthetic:wave", "synthetic"),
        ("synthetic:demo?fps=0&seed=3", "synthetic"),
    ],
)
def test_one_parser_names_every_kind_of_source(text: str, kind: str) -> None:
    assert parse_source(text).kind == kind


def test_credentials_never_appear_in_a_source_name() -> None:
    spec = parse_source("rtsp://admin:hunter2@10.0.0.5:554/stream?token=abc123&ch=1")
    assert "hunter2" not in spec.name and "admin" not in spec.name and "abc123" not in spec.name
    assert spec.name == "rtsp://***@10.0.0.5:554/stream?token=***&ch=1"
    assert "hunter2" in spec.target  # the real URL is still used to connect
    assert redact("no url here") == "no url here"


def test_unknown_scheme_is_refused_with_what_is_accepted() -> None:
    with pytest.raises(UserError, match="unknown source scheme 'ftp://'.*rtsp://"):
        parse_source("ftp://user:pw@host/file")
    with pytest.raises(UserError) as e:
        parse_source("ftp://user:pw@host/file")
    assert "pw" not in str(e.value)


def test_missing_file_and_absent_camera_are_clear_errors(tmp_path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "nope.mp4")
    with pytest.raises(SourceError, match="twostream info"):
        open_source("/dev/video97")
    with pytest.raises(SourceError, match="camera could not be opened"):
        open_source("97")


def test_unreadable_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "random.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match="random.mp4"):
        src = open_source(bad)
        src.read()


def test_file_source_reads_every_frame_then_ends(video_file) -> None:
    src = open_source(video_file)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    src.close()
    assert len(frames) == 40 and frames[0].shape == (120, 160, 3) and not src.is_live


def test_realtime_file_is_paced_at_its_fps(video_file) -> None:
    src = open_source(video_file, realtime=True)  # written at 25 fps
    t0 = time.monotonic()
    for _ in range(11):
        src.read()
    elapsed = time.monotonic() - t0
    src.close()
    assert src.is_live and elapsed > 0.35  # 10 intervals of 40 ms: never faster (a loaded machine is only slower)


def test_synthetic_source_is_deterministic_and_knows_its_labels() -> None:
    a = SyntheticSource("demo", fps=0, clip_frames=5, seed=1, size=(96, 72))
    b = SyntheticSource("demo", fps=0, clip_frames=5, seed=1, size=(96, 72))
    labels = []
    for _ in range(15):
        fa, fb = a.read(), b.read()
        assert np.array_equal(fa, fb)
        labels.append(a.label)
    assert labels == [CLASSES[0]] * 5 + [CLASSES[1]] * 5 + [CLASSES[2]] * 5
    with pytest.raises(UserError, match="unknown synthetic source"):
        open_source("synthetic:juggling")
    with pytest.raises(UserError, match="bad option"):
        open_source("synthetic:demo?size=huge")


def test_synthetic_frames_limit_ends_the_stream() -> None:
    src = open_source("synthetic:wave?fps=0&frames=3")
    assert [src.read() is None for _ in range(4)] == [False, False, False, True]


# On the moving object (where flow carries the action), DIS ultrafast at the 128x128 working size
# recovers the synthetic world's true flow to a mean end-point error under 1.5 px over every motion
# class (measured: 1.04 px, against 2.42 px for a zero-flow guess).
EPE_BOUND_PX = 1.5


def test_dis_flow_matches_synthetic_ground_truth_on_moving_objects() -> None:
    settings = FlowSettings()
    errors, zero = [], []
    for label in MOTION_CLASSES:
        for seed in (0, 1):
            clip = SyntheticClip(label, seed=seed)
            est = FlowEstimator(settings)
            est.push(clip.frame(0))
            for t in range(8):
                flow = est.push(clip.frame(t + 1))
                truth = resize_flow(clip.flow(t), settings.size)
                on_object = cv2.resize(clip.object_mask(t), settings.size, interpolation=cv2.INTER_NEAREST) > 127
                if on_object.sum() < 20:
                    continue
                errors.append(np.linalg.norm(flow - truth, axis=-1)[on_object].mean())
                zero.append(np.linalg.norm(truth, axis=-1)[on_object].mean())
    assert len(errors) > 100
    assert np.mean(errors) < EPE_BOUND_PX
    assert np.mean(errors) < 0.6 * np.mean(zero)


def test_farneback_is_an_alternative_that_also_tracks_motion() -> None:
    settings = FlowSettings(algorithm="farneback")
    clip = SyntheticClip("swipe_right", seed=2)
    est = FlowEstimator(settings)
    est.push(clip.frame(0))
    flow = est.push(clip.frame(1))
    truth = resize_flow(clip.flow(0), settings.size)
    assert end_point_error(flow, truth) < end_point_error(np.zeros_like(truth), truth)
    with pytest.raises(UserError, match="unknown flow algorithm"):
        FlowSettings(algorithm="tvl1-magic")
    # its parameters are settings: they travel with a model (an older model.json without them reads the defaults)
    wide = FlowSettings(algorithm="farneback", farneback_winsize=31)
    assert FlowSettings.from_dict(wide.to_dict()) == wide
    assert FlowSettings.from_dict({"algorithm": "farneback"}) == settings
    other = FlowEstimator(wide)
    other.push(clip.frame(0))
    assert np.abs(other.push(clip.frame(1)) - flow).max() > 0.1  # and the estimator uses them


def test_quantisation_round_trips_within_one_step_and_clips_at_the_bound() -> None:
    s = FlowSettings(bound=20.0)
    flow = np.random.default_rng(0).uniform(-30, 30, (16, 16, 2)).astype(np.float32)
    back = s.dequantise(s.quantise(flow))
    step = 2 * s.bound / 255
    clipped = np.clip(flow, -20, 20)
    assert np.abs(back - clipped).max() <= step / 2 + 1e-5
    assert back.max() <= 20 + 1e-5 and back.min() >= -20 - 1e-5


def _config(**kw) -> ModelConfig:
    return ModelConfig(labels=["a", "b"], input_size=8, clip_length=2, flow=FlowSettings(width=8, height=8), **kw)


def test_flip_mirrors_flow_and_negates_x() -> None:
    cfg = _config(subtract_mean_flow=False, flow_scale=1.0)
    codes = cfg.flow.quantise(np.random.default_rng(1).uniform(-5, 5, (2, 8, 8, 2)).astype(np.float32))
    plain = flow_input(codes, cfg, 0, 0)
    flipped = flow_input(codes, cfg, 0, 0, flip=True)
    np.testing.assert_allclose(flipped[0::2], -plain[0::2, :, ::-1], atol=1e-6)  # x channels
    np.testing.assert_allclose(flipped[1::2], plain[1::2, :, ::-1], atol=1e-6)  # y channels


def test_mean_displacement_is_subtracted_per_field() -> None:
    cfg = _config(flow_scale=1.0)
    camera_pan = np.full((2, 8, 8, 2), 3.0, np.float32)
    x = flow_input(cfg.flow.quantise(camera_pan), cfg, 0, 0)
    assert np.abs(x).max() < 1e-5  # a pure camera pan cancels out
    assert x.shape == (4, 8, 8)


def test_the_training_cache_and_the_live_pipeline_feed_the_nets_identical_inputs(tmp_path, video_file, tiny_model) -> None:
    """Train/serve parity: one flow front end (realtime.stream.preprocess.FlowFrontEnd) for both, so the inputs match exactly."""
    from realtime.nets.engines import TorchEngine
    from realtime.stream.pipeline import Pipeline
    from realtime.stream.preprocess import centre_crop, rgb_input
    from realtime.train.cache import FlowCache
    from realtime.train.datasets import Clip

    cfg = tiny_model.config
    cache = FlowCache(tmp_path / "cache", cfg.flow)
    clip = Clip(video_file, 0)
    cache.build([clip], video_file.parent, workers=1, progress=False)
    rgb, codes = cache.load(clip.key(video_file.parent), "rgb"), cache.load(clip.key(video_file.parent), "flow")
    seen: list[tuple[np.ndarray, np.ndarray | None]] = []

    class Recording(TorchEngine):  # the nets' inputs as the pipeline hands them over
        def __call__(self, spatial_x, temporal_x):  # type: ignore[no-untyped-def]
            seen.append((spatial_x.numpy().copy(), None if temporal_x is None else temporal_x.numpy().copy()))
            return super().__call__(spatial_x, temporal_x)

    import torch

    engine = Recording(tiny_model, torch.device("cpu"))
    with Pipeline(video_file, tiny_model, engine=engine, file_batch=1) as p:
        n = len(list(p))
    assert n == len(rgb) == len(seen) == 40 and len(codes) == 39
    top, left = centre_crop(cfg.flow, cfg.input_size)
    L = cfg.clip_length
    for i, (xs, xt) in enumerate(seen):
        np.testing.assert_array_equal(xs[0], rgb_input(rgb[i], cfg, top, left))
        if i < L:
            assert xt is None
        else:  # the flow fields between frames i-L..i, oldest first
            np.testing.assert_array_equal(xt[0], flow_input(codes[i - L : i], cfg, top, left))
    engine.close()
