"""`twostream export --onnx`: files ONNX Runtime runs with the torch nets' scores, and a sidecar that describes them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import informative as informative_nets
from realtime.nets.checkpoint import FusionConfig, ModelConfig, TwoStreamModel
from realtime.stream.flow import FlowSettings
from realtime.cli import main
from realtime.errors import UserError
from realtime.nets.export import SIDECAR, TOLERANCE, _FixedAdaptivePool2d, exportable

pytest.importorskip("onnx", reason="ONNX export needs the 'onnx' package: pip install 'twostream[export]'")
ort = pytest.importorskip("onnxruntime", reason="checking the export needs onnxruntime: pip install 'twostream[export]'")


def informative(model: TwoStreamModel) -> TwoStreamModel:
    """A copy whose scores depend on the input (conftest.informative), with an SVM fusion to export."""
    model = informative_nets(model)
    n = model.config.num_classes
    rng = np.random.default_rng(0)
    model.config = copy.deepcopy(model.config)
    model.config.fusion = FusionConfig("svm", 0.5, rng.normal(size=(n, 2 * n)).round(4).tolist(), rng.normal(size=n).round(4).tolist())
    return model


@pytest.fixture(scope="module")
def exported(tiny_model: TwoStreamModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[TwoStreamModel, Path]:
    model = informative(tiny_model)
    root = tmp_path_factory.mktemp("export")
    model.save(root / "model")
    assert main(["export", "--model", str(root / "model"), "--onnx", str(root / "onnx")]) == 0
    return model, root / "onnx"


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("role", ["spatial", "temporal"])
def test_onnx_runtime_scores_match_torch_softmax(exported: tuple[TwoStreamModel, Path], role: str, batch: int) -> None:
    model, out = exported
    net = getattr(model, role)
    chans = 3 if role == "spatial" else model.config.temporal_channels
    s = model.config.input_size
    x = torch.randn(batch, chans, s, s, generator=torch.Generator().manual_seed(42 + batch))
    with torch.no_grad():
        expected = torch.softmax(net(x), -1).numpy()
    session = ort.InferenceSession(str(out / f"{role}.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.shape[0] == "batch" and inp.shape[1:] == [chans, s, s]  # batch axis dynamic, the rest fixed
    got = session.run(None, {inp.name: x.numpy()})[0]
    assert got.shape == (batch, model.config.num_classes)
    assert expected.max() > 0.5, "test inputs give near-uniform scores: the comparison would prove nothing"
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)  # the graph ends in the softmax


def test_sidecar_describes_inputs_flow_and_fusion(exported: tuple[TwoStreamModel, Path]) -> None:
    model, out = exported
    cfg = model.config
    meta = json.loads((out / SIDECAR).read_text())
    assert meta["format"] == "twostream-onnx" and meta["model"] == "tiny-test"
    assert meta["labels"] == cfg.labels
    assert meta["rgb_mean"] == list(cfg.rgb_mean) and meta["rgb_std"] == list(cfg.rgb_std)
    assert meta["input_size"] == 64 and meta["clip_length"] == 3 and meta["temporal_channels"] == 6
    assert meta["flow"] == cfg.flow.to_dict()
    assert meta["flow_scale"] == cfg.flow_scale and meta["subtract_mean_flow"] == cfg.subtract_mean_flow
    assert meta["fusion"] == {"mode": "svm", "spatial_weight": 0.5, "svm_weight": cfg.fusion.svm_weight, "svm_bias": cfg.fusion.svm_bias}
    assert meta["nets"]["temporal"]["input"] == {"name": "flow", "shape": ["batch", 6, 64, 64], "dtype": "float32", "layout": "NCHW"}
    assert meta["nets"]["spatial"]["file"] == "spatial.onnx" and (out / "spatial.onnx").is_file() and (out / "temporal.onnx").is_file()
    checked = meta["export"]["checked"]
    assert checked["batches"] == [1, 3] and max(checked["max_abs_diff"].values()) <= TOLERANCE
    assert meta["export"]["opset"] == 17


def test_default_model_is_exported_when_model_is_omitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ModelConfig(
        labels=["x", "y"],
        spatial_arch="mobilenet_v2_035",
        temporal_arch="mobilenet_v2_035",
        input_size=32,
        clip_length=1,
        flow=FlowSettings(width=32, height=32),
        provenance={"name": "smallest-default"},
    )
    TwoStreamModel.create(cfg, seed=0).save(tmp_path / "default")
    monkeypatch.setenv("TWOSTREAM_MODEL", str(tmp_path / "default"))  # what realtime.nets.models_store.default_model loads
    assert main(["export", "--onnx", str(tmp_path / "onnx"), "--no-check"]) == 0
    meta = json.loads((tmp_path / "onnx" / SIDECAR).read_text())
    assert meta["model"] == "smallest-default" and meta["export"]["checked"] is None
    assert meta["nets"]["temporal"]["input"]["shape"] == ["batch", 2, 32, 32]


@pytest.mark.parametrize(
    "args", [["--model", "{tmp}/no-such-model"], ["--model", "{tmp}/model", "--onnx-is-a-file"], ["--model", "{tmp}/model", "--opset", "9"]]
)
def test_user_errors_print_one_line_and_exit_2(tiny_model: TwoStreamModel, tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str]) -> None:
    tiny_model.save(tmp_path / "model")
    (tmp_path / "a-file").write_text("x")
    onnx_out = str(tmp_path / "a-file") if "--onnx-is-a-file" in args else str(tmp_path / "out")
    argv = ["export"] + [a.format(tmp=tmp_path) for a in args if a != "--onnx-is-a-file"] + ["--onnx", onnx_out]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("twostream export: error: "), err
    assert not (tmp_path / "out" / SIDECAR).exists()


@pytest.mark.parametrize("in_size,out_size", [((5, 5), (6, 6)), ((7, 9), (3, 4)), ((13, 13), (6, 6))])
def test_fixed_adaptive_pool_equals_torch_adaptive_pool(in_size: tuple[int, int], out_size: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *in_size)
    np.testing.assert_array_equal(_FixedAdaptivePool2d(in_size, out_size, "max")(x).numpy(), nn.AdaptiveMaxPool2d(out_size)(x).numpy())
    np.testing.assert_allclose(_FixedAdaptivePool2d(in_size, out_size, "avg")(x).numpy(), nn.AdaptiveAvgPool2d(out_size)(x).numpy(), atol=1e-6)


def test_net_with_non_divisible_adaptive_max_pool_exports_and_matches(tmp_path: Path) -> None:
    """CNN-M-2048 pools 5x5 to 6x6 at 224 px, which neither torch exporter accepts as is."""
    from realtime.nets.export import _export_one, _Scores, verify

    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(3, 2), nn.AdaptiveMaxPool2d(6), nn.Flatten(), nn.Linear(144, 5)).eval()
    example = torch.zeros(2, 2, 13, 13)  # conv -> 11x11, pool -> 5x5
    fixed = exportable(net, example)
    assert isinstance(fixed[3], _FixedAdaptivePool2d)
    path = tmp_path / "net.onnx"
    with pytest.raises(UserError, match="net.onnx: torch.onnx .torchscript. cannot export this net"):
        _export_one(_Scores(net), example, path, "x", "torchscript", 17)  # as is: the exporter refuses, with a message
    assert list(tmp_path.iterdir()) == []  # no half-written file left
    _export_one(_Scores(fixed), example, path, "x", "torchscript", 17)
    assert verify(path, net, 2, 13) <= TOLERANCE
