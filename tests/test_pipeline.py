"""The live pipeline end to end: every frame predicted, timestamps in order, bounded under overload, clean stop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from realtime.nets.engines import create_engine
from realtime.errors import SourceError, UserError
from realtime.stream.fusion import Fusion, Smoother
from realtime.nets.checkpoint import FusionConfig
from realtime.stream.pipeline import Pipeline, PipelineError
from realtime.io.sources import FrameSource


def _pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("twostream-") and t.is_alive()]


def test_file_gives_one_prediction_per_frame_in_order(video_file, tiny_model) -> None:
    with Pipeline(video_file, tiny_model, engine="torch") as p:
        preds = list(p)
    assert [q.index for q in preds] == list(range(40))
    L = tiny_model.config.clip_length
    assert [q.ready for q in preds] == [False] * L + [True] * (40 - L)  # L flow fields need L+1 frames
    for q in preds:
        assert q.capture_ts <= q.flow_ts <= q.infer_ts
        assert q.fused.shape == (4,) and abs(float(q.fused.sum()) - 1) < 1e-4
        assert q.frame.shape == (120, 160, 3) and q.label in tiny_model.config.labels
    caps = [q.capture_ts for q in preds]
    assert all(b > a for a, b in zip(caps, caps[1:]))
    assert p.summary()["frames"] == 40 and p.summary()["dropped"] == {"capture": 0, "infer": 0, "output": 0}
    assert p.status == "finished"


def test_synthetic_source_predictions_carry_ground_truth_and_flow(tiny_model) -> None:
    with Pipeline("synthetic:demo?fps=0&frames=12&clip=6&size=96x72", tiny_model, engine="torch") as p:
        preds = list(p)
    assert [q.truth for q in preds] == ["swipe_left"] * 6 + ["swipe_right"] * 6
    assert preds[0].flow is None and preds[1].flow.shape == (72, 72, 2)
    assert all(q.temporal is not None for q in preds[3:])


def test_engines_agree_with_eager(tiny_model) -> None:
    s, n = tiny_model.config.input_size, tiny_model.config.temporal_channels
    xs, xt = torch.randn(1, 3, s, s), torch.randn(1, n, s, s)
    ref = create_engine(tiny_model, "torch", "cpu")
    ref_s, ref_t = ref(xs, xt)
    ref.close()
    eng = create_engine(tiny_model, "torchscript", "cpu")
    got_s, got_t = eng(xs, xt)
    eng.close()
    assert np.abs(got_s - ref_s).max() < 1e-4 and np.abs(got_t - ref_t).max() < 1e-4


def test_missing_engine_names_the_package_and_extra(tiny_model) -> None:
    with pytest.raises(UserError, match=r"torch-tensorrt.*twostream\[tensorrt\]"):
        create_engine(tiny_model, "tensorrt", "cpu")
    with pytest.raises(UserError, match="no CUDA GPU"):
        create_engine(tiny_model, "torch", "cuda")


def test_auto_engine_picks_onnxruntime_on_cpu_and_says_why_not_others(tiny_model) -> None:
    eng = create_engine(tiny_model, "auto", "cpu")
    try:
        assert eng.name == "onnxruntime"
        assert any("tensorrt" in r for r in eng.auto_reasons)
    finally:
        eng.close()


def test_overload_drops_frames_instead_of_growing_latency(tiny_model) -> None:
    # 400 fps live source, far faster than the nets: the pipeline must drop, and latency stays bounded.
    with Pipeline("synthetic:demo?fps=400&frames=600&size=160x120", tiny_model, engine="torch", smoothing=1) as p:
        preds = list(p)
    summary = p.summary()
    dropped = sum(summary["dropped"].values())
    # Bounded, by construction rather than by the clock: every captured frame was either predicted or
    # dropped and counted (nothing waits in a queue that grows), and the newest work replaced older work.
    assert dropped > 0 and summary["captured"] == len(preds) + dropped
    assert [q.index for q in preds] == sorted(q.index for q in preds)
    assert all(a.dropped <= b.dropped for a, b in zip(preds, preds[1:])) and 0 < preds[-1].dropped <= dropped  # counted as they happen


def test_stop_joins_every_thread_within_a_second(tiny_model) -> None:
    p = Pipeline("synthetic:demo?fps=30", tiny_model, engine="torch").start()
    it = iter(p)
    next(it), next(it)
    p.stop(timeout=1.0)  # joins each thread against one 1 s deadline: none alive after it means all ended within it
    assert _pipeline_threads() == []


class _FailingSource(FrameSource):
    name = "failing"
    is_live = False

    def __init__(self) -> None:
        self.n = 0
        self.closed = False

    def read(self):
        self.n += 1
        if self.n > 5:
            raise RuntimeError("sensor unplugged")
        return np.zeros((48, 64, 3), np.uint8)

    def close(self) -> None:
        self.closed = True


def test_an_error_in_a_stage_reaches_the_caller_with_its_cause(tiny_model) -> None:
    src = _FailingSource()
    with pytest.raises(PipelineError, match="capture stage failed: RuntimeError: sensor unplugged") as e:
        with Pipeline(src, tiny_model, engine="torch") as p:
            list(p)
    assert isinstance(e.value.__cause__, RuntimeError)
    assert src.closed and _pipeline_threads() == []


def test_a_bad_source_fails_at_start_with_a_user_error(tmp_path, tiny_model) -> None:
    pipe = Pipeline(tmp_path / "missing.mp4", tiny_model, engine="torch")
    with pytest.raises(SourceError, match="no such file"):
        pipe.start()
    # the pipeline is still referenced, yet the engine it built holds no thread: a refused start leaks nothing
    assert not [t.name for t in threading.enumerate() if t.name.startswith("twostream-spatial")]


def test_fusion_modes_and_smoothing() -> None:
    s, t = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.8, 0.1])
    np.testing.assert_allclose(Fusion(FusionConfig("avg"))(s, t), [0.4, 0.5, 0.1])
    np.testing.assert_allclose(Fusion(FusionConfig("weighted", spatial_weight=0.75))(s, t), [0.55, 0.35, 0.1])
    np.testing.assert_allclose(Fusion(FusionConfig("avg"))(s, None), s)  # before L flow fields: spatial alone
    w = np.hstack([np.eye(3), np.eye(3) * 2]).tolist()  # trust the temporal stream twice as much
    fused = Fusion(FusionConfig("svm", svm_weight=w, svm_bias=[0, 0, 0]))(s, t)
    assert int(np.argmax(fused)) == 1 and abs(fused.sum() - 1) < 1e-5
    with pytest.raises(UserError, match="no fitted SVM"):
        Fusion(FusionConfig("avg"), mode="svm")
    sm = Smoother(2, window=3)
    outs = [sm(np.array(v, np.float32)) for v in ([1, 0], [0, 1], [0, 1], [0, 1])]
    np.testing.assert_allclose(outs[1], [0.5, 0.5])
    np.testing.assert_allclose(outs[3], [0, 1])  # the first frame has left the window
    sm = Smoother(2, window=2)  # each frame counts as much as its top score: a flat frame moves the average little
    sm(np.array([0.9, 0.1], np.float32))
    np.testing.assert_allclose(sm(np.array([0.45, 0.55], np.float32)), (0.9 * np.array([0.9, 0.1]) + 0.55 * np.array([0.45, 0.55])) / 1.45, rtol=1e-6)


def test_an_engine_passed_in_is_left_open_for_the_next_pipeline(tiny_model) -> None:
    engine = create_engine(tiny_model, "torch", "cpu")
    for _ in range(2):  # the GUI reuses one engine across source switches
        with Pipeline("synthetic:wave?fps=0&frames=5&size=96x72", tiny_model, engine=engine) as p:
            assert len(list(p)) == 5
        assert engine._executor is not None  # still running both streams at once
    engine.close()


def test_swaps_asked_from_several_threads_at_once_are_all_taken_and_the_last_one_runs(tiny_model) -> None:
    """Two swaps stored around the infer thread's take must not lose one (its caller would wait for ever)."""
    import copy

    models = [copy.deepcopy(tiny_model) for _ in range(6)]
    for i, m in enumerate(models):
        m.config.provenance = {**m.config.provenance, "name": f"m{i}"}
    engine = create_engine(tiny_model, "torch")  # one engine for all: only the model objects change
    errors: list[BaseException] = []
    with Pipeline("synthetic:demo?fps=200&size=96x72", tiny_model, engine=engine) as p:
        it = iter(p)
        next(it)
        start = threading.Barrier(len(models))

        def swap(m) -> None:
            start.wait()
            try:
                p.swap_model(m, engine, timeout=10)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=swap, args=(m,)) for m in models]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert not errors and not any(t.is_alive() for t in threads)
        assert p.swaps == len(models)
        next(it)
    engine.close()


def test_configure_from_another_thread_never_shows_a_frame_half_changed(tiny_model) -> None:
    """Fusion mode, weight and threshold change together: each Prediction carries one configuration whole."""
    seen: set[tuple[float, float]] = set()
    with Pipeline("synthetic:demo?fps=0&size=96x72", tiny_model, engine="torch", max_frames=150) as p:
        stop = threading.Event()

        def flip() -> None:
            i = 0
            while not stop.is_set():
                p.configure(fusion="weighted", spatial_weight=0.2 if i % 2 else 0.8, min_score=0.1 if i % 2 else 0.7, smoothing=1)
                i += 1
                time.sleep(0.002)  # a change every few ms: many per frame, without starving the pipeline of the GIL

        t = threading.Thread(target=flip)
        t.start()
        try:
            for pred in p:
                seen.add((round(pred.min_score, 3), pred.min_familiarity))
                if pred.ready and pred.min_score in (0.1, 0.7) and p.smoother.window == 1:  # the weight that came with this threshold
                    w = 0.2 if pred.min_score == 0.1 else 0.8
                    np.testing.assert_allclose(pred.fused, w * pred.spatial + (1 - w) * pred.temporal, atol=1e-6)
        finally:
            stop.set()
            t.join()
    assert seen <= {(0.1, 0.0), (0.7, 0.0), (round(tiny_model.config.fusion.min_score, 3), 0.0)}
    assert p.fusion.mode == "weighted" and p.fusion.spatial_weight in (0.2, 0.8)
    with pytest.raises(UserError, match="outside 0..1"):
        p.configure(min_score=2.0)
    assert p.fusion.min_score in (0.1, 0.7)  # a refused change changes nothing


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_a_file_in_batches_predicts_exactly_what_one_frame_at_a_time_does(tmp_path, tiny_model, engine) -> None:
    """Batched file mode: the same frames, labels, readiness, statuses and (to float rounding) scores."""
    from conftest import informative, synthetic_frames, write_video

    model = informative(tiny_model)  # scores that depend on the input: equal scores would prove nothing
    frames = synthetic_frames("wave", 30, seed=1) + synthetic_frames("circle_cw", 30, seed=2)
    path = write_video(tmp_path / "two_actions.avi", frames)
    eng = create_engine(model, engine, "cpu")

    class Slow(type(eng)):  # type: ignore[misc]  # nets slower than the flow stage, as in real use, so batches form
        def __call__(self, spatial_x, temporal_x):  # type: ignore[no-untyped-def]
            time.sleep(0.02)
            return super().__call__(spatial_x, temporal_x)

    eng.__class__ = Slow
    runs = {}
    try:
        for batch in (1, 8):
            with Pipeline(path, model, engine=eng, file_batch=batch) as p:
                runs[batch] = list(p)
            if batch == 8:
                sizes = p.summary()["batch_size"]
                assert sizes["limit"] == 8 and sizes["max"] > 1, sizes  # the nets did take several frames at once
    finally:
        eng.close()
    one, many = runs[1], runs[8]
    assert [q.index for q in many] == [q.index for q in one] == list(range(60))
    assert [(q.ready, q.status, q.label, q.top_label) for q in many] == [(q.ready, q.status, q.label, q.top_label) for q in one]
    for a, b in zip(one, many):
        np.testing.assert_allclose(b.spatial, a.spatial, atol=1e-5, rtol=0)
        np.testing.assert_allclose(b.fused, a.fused, atol=1e-5, rtol=0)
        if a.temporal is not None:
            np.testing.assert_allclose(b.temporal, a.temporal, atol=1e-5, rtol=0)
    assert max(float(q.spatial.max()) for q in one) > 0.4, "near-uniform scores: the comparison would prove nothing"


def test_live_sources_and_paced_files_stay_one_frame_at_a_time(video_file, tiny_model) -> None:
    with Pipeline(video_file, tiny_model, engine="torch", realtime=True, max_frames=12) as p:
        list(p)
    assert "batch_size" not in p.summary() and set(p.batch_sizes) == {1}
