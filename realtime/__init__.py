"""twostream: live two-stream action recognition (Simonyan & Zisserman, 2014) on any video source.

The public API: everything a program (and the desktop app in gui/, which uses nothing else) needs,
by name from here, e.g. `from realtime import Pipeline, create_engine, resolve_model`. Names load on
first use, so `import realtime` (and `twostream --help`) stays light.

Inside, one package per part of the data flow:
    realtime/io/      where frames come from and go to: sources, the synthetic world, recording, annotated video
    realtime/nets/    the nets and what runs them: architectures, checkpoints, the model store, engines, export, int8
    realtime/stream/  the live stream: flow, net inputs, hand-overs, fusion, the pipeline, multi-stream serving
    realtime/train/   datasets, the flow cache, the trainer, evaluation, teach mode
    realtime/cli/     the command line: one module per command (run, serve, train, ...) and the option blocks they share
    realtime/info.py, options.py, errors.py, logs.py: what every part shares (the environment report, names, errors, redaction)
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# FFmpeg and OpenCV print their own diagnostics, which can quote a stream URL with its
# credentials; we report every failure ourselves, redacted, so keep theirs quiet.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

__version__ = "0.1.0"

API: dict[str, str] = {
    "Pipeline": "realtime.stream.pipeline",
    "Prediction": "realtime.stream.prediction",
    "PipelineStats": "realtime.stream.stages",
    "PipelineError": "realtime.stream.core",
    "NO_KNOWN_ACTION": "realtime.stream.prediction",
    "MultiPipeline": "realtime.stream.multistream",
    "StreamPrediction": "realtime.stream.multistream",
    "FlowSettings": "realtime.stream.flow",
    "flow_to_colour": "realtime.stream.flow",
    "Fusion": "realtime.stream.fusion",
    "Smoother": "realtime.stream.fusion",
    "FrameSource": "realtime.io.sources",
    "SourceSpec": "realtime.io.sources",
    "open_source": "realtime.io.sources",
    "Pacer": "realtime.io.sources",
    "parse_source": "realtime.io.sources",
    "probe_cameras": "realtime.io.sources",
    "redact": "realtime.io.sources",
    "AnnotatedWriter": "realtime.io.annotate",
    "annotate": "realtime.io.annotate",
    "ClipLibrary": "realtime.io.record",
    "Recorder": "realtime.io.record",
    "RecorderState": "realtime.io.record",
    "check_label": "realtime.io.record",
    "TwoStreamModel": "realtime.nets.checkpoint",
    "ModelConfig": "realtime.nets.checkpoint",
    "load_checkpoint": "realtime.nets.checkpoint",
    "create_model": "realtime.nets.models",
    "Engine": "realtime.nets.engines",
    "create_engine": "realtime.nets.engines",
    "device_choices": "realtime.nets.engines",
    "resolve_model": "realtime.nets.models_store",
    "default_model_path": "realtime.nets.models_store",
    "shipped_models": "realtime.nets.models_store",
    "trained_dir": "realtime.nets.models_store",
    "user_models_dir": "realtime.nets.models_store",
    "TrainEvent": "realtime.train.events",
    "check_clips": "realtime.train.teach",
    "MIN_CLIPS": "realtime.train.options",
    "RECOMMENDED_CLIPS": "realtime.train.options",
    "ENGINES": "realtime.options",
    "FUSION_MODES": "realtime.options",
    "add_model_options": "realtime.cli.options",
    "UserError": "realtime.errors",
    "SourceError": "realtime.errors",
    "CheckpointError": "realtime.errors",
    "scrub": "realtime.logs",
    "main": "realtime.cli",
}
__all__ = sorted(API)

if TYPE_CHECKING:  # the same names, seen by type checkers (tests/test_layout.py keeps the two lists equal)
    from realtime.cli import main
    from realtime.errors import CheckpointError, SourceError, UserError
    from realtime.io.annotate import AnnotatedWriter, annotate
    from realtime.io.record import ClipLibrary, Recorder, RecorderState, check_label
    from realtime.io.sources import FrameSource, Pacer, SourceSpec, open_source, parse_source, probe_cameras, redact
    from realtime.logs import scrub
    from realtime.nets.checkpoint import ModelConfig, TwoStreamModel, load_checkpoint
    from realtime.nets.engines import Engine, create_engine, device_choices
    from realtime.nets.models import create_model
    from realtime.nets.models_store import default_model_path, resolve_model, shipped_models, trained_dir, user_models_dir
    from realtime.cli.options import add_model_options
    from realtime.options import ENGINES, FUSION_MODES
    from realtime.stream.flow import FlowSettings, flow_to_colour
    from realtime.stream.fusion import Fusion, Smoother
    from realtime.stream.multistream import MultiPipeline, StreamPrediction
    from realtime.stream.core import PipelineError
    from realtime.stream.pipeline import Pipeline
    from realtime.stream.prediction import NO_KNOWN_ACTION, Prediction
    from realtime.stream.stages import PipelineStats
    from realtime.train.events import TrainEvent
    from realtime.train.options import MIN_CLIPS, RECOMMENDED_CLIPS
    from realtime.train.teach import check_clips


def __getattr__(name: str) -> Any:
    module = API.get(name)
    if module is None:
        raise AttributeError(f"module 'realtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))
