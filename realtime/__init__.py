"""twostream: live two-stream action recognition (Simonyan & Zisserman, 2014) on any video source."""
from __future__ import annotations

import os

# FFmpeg and OpenCV print their own diagnostics, which can quote a stream URL with its
# credentials; we report every failure ourselves, redacted, so keep theirs quiet.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

__version__ = "0.1.0"

from .checkpoint import ModelConfig, TwoStreamModel, load_checkpoint  # noqa: E402
from .errors import CheckpointError, SourceError, UserError  # noqa: E402
from .flow import FlowSettings  # noqa: E402
from .models import create_model  # noqa: E402
from .pipeline import Pipeline, Prediction  # noqa: E402
from .multistream import MultiPipeline, StreamPrediction  # noqa: E402
from .sources import open_source, parse_source, redact  # noqa: E402

__all__ = ["Pipeline", "Prediction", "MultiPipeline", "StreamPrediction", "TwoStreamModel", "ModelConfig", "FlowSettings",
           "load_checkpoint", "create_model", "open_source", "parse_source", "redact", "UserError", "SourceError", "CheckpointError"]
