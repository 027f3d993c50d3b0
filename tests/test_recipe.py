"""The training recipe for real footage: ImageNet init, the validation slice, fusion that never hurts,
and the calibrated "no known action" threshold from training to `--json`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import informative
from realtime.nets.checkpoint import FusionConfig, ModelConfig, TwoStreamModel, load_checkpoint
from realtime.errors import CheckpointError
from realtime.stream.flow import FlowSettings
from realtime.train.datasets import Clip
from realtime.train.evaluate import calibrate_min_score, choose_fusion
from realtime.train.procedural import make_dataset
from realtime.train.trainer import TrainOptions, split_validation, train

ROOT = Path(__file__).resolve().parent.parent
STILL = ["hold_star", "hold_cross", "hold_ring"]  # differ only in a still object's shape: the spatial stream's job


def _peaked(labels: np.ndarray, classes: int, rng: np.random.Generator, right: float, wrong_peak: float = 0.7) -> np.ndarray:
    """Scores of a stream that is right on a share `right` of the clips, confidently (peak 0.7), and
    wrong on the others with a peak of `wrong_peak`."""
    out = rng.dirichlet(np.ones(classes), len(labels)).astype(np.float32) * 0.3
    hit = rng.random(len(labels)) < right
    winners = np.where(hit, labels, (labels + 1 + rng.integers(0, classes - 1, len(labels))) % classes)
    out[np.arange(len(labels)), winners] += np.where(hit, 0.7, wrong_peak)
    return out / out.sum(1, keepdims=True)


def test_fusion_falls_back_to_the_better_stream_when_the_other_is_noise() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 60)
    good = _peaked(labels, 5, rng, right=0.9)
    noise = _peaked(rng.permutation(labels), 5, rng, right=0.9)  # a stream trained on shuffled labels: confident, unrelated
    weight, report = choose_fusion(good, noise, labels)
    assert weight == 1.0 and report["chosen"] == "spatial" and "alone" in report["why"]
    weight, report = choose_fusion(noise, good, labels)
    assert weight == 0.0 and report["chosen"] == "temporal"
    fused = weight * noise + (1 - weight) * good
    assert (fused.argmax(1) == labels).mean() >= (good.argmax(1) == labels).mean()


def test_fusion_mixes_when_the_streams_complement_each_other() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 80)
    a, b = (_peaked(labels, 4, rng, right=0.7, wrong_peak=0.25) for _ in range(2))  # independent, less confident errors
    weight, report = choose_fusion(a, b, labels)
    assert 0 < weight < 1 and report["chosen"] == "weighted" and report["best_mixed"] > max(report["spatial"], report["temporal"])


def test_unknown_threshold_holds_back_weak_wrong_frames_and_nothing_when_all_are_right() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 20)
    frames = [_peaked(np.full(25, y), 3, rng, right=0.85, wrong_peak=0.1) for y in labels]  # wrong frames are unsure ones
    threshold, calib = calibrate_min_score(frames, frames, labels, 0.5)
    assert 1 / 3 < threshold < 1 and calib["correct_frames_below"] <= 0.02
    assert calib["wrong_frames_below"] > 5 * calib["correct_frames_below"]  # it holds back wrong frames far more often than right ones
    right = [_peaked(np.full(25, y), 3, rng, right=1.0) for y in labels]  # saturated: nothing tells right from wrong
    assert calibrate_min_score(right, right, labels, 0.5)[0] == 0.0


def test_familiarity_threshold_sits_between_held_out_frames_and_another_world() -> None:
    from realtime.nets.familiarity import calibrate

    held_out = np.linspace(0.55, 0.8, 200)
    assert calibrate(held_out, np.linspace(0.1, 0.2, 50)) == pytest.approx(
        (np.quantile(held_out, 0.01) + np.quantile(np.linspace(0.1, 0.2, 50), 0.95)) / 2, abs=1e-4
    )
    assert calibrate(held_out, np.linspace(0.5, 0.9, 50)) == pytest.approx(np.quantile(held_out, 0.01), abs=1e-4)  # trained on that world


def test_validation_slice_is_stratified_keeps_ucf_groups_together_and_skips_tiny_classes(tmp_path: Path) -> None:
    clips = [Clip(tmp_path / "a" / f"v_a_g{g:02d}_c{c:02d}.avi", 0) for g in range(5) for c in range(2)]
    clips += [Clip(tmp_path / "b" / f"b_{i}.avi", 1) for i in range(10)] + [Clip(tmp_path / "c" / f"c_{i}.avi", 2) for i in range(2)]
    fit, val = split_validation(clips, 0.2, seed=0)
    assert sorted(map(str, fit + val)) == sorted(map(str, clips)) and not set(map(str, fit)) & set(map(str, val))
    assert {c.label for c in val} == {0, 1}  # class c (2 clips) gives none
    val_groups = {c.path.name.split("_c")[0] for c in val if c.label == 0}
    assert not any(c.path.name.split("_c")[0] in val_groups for c in fit if c.label == 0)  # a group is on one side
    assert sum(c.label == 1 for c in val) == 2


def test_unknown_threshold_round_trips_through_the_checkpoint_and_shows_in_json(tmp_path: Path) -> None:
    cfg = ModelConfig(
        labels=["a", "b", "c"],
        spatial_arch="mobilenet_v2_035",
        temporal_arch="mobilenet_v2_035",
        input_size=48,
        clip_length=3,
        flow=FlowSettings(width=56, height=56),
        fusion=FusionConfig("weighted", 0.5, min_score=0.99),
    )
    informative(TwoStreamModel.create(cfg, seed=0)).save(tmp_path / "m")  # input-dependent scores: no ties for the top class
    assert load_checkpoint(tmp_path / "m").config.fusion.min_score == 0.99

    def run(*extra: str) -> list[dict]:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "realtime.cli",
                "run",
                "synthetic:wave?fps=0&size=96x72",
                "--model",
                str(tmp_path / "m"),
                "--max-frames",
                "6",
                "--json",
                "--engine",
                "torch",
                *extra,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert r.returncode == 0, r.stderr
        return [json.loads(line) for line in r.stdout.splitlines()]

    preds = run()
    assert len(preds) == 6 and all(p["label"] is None and p["known"] is False and p["min_score"] == 0.99 for p in preds)
    assert all(p["top"] and p["top"][0]["score"] < 0.99 for p in preds)  # the scores stay available
    assert all(p["label"] == p["top"][0]["label"] and p["known"] for p in run("--min-score", "0"))
    r = subprocess.run(
        [sys.executable, "-m", "realtime.cli", "run", "synthetic:wave", "--model", str(tmp_path / "m"), "--min-score", "1.5"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "outside 0..1" in r.stderr and "Traceback" not in r.stderr
    raw = json.loads((tmp_path / "m" / "model.json").read_text())
    raw["fusion"]["min_score"] = 2
    (tmp_path / "m" / "model.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match="min_score"):
        load_checkpoint(tmp_path / "m")


@pytest.fixture(scope="module")
def still_shapes(tmp_path_factory) -> Path:
    """Generated clips of three still objects that differ only in shape: what a spatial stream must see."""
    return make_dataset(tmp_path_factory.mktemp("still"), train_clips=6, test_clips=4, frames=8, size=(96, 72), classes=STILL, workers=1, progress=False)


def test_imagenet_init_beats_the_same_short_run_from_scratch(still_shapes: Path, tmp_path: Path) -> None:
    opts = dict(
        data=str(still_shapes),
        stream="spatial",
        spatial_arch="efficientnet_lite0",
        size=64,
        work_size=72,
        clip_length=3,
        batch=8,
        steps=24,
        workers=1,
        progress=False,
        eval_samples=5,
        cache=str(tmp_path / "cache"),
        val_fraction=0.0,
    )
    scratch = train(TrainOptions(**opts, out=str(tmp_path / "scratch"), init="none"))
    imagenet = train(TrainOptions(**opts, out=str(tmp_path / "imagenet"), init="imagenet"))
    assert imagenet["spatial"]["top1"] > scratch["spatial"]["top1"] + 0.2, (imagenet["spatial"], scratch["spatial"])
    card = (tmp_path / "imagenet" / "MODEL_CARD.md").read_text()
    assert "ImageNet" in card and "Apache-2.0" in card
    cfg = load_checkpoint(tmp_path / "imagenet").config
    assert cfg.provenance["init"] == {"spatial": "imagenet"} and cfg.rgb_mean[0] == pytest.approx(127 / 255)


def test_both_streams_deploy_what_validation_chose_and_evaluate_reports_it(still_shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    metrics = train(
        TrainOptions(
            data=str(still_shapes),
            out=str(out),
            stream="both",
            spatial_arch="efficientnet_lite0",
            temporal_arch="mobilenet_v2_035",
            size=64,
            work_size=72,
            clip_length=3,
            batch=8,
            steps=16,
            workers=1,
            progress=False,
            eval_samples=5,
            svm_samples=2,
            cache=str(tmp_path / "cache"),
        )
    )
    cfg = load_checkpoint(out).config
    choice = cfg.provenance["fusion_choice"]
    assert cfg.fusion.mode == "weighted" and cfg.fusion.spatial_weight == choice["spatial_weight"]
    unknown = choice["unknown"]  # calibrated on the chosen fusion's validation frames (the rule itself: the unit test above)
    assert 0 <= cfg.fusion.min_score < 1 and unknown["threshold"] == cfg.fusion.min_score and unknown["frames"] > 0
    assert unknown["correct_frames_below"] <= unknown["cap_quantile"]  # never holds back more right frames than the cap
    assert unknown["wrong_frames"] > 0 or cfg.fusion.min_score == 0.0  # all validation frames right: nothing to hold back
    assert cfg.provenance["validation_clips"] == 6  # 2 of each class: one validation clip per class decides nothing
    dep = metrics["deployed"]
    assert dep["mode"] == choice["chosen"] and dep["spatial_weight"] == cfg.fusion.spatial_weight and dep["min_score"] == cfg.fusion.min_score
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime.cli",
            "evaluate",
            "--model",
            str(out),
            "--data",
            str(still_shapes),
            "--cache",
            str(tmp_path / "cache"),
            "--json",
            str(tmp_path / "e.json"),
            "--no-progress",
            "--samples",
            "5",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["deployed"] == dep and "deployed" in r.stderr
