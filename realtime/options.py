"""The names every part shares: engines, fusion modes, precisions.

Imports nothing (no torch), so `twostream --help` stays fast; `engines`, `checkpoint`, the command
line and the GUI take the names from here, so a new engine or fusion mode is added in one place.
"""

from __future__ import annotations

ENGINES = ("auto", "torch", "torchscript", "compile", "tensorrt", "onnxruntime", "onnxruntime-int8")
FUSION_MODES = ("avg", "weighted", "svm")
PRECISIONS = ("auto", "fp32", "fp16")
