"""Where models live: the shipped default in `trained/`, and the fallback when none is shipped."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .checkpoint import CONFIG_FILE, ModelConfig, TwoStreamModel, load_checkpoint
from .flow import FlowSettings
from .synthetic import CLASSES

log = logging.getLogger("twostream")
DEFAULT_NAME = "default"


def trained_dir() -> Path:
    """The `trained/` directory shipped with the package (a package itself, so wheels carry it)."""
    try:
        import trained

        return Path(trained.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parent.parent / "trained"


def shipped_models() -> list[Path]:
    """Checkpoint directories in `trained/`."""
    root = trained_dir()
    return sorted(p.parent for p in root.glob(f"*/{CONFIG_FILE}")) if root.is_dir() else []


def default_model_path() -> Path | None:
    """$TWOSTREAM_MODEL, else trained/default when it exists."""
    env = os.environ.get("TWOSTREAM_MODEL")
    if env:
        return Path(env)
    path = trained_dir() / DEFAULT_NAME
    return path if (path / CONFIG_FILE).is_file() else None


def untrained_model(flow: FlowSettings | None = None) -> TwoStreamModel:
    """Random nets over the synthetic classes: lets the pipeline run before any model is trained."""
    config = ModelConfig(labels=list(CLASSES), flow=flow or FlowSettings(), trained=False, provenance={"name": "UNTRAINED (random weights)"})
    return TwoStreamModel.create(config, seed=0)


def default_model(flow: FlowSettings | None = None) -> TwoStreamModel:
    path = default_model_path()
    if path is None:
        return untrained_model(flow)
    model = load_checkpoint(path, flow=flow)
    model.config.provenance.setdefault("name", path.name)
    return model
