"""Inference back ends behind one interface: `engine(spatial_x, temporal_x) -> (spatial_probs, temporal_probs)`.

- `torch`: eager PyTorch, CPU or CUDA, fp32/fp16, channels_last.
- `torchscript`: traced and frozen TorchScript (BatchNorm folded, no Python per layer). On a CPU
  every engine runs the two streams at once, one core each; frozen nets hold the GIL least while
  doing so, which made this the fastest CPU path in benchmarks/pipeline.py (same-run loop: 74.1 fps
  with TorchScript nets against 65.8 fps eager, shipped model, 2 quiet cores).
- `compile`: torch.compile (inductor; CUDA graphs on a GPU).
- `tensorrt`: torch-tensorrt's dynamo path in fp16, engines cached on disk.
- `auto`: the fastest that is installed and works here; says which and why not the others.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .checkpoint import TwoStreamModel
from .errors import EngineUnavailable, UserError

log = logging.getLogger("twostream")
ENGINES = ("auto", "torch", "torchscript", "compile", "tensorrt")


def resolve_device(device: str | None) -> torch.device:
    """'auto' / None -> cuda if available else cpu; refuses a CUDA device that is not there."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device '{device}': use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device '{device}' asked for, but this torch sees no CUDA GPU (torch {torch.__version__}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"device '{device}' does not exist: {torch.cuda.device_count()} CUDA device(s) found")
    elif dev.type != "cpu":
        raise UserError(f"device '{device}' is not supported: use cpu or cuda")
    return dev


class Engine:
    """Runs both nets on one pair of inputs. Inputs are CPU float32 tensors (N, C, S, S)."""

    name = "base"

    def __init__(self, model: TwoStreamModel, device: torch.device, half: bool | None = None):
        self.device = device
        self.half = (device.type == "cuda") if half is None else half
        if self.half and device.type == "cpu":
            raise UserError("fp16 inference needs a CUDA device; on a CPU use fp32")
        self.dtype = torch.float16 if self.half else torch.float32
        self.config = model.config
        self._executor: ThreadPoolExecutor | None = None
        self.spatial, self.temporal = self._prepare(model.spatial), self._prepare(model.temporal)

    def _prepare(self, net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        net = copy.deepcopy(net).eval().to(self.device, self.dtype)
        return net.to(memory_format=torch.channels_last)

    def parallel_streams(self, enabled: bool = True) -> None:
        """On a CPU, run the two nets at once, splitting the cores between them."""
        if enabled and self.device.type == "cpu":
            torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
            self._executor = self._executor or ThreadPoolExecutor(1, thread_name_prefix="twostream-spatial")
        else:
            self._executor = None

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            x = x.pin_memory() if not x.is_pinned() else x
            x = x.to(self.device, non_blocking=True)
        return x.to(dtype=self.dtype, memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, spatial_x: torch.Tensor, temporal_x: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray | None]:
        if self.device.index is not None and torch.cuda.current_device() != self.device.index:
            torch.cuda.set_device(self.device)  # a new thread starts on GPU 0; CUDA graphs and TensorRT use the current one
        xs = self._to_device(spatial_x)
        xt = self._to_device(temporal_x) if temporal_x is not None else None
        if self._executor is not None and xt is not None:
            pending = self._executor.submit(self._run_spatial, xs)
            t = torch.softmax(self.temporal(xt).float(), -1)
            s = pending.result()
        else:
            s = self._run_spatial(xs)
            t = torch.softmax(self.temporal(xt).float(), -1) if xt is not None else None
        return s.cpu().numpy(), (t.cpu().numpy() if t is not None else None)

    def _run_spatial(self, xs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return torch.softmax(self.spatial(xs).float(), -1)

    def warmup(self, batch: int = 1, iterations: int = 3) -> float:
        """Run a few dummy batches (compilation happens here); returns the seconds it took."""
        s, n = self.config.input_size, self.config.temporal_channels
        xs, xt = torch.zeros(batch, 3, s, s), torch.zeros(batch, n, s, s)
        t0 = time.perf_counter()
        for _ in range(iterations):
            self(xs, xt)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

    def describe(self) -> str:
        return f"{self.name} on {self.device} ({'fp16' if self.half else 'fp32'})"

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # at most one forward pass in flight
            self._executor = None


class TorchEngine(Engine):
    name = "torch"


class TorchScriptEngine(Engine):
    name = "torchscript"

    def _prepare(self, net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        net = super()._prepare(net)
        s = self.config.input_size
        chans = next(m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels
        example = torch.zeros(1, chans, s, s, device=self.device, dtype=self.dtype).to(memory_format=torch.channels_last)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # torch marks jit.freeze deprecated in favour of torch.compile; it remains the fastest CPU path we measured
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(net, example, check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


class CompileEngine(Engine):
    name = "compile"

    def _prepare(self, net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        net = super()._prepare(net)
        # CUDA graphs ("reduce-overhead") remove per-launch overhead on a GPU; a CPU has no graphs.
        mode = "reduce-overhead" if self.device.type == "cuda" else "default"
        return torch.compile(net, mode=mode, dynamic=False)


class TensorRTEngine(Engine):
    """torch-tensorrt (dynamo IR), fp16 by default, with a disk cache of built engines.

    The cache key covers the weights, architecture, input shapes (batch range included), precision,
    torch / torch-tensorrt / TensorRT versions and the GPU model, so a changed model or upgrade never
    loads a stale engine. A first start builds (and saves) the engines; later starts load them.
    `max_batch` > 1 builds engines for any batch from 1 to max_batch (one per stream of `serve`); if
    such a build fails, batch-1 engines are built instead and a multi-stream batch runs row by row.
    Written against torch-tensorrt's documentation (2.5 and later); not yet run on a GPU by this project.
    """

    name = "tensorrt"

    def __init__(self, model: TwoStreamModel, device: torch.device, half: bool | None = None, cache_dir: str | Path | None = None,
                 max_batch: int = 1):
        try:
            import torch_tensorrt  # noqa: F401
        except ImportError:
            raise EngineUnavailable("engine 'tensorrt' needs torch-tensorrt, which is not installed: pip install 'twostream[tensorrt]'") from None
        if device.type != "cuda":
            raise EngineUnavailable("engine 'tensorrt' needs a CUDA GPU; this machine has none (use --engine torchscript or torch)")
        self.cache_dir = Path(cache_dir or os.environ.get("TWOSTREAM_CACHE", Path.home() / ".cache" / "twostream")) / "tensorrt"
        self.build_s = 0.0
        self.load_s = 0.0
        self.max_batch = max(1, int(max_batch))
        super().__init__(model, device, True if half is None else half)

    def _cache_key(self, net: nn.Module, shape: tuple[int, ...]) -> str:
        import torch_tensorrt

        try:
            import tensorrt
            trt_version = tensorrt.__version__
        except ImportError:  # torch-tensorrt brings it; a key without it is still a valid key
            trt_version = None
        h = hashlib.sha256()
        for k, v in net.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        meta = (type(net).__name__, shape, str(self.dtype), torch.__version__, torch_tensorrt.__version__, trt_version,
                torch.cuda.get_device_name(self.device), torch.cuda.get_device_capability(self.device), torch.version.cuda)
        h.update(repr(meta).encode())
        return h.hexdigest()[:24]

    def _compile_options(self) -> dict:
        """Precision and timing-cache options, by what this torch-tensorrt's compiler takes.

        `torch_tensorrt.compile` passes unknown keywords on and its compiler ignores them, so a wrong
        name would be dropped silently (fp16 lost); asking the signature avoids that.
        """
        import inspect

        import torch_tensorrt

        params = inspect.signature(torch_tensorrt.dynamo.compile).parameters
        opts: dict = {}
        if "use_explicit_typing" in params:  # 2.5+: the types of the (half) model and inputs are the engine's
            opts["use_explicit_typing"] = True
        elif "enabled_precisions" in params:
            opts["enabled_precisions"] = {self.dtype}
        # (releases with neither always type strongly from the model)
        if "timing_cache_path" in params:  # speeds up a rebuild after the model changes
            opts["timing_cache_path"] = str(self.cache_dir / "timing_cache.bin")
        return opts

    def _prepare(self, net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        net = copy.deepcopy(net).eval().to(self.device, self.dtype)
        chans = next(m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels
        if self.max_batch > 1:
            try:
                return self._build_or_load(net, chans, self.max_batch)
            except Exception as e:
                log.warning("tensorrt: engines for batches 1-%d did not build (%s); building batch-1 engines, "
                            "so a multi-stream batch runs row by row", self.max_batch, str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
                self.max_batch = 1
        return self._build_or_load(net, chans, 1)

    def _build_or_load(self, net: nn.Module, chans: int, n: int) -> Callable[[torch.Tensor], torch.Tensor]:
        import torch_tensorrt

        s = self.config.input_size
        path = self.cache_dir / f"{self._cache_key(net, (n, chans, s, s))}.ep"
        t0 = time.perf_counter()
        if path.is_file():
            try:
                module = torch_tensorrt.load(str(path)).module()
                self._check(module, chans, n)
                self.load_s += time.perf_counter() - t0
                log.info("tensorrt: loaded cached engine %s in %.1f s", path.name, time.perf_counter() - t0)
                return module
            except Exception as e:  # a cache entry from a broken write or another release: rebuild it
                log.warning("tensorrt: cached engine %s unusable (%s); rebuilding", path.name, str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
        # An example batch of 2 or more for a dynamic batch: torch.export specialises dimensions of size 1.
        example = torch.zeros(n, chans, s, s, device=self.device, dtype=self.dtype)
        spec: object = example
        save_kw: dict = {}
        if n > 1:
            spec = torch_tensorrt.Input(min_shape=(1, chans, s, s), opt_shape=(n, chans, s, s), max_shape=(n, chans, s, s), dtype=self.dtype)
            import inspect

            if "dynamic_shapes" in inspect.signature(torch_tensorrt.save).parameters:
                arg = next(iter(inspect.signature(net.forward).parameters))
                save_kw["dynamic_shapes"] = {arg: {0: torch.export.Dim("batch", min=1, max=n)}}
        trt = torch_tensorrt.compile(net, ir="dynamo", inputs=[spec], **self._compile_options())
        self._check(trt, chans, n)
        self.build_s += time.perf_counter() - t0
        log.info("tensorrt: built engine for batch %s in %.1f s", f"1-{n}" if n > 1 else "1", time.perf_counter() - t0)
        try:  # save, then use what a later start will load: both starts run the same kind of module
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            torch_tensorrt.save(trt, str(tmp), inputs=[example], **save_kw)
            tmp.replace(path)
            loaded = torch_tensorrt.load(str(path)).module()
            self._check(loaded, chans, n)
            log.info("tensorrt: cached as %s", path)
            return loaded
        except Exception as e:  # the engine works; only the next start will have to build again
            path.unlink(missing_ok=True)  # never leave a file that a later start would load and reject
            log.warning("tensorrt: built but not cached (%s): the next start builds again", str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
            return trt

    def _check(self, module: Callable[[torch.Tensor], torch.Tensor], chans: int, n: int) -> None:
        """Run the smallest and the largest batch the module is meant for (a dynamic batch that does not work fails here)."""
        s = self.config.input_size
        with torch.inference_mode():
            for b in sorted({1, n}):
                out = module(torch.zeros(b, chans, s, s, device=self.device, dtype=self.dtype))
                if out.shape[0] != b:
                    raise RuntimeError(f"engine returned {out.shape[0]} rows for a batch of {b}")

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            x = (x if x.is_pinned() else x.pin_memory()).to(self.device, non_blocking=True)
        return x.to(self.dtype).contiguous()  # the TensorRT runtime takes contiguous inputs


ENGINE_CLASSES: dict[str, type[Engine]] = {"torch": TorchEngine, "torchscript": TorchScriptEngine, "compile": CompileEngine, "tensorrt": TensorRTEngine}


def create_engine(model: TwoStreamModel, engine: str = "auto", device: str | None = "auto", half: bool | None = None,
                  max_batch: int = 1) -> Engine:
    """Build the named engine (warmed up). `auto` tries the fastest first and logs what it chose and why.

    `max_batch`: the largest batch it will be given (the number of streams of a MultiPipeline); only
    engines built for fixed shapes (tensorrt) use it.
    """
    if engine not in ENGINES:
        raise UserError(f"unknown engine '{engine}': choose one of {', '.join(ENGINES)}")
    dev = resolve_device(device)
    if engine != "auto":
        eng = _build(engine, model, dev, half, max_batch)
        eng.warmup()
        return eng
    choice, reasons = auto_candidates(dev, max_batch)
    for name in choice:
        try:
            eng = _build(name, model, dev, half, max_batch)
            eng.warmup()
        except Exception as e:  # auto must fall back to the next engine whatever broke
            reasons.append(f"{name}: {str(e).splitlines()[0][:160] if str(e) else type(e).__name__}")
            continue
        log.info("engine auto -> %s%s", eng.describe(), f" (not {'; '.join(reasons)})" if reasons else "")
        eng.auto_reasons = reasons  # type: ignore[attr-defined]
        return eng
    raise EngineUnavailable("no engine works here: " + "; ".join(reasons))


def auto_candidates(dev: torch.device, max_batch: int = 1) -> tuple[list[str], list[str]]:
    """Engines `auto` tries on `dev`, fastest first, and why it skips the others.

    On a CPU, one frame at a time (a Pipeline) TorchScript is fastest; for batches (a MultiPipeline
    of several streams) eager PyTorch is: `twostream bench` ran both nets on 8 frames at once at 175
    frames/s eager against 121 TorchScript, whose frozen nets gain nothing from a batch.
    """
    if dev.type == "cuda":
        order, reasons = ["tensorrt", "compile", "torch"], []
        try:
            import torch_tensorrt  # noqa: F401
        except ImportError:
            order.remove("tensorrt")
            reasons.append("tensorrt: torch-tensorrt is not installed (pip install 'twostream[tensorrt]')")
        return order, reasons
    reasons = ["tensorrt: needs a CUDA GPU", "compile: not tried on a CPU, where it compiles C++ at every start (ask for it with --engine compile)"]
    if max_batch > 1:
        return ["torch", "torchscript"], reasons + ["torchscript: its frozen nets gain nothing from batches of streams on a CPU"]
    return ["torchscript", "torch"], reasons


def _build(name: str, model: TwoStreamModel, dev: torch.device, half: bool | None, max_batch: int = 1) -> Engine:
    eng = TensorRTEngine(model, dev, half, max_batch=max_batch) if name == "tensorrt" else ENGINE_CLASSES[name](model, dev, half)
    eng.parallel_streams(dev.type == "cpu")
    return eng
