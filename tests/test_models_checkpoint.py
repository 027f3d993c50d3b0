"""Architectures, and checkpoints that round-trip exactly and refuse what does not fit."""

from __future__ import annotations

import json

import pytest
import torch

from realtime.nets.checkpoint import ModelConfig, TwoStreamModel, load_checkpoint
from realtime.errors import CheckpointError, UserError
from realtime.stream.flow import FlowSettings
from realtime.nets.models import create_model, first_conv


@pytest.mark.parametrize("name,size", [("mobilenet_v2_050", 112), ("mobilenet_v2", 112), ("resnet18", 112), ("cnn_m_2048", 224)])
@pytest.mark.parametrize("chans", [3, 20])
def test_every_architecture_takes_any_channel_count(name: str, size: int, chans: int) -> None:
    net = create_model(name, num_classes=7, in_chans=chans).eval()
    with torch.no_grad():
        out = net(torch.randn(2, chans, size, size))
    assert out.shape == (2, 7) and first_conv(net).in_channels == chans


def test_cnn_m_2048_at_224_px_has_the_papers_6x6_map_before_fc6() -> None:
    """Caffe pools round up: 224 px -> 109 -> 54 -> 26 -> 13 -> 6 (flooring gave 5x5, stretched to 6x6)."""
    net = create_model("cnn_m_2048", num_classes=3, in_chans=20).eval()
    with torch.no_grad():
        fmap = net.features(torch.zeros(1, 20, 224, 224))
    assert fmap.shape == (1, 512, 6, 6)


def test_unknown_architecture_names_the_known_ones() -> None:
    with pytest.raises(UserError, match="mobilenet_v2_050"):
        create_model("vgg99", 3)


def _run(model: TwoStreamModel, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = model.config.input_size
    xs, xt = torch.randn(1, 3, s, s, generator=g), torch.randn(1, model.config.temporal_channels, s, s, generator=g)
    with torch.no_grad():
        return model.spatial(xs), model.temporal(xt)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, tiny_model) -> None:
    tiny_model.config.metrics = {"fusion_avg": {"top1": 0.5}}
    tiny_model.save(tmp_path / "m")
    loaded = load_checkpoint(tmp_path / "m")
    for a, b in zip(_run(tiny_model), _run(loaded)):
        assert torch.equal(a, b)
    assert loaded.config.labels == tiny_model.config.labels
    assert loaded.config.flow == tiny_model.config.flow and loaded.config.clip_length == 3
    assert loaded.config.metrics == {"fusion_avg": {"top1": 0.5}}


def test_half_precision_checkpoint_is_smaller_and_close(tmp_path, tiny_model) -> None:
    full, half = tiny_model.save(tmp_path / "f"), tiny_model.save(tmp_path / "h", half=True)
    assert (half / "weights.safetensors").stat().st_size < 0.6 * (full / "weights.safetensors").stat().st_size
    for a, b in zip(_run(tiny_model), _run(load_checkpoint(half))):
        assert torch.allclose(a, b, atol=1e-2)


def test_checkpoint_trained_on_other_flow_is_refused(tmp_path, tiny_model) -> None:
    tiny_model.save(tmp_path / "m")
    other = FlowSettings(algorithm="farneback", width=72, height=72)
    with pytest.raises(CheckpointError, match="trained with flow dis/ultrafast.*farneback"):
        load_checkpoint(tmp_path / "m", flow=other)


def test_checkpoint_with_other_labels_is_refused(tmp_path, tiny_model) -> None:
    tiny_model.save(tmp_path / "m")
    with pytest.raises(CheckpointError, match="labels do not fit"):
        load_checkpoint(tmp_path / "m", labels=["x", "y"])


def _edit_config(path, **changes) -> None:
    cfg = json.loads((path / "model.json").read_text())
    cfg.update(changes)
    (path / "model.json").write_text(json.dumps(cfg))


def test_weights_with_wrong_channel_count_are_refused(tmp_path, tiny_model) -> None:
    tiny_model.save(tmp_path / "m")
    _edit_config(tmp_path / "m", clip_length=5)  # config now wants 10 flow channels, weights take 6
    with pytest.raises(CheckpointError, match="temporal net takes 6 input channels but the config needs 10"):
        load_checkpoint(tmp_path / "m")


def test_labels_that_do_not_match_the_head_are_refused(tmp_path, tiny_model) -> None:
    tiny_model.save(tmp_path / "m")
    _edit_config(tmp_path / "m", labels=["a", "b", "c"])
    with pytest.raises(CheckpointError, match="head has 4 outputs for 3 labels"):
        load_checkpoint(tmp_path / "m")


def test_corrupt_or_missing_files_are_refused(tmp_path, tiny_model) -> None:
    with pytest.raises(CheckpointError, match="no such model directory"):
        load_checkpoint(tmp_path / "absent")
    d = tiny_model.save(tmp_path / "m")
    weights = (d / "weights.safetensors").read_bytes()
    (d / "weights.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(d)
    (d / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="model.json is corrupt"):
        load_checkpoint(d)
    (d / "model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a twostream checkpoint"):
        load_checkpoint(d)


def test_svm_fusion_parameters_must_fit_the_labels(tmp_path, tiny_model) -> None:
    d = tiny_model.save(tmp_path / "m")
    _edit_config(d, fusion={"mode": "svm", "svm_weight": [[0.0] * 8] * 3, "svm_bias": [0.0] * 4})
    with pytest.raises(CheckpointError, match="SVM fusion parameters do not fit 4 labels"):
        load_checkpoint(d)


def test_config_validation_rejects_an_input_larger_than_the_working_size() -> None:
    cfg = ModelConfig(labels=["a"], input_size=200)
    with pytest.raises(CheckpointError, match="does not fit"):
        cfg.validate("here")
