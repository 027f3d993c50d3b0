"""Every CPU engine gives eager PyTorch's scores: the speed-ups in benchmarks/engines.py change nothing else.

Bound: the max abs difference of fp32 softmax scores from eager's is at most 1e-4 (measured
at most ~7e-6 on the benchmark's nets; fused or reordered float arithmetic, not different maths).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch import nn

from conftest import informative
from realtime.nets.checkpoint import ModelConfig, TwoStreamModel
from realtime.nets.engines import create_engine
from realtime.stream.flow import FlowSettings

AGREEMENT_BOUND = 1e-4


class SmallestNet(nn.Module):
    """Conv + BatchNorm + ReLU + pool + linear: every kind of layer the engines rewrite, compiled in seconds."""

    def __init__(self, in_chans: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_chans, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def smallest_model() -> TwoStreamModel:
    cfg = ModelConfig(labels=["a", "b", "c", "d"], input_size=16, clip_length=2, flow=FlowSettings(width=16, height=16), trained=False)
    torch.manual_seed(0)
    return informative(TwoStreamModel(cfg, SmallestNet(3, 4).eval(), SmallestNet(4, 4).eval()))


def scores(model: TwoStreamModel, engine: str, batch: int) -> tuple[np.ndarray, np.ndarray]:
    s, n = model.config.input_size, model.config.temporal_channels
    gen = torch.Generator().manual_seed(batch)
    xs, xt = torch.randn(batch, 3, s, s, generator=gen), torch.randn(batch, n, s, s, generator=gen)
    eng = create_engine(model, engine, "cpu")
    try:
        return eng(xs, xt)
    finally:
        eng.close()


def assert_agrees(model: TwoStreamModel, engine: str, batch: int) -> None:
    eager_s, eager_t = scores(model, "torch", batch)
    got_s, got_t = scores(model, engine, batch)
    assert max(eager_s.max(), eager_t.max()) > 0.4, "scores near uniform: the comparison would prove nothing"
    assert got_s.shape == eager_s.shape and got_t.shape == eager_t.shape
    np.testing.assert_allclose(got_s, eager_s, atol=AGREEMENT_BOUND, rtol=0, err_msg=f"{engine} spatial scores differ from eager")
    np.testing.assert_allclose(got_t, eager_t, atol=AGREEMENT_BOUND, rtol=0, err_msg=f"{engine} temporal scores differ from eager")


@pytest.mark.parametrize("batch", [1, 3])
def test_torchscript_engine_agrees_with_eager(tiny_model: TwoStreamModel, batch: int) -> None:
    assert_agrees(informative(tiny_model), "torchscript", batch)


def test_compile_engine_agrees_with_eager() -> None:
    # On a CPU, inductor writes C++ and builds it with the system compiler; without one it cannot work at all.
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("torch.compile on a CPU needs a C++ compiler (g++), and none is on PATH")
    assert_agrees(smallest_model(), "compile", 2)
