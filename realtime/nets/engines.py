"""Inference back ends behind one interface: `engine(spatial_x, temporal_x) -> (spatial_probs, temporal_probs)`.

- `torch`: eager PyTorch, CPU or CUDA, fp32/fp16, channels_last.
- `torchscript`: traced and frozen TorchScript (BatchNorm folded, no Python per layer). On a CPU
  every engine runs the two streams at once, one core each; frozen nets hold the GIL least while
  doing so, which made this the fastest CPU path in benchmarks/pipeline.py (same-run loop: 74.1 fps
  with TorchScript nets against 65.8 fps eager, shipped model, 2 quiet cores).
- `compile`: torch.compile (inductor; CUDA graphs on a GPU).
- `tensorrt`: torch-tensorrt's dynamo path in fp16, engines cached on disk.
- `onnxruntime`: both nets exported to ONNX (cached on disk) and run by ONNX Runtime, one session
  per net with its own threads; the fastest CPU path measured here (see `auto_candidates`).
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
from threading import get_ident as threading_ident
from pathlib import Path
from typing import Any, Callable, Generic, Sequence, TypeVar

import numpy as np
import torch
from torch import nn

from .checkpoint import TwoStreamModel
from ..errors import EngineUnavailable, UserError
from ..options import ENGINES, ONNX_TOLERANCE  # noqa: F401  (ENGINES re-exported: the engine names)
from .familiarity import WithFamiliarity, split

log = logging.getLogger("twostream")


def device_choices() -> list[str]:
    """What `--device` can be here: auto, cpu, and cuda / cuda:N for each CUDA GPU torch sees."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["auto", "cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(gpus)] if gpus else [])


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


class Scores(tuple):
    """What an engine returns: (spatial, temporal) softmax scores, unpacked like a pair, plus
    `familiarity` (N,) of the spatial frames when the model has prototypes (else None)."""

    familiarity: np.ndarray | None

    def __new__(cls, spatial: np.ndarray, temporal: np.ndarray | None, familiarity: np.ndarray | None = None) -> "Scores":
        self = super().__new__(cls, (spatial, temporal))
        self.familiarity = familiarity
        return self


A = TypeVar("A", torch.Tensor, np.ndarray)  # what an engine's nets take and give: torch tensors, or arrays (ONNX Runtime)


def _closed_net(x: A) -> A:
    raise RuntimeError("this engine is closed")


def familiarity_of(scores: tuple[np.ndarray, np.ndarray | None]) -> np.ndarray | None:
    """The familiarity column of an engine's output; None for an engine (a user's subclass, say) that returns a plain pair."""
    return scores.familiarity if isinstance(scores, Scores) else None


class Engine(Generic[A]):
    """Runs both nets on one pair of inputs. Inputs are CPU float32 tensors (N, C, S, S)."""

    name = "base"
    auto_reasons: tuple[str, ...] = ()  # set by create_engine("auto"): why not each faster engine

    def __init__(self, model: TwoStreamModel, device: torch.device, half: bool | None = None, max_batch: int = 1):
        self.device = device
        self.max_batch = max(1, int(max_batch))  # the largest batch it will be given (engines built for fixed shapes use it)
        self.half = (device.type == "cuda") if half is None else half
        if self.half and device.type == "cpu":
            raise UserError("fp16 inference needs a CUDA device; on a CPU use fp32")
        self.dtype = torch.float16 if self.half else torch.float32
        self.config = model.config
        self._executor: ThreadPoolExecutor | None = None
        # with prototypes the spatial net also outputs each frame's familiarity, as a last column, in the same pass
        self.has_familiarity = model.prototypes is not None
        self._spatial_source: nn.Module = WithFamiliarity(model.spatial, model.prototypes) if model.prototypes is not None else model.spatial
        self.spatial: Callable[[A], A] = self._prepare(self._spatial_source)
        self.temporal: Callable[[A], A] = self._prepare(model.temporal)

    def _prepare(self, net: nn.Module) -> Callable[[A], A]:
        """The net as this engine runs it."""
        raise NotImplementedError

    def _to_device(self, x: torch.Tensor) -> A:
        """A CPU float32 batch as the prepared nets take it."""
        raise NotImplementedError

    def __call__(self, spatial_x: torch.Tensor, temporal_x: torch.Tensor | None) -> "Scores":
        raise NotImplementedError

    def parallel_streams(self, enabled: bool = True) -> None:
        """On a CPU, run the two nets at once, splitting the cores between them."""
        if enabled and self.device.type == "cpu":
            torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
            self._executor = self._executor or ThreadPoolExecutor(1, thread_name_prefix="twostream-spatial")
        else:
            self._executor = None

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

    @property
    def precision(self) -> str:
        """What the nets compute in, as a user reads it: fp16, fp32 (or, for onnxruntime-int8, which nets are int8)."""
        return "fp16" if self.half else "fp32"

    def describe(self) -> str:
        return f"{self.name} on {self.device} ({self.precision})"

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # at most one forward pass in flight
            self._executor = None


class TorchEngine(Engine[torch.Tensor]):
    """Eager PyTorch; the base of the engines that run torch modules (TorchScript, compiled, TensorRT)."""

    name = "torch"

    def _prepare(self, net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        return self._placed(net)

    def _placed(self, net: nn.Module) -> nn.Module:
        """A copy of the net in eval mode on this engine's device, dtype and memory format."""
        net = copy.deepcopy(net).eval().to(self.device, self.dtype)
        return net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack Module.to(memory_format=)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            x = x.pin_memory() if not x.is_pinned() else x
            x = x.to(self.device, non_blocking=True)
        return x.to(dtype=self.dtype, memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, spatial_x: torch.Tensor, temporal_x: torch.Tensor | None) -> "Scores":
        if self.device.index is not None and torch.cuda.current_device() != self.device.index:
            torch.cuda.set_device(self.device)  # a new thread starts on GPU 0; CUDA graphs and TensorRT use the current one
        xs = self._to_device(spatial_x)
        xt = self._to_device(temporal_x) if temporal_x is not None else None
        t: torch.Tensor | None
        if self._executor is not None and xt is not None:
            pending = self._executor.submit(self._run_spatial, xs)
            t = torch.softmax(self.temporal(xt).float(), -1)
            s, fam = pending.result()
        else:
            s, fam = self._run_spatial(xs)
            t = torch.softmax(self.temporal(xt).float(), -1) if xt is not None else None
        return Scores(s.cpu().numpy(), (t.cpu().numpy() if t is not None else None), fam.cpu().numpy() if fam is not None else None)

    def _run_spatial(self, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        with torch.inference_mode():
            return split(self.spatial(xs), self.has_familiarity)


class TorchScriptEngine(TorchEngine):
    name = "torchscript"

    def _prepare(self, net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        net = self._placed(net)
        s = self.config.input_size
        chans = next(m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels
        example = torch.zeros(1, chans, s, s, device=self.device, dtype=self.dtype).to(memory_format=torch.channels_last)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # torch marks jit.freeze deprecated in favour of torch.compile; it remains the fastest CPU path we measured
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(net, example, check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


class CompileEngine(TorchEngine):
    name = "compile"

    def _prepare(self, net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        net = self._placed(net)
        # CUDA graphs ("reduce-overhead") remove per-launch overhead on a GPU; a CPU has no graphs.
        mode = "reduce-overhead" if self.device.type == "cuda" else "default"
        return torch.compile(net, mode=mode, dynamic=False)


class TensorRTEngine(TorchEngine):
    """torch-tensorrt (dynamo IR), fp16 by default, with a disk cache of built engines.

    The cache key covers the weights, architecture, input shapes (batch range included), precision,
    torch / torch-tensorrt / TensorRT versions and the GPU model, so a changed model or upgrade never
    loads a stale engine. A first start builds (and saves) the engines; later starts load them.
    `max_batch` > 1 builds engines for any batch from 1 to max_batch (one per stream of `serve`); if
    such a build fails, batch-1 engines are built instead and a multi-stream batch runs row by row.
    Written against torch-tensorrt's documentation (2.5 and later); not yet run on a GPU by this project.
    """

    name = "tensorrt"

    def __init__(self, model: TwoStreamModel, device: torch.device, half: bool | None = None, cache_dir: str | Path | None = None, max_batch: int = 1):
        try:
            import torch_tensorrt  # noqa: F401
        except ImportError:
            raise EngineUnavailable("engine 'tensorrt' needs torch-tensorrt, which is not installed: pip install 'twostream[tensorrt]'") from None
        if device.type != "cuda":
            raise EngineUnavailable("engine 'tensorrt' needs a CUDA GPU; this machine has none (use --engine torchscript or torch)")
        self.cache_dir = _cache_root(cache_dir) / "tensorrt"
        self.build_s = 0.0
        self.load_s = 0.0
        super().__init__(model, device, True if half is None else half, max_batch)

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
        meta = (
            type(net).__name__,
            shape,
            str(self.dtype),
            torch.__version__,
            torch_tensorrt.__version__,
            trt_version,
            torch.cuda.get_device_name(self.device),
            torch.cuda.get_device_capability(self.device),
            torch.version.cuda,
        )
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
                log.warning(
                    "tensorrt: engines for batches 1-%d did not build (%s); building batch-1 engines, so a multi-stream batch runs row by row",
                    self.max_batch,
                    str(e).splitlines()[0][:200] if str(e) else type(e).__name__,
                )
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


def _cache_root(cache_dir: str | Path | None = None) -> Path:
    """Where built engines live: `cache_dir`, else $TWOSTREAM_CACHE, else ~/.cache/twostream."""
    return Path(cache_dir or os.environ.get("TWOSTREAM_CACHE") or Path.home() / ".cache" / "twostream")


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__


def _onnx_version() -> str:
    """The installed `onnx` package's version, without importing it; ImportError when it is not installed."""
    import importlib.metadata
    import importlib.util

    try:
        found = importlib.util.find_spec("onnx") is not None
    except (ValueError, AttributeError):  # sys.modules["onnx"] is None or has no spec: not importable
        found = False
    if not found:
        raise ImportError("No module named 'onnx'")
    try:
        return importlib.metadata.version("onnx")
    except importlib.metadata.PackageNotFoundError:  # importable without metadata (a source tree on sys.path)
        import onnx

        return str(onnx.__version__)


class _OrtNet:
    """One net in its own InferenceSession: float32 NCHW array in, softmax scores (N, classes) out."""

    def __init__(self, session: Any, input_name: str):  # an onnxruntime.InferenceSession (onnxruntime ships no type stubs)
        self.session = session
        self.input_name = input_name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


class OnnxRuntimeEngine(Engine[np.ndarray]):
    """Both nets exported to ONNX (realtime/nets/export.py's exporter, graphs ending in the softmax) and run by ONNX Runtime.

    - Export once: the .onnx files are cached in `<cache>/onnxruntime/` (cache root as for tensorrt),
      keyed by the weights, architecture, input shape, opset and torch / onnx / onnxruntime versions.
      A later start loads them; a cached file that does not load or gives wrong scores is removed and
      exported again. The batch axis is dynamic, so one pair of files serves every batch size.
    - One session per net with its own threads: on a CPU, max(1, cores // 2) intra-op threads each
      (the two nets run at once, as every engine's `parallel_streams` does), one inter-op thread,
      sequential execution, every graph optimisation. Intra-op threads do not spin while idle: the
      capture and flow threads need those cores between frames.
    - Providers: CUDAExecutionProvider when the device is CUDA and this onnxruntime has it (the
      `onnxruntime-gpu` wheel), else CPUExecutionProvider. fp32 only (fp16 is refused on a CPU as by
      every engine, and on a GPU, where tensorrt is the fp16 path).
    - At start both nets are run against eager torch at batch 1 and at `max_batch` (at least 2): a
      softmax score differing by more than `TOLERANCE` refuses the engine (EngineUnavailable).
    """

    name = "onnxruntime"
    TOLERANCE = ONNX_TOLERANCE  # max abs difference of softmax scores from eager torch (the bound export checks too)
    FORMAT = 1  # bump when what is written to the cache changes

    def __init__(self, model: TwoStreamModel, device: torch.device, half: bool | None = None, cache_dir: str | Path | None = None, max_batch: int = 1):
        try:
            import onnxruntime as ort

            _onnx_version()  # torch.onnx writes the graphs through `onnx`; imported only to export (1 s here)
        except ImportError as e:
            raise EngineUnavailable(f"engine 'onnxruntime' needs the onnx and onnxruntime packages ({_first_line(e)}): pip install onnx onnxruntime") from None
        if half and device.type == "cuda":
            raise EngineUnavailable("engine 'onnxruntime' runs fp32 only: use --precision fp32, or --engine tensorrt for fp16 on a GPU")
        self._ort = ort
        self.cache_dir = _cache_root(cache_dir) / "onnxruntime"
        self.export_s = 0.0
        self.load_s = 0.0
        self.max_abs_diff = 0.0
        cpus = os.cpu_count() or 2
        self.threads = max(1, cpus // 2)
        self.providers: list = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                self.providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
            else:
                log.warning("onnxruntime %s has no CUDAExecutionProvider (install onnxruntime-gpu): the nets run on the CPU", ort.__version__)
        self._source = model
        try:
            super().__init__(model, device, False if half is None else half, max_batch)
        finally:
            del self._source

    @property
    def provider(self) -> str:
        p = self.providers[0]
        return p[0] if isinstance(p, tuple) else p

    def _cache_key(self, net: nn.Module, shape: tuple[int, ...]) -> str:
        from .export import OPSET

        h = hashlib.sha256()
        for k, v in net.state_dict().items():
            t = v.detach().cpu().contiguous()
            h.update(f"{k}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.numpy().tobytes())
        meta = (
            self.FORMAT,
            type(net).__module__,
            type(net).__qualname__,
            repr(net),
            shape,
            OPSET,
            "torchscript-exporter",
            torch.__version__,
            _onnx_version(),
            self._ort.__version__,
        )
        h.update(repr(meta).encode())
        return h.hexdigest()[:24]

    def _session(self, model: Path | bytes, providers: list | None = None) -> Any:  # an InferenceSession (no stubs)
        """An InferenceSession on an ONNX file or its bytes, set up as this engine runs its nets."""
        ort = self._ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3  # errors only: no per-session warnings about unused initialisers
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), so, providers=providers or self.providers)

    def _prepare(self, net: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
        from .export import INPUT_NAMES

        role = "spatial" if net is self._spatial_source else "temporal"
        reference = copy.deepcopy(net).eval().float()
        s = self.config.input_size
        chans = next(m for m in reference.modules() if isinstance(m, nn.Conv2d)).in_channels
        path = self.cache_dir / f"{role}-{self._cache_key(reference, (chans, s, s))}.onnx"
        if path.is_file():
            t0 = time.perf_counter()
            try:
                runner = _OrtNet(self._session(path), INPUT_NAMES[role])
                self._check(role, runner, reference, chans)
                self.load_s += time.perf_counter() - t0
                log.info("onnxruntime: loaded cached %s net %s in %.2f s", role, path.name, time.perf_counter() - t0)
                return runner
            except EngineUnavailable as e:
                log.warning("onnxruntime: cached %s unusable (%s); exporting again", path.name, e)
            except Exception as e:  # a truncated write, a file from elsewhere: export it again
                log.warning("onnxruntime: cached %s unusable (%s); exporting again", path.name, _first_line(e))
            path.unlink(missing_ok=True)
        t0 = time.perf_counter()
        runner = self._export(role, reference, chans, path)
        self._check(role, runner, reference, chans)
        self.export_s += time.perf_counter() - t0
        log.info("onnxruntime: exported the %s net in %.2f s, cached as %s", role, time.perf_counter() - t0, path)
        return runner

    def _export(self, role: str, reference: nn.Module, chans: int, path: Path) -> _OrtNet:
        from .export import INPUT_NAMES, OPSET, _export_one, _Scores, exportable

        s = self.config.input_size
        example = torch.zeros(2, chans, s, s)  # batch 2: a batch of 1 could be traced as a constant
        wrapped = _Scores(exportable(reference, example))
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EngineUnavailable(f"engine 'onnxruntime': cannot create its cache {self.cache_dir} ({e.strerror})") from None
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading_ident()}.onnx")  # concurrent starts never share a file
        try:
            with torch.inference_mode(False), torch.no_grad():
                _export_one(wrapped, example, tmp, INPUT_NAMES[role], "torchscript", OPSET)
            runner = _OrtNet(self._session(tmp), INPUT_NAMES[role])
            tmp.replace(path)
        except UserError as e:
            raise EngineUnavailable(f"engine 'onnxruntime': {e}") from None
        except OSError as e:
            raise EngineUnavailable(f"engine 'onnxruntime': cannot write {tmp} ({e.strerror or e})") from None
        except Exception as e:  # the exported graph does not load: an operator this onnxruntime lacks
            raise EngineUnavailable(f"engine 'onnxruntime': ONNX Runtime cannot load the exported {role} net ({_first_line(e)})") from None
        finally:
            tmp.unlink(missing_ok=True)
        return runner

    def _check(self, role: str, runner: _OrtNet, reference: nn.Module, chans: int) -> None:
        """ONNX Runtime's scores against eager torch's at batch 1 and the largest batch (at least 2: the batch axis must work)."""
        from .export import _Scores

        s, n = self.config.input_size, max(2, self.max_batch)
        x = torch.randn(n, chans, s, s, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():  # one eager pass, not two: its first row is batch 1's reference
            expected = _Scores(reference)(x).float().numpy()  # what the exported graph computes
        worst = 0.0
        for b in (1, n):
            got = runner(x[:b].numpy())
            if got.shape != expected[:b].shape:
                raise EngineUnavailable(f"engine 'onnxruntime': the {role} net gives shape {got.shape} for a batch of {b}, torch {expected[:b].shape}")
            worst = max(worst, float(np.abs(got - expected[:b]).max()))
        if not worst <= self.TOLERANCE:  # (NaN fails too)
            raise EngineUnavailable(
                f"engine 'onnxruntime': the {role} net's scores differ from eager torch's by {worst:.1e} "
                f"(bound {self.TOLERANCE:g}); use --engine torchscript or torch"
            )
        self.max_abs_diff = max(self.max_abs_diff, worst)

    def _to_device(self, x: torch.Tensor) -> np.ndarray:
        return x.detach().to(torch.float32).contiguous().numpy()  # no copy for the float32 CPU tensors the pipeline passes

    def __call__(self, spatial_x: torch.Tensor, temporal_x: torch.Tensor | None) -> Scores:
        xs = self._to_device(spatial_x)
        xt = self._to_device(temporal_x) if temporal_x is not None else None
        if xt is None:
            s, t = self.spatial(xs), None
        elif self._executor is not None:  # session.run releases the GIL: both nets run at once
            pending = self._executor.submit(self.spatial, xs)
            t = self.temporal(xt)
            s = pending.result()
        else:
            s, t = self.spatial(xs), self.temporal(xt)
        if self.has_familiarity:  # the graph's last column (softmax is over the class columns only)
            return Scores(s[:, :-1], t, s[:, -1])
        return Scores(s, t)

    def describe(self) -> str:
        where = "" if (self.provider == "CUDAExecutionProvider") == (self.device.type == "cuda") else f", {self.provider}"
        return f"{self.name} on {self.device} (fp32{where}, {self.threads} thread(s) per net)"

    def close(self) -> None:
        super().close()
        self.spatial = self.temporal = _closed_net  # frees the sessions' memory


class OnnxRuntimeInt8Engine(OnnxRuntimeEngine):
    """The model's int8 nets (`twostream quantize`, stored in its checkpoint) run by ONNX Runtime on the CPU.

    Nothing is exported or cached here: the graphs come with the model (`TwoStreamModel.int8`), made from
    its very weights. At start both are checked for shape and finite scores at batch 1 and `max_batch`;
    their accuracy was measured when they were made (`int8/int8.json`), and that is what `auto` reads.
    """

    name = "onnxruntime-int8"

    def __init__(self, model: TwoStreamModel, device: torch.device, half: bool | None = None, cache_dir: str | Path | None = None, max_batch: int = 1):
        if model.int8 is None:
            raise EngineUnavailable(
                "engine 'onnxruntime-int8': this model has no int8 nets made from its weights; "
                "make them with: twostream quantize --model MODEL --data TRAINING_DATA"
            )
        if device.type != "cpu":
            raise EngineUnavailable("engine 'onnxruntime-int8' runs on the CPU only (use --device cpu)")
        self._int8 = model.int8
        meta = model.int8["meta"]
        self.held_out = meta.get("held_out", {})
        self.variant = meta.get("variant", "int8")
        self.int8_nets = [r for r in ("spatial", "temporal") if r in model.int8]  # the others run as the onnxruntime engine runs them
        super().__init__(model, device, half, cache_dir, max_batch)

    def _prepare(self, net: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
        from .export import INPUT_NAMES

        role = "spatial" if net is self._spatial_source else "temporal"
        if role not in self.int8_nets:
            return super()._prepare(net)
        t0 = time.perf_counter()
        try:
            runner = _OrtNet(self._session(self._int8[role], ["CPUExecutionProvider"]), INPUT_NAMES[role])
        except Exception as e:  # a damaged file, an operator this onnxruntime lacks
            raise EngineUnavailable(
                f"engine 'onnxruntime-int8': ONNX Runtime cannot load the model's int8 {role} net ({_first_line(e)}); run twostream quantize again"
            ) from None
        chans = 3 if role == "spatial" else self.config.temporal_channels
        s = self.config.input_size
        for b in (1, max(2, self.max_batch)):
            got = runner(np.zeros((b, chans, s, s), np.float32))
            want = self.config.num_classes + (1 if role == "spatial" and self.has_familiarity else 0)
            if got.shape != (b, want) or not np.isfinite(got).all():
                raise EngineUnavailable(
                    f"engine 'onnxruntime-int8': the int8 {role} net gives {got.shape} for a batch of {b}, expected {(b, want)}; run twostream quantize again"
                )
        self.load_s += time.perf_counter() - t0
        return runner

    @property
    def precision(self) -> str:
        others = [r for r in ("spatial", "temporal") if r not in self.int8_nets]
        return f"int8 {' and '.join(self.int8_nets)}" + (f", fp32 {' and '.join(others)}" if others else "")

    def describe(self) -> str:
        dep = self.held_out.get("deployed_top1", {})
        v = self.variant
        kept = f", held-out top-1 {dep[v]:.3f} vs fp32 {dep['fp32']:.3f}" if v in dep and "fp32" in dep else ""
        return f"{self.name} on cpu (int8 {' and '.join(self.int8_nets)}{kept}, {self.threads} thread(s) per net)"


# -- batches of frames (several streams' newest, or consecutive frames of a file) ------------------
BATCH_MODES = ("ready", "padded", "rows")


def batch_mode(engine: Engine) -> str:
    """How an engine takes a batch of streams' work.

    "ready": the rows that are ready (torch, torchscript, and TensorRT engines built for batches
    1..N). "padded": always the full preallocated batch, so a shape-specialised engine (compile)
    sees one shape. "rows": one row at a time, for TensorRT engines built for batch 1 only.
    """
    if engine.name == "tensorrt":
        return "ready" if engine.max_batch > 1 else "rows"
    return {"compile": "padded"}.get(engine.name, "ready")


def batched_scores(engine: Engine, rgb: torch.Tensor, temporal: torch.Tensor, has_temporal: Sequence[bool], mode: str | None = None) -> Scores:
    """Both nets on a batch of k = len(has_temporal) items (frames of different streams, or consecutive frames of one file).

    Item i's RGB input is row i of `rgb`; the items that have a flow stack (has_temporal[i]) have it
    in the first m rows of `temporal`, in item order. Returns the spatial scores (k, classes) and the
    temporal scores (m, classes), or None when m = 0. `rgb` and `temporal` may hold more rows than
    that (a preallocated batch). `mode` (default: `batch_mode(engine)`) is one of BATCH_MODES.
    """
    mode = mode or batch_mode(engine)
    if mode not in BATCH_MODES:
        raise ValueError(f"unknown batch mode {mode!r}: one of {', '.join(BATCH_MODES)}")
    k, m = len(has_temporal), sum(has_temporal)
    if mode == "rows":
        sp: list[np.ndarray] = []
        tp: list[np.ndarray] = []
        fam: list[np.ndarray] = []
        j = 0
        for i, has_t in enumerate(has_temporal):
            out = engine(rgb[i : i + 1], temporal[j : j + 1] if has_t else None)
            s, t = out
            sp.append(s)
            f_row = familiarity_of(out)
            if f_row is not None:
                fam.append(f_row)
            if t is not None:
                tp.append(t)
                j += 1
        return Scores(np.concatenate(sp), (np.concatenate(tp) if tp else None), np.concatenate(fam) if fam else None)
    if mode == "padded":  # the padding rows' scores are computed and dropped
        out = engine(rgb, temporal if m else None)
        s_all, t_all = out
        f = familiarity_of(out)
        return Scores(s_all[:k], (t_all[:m] if t_all is not None else None), f[:k] if f is not None else None)
    return engine(rgb[:k], temporal[:m] if m else None)


ENGINE_CLASSES: dict[str, type[Engine]] = {
    "torch": TorchEngine,
    "torchscript": TorchScriptEngine,
    "compile": CompileEngine,
    "tensorrt": TensorRTEngine,
    "onnxruntime": OnnxRuntimeEngine,
    "onnxruntime-int8": OnnxRuntimeInt8Engine,
}


def create_engine(model: TwoStreamModel, engine: str = "auto", device: str | None = "auto", half: bool | None = None, max_batch: int = 1) -> Engine:
    """Build the named engine (warmed up). `auto` tries the fastest first and logs what it chose and why.

    `max_batch`: the largest batch it will be given (the number of streams of a MultiPipeline); only
    engines built for fixed shapes (tensorrt) and onnxruntime (which checks its scores at that batch,
    and which `auto` prefers only up to ORT_AUTO_MAX_BATCH streams on a CPU) use it.
    """
    if engine not in ENGINES:
        raise UserError(f"unknown engine '{engine}': choose one of {', '.join(ENGINES)}")
    dev = resolve_device(device)
    if engine != "auto":
        eng = _build(engine, model, dev, half, max_batch)
        eng.warmup()
        return eng
    choice, reasons = auto_candidates(dev, max_batch)
    _consider_int8(model, choice, reasons)
    for name in choice:
        try:
            eng = _build(name, model, dev, half, max_batch)
            eng.warmup()
        except Exception as e:  # auto must fall back to the next engine whatever broke
            reasons.append(f"{name}: {str(e).splitlines()[0][:160] if str(e) else type(e).__name__}")
            continue
        reasons = [r for r in reasons if not r.startswith((f"{name}:", f"{name},")) and f", {name}:" not in r]  # the chosen one is no reason
        log.info("engine auto -> %s%s", eng.describe(), f" (not {'; '.join(reasons)})" if reasons else "")
        eng.auto_reasons = tuple(reasons)
        return eng
    raise EngineUnavailable("no engine works here: " + "; ".join(reasons))


ORT_AUTO_MAX_BATCH = 4  # auto prefers onnxruntime on a CPU up to this many streams; eager torch beyond (see below)


def auto_candidates(dev: torch.device, max_batch: int = 1) -> tuple[list[str], list[str]]:
    """Engines `auto` tries on `dev`, fastest first, and why it skips the others.

    On a CPU, ONNX Runtime first when it imports. Both nets of the shipped model (resnet18_050 at
    112 px, L=10), each engine running them as it does in the pipeline (two nets at once, one core
    each), median ms per batch of 5 alternating rounds, three runs on this project's 2 shared cores
    (torch 2.13, onnxruntime 1.32; /tmp script timing `create_engine(...)(xs, xt)`):

        batch   onnxruntime        torch              torchscript
        1       5.7 / 6.6 / 6.0    8.6 / 10.3 / 8.8   8.9 / - / 8.8
        2       - / - / 11.2       - / - / 14.0       - / - / 14.6
        4       20.7 / 21.0 / 21.4 20.8 / 24.9 / 22.2 24.9 / - / 26.5
        6       - / - / 31.8       - / - / 31.0       - / - / 36.8
        8       41.1 / 42.8 / 41.5 37.2 / 39.0 / 37.9 52.4 / - / 51.6

    So one stream (a Pipeline) gets onnxruntime (about 1.45x eager at batch 1); a MultiPipeline of up
    to ORT_AUTO_MAX_BATCH streams too (ahead at batches 1-2, level at 4); beyond that eager torch,
    which pulls ahead at 6-8 rows. TorchScript's frozen nets gain nothing from a batch (152-155
    frames/s at batch 8 against eager's 211-215), so it comes after torch for several streams.
    Without onnxruntime (or when it fails to build) the order is torchscript, torch for one stream
    and torch, torchscript for several.
    """
    if dev.type == "cuda":
        order, reasons = ["tensorrt", "compile", "torch"], []
        try:
            import torch_tensorrt  # noqa: F401
        except ImportError:
            order.remove("tensorrt")
            reasons.append("tensorrt: torch-tensorrt is not installed (pip install 'twostream[tensorrt]')")
        return order, reasons + ["onnxruntime: not tried on a GPU (ask for it with --engine onnxruntime)"]
    reasons = ["tensorrt: needs a CUDA GPU", "compile: not tried on a CPU, where it compiles C++ at every start (ask for it with --engine compile)"]
    try:
        import onnxruntime  # noqa: F401

        _onnx_version()
        ort = True
    except ImportError as e:
        ort = False
        reasons.append(f"onnxruntime: {_first_line(e)} (pip install onnx onnxruntime)")
    if max_batch > 1:
        reasons.append("torchscript: its frozen nets gain nothing from batches of streams on a CPU")
        if not ort:
            return ["torch", "torchscript"], reasons
        if max_batch <= ORT_AUTO_MAX_BATCH:
            return ["onnxruntime", "torch", "torchscript"], reasons + [
                f"torch: slower than onnxruntime here for batches of 1-{ORT_AUTO_MAX_BATCH} streams (kept as the fallback)"
            ]
        return ["torch", "onnxruntime", "torchscript"], reasons + [
            f"onnxruntime: eager torch runs batches of more than {ORT_AUTO_MAX_BATCH} streams faster on a CPU"
        ]
    if not ort:
        return ["torchscript", "torch"], reasons
    return ["onnxruntime", "torchscript", "torch"], reasons + ["torchscript, torch: slower than onnxruntime here one frame at a time (kept as the fallbacks)"]


def _consider_int8(model: TwoStreamModel, choice: list[str], reasons: list[str]) -> None:
    """`auto` on a CPU: the model's int8 nets first when they kept the accuracy on held-out clips."""
    from .quantize import MAX_LOSS, int8_keeps_accuracy

    if "onnxruntime" not in choice:
        return
    if model.int8 is None:
        reasons.append("onnxruntime-int8: this model has no int8 nets (twostream quantize makes them)")
    elif not int8_keeps_accuracy(model.int8["meta"]):
        held = model.int8["meta"].get("held_out", {})
        dep, named = held.get("deployed_top1", {}), held.get("frames_named_right", {})
        reasons.append(
            f"onnxruntime-int8: its held-out figures fall more than {MAX_LOSS:g} below fp32's (deployed top-1 {dep.get('int8')} "
            f"vs {dep.get('fp32')}, frames named and right {named.get('int8')} vs {named.get('fp32')})"
        )
    else:
        choice.insert(choice.index("onnxruntime"), "onnxruntime-int8")


def _build(name: str, model: TwoStreamModel, dev: torch.device, half: bool | None, max_batch: int = 1) -> Engine:
    eng = ENGINE_CLASSES[name](model, dev, half, max_batch=max_batch)
    eng.parallel_streams(dev.type == "cpu")
    return eng
