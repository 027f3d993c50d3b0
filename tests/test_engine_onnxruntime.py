"""`--engine onnxruntime`: eager PyTorch's scores, an ONNX export cached on disk, and `auto` on a CPU.

Bound: the max abs difference of fp32 softmax scores from eager's is at most 1e-4, the bound the
engine itself checks at start (OnnxRuntimeEngine.TOLERANCE) and tests/test_engine_agreement.py
asserts for the other engines.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import informative
from realtime.options import ENGINES as OPTION_ENGINES
from realtime.nets.checkpoint import TwoStreamModel
from realtime.cli import build_parser
from realtime.nets.engines import ENGINES, ORT_AUTO_MAX_BATCH, OnnxRuntimeEngine, auto_candidates, create_engine
from realtime.errors import EngineUnavailable, UserError

pytest.importorskip("onnx", reason="the onnxruntime engine exports through the 'onnx' package")
pytest.importorskip("onnxruntime", reason="the onnxruntime engine needs onnxruntime")

AGREEMENT_BOUND = 1e-4


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty engine cache for this test: every start below is a real export or a real load."""
    monkeypatch.setenv("TWOSTREAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnxruntime"


def inputs(model: TwoStreamModel, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    s, n = model.config.input_size, model.config.temporal_channels
    gen = torch.Generator().manual_seed(100 + batch)
    return torch.randn(batch, 3, s, s, generator=gen), torch.randn(batch, n, s, s, generator=gen)


def test_scores_agree_with_eager_at_every_batch_size(tiny_model: TwoStreamModel, cache: Path) -> None:
    model = informative(tiny_model)
    eager = create_engine(model, "torch", "cpu")
    ort = create_engine(model, "onnxruntime", "cpu", max_batch=4)
    try:
        assert ort.name == "onnxruntime" and ort.max_abs_diff <= AGREEMENT_BOUND  # the check it ran at start
        for batch in (1, 3, 4, 7):  # dynamic batch axis: beyond max_batch too
            xs, xt = inputs(model, batch)
            (es, et), (gs, gt) = eager(xs, xt), ort(xs, xt)
            assert max(es.max(), et.max()) > 0.4, "scores near uniform: the comparison would prove nothing"
            assert gs.shape == es.shape == (batch, 4) and gt.shape == et.shape
            np.testing.assert_allclose(gs, es, atol=AGREEMENT_BOUND, rtol=0, err_msg="onnxruntime spatial scores differ from eager")
            np.testing.assert_allclose(gt, et, atol=AGREEMENT_BOUND, rtol=0, err_msg="onnxruntime temporal scores differ from eager")
        s, t = ort(xs[:1], None)  # spatial only, as before L flow fields exist
        assert t is None and np.abs(s - eager(xs[:1], None)[0]).max() <= AGREEMENT_BOUND
    finally:
        eager.close()
        ort.close()


def test_second_start_loads_the_cached_export_and_a_corrupt_file_is_rebuilt(tiny_model: TwoStreamModel, cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = create_engine(tiny_model, "onnxruntime", "cpu")
    first.close()
    files = sorted(cache.glob("*.onnx"))
    assert [f.name.split("-")[0] for f in files] == ["spatial", "temporal"]
    assert first.export_s > 0 and first.load_s == 0
    assert list(cache.glob("*.tmp*")) == [] and len(list(cache.iterdir())) == 2  # no temporary file left
    mtimes = [f.stat().st_mtime_ns for f in files]

    second = create_engine(tiny_model, "onnxruntime", "cpu")
    second.close()
    assert second.export_s == 0 and second.load_s > 0
    assert [f.stat().st_mtime_ns for f in files] == mtimes  # loaded, not written again

    files[0].write_bytes(b"not an onnx file")  # a truncated write, a disk error
    with caplog.at_level(logging.WARNING, logger="twostream"):
        third = create_engine(tiny_model, "onnxruntime", "cpu")
    third.close()
    assert any("unusable" in r.getMessage() and files[0].name in r.getMessage() for r in caplog.records)
    assert third.export_s > 0 and files[0].stat().st_size > 1000  # exported again, in place
    fourth = create_engine(tiny_model, "onnxruntime", "cpu")
    fourth.close()
    assert fourth.export_s == 0  # and the rebuilt file loads

    other = create_engine(informative(tiny_model), "onnxruntime", "cpu")  # other weights: other files
    other.close()
    assert other.export_s > 0 and len(list(cache.glob("*.onnx"))) == 4


def test_scores_off_the_bound_refuse_the_engine_in_one_line(tiny_model: TwoStreamModel, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create_engine(tiny_model, "onnxruntime", "cpu").close()  # a good cached export first: it is checked, found off, rebuilt, refused
    monkeypatch.setattr(OnnxRuntimeEngine, "TOLERANCE", -1.0)  # every difference is now over the bound
    with pytest.raises(EngineUnavailable) as err:
        create_engine(tiny_model, "onnxruntime", "cpu")
    msg = str(err.value)
    assert "\n" not in msg and "scores differ from eager torch's" in msg and "spatial" in msg

    auto = create_engine(tiny_model, "auto", "cpu")  # auto falls back, and says why
    try:
        assert auto.name == "torchscript"
        assert any(r.startswith("onnxruntime: ") and "differ from eager" in r for r in auto.auto_reasons)
    finally:
        auto.close()


def test_fp16_on_a_cpu_is_refused(tiny_model: TwoStreamModel, cache: Path) -> None:
    with pytest.raises(UserError, match="fp16 inference needs a CUDA device"):
        create_engine(tiny_model, "onnxruntime", "cpu", half=True)


def test_auto_picks_onnxruntime_on_a_cpu_and_says_why(tiny_model: TwoStreamModel, cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="twostream"):
        eng = create_engine(tiny_model, "auto", "cpu")
    try:
        assert eng.name == "onnxruntime"
        assert "(fp32, " in eng.describe() and "thread(s) per net" in eng.describe()
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("engine auto -> "))
        assert line.startswith("engine auto -> onnxruntime on cpu") and "torchscript, torch: slower than onnxruntime" in line
        assert not any(r.startswith(("onnxruntime:", "onnxruntime,")) for r in eng.auto_reasons)  # the chosen one is no reason
        assert any(r.startswith("onnxruntime-int8: this model has no int8 nets") for r in eng.auto_reasons)  # why not int8: said
    finally:
        eng.close()


def test_auto_falls_back_to_torchscript_without_onnxruntime(tiny_model: TwoStreamModel, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    order, reasons = auto_candidates(torch.device("cpu"))
    assert order == ["torchscript", "torch"] and any(r.startswith("onnxruntime: ") and "pip install" in r for r in reasons)
    assert auto_candidates(torch.device("cpu"), 3)[0] == ["torch", "torchscript"]
    with pytest.raises(EngineUnavailable, match="needs the onnx and onnxruntime packages"):
        create_engine(tiny_model, "onnxruntime", "cpu")
    eng = create_engine(tiny_model, "auto", "cpu")
    try:
        assert eng.name == "torchscript" and any(r.startswith("onnxruntime: ") for r in eng.auto_reasons)
    finally:
        eng.close()
    monkeypatch.setitem(sys.modules, "onnxruntime", onnxruntime)
    monkeypatch.setitem(sys.modules, "onnx", None)  # onnxruntime without onnx: nothing to export with
    order, reasons = auto_candidates(torch.device("cpu"))
    assert order == ["torchscript", "torch"] and any("No module named 'onnx'" in r for r in reasons)


def test_auto_order_for_several_streams_follows_the_measured_batches() -> None:
    cpu = torch.device("cpu")
    assert auto_candidates(cpu, 1)[0] == ["onnxruntime", "torchscript", "torch"]
    assert auto_candidates(cpu, ORT_AUTO_MAX_BATCH)[0] == ["onnxruntime", "torch", "torchscript"]
    order, reasons = auto_candidates(cpu, ORT_AUTO_MAX_BATCH + 1)
    assert order == ["torch", "onnxruntime", "torchscript"]
    assert any(r.startswith("onnxruntime: eager torch runs batches") for r in reasons)


def test_a_net_the_exporter_cannot_express_is_refused_and_auto_falls_back(tiny_model: TwoStreamModel, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import realtime.nets.export as export

    def refuse(*_a: object, **_k: object) -> None:
        raise UserError("spatial.onnx: torch.onnx (torchscript) cannot export this net: unsupported operator")

    monkeypatch.setattr(export, "_export_one", refuse)
    with pytest.raises(EngineUnavailable, match="^engine 'onnxruntime': .*cannot export this net"):
        create_engine(tiny_model, "onnxruntime", "cpu")
    assert list(cache.glob("*.onnx")) == []
    eng = create_engine(tiny_model, "auto", "cpu", max_batch=2)
    try:
        assert eng.name == "torch" and any("cannot export" in r for r in eng.auto_reasons)
    finally:
        eng.close()


def test_every_engine_list_names_it() -> None:
    assert ENGINES is OPTION_ENGINES and "onnxruntime" in ENGINES and "onnxruntime-int8" in ENGINES  # one list, shared by every command
    args = build_parser().parse_args(["bench", "--engine", "onnxruntime"])
    assert args.engine == "onnxruntime"
    args = build_parser().parse_args(["run", "synthetic:demo", "--engine", "onnxruntime"])
    assert args.engine == "onnxruntime"
    args = build_parser().parse_args(["serve", "synthetic:demo", "synthetic:wave", "--engine", "onnxruntime"])
    assert args.engine == "onnxruntime"


def test_a_pipeline_and_a_server_run_on_it(tiny_model: TwoStreamModel, cache: Path) -> None:
    from realtime.stream.multistream import MultiPipeline
    from realtime.stream.pipeline import Pipeline

    with Pipeline("synthetic:wave?fps=0&frames=6&size=96x72", tiny_model, engine="onnxruntime", device="cpu") as p:
        preds = list(p)
    assert len(preds) == 6 and preds[-1].ready
    with MultiPipeline(
        ["synthetic:wave?fps=0&frames=5&size=96x72", "synthetic:push?fps=0&frames=5&size=96x72"], tiny_model, engine="onnxruntime", device="cpu"
    ) as mp:
        preds = list(mp)
    assert mp.engine.name == "onnxruntime" and sorted(q.stream for q in preds) == [0] * 5 + [1] * 5
