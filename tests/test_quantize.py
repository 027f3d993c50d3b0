"""int8 nets: `twostream quantize` writes them into the checkpoint, the onnxruntime-int8 engine runs them, auto
takes them only when they kept the accuracy, and a model retrained since never runs stale ones."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import informative
from realtime.nets.checkpoint import ModelConfig, TwoStreamModel, load_checkpoint
from realtime.nets.engines import create_engine
from realtime.errors import EngineUnavailable
from realtime.stream.flow import FlowSettings
from realtime.nets.models import classifier_layer
from realtime.nets.quantize import INT8_DIR, META_FILE, quantize
from realtime.train.procedural import make_dataset

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["swipe_left", "swipe_right", "circle_cw"]


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> tuple[Path, Path, dict]:
    tmp = tmp_path_factory.mktemp("int8")
    data = make_dataset(tmp / "data", train_clips=3, test_clips=2, frames=10, size=(96, 72), classes=CLASSES, workers=1, progress=False)
    cfg = ModelConfig(
        labels=CLASSES,
        spatial_arch="mobilenet_v2_035",
        temporal_arch="mobilenet_v2_035",
        input_size=64,
        clip_length=3,
        flow=FlowSettings(width=72, height=72),
        trained=True,
        provenance={"name": "int8-test"},
    )
    model = informative(TwoStreamModel.create(cfg, seed=0))
    dim = classifier_layer(model.spatial).in_features
    model.prototypes = torch.nn.functional.normalize(torch.randn(3, dim), dim=1)  # a familiarity column too, as the shipped model has
    model.save(tmp / "model")
    meta = quantize(tmp / "model", data, tmp / "cache", clips=6, samples=3, variant="int8")
    return tmp / "model", data, meta


def test_quantize_writes_int8_nets_with_their_held_out_figures_and_the_engine_runs_them(quantized) -> None:
    model_dir, data, meta = quantized
    assert (model_dir / INT8_DIR / "spatial.onnx").stat().st_size < (model_dir / "weights.safetensors").stat().st_size
    written = json.loads((model_dir / INT8_DIR / META_FILE).read_text())
    assert written == meta and meta["calibration"]["clips"] == 6 and meta["held_out"]["clips"] == 6
    assert set(meta["held_out"]["deployed_top1"]) == {"fp32", "int8", "int8_temporal"}
    assert meta["variant"] == "int8" and meta["nets"] == ["spatial", "temporal"]
    model = load_checkpoint(model_dir)
    assert model.int8 is not None and model.int8["meta"]["weights"] == meta["weights"]
    fp32, int8 = create_engine(model, "onnxruntime", "cpu", max_batch=4), create_engine(model, "onnxruntime-int8", "cpu", max_batch=4)
    try:
        # real inputs, built as the pipeline builds them (int8 ranges are calibrated on such inputs, not on noise)
        from realtime.train.cache import FlowCache
        from realtime.train.data import stream_input_batches
        from realtime.train.datasets import open_dataset

        ds = open_dataset(data)
        cache = FlowCache(model_dir.parent / "cache", model.config.flow)
        key = ds.test[0].key(ds.root)
        xs = torch.from_numpy(stream_input_batches(key, cache, model.config, "spatial", 4, False))
        xt = torch.from_numpy(stream_input_batches(key, cache, model.config, "temporal", 4, False))
        a, b = fp32(xs, xt), int8(xs, xt)
        for got, want in ((b[0], a[0]), (b[1], a[1])):
            assert got.shape == want.shape and np.allclose(got.sum(1), 1, atol=1e-4)
            assert not np.allclose(got, want, atol=1e-4)  # not the fp32 graphs
        assert b.familiarity.shape == (4,) and float(np.abs(b.familiarity - a.familiarity).max()) < 0.05  # the fp32 similarity head
        # exactly the graphs quantize wrote and measured (their held-out figures are what auto reads)
        import onnx
        import onnxruntime as ort

        graph = onnx.load(str(model_dir / INT8_DIR / "temporal.onnx"))
        assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.graph.node}
        sess = ort.InferenceSession(str(model_dir / INT8_DIR / "temporal.onnx"), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(sess.run(None, {"flow": xt.numpy()})[0], b[1], atol=1e-6)
        assert "held-out top-1" in int8.describe() and int8.int8_nets == ["spatial", "temporal"] and int8.precision == "int8 spatial and temporal"
    finally:
        fp32.close(), int8.close()


def test_auto_takes_int8_only_when_it_kept_the_accuracy(quantized) -> None:
    model_dir, _, _ = quantized
    model = load_checkpoint(model_dir)
    held = model.int8["meta"]["held_out"]
    assert set(held["frames_named_right"]) == set(held["frames_no_known_action"]) == {"fp32", "int8", "int8_temporal"}
    model.int8["meta"]["variant"] = "int8"
    held["deployed_top1"], held["frames_named_right"] = {"fp32": 0.9, "int8": 0.895}, {"fp32": 0.8, "int8": 0.795}
    eng = create_engine(model, "auto", "cpu")
    assert eng.name == "onnxruntime-int8"
    eng.close()
    for key in ("deployed_top1", "frames_named_right"):  # either figure falling too far keeps auto on fp32
        saved = held[key]
        held[key] = {"fp32": 0.9, "int8": 0.85}
        eng = create_engine(model, "auto", "cpu")
        assert eng.name == "onnxruntime" and any("onnxruntime-int8" in r and "below" in r for r in eng.auto_reasons)
        eng.close()
        held[key] = saved


def test_a_model_retrained_since_never_runs_stale_int8_nets(quantized, tmp_path) -> None:
    model_dir, _, _ = quantized
    changed = tmp_path / "changed"
    model = load_checkpoint(model_dir)
    (changed / INT8_DIR).mkdir(parents=True)
    for f in (model_dir / INT8_DIR).iterdir():
        (changed / INT8_DIR / f.name).write_bytes(f.read_bytes())
    retrained = copy.deepcopy(model)
    with torch.no_grad():
        next(retrained.spatial.parameters()).add_(0.01)
    retrained.save(changed)
    again = load_checkpoint(changed)
    assert again.int8 is None
    with pytest.raises(EngineUnavailable, match="no int8 nets made from its weights.*twostream quantize"):
        create_engine(again, "onnxruntime-int8", "cpu")


def test_quantize_cli_reports_the_figures_and_refuses_bad_input_in_one_line(quantized, tmp_path) -> None:
    model_dir, data, _ = quantized
    r = subprocess.run(
        [sys.executable, "-m", "realtime.cli", "quantize", "--model", str(model_dir), "--data", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2 and "no such dataset directory" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime.cli",
            "run",
            "synthetic:demo?fps=0&size=96x72",
            "--model",
            str(model_dir),
            "--engine",
            "onnxruntime-int8",
            "--max-frames",
            "6",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stderr.strip().splitlines()[-1])["summary"]["engine"].startswith("onnxruntime-int8 on cpu (int8")


def test_the_temporal_net_alone_in_int8_leaves_the_spatial_net_and_its_familiarity_exactly_fp32(quantized, tmp_path) -> None:
    model_dir, data, _ = quantized
    own = tmp_path / "model"
    load_checkpoint(model_dir).save(own)
    meta = quantize(own, data, model_dir.parent / "cache", clips=6, samples=3, variant="int8_temporal")
    assert meta["nets"] == ["temporal"] and not (own / INT8_DIR / "spatial.onnx").exists()
    model = load_checkpoint(own)
    fp32, int8 = create_engine(model, "onnxruntime", "cpu"), create_engine(model, "onnxruntime-int8", "cpu")
    try:
        gen = torch.Generator().manual_seed(2)
        xs, xt = torch.rand(2, 3, 64, 64, generator=gen), torch.randn(2, 6, 64, 64, generator=gen)
        a, b = fp32(xs, xt), int8(xs, xt)
        np.testing.assert_allclose(b[0], a[0], atol=1e-6)
        np.testing.assert_allclose(b.familiarity, a.familiarity, atol=1e-6)
        assert int8.int8_nets == ["temporal"] and "int8 temporal" in int8.describe() and int8.precision == "int8 temporal, fp32 spatial"
    finally:
        fp32.close(), int8.close()


def test_quantize_records_its_nets_and_command_in_the_model_card_once(quantized, tmp_path) -> None:
    from realtime.train.card import INT8_HEADING, add_int8_to_card

    _, _, meta = quantized
    card = tmp_path / "MODEL_CARD.md"
    card.write_text(
        "# Model card: m\n\n## Reproduce\n\n```\ntwostream train --data d --out m\n```\n\n## Weights\n\n- x\n\n## Intended use and limits\n\nDemo.\n"
    )
    cmd = "twostream quantize --model m --data d"
    for _ in range(2):  # a rerun replaces its section
        add_int8_to_card(tmp_path, meta, cmd)
    text = card.read_text()
    assert text.count(INT8_HEADING) == 1 and text.count(cmd) == 1
    assert text.index("## Weights") < text.index(INT8_HEADING) < text.index("## Intended use and limits")
    assert f"deployed top-1 {meta['held_out']['deployed_top1'][meta['variant']]:.3f}" in text
    assert text.index("twostream train --data d --out m\n" + cmd) < text.index("```\n\n## Weights")
