"""Hostile or broken model files: each is refused with a message naming what is wrong, and nothing in
them ever runs. Through `load_checkpoint` (the Python API) and through `twostream run --model DIR`
(exit 2, one line, no traceback)."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from realtime.nets.checkpoint import load_checkpoint
from realtime.errors import CheckpointError

ROOT = Path(__file__).resolve().parent.parent


class _Payload:
    """Unpickling this runs a shell command that creates `marker`: the proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def good(tmp_path_factory, tiny_model) -> Path:
    return tiny_model.save(tmp_path_factory.mktemp("models") / "good")


def _variant(good: Path, where: Path, weights: bytes | None = None, edit=None, config_text: str | None = None) -> Path:  # type: ignore[no-untyped-def]
    shutil.copytree(good, where)
    if weights is not None:
        (where / "weights.safetensors").write_bytes(weights)
    if edit is not None:
        cfg = json.loads((where / "model.json").read_text())
        edit(cfg)
        (where / "model.json").write_text(json.dumps(cfg))
    if config_text is not None:
        (where / "model.json").write_text(config_text)
    return where


def _tensors(good: Path) -> dict[str, torch.Tensor]:
    return load_file(str(good / "weights.safetensors"))


def _safetensors(tensors: dict[str, torch.Tensor], tmp: Path) -> bytes:
    save_file(tensors, str(tmp))
    return tmp.read_bytes()


def _first(tensors: dict[str, torch.Tensor], role: str, ndim: int, last: bool = False) -> str:
    keys = [k for k, v in tensors.items() if k.startswith(role + ".") and v.ndim == ndim]
    return keys[-1] if last else keys[0]


def _cases(good: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (checkpoint directory, the message it must be refused with)."""
    data = (good / "weights.safetensors").read_bytes()
    t = _tensors(good)
    conv = _first(t, "spatial", 4, last=True)
    wrong_shape = dict(t)
    wrong_shape[conv] = torch.zeros(3, 3, 3, 3)
    head = _first(t, "temporal", 2, last=True)
    nan = {k: v.clone() for k, v in t.items()}
    nan[head][0, 0] = float("nan")
    return {
        "random bytes": (_variant(good, tmp / "random", weights=os.urandom(len(data))), "weights.safetensors is corrupt or truncated"),
        "truncated": (_variant(good, tmp / "truncated", weights=data[: len(data) // 2]), "weights.safetensors is corrupt or truncated"),
        "empty weights": (_variant(good, tmp / "empty", weights=b""), "weights.safetensors is corrupt or truncated"),
        "wrong tensor shape": (
            _variant(good, tmp / "shape", weights=_safetensors(wrong_shape, tmp / "s.st")),
            rf"spatial weights do not fit mobilenet_v2_035: {conv.removeprefix('spatial.')} is \(3, 3, 3, 3\)",
        ),
        "labels not matching the head": (
            _variant(good, tmp / "labels", edit=lambda c: c.update(labels=["a", "b", "c", "d", "e"])),
            "spatial head has 4 outputs for 5 labels",
        ),
        "NaN weights": (_variant(good, tmp / "nan", weights=_safetensors(nan, tmp / "n.st")), "temporal weights hold NaN or infinite values"),
        "model.json not JSON": (_variant(good, tmp / "notjson", config_text='{"format": '), "model.json is corrupt"),
        "model.json too deep": (_variant(good, tmp / "deep", config_text="[" * 100_000 + "]" * 100_000), "model.json is corrupt"),
        "a number as text": (_variant(good, tmp / "text", edit=lambda c: c.update(clip_length="3")), "'clip_length' is a JSON str"),
        "labels as one string": (_variant(good, tmp / "labelstr", edit=lambda c: c.update(labels="abcd")), "'labels' is a JSON str"),
        "huge flow size": (
            _variant(good, tmp / "hugeflow", edit=lambda c: c["flow"].update(width=10**6, height=10**6)),
            "flow working size 1000000x1000000 is outside 16..2048",
        ),
        "a million labels": (
            _variant(good, tmp / "manylabels", edit=lambda c: c.update(labels=[f"c{i}" for i in range(10**6)])),
            "1000000 labels is more than the 10000 twostream supports",
        ),
    }


def test_broken_and_hostile_checkpoints_are_refused_with_a_clear_message(good, tmp_path) -> None:
    for name, (directory, message) in _cases(good, tmp_path).items():
        with pytest.raises(CheckpointError, match=message) as e:
            load_checkpoint(directory)
        assert str(e.value).startswith(str(directory)), name
        assert "\n" not in str(e.value), name


def _pickles(tmp: Path, marker: Path) -> dict[str, Path]:
    """Ways a pickle can be handed to the loader; each would run _Payload if anything unpickled it."""
    plain = tmp / "evil-plain"
    shutil.copytree(tmp / "good-copy", plain)
    (plain / "weights.safetensors").write_bytes(pickle.dumps({"spatial.w": _Payload(marker)}))
    zipped = tmp / "evil-torch-zip"
    shutil.copytree(tmp / "good-copy", zipped)
    torch.save({"state_dict": _Payload(marker)}, zipped / "weights.safetensors")  # torch.save's zip + pickle format
    extra = tmp / "evil-extra-files"
    shutil.copytree(tmp / "good-copy", extra)
    for name in ("model.pt", "model.pth", "weights.pkl", "pytorch_model.bin"):
        (extra / name).write_bytes(pickle.dumps(_Payload(marker)))
    pointing = tmp / "evil-pointer"
    shutil.copytree(extra, pointing)
    cfg = json.loads((pointing / "model.json").read_text())
    cfg["weights"] = "model.pt"  # a field that, if anything honoured it, would point at the pickle
    (pointing / "model.json").write_text(json.dumps(cfg))
    pt_file = tmp / "evil.pt"
    torch.save(_Payload(marker), pt_file)
    as_config = tmp / "evil-config"
    shutil.copytree(tmp / "good-copy", as_config)
    (as_config / "model.json").write_bytes(pickle.dumps(_Payload(marker)))
    return {
        "pickle as weights": plain,
        "torch.save zip as weights": zipped,
        "pickles beside a checkpoint": extra,
        "model.json pointing at a pickle": pointing,
        "a .pt file": pt_file,
        "pickle as model.json": as_config,
    }


@pytest.mark.slow
def test_a_pickle_never_runs_its_payload(good, tmp_path) -> None:
    marker = tmp_path / "PAYLOAD-RAN"
    shutil.copytree(good, tmp_path / "good-copy")
    cases = _pickles(tmp_path, marker)
    # The payload is live: unpickling it in a throw-away process does create its marker.
    probe = tmp_path / "probe-marker"
    blob = pickle.dumps(_Payload(probe))
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"], input=blob, check=True, timeout=60)
    assert probe.exists(), "the test payload does not work, so its absence below would prove nothing"
    assert zipfile.is_zipfile(cases["torch.save zip as weights"] / "weights.safetensors")

    for name, path in cases.items():
        if name == "pickles beside a checkpoint":
            load_checkpoint(path)  # loads the real weights; the pickles beside them are never opened
        else:
            with pytest.raises(CheckpointError, match=r"corrupt|does not describe a model|never unpickles"):
                load_checkpoint(path)
        assert not marker.exists(), f"{name}: the payload ran"
    # and through the command line: every case in one child process, each a full `twostream run`
    script = (
        "import sys\nfrom realtime.cli import main\n"
        "for path in sys.argv[1:]:\n"
        "    main(['run', 'synthetic:demo?fps=0', '--model', path, '--max-frames', '2', '--engine', 'torch', '-q'])\n"
        "    print('ran', path, flush=True)\n"
    )
    r = subprocess.run([sys.executable, "-c", script, *map(str, cases.values())], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.stdout.count("ran ") == len(cases), r.stderr  # every case reached its end (refused or run), none crashed the process
    assert not marker.exists(), "the payload ran in the CLI"


@pytest.mark.parametrize("case", ["random bytes", "truncated", "wrong tensor shape", "labels not matching the head", "a number as text"])
def test_the_cli_refuses_a_bad_model_in_one_line_with_exit_2(good, tmp_path, case) -> None:
    directory, message = _cases(good, tmp_path)[case]
    r = subprocess.run(
        [sys.executable, "-m", "realtime.cli", "run", "synthetic:demo?fps=0", "--model", str(directory), "--max-frames", "2", "--engine", "torch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"twostream run: error: {directory}: "), r.stderr
    assert re.search(message, lines[0]), lines[0]


def test_the_cli_refuses_a_pickle_file_given_as_the_model(tmp_path) -> None:
    marker = tmp_path / "PAYLOAD-RAN"
    evil = tmp_path / "model.pt"
    torch.save(_Payload(marker), evil)
    r = subprocess.run([sys.executable, "-m", "realtime.cli", "run", "--model", str(evil)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "never unpickles .pt/.pth files" in r.stderr and not marker.exists()
