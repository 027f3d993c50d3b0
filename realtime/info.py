"""`twostream info`: what this machine offers, the first thing to run when a camera or GPU is not found."""

from __future__ import annotations

import importlib.metadata
import platform
import re

import cv2
import torch


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _video_backends() -> dict[str, object]:
    build = cv2.getBuildInformation()
    section = build.split("Video I/O:")[1].split("\n\n")[0] if "Video I/O:" in build else ""
    flags = {}
    for name in ("FFMPEG", "GStreamer", "v4l/v4l2"):
        m = re.search(rf"^\s*{re.escape(name)}:\s*(\S+)", section, re.MULTILINE)
        flags[name] = bool(m and m.group(1).upper() == "YES")
    try:
        from cv2 import videoio_registry

        streams = [videoio_registry.getBackendName(b) for b in videoio_registry.getStreamBackends()]
        cameras = [videoio_registry.getBackendName(b) for b in videoio_registry.getCameraBackends()]
    except Exception:  # older OpenCV without the registry
        streams, cameras = [], []
    return {"built_with": flags, "stream_backends": streams, "camera_backends": cameras}


def gather_info(probe_cameras: bool = True) -> dict:
    from . import __version__
    from .nets.engines import create_engine
    from .errors import UserError
    from .nets.models_store import default_model, default_model_path
    from .io.sources import probe_cameras as probe

    cuda = torch.cuda.is_available()
    try:
        import torch_tensorrt

        trt: dict[str, object] = {"installed": True, "version": torch_tensorrt.__version__, "usable": cuda}
    except ImportError:
        trt = {"installed": False, "usable": False, "install": "pip install 'twostream[tensorrt]' (needs a CUDA GPU)"}
    except Exception as e:  # a broken install: say so rather than crash `info`
        trt = {"installed": True, "usable": False, "error": str(e).splitlines()[0][:200]}
    model_path = default_model_path()
    info: dict[str, object] = {
        "twostream": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {
            d: _version(d) for d in ("torch", "opencv-python-headless", "opencv-python", "numpy", "safetensors", "PyQt6", "pyqtgraph", "torch-tensorrt")
        },
        "cpu_threads": torch.get_num_threads(),
        "cuda": {
            "available": cuda,
            "torch_cuda": torch.version.cuda,
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        },
        "tensorrt": trt,
        "video": _video_backends(),
        "cameras": probe() if probe_cameras else "not probed",
        "default_model": str(model_path) if model_path else "none shipped: an UNTRAINED model is used",
    }
    try:
        engine = create_engine(default_model(), "auto", "auto")
        info["auto_engine"] = {"chosen": engine.describe(), "not_chosen": getattr(engine, "auto_reasons", [])}
        engine.close()
    except UserError as e:
        info["auto_engine"] = {"error": str(e)}
    return info


def format_info(info: dict) -> str:
    out = [f"twostream {info['twostream']}  (Python {info['python']}, {info['platform']})", "packages:"]
    for k, v in info["packages"].items():
        out.append(f"  {k:<24s} {v or '-'}")
    cuda = info["cuda"]
    out.append(
        f"CUDA: {'yes, ' + ', '.join(cuda['devices']) if cuda['available'] else 'no GPU visible to torch'}"
        f" (torch built for CUDA {cuda['torch_cuda'] or 'none: CPU build'})"
    )
    trt = info["tensorrt"]
    out.append(
        f"TensorRT: {'torch-tensorrt ' + str(trt.get('version')) if trt.get('installed') else 'not installed'}"
        f"{'' if trt.get('usable') else ' (not usable here)'}"
    )
    v = info["video"]
    built = ", ".join(f"{k} {'yes' if on else 'no'}" for k, on in v["built_with"].items())
    out.append(f"OpenCV video I/O: {built}; stream back ends: {', '.join(v['stream_backends']) or '?'}")
    cams = info["cameras"]
    out.append(f"cameras: {', '.join(cams) if isinstance(cams, list) and cams else ('none found (no /dev/video* opens)' if isinstance(cams, list) else cams)}")
    out.append(f"default model: {info['default_model']}")
    eng = info["auto_engine"]
    if "chosen" in eng:
        out.append(f"engine auto picks: {eng['chosen']}")
        for reason in eng["not_chosen"]:
            out.append(f"  not {reason}")
    else:
        out.append(f"engine auto: {eng['error']}")
    return "\n".join(out) + "\n"
