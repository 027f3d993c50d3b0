"""Where models live, and the one resolver of a `--model` argument.

- the shipped models in `trained/` (`default` among them), or $TWOSTREAM_MODEL for the default;
- taught models in the user models folder (`user_models_dir()`; `train --from` writes there);
- any checkpoint directory.

`resolve_model(arg)` is what every command's `--model` (and `train --from`) goes through, so
`default`, a taught model's name and a path mean the same in run, gui, serve, evaluate, bench and
export. With no argument it is the default model, or random nets when none is shipped.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .checkpoint import CONFIG_FILE, ModelConfig, TwoStreamModel, load_checkpoint
from ..errors import UserError
from ..stream.flow import FlowSettings

log = logging.getLogger("twostream")
DEFAULT_NAME = "default"


def trained_dir() -> Path:
    """The `trained/` directory shipped with the package (a package itself, so wheels carry it)."""
    try:
        import trained

        return Path(trained.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parents[2] / "trained"


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


def user_models_dir() -> Path:
    """Where taught models go by default: the user data directory (XDG on Linux), or $TWOSTREAM_HOME."""
    home = os.environ.get("TWOSTREAM_HOME")
    if home:
        return Path(home) / "models"
    from platformdirs import user_data_path

    return user_data_path("twostream", appauthor=False) / "models"


def taught_models() -> list[Path]:
    """Checkpoint directories in the user models folder, oldest name first."""
    root = user_models_dir()
    return sorted(p.parent for p in root.glob(f"*/{CONFIG_FILE}")) if root.is_dir() else []


def model_path(arg: str | Path) -> Path:
    """The checkpoint directory a `--model` argument names: an existing path first, then `default`
    (the shipped default, or $TWOSTREAM_MODEL), a model shipped in `trained/`, a taught model's name.
    Refuses a name that is none of these, listing what there is."""
    path = Path(arg)
    if path.exists():
        return path
    name = str(arg)
    if name == DEFAULT_NAME:
        found = default_model_path()
        if found is None:
            raise UserError(
                f"--model {DEFAULT_NAME}: no default model is shipped here ({trained_dir() / DEFAULT_NAME} is missing); "
                "train one with 'make model' or give a checkpoint directory"
            )
        return found
    if path.name == name:  # a bare name, not a path that is missing
        for candidate in (*shipped_models(), *taught_models()):
            if candidate.name == name:
                return candidate
    known = [p.name for p in (*shipped_models(), *taught_models())]
    listing = f"; models here: {', '.join(known[:8])}{' ...' if len(known) > 8 else ''}" if known else ""
    raise UserError(
        f"{name}: no such model directory, shipped model or taught model (give a checkpoint directory holding "
        f"{CONFIG_FILE}, '{DEFAULT_NAME}', or the name of a model in {user_models_dir()}){listing}"
    )


def resolve_model(arg: str | Path | TwoStreamModel | None, flow: FlowSettings | None = None) -> TwoStreamModel:
    """A loaded model for a `--model` argument (see `model_path`); None is the default model. Its
    provenance name is set from its directory when the checkpoint does not carry one."""
    if isinstance(arg, TwoStreamModel):
        if flow is not None and flow != arg.config.flow:
            raise UserError("the model was trained with other flow settings than the ones asked for")
        return arg
    if arg is None or str(arg) == "":
        return default_model(flow)
    path = model_path(arg)
    model = load_checkpoint(path, flow=flow)
    model.config.provenance.setdefault("name", path.resolve().name)
    return model


def untrained_model(flow: FlowSettings | None = None) -> TwoStreamModel:
    """Random nets over the synthetic classes: lets the pipeline run before any model is trained."""
    from ..io.synthetic import CLASSES  # the synthetic world loads only when a model is made up

    config = ModelConfig(labels=list(CLASSES), flow=flow or FlowSettings(), trained=False, provenance={"name": "UNTRAINED (random weights)"})
    return TwoStreamModel.create(config, seed=0)


def default_model(flow: FlowSettings | None = None) -> TwoStreamModel:
    path = default_model_path()
    if path is None:
        return untrained_model(flow)
    model = load_checkpoint(path, flow=flow)
    model.config.provenance.setdefault("name", path.name)
    return model
