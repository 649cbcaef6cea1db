"""Models as ONNX graphs, and running them in onnxruntime.

:func:`export_onnx` is ``unblur export``: one ``.onnx`` file (weights inside, no external data file) with
dynamic batch, height and width, checked against PyTorch in onnxruntime before it is written
(atomically). :class:`OnnxRunner` runs such a graph, from a file or from bytes exported in memory; the
:class:`unblur.infer.Sharpener` uses it for the ``onnxruntime`` backend, which
:func:`unblur.device.inference_plan` picks on CPUs without native bf16 because it measured faster there
than PyTorch with the same float32 results (docs/benchmarks.md).

The exporter is PyTorch's ``torch.export``-based one (``dynamo=True``, via onnxscript), the maintained
path; if it fails (older PyTorch or onnxscript) the TorchScript exporter is tried. Either way the graph is
traced once on an example whose height and width are *not* multiples of 8: :class:`unblur.models.UnblurNet`
edge-pads its input up to a multiple of 8 when needed, and tracing that branch records the pad sizes as
arithmetic on the input's shape, which yields a zero pad for sizes that need none. Tracing on a multiple
of 8 would drop the pad and break every other size, so the check after export runs one odd size and one
multiple of 8.

UnblurNet's graphs take a second input, ``strength`` (a float32 scalar), the scale of the correction,
because weights with a ``strength_by_size`` table want a different one per frame size and a tiled photo
needs the whole photo's for every tile. It is optional: the file stores a default (the weights' strength
at 1280×720) as an initializer of the same name, which the ONNX spec makes the input's default when it
is not fed (checked in onnxruntime), so ``image`` in, ``sharp`` out still works. The table itself is in
the metadata (``unblur.model_kwargs``), from which ``unblur sharpen`` feeds each photo's strength.
Weights with a coarse pass (``coarse_by_size``) take a third input, ``coarse``, its strength, the same
way; their graph always runs the coarse pass (fed 0 it adds nothing, at the same cost).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from unblur.device import ExecutionPlan, onnxruntime_available, resolve_device
from unblur.io import atomic_write
from unblur.models import Weights, load_weights, strength_at_size

if TYPE_CHECKING:
    from unblur.infer import Sharpener

__all__ = [
    "ONNX_COARSE",
    "ONNX_INPUT",
    "ONNX_OUTPUT",
    "ONNX_STRENGTH",
    "OnnxRunner",
    "export_onnx",
    "load_onnx_sharpener",
    "onnx_bytes",
    "onnx_metadata",
    "verify_onnx",
]

ONNX_INPUT, ONNX_OUTPUT, ONNX_STRENGTH, ONNX_COARSE = "image", "sharp", "strength", "coarse"
# The frame size whose strength an exported graph uses when none is fed (module doc).
DEFAULT_STRENGTH_SIZE = (720, 1280)
# Traced once on this batch and size: batch 2 keeps the batch dimension symbolic (torch.export treats
# sizes 0 and 1 as constants), odd H and W keep UnblurNet's pad-to-8 branch in the graph (module doc).
EXAMPLE_SHAPE = (2, 3, 37, 53)
# The check after export: (batch, H, W), one size needing padding to 8 and one that does not.
CHECK_SHAPES: tuple[tuple[int, int, int], ...] = ((1, 41, 59), (2, 64, 96))
TOLERANCE = 1e-4
_DYNAMIC = {0: "batch", 2: "height", 3: "width"}


def _require_onnx() -> None:
    if not onnxruntime_available():
        raise ModuleNotFoundError("ONNX export and onnxruntime need the optional packages: "
                                  "pip install 'unblur[onnx]' (onnx, onnxruntime, onnxscript)")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' progress lines, deprecation notices and "torchvision not installed" logs:
    the result is checked numerically afterwards, which says more than those messages."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _export_dynamo(model: nn.Module, args: tuple[torch.Tensor, ...], opset: int | None) -> bytes:
    names = [ONNX_INPUT, ONNX_STRENGTH, ONNX_COARSE][:len(args)]
    program = torch.onnx.export(
        model, args, None, dynamo=True, opset_version=opset, input_names=names,
        output_names=[ONNX_OUTPUT], dynamic_shapes=(_DYNAMIC, None, None)[:len(args)], verbose=False,
    )
    return program.model_proto.SerializeToString()


def _export_torchscript(model: nn.Module, args: tuple[torch.Tensor, ...], opset: int | None) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(
        model, args, buffer, dynamo=False, opset_version=opset or 17,
        input_names=[ONNX_INPUT, ONNX_STRENGTH, ONNX_COARSE][:len(args)], output_names=[ONNX_OUTPUT],
        dynamic_axes={ONNX_INPUT: _DYNAMIC, ONNX_OUTPUT: _DYNAMIC},
    )
    return buffer.getvalue()


class _WithStrength(nn.Module):
    """``model`` with its strength (and its coarse pass's) as arguments, so that the export records them
    as inputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, strength: torch.Tensor, coarse: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x, strength) if coarse is None else self.model(x, strength, coarse)


def takes_strength(model: nn.Module) -> bool:
    """Whether ``model``'s graph gets a ``strength`` input (UnblurNet's does, module doc)."""
    return callable(getattr(model, "strength_for", None))


def default_strength(model: nn.Module) -> float:
    """The strength an exported graph of ``model`` uses when none is fed."""
    return float(model.strength_for(*DEFAULT_STRENGTH_SIZE))


def takes_coarse(model: nn.Module) -> bool:
    """Whether ``model``'s graph gets a ``coarse`` input: UnblurNet with a coarse pass (module doc)."""
    return getattr(model, "coarse_by_size", None) is not None


def default_coarse(model: nn.Module) -> float:
    """The coarse pass's strength an exported graph of ``model`` uses when none is fed."""
    return float(model.coarse_for(*DEFAULT_STRENGTH_SIZE))


def onnx_bytes(model: nn.Module, opset: int | None = None, metadata: dict[str, str] | None = None,
               check: bool = True) -> bytes:
    """Export ``model`` (on the CPU, float32) to a serialized ONNX graph with dynamic batch, height and width.

    With ``check`` the graph is run in onnxruntime at :data:`CHECK_SHAPES` and must match PyTorch within
    :data:`TOLERANCE` (else :class:`RuntimeError`). ``metadata`` is stored as the model's metadata
    properties, next to ``unblur.exporter`` and ``unblur.max_abs_diff`` (what the check measured).
    """
    _require_onnx()
    import onnx

    model = model.eval().to("cpu", memory_format=torch.contiguous_format)
    example = torch.rand(EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(0))
    strength, coarse = takes_strength(model), takes_coarse(model)
    args = (example, torch.tensor(0.5)) if strength else (example,)  # not 1: the multiply must be traced
    if coarse:
        args = (*args, torch.tensor(0.3))
    traced = _WithStrength(model) if strength else model
    errors = []
    data, exporter = b"", ""
    for exporter, export in (("torch.export (dynamo)", _export_dynamo), ("torchscript", _export_torchscript)):
        try:
            with _quiet_exporter(), torch.no_grad():
                data = export(traced, args, opset)
                if strength:
                    data = _with_default(data, ONNX_STRENGTH, default_strength(model))
                if coarse:
                    data = _with_default(data, ONNX_COARSE, default_coarse(model))
            break
        except Exception as exc:  # the next exporter may still work; both messages are kept for the error
            errors.append(f"{exporter}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}")
    if not data:
        raise RuntimeError("ONNX export failed: " + "; ".join(errors))
    props = {"unblur.exporter": exporter, "unblur.torch_version": torch.__version__, **(metadata or {})}
    if strength:
        props["unblur.default_strength"] = f"{default_strength(model):g}"
    if coarse:
        props["unblur.default_coarse"] = f"{default_coarse(model):g}"
    if check:
        props["unblur.max_abs_diff"] = f"{verify_onnx(data, model):.3g}"
    proto = onnx.load_model_from_string(data)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    return proto.SerializeToString()


def _with_default(data: bytes, name: str, value: float) -> bytes:
    """The graph with ``value`` stored as the default of its input ``name`` (an initializer of the same
    name, which ONNX lets a fed input override), so that feeding it is optional."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_model_from_string(data)
    proto.graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
    return proto.SerializeToString()


def verify_onnx(graph: bytes | str | Path, model: nn.Module, shapes: Sequence[tuple[int, int, int]] = CHECK_SHAPES,
                tolerance: float = TOLERANCE) -> float:
    """Largest absolute difference between onnxruntime and PyTorch over random inputs of ``shapes``.

    A graph with a ``strength`` input runs the first shape on its stored default and the others fed a
    strength (0.1 above what :meth:`UnblurNet.strength_for` gives their size), so both ways are checked; a
    ``coarse`` input the same way (:meth:`UnblurNet.coarse_for`). Raises
    :class:`RuntimeError` when the difference exceeds ``tolerance``: an export that runs but computes
    something else must never be written or used.
    """
    runner = OnnxRunner(graph)
    model = model.eval().to("cpu")
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    for k, (n, h, w) in enumerate(shapes):
        x = torch.rand(n, 3, h, w, generator=generator)
        fed = fed_coarse = None
        if runner.takes_strength and k > 0:  # off the table: a graph that ignored the input would fail
            fed = model.strength_for(h, w) + 0.1
        if runner.takes_coarse and k > 0:
            fed_coarse = model.coarse_for(h, w) + 0.1
        kwargs = {}
        if runner.takes_strength:
            kwargs["strength"] = default_strength(model) if fed is None else fed
        if runner.takes_coarse:
            kwargs["coarse"] = default_coarse(model) if fed_coarse is None else fed_coarse
        with torch.inference_mode():
            expected = model(x, **kwargs).float()
        got = runner(x, fed, fed_coarse)
        if got.shape != expected.shape:
            raise RuntimeError(f"ONNX graph returned shape {tuple(got.shape)} for input {tuple(x.shape)}, "
                               f"PyTorch {tuple(expected.shape)}")
        worst = max(worst, float((got - expected).abs().max()))
    if not worst <= tolerance:
        raise RuntimeError(f"ONNX graph differs from PyTorch by up to {worst:.3g} (> {tolerance:g}); not used")
    return worst


def _weights_metadata(weights: Weights, net: nn.Module) -> dict[str, str]:
    import json

    meta = {"unblur.model": weights.model, "unblur.model_kwargs": json.dumps(weights.model_kwargs, sort_keys=True)}
    overlap = getattr(net, "tile_overlap", None)
    if overlap is not None:  # a .onnx file has no model object to ask; Sharpener needs it for --tile
        meta["unblur.tile_overlap"] = str(int(overlap))
    return meta


def export_onnx(weights_path: str | Path | None, out_path: str | Path, model: str | None = None,
                opset: int | None = None, strength: float | None = None) -> Path:
    """``unblur export``: write the weights at ``weights_path`` (the bundled default when ``None``) as one
    ONNX file at ``out_path``, checked in onnxruntime against PyTorch first (within 1e-4).

    ``model`` names the architecture for a bare state_dict. ``opset`` defaults to the exporter's own
    (18 or newer for torch.export). The file is written atomically, so a failed export leaves any
    existing file untouched; read what was measured back with :func:`onnx_metadata`. ``strength``
    replaces the weights' own in the exported graph (``unblur export --strength``).
    """
    weights = _load(weights_path, model)
    if strength is not None:
        weights = weights.with_strength(strength)
    net = weights.build()
    data = onnx_bytes(net, opset, _weights_metadata(weights, net))
    out = Path(out_path)
    if out.parent != Path():
        out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        tmp.write_bytes(data)
    return out


def onnx_metadata(graph: str | Path | bytes) -> dict[str, str]:
    """The metadata properties of an ONNX file (``unblur.model``, ``unblur.max_abs_diff``, ...)."""
    _require_onnx()
    import onnx

    proto = onnx.load_model_from_string(graph) if isinstance(graph, bytes) else onnx.load(str(graph))
    return {p.key: p.value for p in proto.metadata_props}


def _load(weights_path: str | Path | None, model: str | None) -> Weights:
    from unblur.infer import NO_WEIGHTS_MESSAGE, default_weights_path

    path = Path(weights_path) if weights_path is not None else default_weights_path()
    if path is None:
        raise FileNotFoundError(NO_WEIGHTS_MESSAGE)
    return load_weights(path, model)


class OnnxRunner:
    """An onnxruntime session for an unblur graph: float32 ``(N, 3, H, W)`` in, the same out (on the CPU).

    ``graph`` is a path to an ``.onnx`` file or its bytes. ``device`` ``cuda`` uses onnxruntime's CUDA
    provider (the ``onnxruntime-gpu`` package) and fails clearly without it. ``threads`` defaults to
    PyTorch's thread count, so ``OMP_NUM_THREADS``/``torch.set_num_threads`` govern both engines alike.

    ``memory_arena``: onnxruntime's CPU arena keeps every buffer it ever grew (rounded up to powers of
    two) for reuse. That is ~20% faster per call, but with tiles of several shapes it held 1.4 GB more at
    512 px tiles, which defeats tiling, so the Sharpener turns it off when it tiles (docs/benchmarks.md).
    """

    def __init__(self, graph: bytes | str | Path, device: str | torch.device = "cpu",
                 threads: int | None = None, memory_arena: bool = True) -> None:
        _require_onnx()
        import onnxruntime as ort

        dev = resolve_device(device) if not isinstance(device, torch.device) else device
        providers = ["CPUExecutionProvider"]
        if dev.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError("onnxruntime on CUDA needs the onnxruntime-gpu package; use --device cpu "
                                 "or the torch backend")
            providers.insert(0, "CUDAExecutionProvider")
        elif dev.type != "cpu":
            raise ValueError(f"onnxruntime runs on cpu or cuda here, not {dev.type}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only
        options.enable_cpu_mem_arena = memory_arena
        source = graph if isinstance(graph, bytes) else str(graph)
        self.session = ort.InferenceSession(source, options, providers=providers)
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        # a fed input with a stored default is listed among the overridable initializers, not the inputs
        names = {i.name for i in [*inputs[1:], *self.session.get_overridable_initializers()]}
        self.takes_strength = ONNX_STRENGTH in names
        self.takes_coarse = ONNX_COARSE in names
        self.device = dev

    def __call__(self, x: torch.Tensor, strength: float | None = None, coarse: float | None = None) -> torch.Tensor:
        """Run the graph on ``x``; ``strength`` and ``coarse`` feed the graph's inputs of those names (module
        doc); without them the graph uses its stored defaults."""
        feed = {self.input_name: x.detach().to("cpu", torch.float32).contiguous().numpy()}
        if strength is not None:
            if not self.takes_strength:
                raise ValueError("this ONNX graph has no strength input (exported before unblur 2026-12-07, or "
                                 "not an UnblurNet); export it again to set its strength")
            feed[ONNX_STRENGTH] = np.array(strength, dtype=np.float32)
        if coarse is not None:
            if not self.takes_coarse:
                raise ValueError("this ONNX graph has no coarse input (its weights have no coarse pass)")
            feed[ONNX_COARSE] = np.array(coarse, dtype=np.float32)
        return torch.from_numpy(self.session.run(None, feed)[0])


# In-memory exports of the models a process has run, keyed by their tensors, so several Sharpeners of one
# model (an evaluation, a test session) pay for the export once. Few entries: each is a few MB.
_CACHE: OrderedDict[str, bytes] = OrderedDict()
_CACHE_SIZE = 4


def _fingerprint(model: nn.Module) -> str:
    # repr holds the settings that are not tensors (UnblurNet.extra_repr: mean_window, strength, ...)
    digest = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}".encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def cached_onnx_bytes(model: nn.Module) -> bytes:
    """:func:`onnx_bytes` of ``model``, checked, remembered for the life of the process."""
    key = _fingerprint(model)
    if key not in _CACHE:
        _CACHE[key] = onnx_bytes(model)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return _CACHE[key]


def _onnx_strength_for(meta: dict[str, str], strength: float | None, key: str = "strength_by_size",
                       scale: float = 1.0) -> Callable[[int, int], float] | None:
    """The strength to feed an ``.onnx`` file's graph per frame size: ``strength`` if given, else the
    weights' ``strength_by_size`` table (or the table ``key``) from its metadata, times ``scale`` (at most
    2); ``None`` (its stored default) without either."""
    import json

    if strength is not None:
        return lambda height, width: strength
    table = json.loads(meta.get("unblur.model_kwargs", "{}")).get(key)
    if not table:
        return None
    return lambda height, width: min(2.0, scale * strength_at_size(table, height, width))


def _cuda_provider() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def load_onnx_sharpener(weights: str | Path | None = None, model: str | None = None, device: str = "auto",
                        tile: int = 0, overlap: int = 32, strength: float | None = None) -> tuple[Sharpener, str]:
    """``unblur sharpen --backend onnx``: a :class:`unblur.infer.Sharpener` running onnxruntime, and the
    model's name.

    ``weights`` is an ``.onnx`` file from ``unblur export`` (used as it is), or an unblur weights file
    (``.pth``; the bundled default when ``None``), which is exported in memory first and checked against
    PyTorch: no temporary file, a few seconds once per process. Export once with ``unblur export`` to
    skip that on every run. ``strength`` replaces the weights' own (one for every size); an ``.onnx`` file
    is fed each photo's strength from the table in its metadata, or ``strength``.
    """
    from unblur.infer import Sharpener

    dev = resolve_device(device)
    if device == "auto" and (dev.type == "mps" or (dev.type == "cuda" and not _cuda_provider())):
        dev = torch.device("cpu")  # "auto" means what this onnxruntime can use; an explicit cuda fails clearly
    plan = ExecutionPlan(dev, backend="onnxruntime")
    if weights is not None and Path(weights).suffix.lower() == ".onnx":
        if not Path(weights).is_file():
            raise FileNotFoundError(f"{weights}: ONNX file not found")
        meta = onnx_metadata(weights)
        name = meta.get("unblur.model", Path(weights).stem)
        runner = OnnxRunner(weights, dev, memory_arena=tile == 0)
        if strength is not None and not runner.takes_strength:
            raise ValueError(f"{weights}: this ONNX file takes no strength (its model has none, or it was "
                             "exported before 2026-12-07: export it again)")
        min_overlap = int(meta.get("unblur.tile_overlap", "0"))
        # --strength scales the coarse pass too (Weights.with_strength)
        coarse_for = (_onnx_strength_for(meta, None, "coarse_by_size", 1.0 if strength is None else strength)
                      if runner.takes_coarse else None)
        return Sharpener(None, plan, tile, overlap, runner=runner, min_overlap=min_overlap,
                         strength_for=_onnx_strength_for(meta, strength) if runner.takes_strength else None,
                         coarse_for=coarse_for), name
    loaded = _load(weights, model)
    if strength is not None:
        loaded = loaded.with_strength(strength)
    net = loaded.build()
    runner = OnnxRunner(cached_onnx_bytes(net), dev, memory_arena=tile == 0)
    return Sharpener(net, plan, tile, overlap, runner=runner), loaded.model
