"""The trainer: dataset readers and splits, flow cache, real (small) training runs, resume, evaluation, DDP."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from conftest import synthetic_frames, write_video
from realtime.nets.checkpoint import load_checkpoint
from realtime.errors import UserError
from realtime.stream.flow import FlowSettings
from realtime.nets.models import create_model, first_conv
from realtime.train.cache import FlowCache
from realtime.train.data import flow_window, protocol_crops, protocol_positions
from realtime.train.datasets import open_dataset
from realtime.train.procedural import make_dataset
from realtime.train.sgd import Batch, SGDLoop
from realtime.train.pretrained import load_init
from realtime.train.trainer import TrainOptions, train

ROOT = Path(__file__).resolve().parent.parent
EASY = ["swipe_left", "swipe_right"]  # differ only in motion: the temporal stream's job
SMALL = dict(arch="mobilenet_v2_035", size=48, work_size=56, clip_length=3, batch=8, workers=1, progress=False, eval_samples=5, svm_samples=2, lr=0.01)


@pytest.fixture(scope="module")
def ucf_tree(tmp_path_factory) -> Path:
    """A UCF-101-style tree (classInd.txt, trainlist01.txt, testlist01.txt) of real synthetic clips."""
    root = tmp_path_factory.mktemp("ucf")
    return make_dataset(root, train_clips=8, test_clips=4, frames=12, size=(96, 72), classes=EASY + ["hold_ring", "hold_cross"], workers=1, progress=False)


def test_ucf_lists_give_classes_and_splits(ucf_tree) -> None:
    ds = open_dataset(ucf_tree)
    assert ds.classes == EASY + ["hold_ring", "hold_cross"]
    assert len(ds.train) == 32 and len(ds.test) == 16
    assert {c.label for c in ds.test} == {0, 1, 2, 3}
    train_names = {c.path.name for c in ds.train}
    assert not train_names & {c.path.name for c in ds.test}
    assert all(ds.classes[c.label] == c.path.parent.name for c in ds.train + ds.test)


def test_hmdb_split_files_mark_train_test_and_unused(tmp_path) -> None:
    for cls in ("wave", "push"):
        (tmp_path / cls).mkdir()
        marks = []
        for i, mark in enumerate((1, 1, 2, 0)):
            write_video(tmp_path / cls / f"{cls}_{i}.avi", synthetic_frames(cls, 4, seed=i, size=(64, 48)))
            marks.append(f"{cls}_{i}.avi {mark}")
        (tmp_path / f"{cls}_test_split1.txt").write_text("\n".join(marks) + "\n")
    ds = open_dataset(tmp_path)
    assert ds.name == "hmdb51 split 1" and ds.classes == ["push", "wave"]
    assert len(ds.train) == 4 and len(ds.test) == 2  # the clip marked 0 is unused


def test_folder_tree_split_is_stratified_deterministic_and_reports_empty_classes(tmp_path) -> None:
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(8):
            write_video(tmp_path / cls / f"{i}.avi", synthetic_frames("wave", 3, seed=i, size=(48, 32)))
    (tmp_path / "empty").mkdir()
    one, two = open_dataset(tmp_path, seed=3), open_dataset(tmp_path, seed=3)
    assert one.classes == ["a", "b"] and any("'empty' has no clips" in n for n in one.notes)
    assert [c.path for c in one.test] == [c.path for c in two.test]
    assert sorted(c.label for c in one.test) == [0, 0, 1, 1]  # 25% of each class
    assert [c.path for c in open_dataset(tmp_path, seed=4).test] != [c.path for c in one.test]


def test_bad_dataset_paths_are_user_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="no such dataset directory"):
        open_dataset(tmp_path / "absent")
    with pytest.raises(UserError, match="no class folders"):
        open_dataset(tmp_path)


def test_flow_cache_is_reused_and_invalidated_when_flow_settings_change(ucf_tree, tmp_path) -> None:
    ds = open_dataset(ucf_tree)
    clips = ds.train[:4]
    settings = FlowSettings(width=56, height=56)
    first = FlowCache(tmp_path, settings).build(clips, ds.root, workers=1, progress=False)
    again = FlowCache(tmp_path, settings).build(clips, ds.root, workers=1, progress=False)
    assert (first.computed, first.reused) == (4, 0) and (again.computed, again.reused) == (0, 4)
    other = FlowCache(tmp_path, FlowSettings(width=56, height=56, preset="medium"))
    assert other.dir != FlowCache(tmp_path, settings).dir
    assert other.build(clips, ds.root, workers=1, progress=False).computed == 4
    flow = FlowCache(tmp_path, settings).load(clips[0].key(ds.root), "flow")
    assert flow.dtype == np.uint8 and flow.shape == (11, 56, 56, 2)  # 12 frames -> 11 fields
    assert first.flow_bytes_per_frame < first.raw_float32_bytes_per_frame / 4


def test_unreadable_clips_are_skipped_and_counted(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    write_video(tmp_path / "a" / "good.avi", synthetic_frames("wave", 5, size=(64, 48)))
    (tmp_path / "a" / "bad.avi").write_bytes(os.urandom(2000))
    ds = open_dataset(tmp_path)
    report = FlowCache(tmp_path / "cache", FlowSettings(width=56, height=56)).build(ds.train + ds.test, ds.root, workers=1, progress=False)
    assert list(report.failed) == ["a/bad.avi"] and report.clips == 2
    assert "1 unreadable and skipped" in report.line()


def test_short_clips_are_padded_by_repeating_their_last_flow_field() -> None:
    assert flow_window(num_fields=3, start=0, length=5).tolist() == [0, 1, 2, 2, 2]
    assert flow_window(num_fields=0, start=0, length=3).tolist() == [0, 0, 0]
    assert flow_window(num_fields=20, start=4, length=3).tolist() == [4, 5, 6]


def test_evaluation_protocol_takes_25_equally_spaced_positions_and_10_crops(tiny_model) -> None:
    pos = protocol_positions(97, 25)
    assert len(pos) == 25 and pos[0] == 0 and pos[-1] == 96 and set(np.diff(pos)) == {4}
    assert protocol_positions(6, 25).tolist() == [0, 1, 2, 3, 4, 5]  # a short clip offers fewer
    crops = protocol_crops(tiny_model.config, ten_crop=True)
    s, w = tiny_model.config.input_size, tiny_model.config.flow.width
    assert len(crops) == 10 and sum(f for _, _, f in crops) == 5
    assert {(t, left) for t, left, _ in crops} == {(0, 0), (0, w - s), (w - s, 0), (w - s, w - s), ((w - s) // 2, (w - s) // 2)}


def _log(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_temporal_training_learns_motion_and_resume_continues(ucf_tree, tmp_path) -> None:
    out = tmp_path / "m"
    opts = dict(SMALL, data=str(ucf_tree), out=str(out), stream="temporal", cache=str(tmp_path / "c"), evaluate=False, repeats=4)
    train(TrainOptions(**opts, epochs=3))
    train(TrainOptions(**opts, epochs=10, resume=True))
    rows = _log(out / "train_log_temporal.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, 11))  # resumed at epoch 4, not from scratch
    assert int(rows[3]["step"]) == int(rows[2]["step"]) + int(rows[0]["step"])
    losses = [float(r["loss"]) for r in rows]
    assert np.mean(losses[-3:]) < losses[0] - 0.1
    assert max(float(r["train_acc"]) for r in rows[-3:]) > 0.45  # 4 classes: chance is 0.25
    model = load_checkpoint(out)
    assert model.config.provenance["streams_trained"] == ["temporal"] and not model.config.trained


def _evaluate_cli(model: Path, data: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """`twostream evaluate` as a user runs it (3 stacks per video, the tests' flow cache); its process and JSON."""
    js = tmp_path / "eval.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime.cli",
            "evaluate",
            "--model",
            str(model),
            "--data",
            str(data),
            "--json",
            str(js),
            "--samples",
            "3",
            "--cache",
            str(tmp_path / "c"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return r, json.loads(js.read_text())


def test_one_stream_trained_is_evaluated_on_its_own(ucf_tree, tmp_path) -> None:
    """Before both nets are trained, the held-out figures are the trained stream's alone: no chance-level
    scores from the untrained net, and no fusion with them, in train's metrics or in `evaluate`."""
    out = tmp_path / "spatial_only"
    metrics = train(TrainOptions(**SMALL, data=str(ucf_tree), out=str(out), stream="spatial", epochs=2, cache=str(tmp_path / "c")))
    assert metrics["streams"] == ["spatial"] and 0.0 <= metrics["spatial"]["top1"] <= 1.0 and metrics["videos"] == 16
    assert not {"temporal", "fusion_avg", "fusion_svm"} & set(metrics)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["streams"] == ["spatial"] and saved["spatial"] == metrics["spatial"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "| spatial stream |" in card and "temporal stream |" not in card and "--stream temporal" in card
    r, result = _evaluate_cli(out, ucf_tree, tmp_path)
    assert result["streams"] == ["spatial"] and "temporal" not in result and "fusion_avg" not in result
    assert "top-1 spatial" in r.stderr and "temporal" not in r.stderr


def test_both_streams_then_fusion_and_evaluate_json(ucf_tree, tmp_path) -> None:
    out = tmp_path / "both"
    metrics = train(TrainOptions(**SMALL, data=str(ucf_tree), out=str(out), stream="both", epochs=6, cache=str(tmp_path / "c")))
    for key in ("spatial", "temporal", "fusion_avg", "fusion_svm"):
        assert 0.0 <= metrics[key]["top1"] <= 1.0
    assert metrics["videos"] == 16
    model = load_checkpoint(out)
    assert model.config.trained and model.config.fusion.svm_weight is not None
    assert (out / "confusion.png").stat().st_size > 1000 and (out / "MODEL_CARD.md").read_text().count("|") > 10
    r, result = _evaluate_cli(out, ucf_tree, tmp_path)
    assert result["videos"] == 16
    for key in ("spatial", "temporal", "fusion_avg", "fusion_svm"):
        assert 0.0 <= result[key]["top1"] <= 1.0
    r = subprocess.run(
        [sys.executable, "-m", "realtime.cli", "run", str(ucf_tree / "swipe_left" / "swipe_left_test_0000.avi"), "--model", str(out), "--json", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 12  # the trained checkpoint runs live


def test_multitask_two_datasets_share_a_trunk_with_a_head_each(ucf_tree, tmp_path) -> None:
    second = make_dataset(tmp_path / "d2", train_clips=3, test_clips=1, frames=8, size=(96, 72), classes=["push", "pull", "wave"], workers=1, progress=False)
    out = tmp_path / "mt"
    train(TrainOptions(**SMALL, data=str(ucf_tree), data2=str(second), out=str(out), stream="temporal", epochs=1, evaluate=False, cache=str(tmp_path / "c")))
    first, task2 = load_checkpoint(out), load_checkpoint(out / "task2")
    assert task2.config.labels == ["push", "pull", "wave"] and len(first.config.labels) == 4
    a, b = first.temporal.state_dict(), task2.temporal.state_dict()
    assert torch.equal(a["features.0.0.weight"], b["features.0.0.weight"])  # the shared trunk


def test_init_loads_torchvision_names_with_cross_modality_first_conv(tmp_path) -> None:
    imagenet = create_model("mobilenet_v2", 1000, 3)
    torch.save(imagenet.state_dict(), tmp_path / "mobilenet_v2-imagenet.pth")
    flow_net = create_model("mobilenet_v2", 5, 20)
    loaded = load_init(flow_net, str(tmp_path / "mobilenet_v2-imagenet.pth"), 20)
    rgb_w = first_conv(imagenet).weight
    expected = rgb_w.mean(1, keepdim=True).repeat(1, 20, 1, 1)
    assert torch.allclose(first_conv(flow_net).weight, expected)
    assert loaded == len(imagenet.state_dict()) - 2  # everything but the 1000-way head
    assert flow_net.classifier[1].weight.shape == (5, 1280)


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_runs_a_step(ucf_tree, tmp_path) -> None:
    cache = tmp_path / "c"
    FlowCache(cache, FlowSettings(width=56, height=56)).build(open_dataset(ucf_tree).train + open_dataset(ucf_tree).test, ucf_tree, 1, False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "realtime.cli",
            "train",
            "--data",
            str(ucf_tree),
            "--stream",
            "spatial",
            "--out",
            str(tmp_path / "ddp"),
            "--arch",
            "mobilenet_v2_035",
            "--size",
            "48",
            "--work-size",
            "56",
            "--L",
            "3",
            "--batch",
            "4",
            "--epochs",
            "1",
            "--max-steps",
            "1",
            "--no-eval",
            "--no-progress",
            "--cache",
            str(cache),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = _log(tmp_path / "ddp" / "train_log_spatial.csv")
    assert len(rows) == 1 and rows[0]["step"] == "1"
    assert load_checkpoint(tmp_path / "ddp").config.provenance["streams_trained"] == ["spatial"]


def test_a_mirrored_swipe_left_is_labelled_swipe_right(ucf_tree, tmp_path) -> None:
    from realtime.train.data import StreamSamples
    from realtime.train.trainer import _config_for

    ds = open_dataset(ucf_tree)
    assert ds.flip_pairs == [["swipe_left", "swipe_right"]]  # written by make-dataset
    cfg = _config_for(TrainOptions(**SMALL, data=str(ucf_tree), out=str(tmp_path)), ds.classes)
    cfg.flip_pairs = ds.flip_pairs
    assert cfg.flip_permutation() == [1, 0, 2, 3]
    cache = FlowCache(tmp_path / "c", cfg.flow)
    cache.build(ds.train, ds.root, workers=1, progress=False)
    left = [c for c in ds.train if c.label == 0]
    ring = [c for c in ds.train if ds.classes[c.label] == "hold_ring"]
    samples = StreamSamples(left + ring, ds.root, cache, cfg, "temporal", train=True, seed=0, repeats=4)
    labels = [samples[i][1] for i in range(len(samples))]
    swipe_labels = [lab for i, lab in enumerate(labels) if (i % len(samples.clips)) < len(left)]
    ring_labels = [lab for i, lab in enumerate(labels) if (i % len(samples.clips)) >= len(left)]
    assert set(swipe_labels) == {0, 1}  # flipped samples became swipe_right
    assert set(ring_labels) == {ds.classes.index("hold_ring")}  # a mirrored ring is still a ring


def test_train_command_line_defaults_are_train_options_defaults() -> None:
    """TrainOptions is the one source of train's defaults: what argparse fills in is what the dataclass says."""
    import dataclasses

    from realtime.cli import build_parser

    args = build_parser().parse_args(["train", "--data", "D", "--out", "O", "--stream", "both"])
    defaults = {f.name: f.default for f in dataclasses.fields(TrainOptions) if f.default is not dataclasses.MISSING}
    compared = 0
    for name, value in vars(args).items():
        if name in defaults and name not in ("data", "out", "stream", "command") and value is not None:
            assert value == defaults[name], f"--{name.replace('_', '-')} defaults to {value!r}, TrainOptions.{name} to {defaults[name]!r}"
            compared += 1
    assert compared >= 25  # the option block really is built from the dataclass, not a handful of fields


def _tiny_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)
    )


def _tiny_batches(n: int, pulled: list[int]) -> Iterator[Batch]:
    g = torch.Generator().manual_seed(1)
    for i in range(n):
        pulled.append(i)
        yield Batch(torch.randn(4, 3, 8, 8, generator=g) * 3 + 1, torch.tensor([0, 1, 0, 1]))


def test_sgd_loop_stops_at_its_step_budget_across_epochs_and_loads_no_batch_beyond_it() -> None:
    net = _tiny_net()
    loop = SGDLoop(net, torch.optim.SGD(net.parameters(), lr=0.1), torch.device("cpu"), torch.nn.functional.cross_entropy, total=5)
    pulled: list[int] = []
    steps: list[int] = []
    loop.run(_tiny_batches(3, pulled), lambda s: steps.append(s.step))
    loop.run(_tiny_batches(3, pulled), lambda s: steps.append(s.step))
    assert steps == [1, 2, 3, 4, 5] and loop.done
    assert pulled == [0, 1, 2, 0, 1]  # the second epoch's third batch was never collated
    loop.run(_tiny_batches(3, pulled))
    assert len(pulled) == 5 and loop.step == 5


def test_sgd_loop_with_frozen_batchnorm_keeps_its_statistics_and_clipping_bounds_the_step() -> None:
    net = _tiny_net()
    bn = net[1]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loop = SGDLoop(
        net,
        torch.optim.SGD(net.parameters(), lr=1.0),
        torch.device("cpu"),
        torch.nn.functional.cross_entropy,
        clip_norm=0.01,
        frozen_batchnorm=True,
        channels_last=True,
    )
    loop.run(_tiny_batches(1, []))
    assert torch.equal(bn.running_mean, before["1.running_mean"]) and torch.equal(bn.running_var, before["1.running_var"])
    assert int(bn.num_batches_tracked) == 0 and not bn.training and net.training
    moved = torch.sqrt(sum(((p.detach() - before[k]) ** 2).sum() for k, p in net.named_parameters()))
    assert 0 < float(moved) <= 0.01 + 1e-6  # plain SGD at lr 1: the step is the clipped gradient


def test_transition_stacks_start_in_another_class_and_end_in_the_labelled_clip(ucf_tree, tmp_path) -> None:
    """`--transitions`: a stack is another class's motion (then, half the time, the flow across the cut), then this clip's
    first fields; its label is this clip's class."""
    from realtime.stream.flow import FlowEstimator
    from realtime.train.data import StreamSamples
    from realtime.train.trainer import _config_for

    ds = open_dataset(ucf_tree)
    cfg = _config_for(TrainOptions(**{**SMALL, "clip_length": 6}, data=str(ucf_tree), out=str(tmp_path)), ds.classes)
    cache = FlowCache(tmp_path / "c", cfg.flow)
    cache.build(ds.train, ds.root, workers=1, progress=False)
    n = cfg.clip_length
    samples = StreamSamples(ds.train, ds.root, cache, cfg, "temporal", train=True, seed=0, flips=False, transitions=1.0)
    flows = {c.key(ds.root): cache.load(c.key(ds.root), "flow") for c in ds.train}
    est = FlowEstimator(cfg.flow)

    def window_of(block: np.ndarray, clip) -> int | None:  # where `block` sits in another class's clip's fields
        for other in ds.train:
            f = flows[other.key(ds.root)]
            if other.label != clip.label:
                for s in range(len(f) - len(block) + 1):
                    if np.array_equal(f[s : s + len(block)], block):
                        return s + len(block)
        return None

    kinds = []
    for i in range(24):
        clip = ds.train[i % len(ds.train)]
        codes = flows[clip.key(ds.root)]
        out = samples._transition(clip, codes, np.random.default_rng(i))
        assert out.shape == (n, *codes.shape[1:])
        fresh = max(k for k in range(1, n) if np.array_equal(out[n - k :], codes[:k]))
        assert fresh >= n // 3
        head = out[: n - fresh]
        if len(head) and window_of(head, clip) is not None:
            kinds.append("joined")
        else:
            assert len(head) == 1 or window_of(head[:-1], clip) is not None, "the stack must begin in another class's clip"
            cut_from_any = [
                cfg.flow.quantise(est.between(est.prepare(cache.load(o.key(ds.root), "rgb")[t]), est.prepare(cache.load(clip.key(ds.root), "rgb")[0]))[None])[0]
                for o in ds.train
                if o.label != clip.label
                for t in range(len(flows[o.key(ds.root)]) + 1)
            ]
            assert any(np.array_equal(head[-1], c) for c in cut_from_any), "the field before this clip's is the flow across the cut"
            kinds.append("cut")
    assert set(kinds) == {"joined", "cut"}
    assert [samples[i][1] for i in range(len(samples))] == [c.label for c in samples.clips]
    off = StreamSamples(ds.train, ds.root, cache, cfg, "temporal", train=True, seed=0, flips=False, transitions=0.0)
    assert not any(np.array_equal(off[i][0], samples[i][0]) for i in range(len(samples)))


def test_transitions_outside_0_to_1_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(UserError, match="--transitions must be in 0..1"):
        train(TrainOptions(**SMALL, data=str(tmp_path), out=str(tmp_path / "o"), transitions=1.5))
