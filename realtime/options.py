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
