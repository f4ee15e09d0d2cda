"""Calibration: a compiled plan + an ONNX model + data -> one encoding per quantized tensor.

Pipeline (``docs/runtime.md`` describes it with an example):

1. Quantized plan entries are grouped into *quantizers*: tensors tied by ``shared_with`` form one
   quantizer whose statistics are the union of theirs and whose :class:`Encoding` object is shared.
2. Parameter quantizers (weights, biases, norm statistics) are calibrated first, from the stored
   values. Under AIMET semantics the model's parameters are then replaced by their
   quantize-dequantized values, because AIMET's ``compute_encodings`` runs the forward pass with
   parameter quantizers in ``oneShotQuantizeDequantize`` mode (conformance corpus README, "What
   AIMET does during calibration").
3. One forward pass per batch (:class:`~quantspec.runtime.execute.Executor`) feeds every
   activation quantizer; activations themselves stay float (AIMET's ``updateStats`` mode: they
   are observed, not quantized). Tied tensors update their shared calibrator one after the other
   in execution order, as AIMET's shared quantizer object is called once per tensor.
4. Encodings are computed: fixed ranges (``fixed_range``), fixed per-channel ``encodings`` and
   float dtypes are applied, then under AIMET semantics the weights of Conv / ConvTranspose / Gemm
   / MatMul are re-encoded as AIMET's ``_adjust_weight_scales_against_overflow`` does (scale
   enlarged against int32 bias and requantization overflow when needed, and in any case rounded
   to float32 with float32 ``min``/``max``).

*Semantics* say whose arithmetic the encodings follow; :func:`semantics_for_profile` picks them
from the profile's dialect:

========= ========================================================================================
aimet     aimet-onnx 2.x: min-max ``aimet2`` (C.1), fixed ranges by the Python path (C.2, half to
          even), TF-enhanced / percentile with 1536 buckets, params quantize-dequantized in the
          forward pass (C.5, half away from zero), onnxruntime without graph optimizations or
          weight pre-packing (so that every float operation happens as in AIMET's simulation
          graph), weight re-encoding as in step 4; ``--quant-scheme`` applies to every quantizer.
aimet1    AIMET <= mid-2024: ``aimet1`` min-max, 512 buckets, no weight re-encoding.
qnn       encodings files: QNN "tf" (spec 004) for calibrated tensors; fixed encodings keep the
          file's scale bit for bit.
vitis     vai_q_pytorch: the Vitis calibrator (per-batch ``diffs``/``maxmin``/... reduced by
          ``calib_statistic_method``), float or power-of-two scales.
amct      AMCT: ``amct`` scale/offset for min-max (ARQ), IFMR / HFMG calibrators.
generic   everything else (``.qspec``): the method each tensor names, min-max encodings by the
          ``aimet2`` scheme (zero exactly representable) unless the profile says
          ``calibrate { scheme: <name> }`` (any of :data:`quantspec.runtime.SCHEMES`); a float
          forward pass, as onnxruntime's ``quantize_static`` calibrates.
========= ========================================================================================

Errors: ``E440`` a plan tensor the model does not have; ``E441`` a plan setting calibration cannot
honour (blockwise, float bit widths); ``E442`` unknown semantics / quant scheme / calibration
parameter; ``E443`` a fixed encoding whose channel count does not match the tensor.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import QuantspecError, did_you_mean
from .calibrators import (
    Calibrator,
    EntropyCalibrator,
    HfmgCalibrator,
    IfmrCalibrator,
    MinMaxCalibrator,
    MseCalibrator,
    PercentileCalibrator,
    TfEnhancedCalibrator,
    VitisCalibrator,
)
from .encoding import Encoding, num_steps
from .quantize import fake_quantize
from .schemes import SCHEMES, encoding_from_range

if TYPE_CHECKING:
    import onnx

    from ..compiler.plan import Entry, Plan
    from ..dialects.encodings_model import TensorEncoding
    from ..ir import Profile

UNKNOWN_TENSOR = "E440"
UNSUPPORTED = "E441"
UNKNOWN_OPTION = "E442"
BAD_FIXED = "E443"
NO_DERIVATION = "E444"

PARAM_KINDS = ("weight", "bias", "param")
QUANT_SCHEMES = ("min_max", "tf_enhanced", "percentile")
# quantizer_args.quant_scheme spelling of AIMET's QuantScheme names (aimet.md D).
AIMET_SCHEME_NAMES = {"min_max": "min_max", "tf_enhanced": "post_training_tf_enhanced",
                      "percentile": "post_training_percentile"}
_QUANT_SCHEME_METHOD = {"min_max": "minmax", "tf_enhanced": "tf_enhanced",
                        "percentile": "percentile"}
# aimet-onnx _adjust_weight_scales_against_overflow: the op types whose weights it re-encodes.
_AIMET_MATMUL_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")
# calibration: input_x_weight -- a bias encoding derived from its op's input and weight encodings.
DERIVED = "input_x_weight"
# Ops whose input 2 is a bias scaled by input 0 x input 1 (onnxruntime's quantize_bias_tensor
# callers: QDQConv, QDQGemm, QDQNormalization).
_BIAS_AT_2 = ("Conv", "ConvTranspose", "Gemm", "InstanceNormalization", "LayerNormalization",
              "BatchNormalization")
_BIAS_STEPS = 2**31 - 2**15  # "slightly discounted num_steps" of that function
_MIN_REQUANT_SCALE = 2**-23.5


def _error(code: str, message: str, hint: str = "") -> QuantspecError:
    return QuantspecError(code, message, hint=hint)


# ---------------------------------------------------------------------------------------------
# Semantics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Semantics:
    """Whose arithmetic calibration follows (see the module docstring)."""

    name: str
    scheme: str  # range -> encoding for min-max style calibrators
    param_qdq: bool  # parameters quantize-dequantized in the forward pass
    kernel: str  # fake-quant kernel for that (quantspec.runtime.quantize SEMANTICS)
    optimization: str  # onnxruntime graph optimization level
    prepacking: bool  # onnxruntime weight pre-packing
    scheme_for_params: bool  # quant_scheme also replaces the parameters' method
    fixed: str  # fixed_range path: "aimet" (C.2), "exact" (file grids) or "scheme"
    adjust_weights: bool  # AIMET weight re-encoding after calibration (step 4)
    pdf_version: str  # AIMET histogram version for tf_enhanced / percentile
    percentile: float  # default percentile


SEMANTICS: dict[str, Semantics] = {
    "aimet": Semantics("aimet", "aimet2", True, "aimet", "disable", False, True, "aimet", True,
                       "2.x", 100.0),
    "aimet1": Semantics("aimet1", "aimet1", True, "aimet", "disable", False, True, "aimet",
                        False, "1.x", 100.0),
    "qnn": Semantics("qnn", "qnn_tf", False, "onnx", "all", True, False, "exact", False,
                     "2.x", 99.99),
    "vitis": Semantics("vitis", "vitis_float", False, "vitis", "all", True, False, "scheme",
                       False, "2.x", 99.99),
    "amct": Semantics("amct", "amct", False, "onnx", "all", True, False, "scheme", False,
                      "2.x", 99.99),
    "generic": Semantics("generic", "aimet2", False, "onnx", "all", True, False, "scheme",
                         False, "2.x", 99.99),
    # onnxruntime quantize_static: its calibration session runs with every graph optimization
    # off (quantization/calibrate.py, ORT_DISABLE_ALL), so fused kernels do not change the last
    # bit of an activation; ranges become grids by compute_scale_zp (the "ort" scheme).
    "ort": Semantics("ort", "ort", False, "onnx", "disable", True, False, "scheme", False,
                     "2.x", 99.99),
}


def semantics_for_profile(profile: Profile) -> str:
    """The semantics matching a profile's origin.

    ``calibrate { semantics: ... }`` wins; then the dialect it was read from (AIMET config ->
    ``aimet``, or ``aimet1`` for AIMET 1.x reads; encodings file -> ``qnn``; Vitis / AMCT ->
    their own); then vendor data it carries (a ``.qspec`` extending ``aimet/*`` or ``qnn/*``
    holds ``aimet.version`` in its ``meta``); else ``generic``.
    """
    chosen = profile.calibrate.get("semantics")
    if chosen is not None:
        return str(chosen.value)
    dialect = getattr(profile, "dialect", "qspec")
    version = profile.meta.get("aimet.version")
    if dialect == "aimet" or version is not None:
        return "aimet1" if version is not None and str(version.value) == "1" else "aimet"
    if dialect == "encodings":
        return "qnn"
    if dialect in ("vitis", "amct"):
        return dialect
    for prefix in ("vitis", "amct"):
        if any(k.startswith(prefix + ".") for k in profile.meta):
            return prefix
    return "generic"


def resolve_semantics(name: str | None, plan: Plan) -> Semantics:
    """``name``, else ``calibrate { semantics: ... }`` of the plan, else ``generic``.

    ``calibrate { scheme: ... }`` replaces the min-max scheme.
    """
    chosen = name or plan.calibrate.get("semantics") or "generic"
    if chosen not in SEMANTICS:
        raise _error(UNKNOWN_OPTION, f"unknown calibration semantics {chosen!r}",
                     did_you_mean(str(chosen), SEMANTICS)
                     or "choose one of: " + ", ".join(SEMANTICS))
    sem = SEMANTICS[chosen]
    scheme = plan.calibrate.get("scheme")
    if scheme is not None:
        from .schemes import SCHEME_ALIASES

        if SCHEME_ALIASES.get(scheme, scheme) not in SCHEMES:
            raise _error(UNKNOWN_OPTION, f"calibrate scheme {scheme!r} is not a known scheme",
                         did_you_mean(str(scheme), SCHEMES)
                         or "schemes: " + ", ".join(SCHEMES))
        sem = Semantics(**{**sem.__dict__, "scheme": SCHEME_ALIASES.get(scheme, scheme)})
    return sem


# ---------------------------------------------------------------------------------------------
# Calibrator factory
# ---------------------------------------------------------------------------------------------

_METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "minmax": ("combine",),
    "tf_enhanced": (),
    "percentile": ("percentile", "combine"),
    "entropy": ("num_bins", "start_bin", "stride", "combine"),
    "mse": ("num_candidates", "num_bins", "combine"),
    "diffs": ("combine",),
    "ifmr": ("max_percentile", "min_percentile", "search_range_start", "search_range_end",
             "search_step", "num_bins"),
    "hfmg": ("num_of_bins",),
    "moving_average": ("momentum", "combine"),
    "input_x_weight": (),
}
_VITIS_METHOD = {"minmax": "maxmin", "percentile": "percentile", "mse": "mse",
                 "entropy": "entropy", "diffs": "diffs"}
_VITIS_ROUNDING = ("half_even", "half_up", "half_down", "std_round")


@dataclass
class _Method:
    name: str
    params: dict[str, Any]


def _grid(entry: Entry, sem: Semantics) -> dict[str, Any]:
    sym = bool(entry.get("symmetric"))
    strict = bool(entry.get("strict_symmetric")) or (sym and bool(entry.get("narrow_range")))
    unsigned = bool(entry.get("unsigned_symmetric")) and sym and not strict
    signed = entry.get("signed")
    grid: dict[str, Any] = {"bits": int(entry.get("bits")), "symmetric": sym, "strict": strict,
                            "unsigned": unsigned}
    if signed is not None and not sem.name.startswith("aimet"):
        grid["signed"] = bool(signed)
    return grid


def _method(entry: Entry, plan_default: Any, override: str | None, percentile: float | None,
            is_param: bool, sem: Semantics) -> _Method:
    cal = entry.get("calibration")
    name, params = cal.method, dict(cal.params)
    if "calibration" not in entry.why and isinstance(plan_default, Mapping) and \
            (not is_param or sem.scheme_for_params):
        # calibrate { method: ... } is the profile-wide default for the activations no rule
        # sets, like onnxruntime's calibrate_method; parameters keep min-max (except for AIMET,
        # where quant_scheme covers every quantizer).
        name = plan_default.get("method", name)
        params = dict(plan_default.get("params", {}))
    if override is not None and (not is_param or sem.scheme_for_params):
        name, params = _QUANT_SCHEME_METHOD[override], {}
    if name == "percentile" and percentile is not None:
        params["percentile"] = percentile
    allowed = _METHOD_PARAMS.get(name)
    if allowed is None:
        raise _error(UNKNOWN_OPTION, f"tensor '{entry.name}': unknown calibration method "
                     f"{name!r}", did_you_mean(name, _METHOD_PARAMS)
                     or "methods: " + ", ".join(_METHOD_PARAMS))
    for key in params:
        if key not in allowed:
            raise _error(UNKNOWN_OPTION, f"tensor '{entry.name}': calibration {name} has no "
                         f"parameter {key!r}", did_you_mean(key, allowed)
                         or f"parameters of {name}: {', '.join(allowed) or 'none'}")
    return _Method(name, params)


def make_calibrator(entry: Entry, method: _Method, sem: Semantics, axis: int | None
                    ) -> tuple[Calibrator, str]:
    """The calibrator for one quantizer and a note when the method had to be approximated."""
    grid = _grid(entry, sem)
    p = method.params
    pow2 = entry.get("scale_type") == "power_of_two"
    scheme = "vitis_pof2" if pow2 else sem.scheme
    note = ""
    name = method.name
    if name == "diffs" or (sem.name == "vitis" and name in _VITIS_METHOD):
        rounding = entry.get("rounding")
        return VitisCalibrator(
            method=_VITIS_METHOD.get(name, name),
            calib_statistic_method=p.get("combine", "modal"),
            scale_type="power_of_two" if pow2 or name == "diffs" else "float",
            round_mode=rounding if rounding in _VITIS_ROUNDING else "half_even",
            percentage=p.get("percentile", sem.percentile), axis=axis, **grid), note
    if name == "moving_average":
        note = "moving_average calibrated as minmax (no moving-average calibrator)"
        name = "minmax"
    if name in ("entropy", "mse", "ifmr", "hfmg") and axis is not None:
        note = f"{name} has no per-channel form; calibrated as minmax per channel"
        name = "minmax"
    elif name == "entropy" and grid["bits"] > 16:
        # The KL search compares 2^(bits-1) quantized levels: meaningless (and GiBs) for int32.
        note = f"entropy on a {grid['bits']}-bit grid; calibrated as minmax"
        name = "minmax"
    if name == "minmax":
        return MinMaxCalibrator(axis=axis, scheme=scheme, **grid), note
    if name == "tf_enhanced":
        return TfEnhancedCalibrator(axis=axis, version=sem.pdf_version, **grid), note
    if name == "percentile":
        return PercentileCalibrator(percentile=p.get("percentile", sem.percentile), axis=axis,
                                    version=sem.pdf_version, **grid), note
    if name == "entropy":
        kw = {k: p[k] for k in ("num_bins", "start_bin", "stride") if k in p}
        return EntropyCalibrator(scheme=scheme, **kw, **grid), note
    if name == "mse":
        kw = {k: p[k] for k in ("num_candidates", "num_bins") if k in p}
        return MseCalibrator(scheme=scheme, rounding=entry.get("rounding"), **kw, **grid), note
    if name == "ifmr":
        return IfmrCalibrator(**p, **grid), note
    return HfmgCalibrator(**p, **grid), note


# ---------------------------------------------------------------------------------------------
# Model helpers
# ---------------------------------------------------------------------------------------------


class _ModelView:
    """Static tensors (initializers and Constant-node values) and node order of a model."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        g = model.graph
        self.static: dict[str, onnx.TensorProto] = {t.name: t for t in g.initializer}
        self.position: dict[str, int] = {}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for vi in g.input:
            self.position.setdefault(vi.name, -1)
        for name in self.static:
            self.position.setdefault(name, -1)
        for i, node in enumerate(g.node):
            for inp in node.input:
                self.consumers.setdefault(inp, []).append(node)
            for out in node.output:
                if out:
                    self.position.setdefault(out, i)
                    self.producer[out] = node
            if node.op_type == "Constant" and node.output:
                for attr in node.attribute:
                    if attr.name == "value" and attr.type == attr.TENSOR:
                        self.static.setdefault(node.output[0], attr.t)

    def has(self, name: str) -> bool:
        return name in self.position

    def value(self, name: str) -> np.ndarray:
        from onnx import numpy_helper

        return numpy_helper.to_array(self.static[name])


@contextmanager
def _replaced(view: _ModelView, values: Mapping[str, np.ndarray]) -> Iterator[None]:
    """Temporarily store ``values`` in the model's static tensors (restored on exit)."""
    from onnx import TensorProto, helper, numpy_helper

    saved: dict[str, TensorProto] = {}
    try:
        for name, arr in values.items():
            tp = view.static[name]
            keep = TensorProto()
            keep.CopyFrom(tp)
            saved[name] = keep
            dtype = helper.tensor_dtype_to_np_dtype(keep.data_type) if keep.data_type \
                else np.float32
            tp.CopyFrom(numpy_helper.from_array(np.asarray(arr, dtype=dtype), tp.name))
        yield
    finally:
        for name, keep in saved.items():
            view.static[name].CopyFrom(keep)


# ---------------------------------------------------------------------------------------------
# Quantizers
# ---------------------------------------------------------------------------------------------


@dataclass
class Quantizer:
    """One quantizer: its tensors (execution order), settings (the leader entry), state."""

    tensors: list[str]
    entry: Entry
    kind: str  # "param" | "activation"
    method: str = ""
    calibrator: Calibrator | None = None
    encoding: Encoding | None = None
    note: str = ""
    updates: int = 0

    @property
    def axis(self) -> int | None:
        return self.entry.get("axis") if self.entry.get("per_channel") else None


def _groups(plan: Plan, view: _ModelView) -> list[Quantizer]:
    quantized = {e.name: e for e in plan.entries if e.get("quantized")}
    parent = {n: n for n in quantized}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for name, e in quantized.items():
        for other in e.shared_with:
            if other in quantized:
                parent[find(other)] = find(name)
    members: dict[str, list[str]] = {}
    for name in quantized:  # plan order: the first member leads
        members.setdefault(find(name), []).append(name)
    out = []
    for names in members.values():
        leader = quantized[names[0]]
        for n in names:
            if not view.has(n):
                raise _error(UNKNOWN_TENSOR, f"plan tensor '{n}' is not in the model",
                             "compile the plan against the same model you calibrate")
        kind = "param" if leader.kind in PARAM_KINDS else "activation"
        if kind == "param" and any(n not in view.static for n in names):
            raise _error(UNKNOWN_TENSOR, f"parameter '{leader.name}' has no stored value in the "
                         "model", "parameters must be initializers or Constant outputs")
        ordered = sorted(names, key=lambda n: (view.position[n], names.index(n)))
        out.append(Quantizer(ordered, leader, kind))
    return out


# ---------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------


@dataclass
class CalibrationResult:
    """What :func:`calibrate` computed.

    Attributes:
        encodings: tensor name -> :class:`Encoding`; tied tensors share one object. Quantized
            tensors that saw no data are absent (listed in ``uncalibrated``).
        kinds: tensor name -> ``"param"`` or ``"activation"`` (encodings file section).
        stats: tensor name -> statistics of its quantizer (method, updates, observed range, ...).
        semantics: the :class:`Semantics` name used; ``quant_scheme`` the override, if any.
        batches: forward passes run; ``backend``: the executor's backend; ``seconds``: wall time.
        notes: approximations made (a method replaced by another), one line each.
    """

    encodings: dict[str, Encoding]
    kinds: dict[str, str]
    stats: dict[str, dict[str, Any]]
    semantics: str
    quant_scheme: str | None
    batches: int
    backend: str
    seconds: float
    uncalibrated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def tensor_encodings(self) -> list[TensorEncoding]:
        """The encodings as :class:`~quantspec.dialects.encodings_model.TensorEncoding` entries
        (plan order), ready for :func:`~quantspec.dialects.encodings_write.dumps`."""
        from ..dialects.encodings_model import TensorEncoding

        out = []
        keep_signed = not self.semantics.startswith("aimet")
        for name in self.order:
            enc = self.encodings.get(name)
            if enc is None:
                continue
            kind = self.kinds[name]
            if enc.dtype == "float":
                out.append(TensorEncoding.float_(name, enc.bits, kind))
                continue
            per_channel = enc.axis is not None
            scale = enc.scale.tolist() if per_channel else float(enc.scale[0])
            offset = enc.offset.tolist() if per_channel else float(enc.offset[0])
            out.append(TensorEncoding.from_grid(
                name, scale, offset, enc.bits, symmetric=enc.symmetric, kind=kind,
                axis=enc.axis, signed=enc.signed if keep_signed else None))
        return out

    def encodings_text(self, version: str = "1.0.0", *,
                       quantizer_args: dict[str, Any] | None = None,
                       producer: dict[str, Any] | None = None) -> str:
        """An encodings file (0.6.1 / 1.0.0 / 2.0.0 / 2.1.0) through the encodings writer."""
        from .. import __version__
        from ..dialects.encodings_write import encodings_file_from_entries

        prod = producer if producer is not None else {"package": "quantspec",
                                                      "version": __version__}
        return encodings_file_from_entries(
            self.tensor_encodings(), version,
            quantizer_args=quantizer_args if version in ("0.6.1", "1.0.0") else None,
            producer=prod)

    def report(self) -> dict[str, Any]:
        """JSON-friendly summary (the ``calibrate`` command's report)."""
        shared = {id(e) for e in self.encodings.values()}
        return {
            "semantics": self.semantics,
            "quant_scheme": self.quant_scheme,
            "backend": self.backend,
            "batches": self.batches,
            "seconds": round(self.seconds, 6),
            "tensors_calibrated": len(self.encodings),
            "quantizers": len(shared),
            "params": sum(1 for n in self.encodings if self.kinds[n] == "param"),
            "activations": sum(1 for n in self.encodings if self.kinds[n] != "param"),
            "uncalibrated": self.uncalibrated,
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------


def feeds_from(data: Any, model: onnx.ModelProto, batch_size: int = 1
               ) -> tuple[Iterable[Mapping[str, np.ndarray]], int | None]:
    """Feeds (one dict per forward pass) and their number when known.

    ``data``: a path (``.npz``, ``.npy``, a directory of ``.npy`` files, a QNN input list; read by
    :func:`~quantspec.runtime.data.open_data`), a :class:`~quantspec.runtime.data.DataSource`,
    one feed dict, or an iterable of feed dicts (already batched; ``batch_size`` then ignored).
    """
    import os

    from .data import DataSource, batches, count_batches, open_data
    from .execute import input_specs

    if isinstance(data, (str, os.PathLike)):
        data = open_data(data, input_specs(model))
    if isinstance(data, DataSource):
        return batches(data, batch_size), count_batches(data, batch_size)
    if isinstance(data, Mapping):
        return [data], 1
    total = len(data) if isinstance(data, Sequence) else None
    return data, total


def calibrate(
    plan: Plan,
    model: onnx.ModelProto,
    data: Any,
    *,
    batch_size: int = 1,
    semantics: str | None = None,
    quant_scheme: str | None = None,
    percentile: float | None = None,
    progress: bool = False,
    total: int | None = None,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    backend: str | None = None,
    param_qdq: bool | None = None,
    max_batches: int | None = None,
    workers: int | None = None,
) -> CalibrationResult:
    """Calibrate every quantized tensor of ``plan`` on ``model`` with ``data``.

    Args:
        plan: the compiled plan (:func:`quantspec.compiler.compile_profile`).
        model: the same model, with weights (:func:`quantspec.onnx_io.load_model`); it is
            modified during the call (parameter values, extra outputs) and restored.
        data: a data path, a :class:`~quantspec.runtime.data.DataSource`, or feeds (one dict
            ``{graph input: array}`` per forward pass); see :func:`feeds_from`.
        batch_size: samples per forward pass for paths and data sources (joined along axis 0;
            needs a symbolic batch dimension). With tf_enhanced / percentile every forward pass
            is one histogram batch, so the batch size changes the result, as in AIMET.
        semantics: one of :data:`SEMANTICS` (default: the plan's ``calibrate { semantics }``,
            else ``generic``; :func:`semantics_for_profile` maps a profile to its own).
        quant_scheme: ``min_max``, ``tf_enhanced`` or ``percentile``: AIMET's
            ``QuantizationSimModel(quant_scheme=...)``; replaces the method of activations (and,
            under AIMET semantics, of parameters as AIMET does).
        percentile: percentile for the ``percentile`` method (AIMET's default is 100).
        progress: draw a progress bar (tqdm, if installed); ``total``: batches expected.
        providers, threads, backend: executor options (:class:`~.execute.Executor`).
        param_qdq: quantize-dequantize parameters in the forward pass (default: per semantics).
        max_batches: stop after this many batches (default: the plan's ``calibrate { batches }``).
        workers: threads updating calibrators while onnxruntime runs the next batch (default:
            :func:`quantspec.runtime.get_num_threads`; 1 = no overlap). Every calibrator still
            sees its batches in order, so the result does not depend on it.

    Returns:
        a :class:`CalibrationResult`.
    """
    from .execute import Executor
    from .progress import progress as progress_bar

    start = time.perf_counter()
    sem = resolve_semantics(semantics, plan)
    if quant_scheme is not None and quant_scheme not in QUANT_SCHEMES:
        raise _error(UNKNOWN_OPTION, f"unknown quant scheme {quant_scheme!r}",
                     did_you_mean(quant_scheme, QUANT_SCHEMES)
                     or "choose one of: " + ", ".join(QUANT_SCHEMES))
    if max_batches is None and isinstance(plan.calibrate.get("batches"), int):
        max_batches = plan.calibrate["batches"]
    view = _ModelView(model)
    quantizers = _groups(plan, view)
    plan_default = plan.calibrate.get("method")
    notes: list[str] = []
    kinds: dict[str, str] = {}
    for q in quantizers:
        for n in q.tensors:
            kinds[n] = q.kind
        _check_supported(q.entry)
        if q.entry.get("dtype") == "float" or _fixed_only(q.entry):
            continue
        m = _method(q.entry, plan_default, quant_scheme, percentile, q.kind == "param", sem)
        if m.name == DERIVED:
            q.method = DERIVED  # computed from other encodings once they exist (step 5)
            continue
        q.calibrator, q.note = make_calibrator(q.entry, m, sem, q.axis)
        q.method = m.name if not q.note else f"{m.name} (as minmax)"
        if q.note:
            notes.append(f"{q.entry.name}: {q.note}")

    # 2. parameters, from their stored values
    params = [q for q in quantizers if q.kind == "param"]
    for q in params:
        if q.method == DERIVED:
            continue
        if q.calibrator is not None:
            for n in q.tensors:
                q.calibrator.update(view.value(n))
                q.updates += 1
        q.encoding = _finish(q, sem)
        _check_channels(q, view)
    do_qdq = sem.param_qdq if param_qdq is None else param_qdq
    qdq_values: dict[str, np.ndarray] = {}
    if do_qdq:
        for q in params:
            if q.encoding is None or q.encoding.dtype != "int":
                continue
            rounding = None if sem.kernel == "aimet" else q.entry.get("rounding")
            for n in q.tensors:
                qdq_values[n] = fake_quantize(view.value(n), q.encoding, semantics=sem.kernel,
                                              rounding=rounding)

    # 3. activations, from forward passes
    acts = [q for q in quantizers if q.kind == "activation" and q.calibrator is not None]
    fetch = list(dict.fromkeys(n for q in acts for n in q.tensors))
    batches = 0
    backend_name = ""
    if acts:
        # histogram updates on worker threads overlap the next forward pass; onnxruntime's
        # spinning threads would hold the cores they need (bench_calibrate.py: ~4% of a
        # percentile or entropy run); min-max updates are too light to matter
        busy = _worker_count(workers, len(acts)) > 1 and not all(
            isinstance(q.calibrator, MinMaxCalibrator) for q in acts)
        with _replaced(view, qdq_values):
            ex = Executor(model, fetch, providers=providers, threads=threads, backend=backend,
                          optimization=sem.optimization, prepacking=sem.prepacking,
                          spinning=not busy)
        backend_name = ex.backend
        if ex.fallback_reason:
            notes.append(f"onnxruntime could not run the model ({ex.fallback_reason}); used "
                         "onnx's reference evaluator")
        feeds, known = feeds_from(data, model, batch_size)
        total = known if total is None else total
        if max_batches is not None and total is not None:
            total = min(total, max_batches)
        with _Updater(acts, workers) as updater:
            for feed in progress_bar(feeds, total=total, desc="calibrating", enabled=progress):
                if max_batches is not None and batches >= max_batches:
                    break
                updater.submit(ex.run(feed))
                batches += 1
    uncalibrated: list[str] = []
    for q in quantizers:
        if q.kind == "activation":
            q.encoding = _finish(q, sem)
        if q.encoding is None and q.method != DERIVED:
            uncalibrated += q.tensors

    # 4. AIMET re-encodes matmul-like weights against overflow (float32 scales)
    if sem.adjust_weights:
        _aimet_adjust_weights(quantizers, view, {e.name: e.role for e in plan.entries})

    # 5. int32 biases whose scale is input scale x weight scale
    _derive_bias_encodings([q for q in quantizers if q.method == DERIVED], quantizers, view, sem)

    encodings: dict[str, Encoding] = {}
    stats: dict[str, dict[str, Any]] = {}
    for q in quantizers:
        st = _stats(q)
        for n in q.tensors:
            stats[n] = st
            if q.encoding is not None:
                encodings[n] = q.encoding
    order = [e.name for e in plan.entries if e.name in kinds]
    return CalibrationResult(
        encodings=encodings, kinds=kinds, stats=stats, semantics=sem.name,
        quant_scheme=quant_scheme, batches=batches, backend=backend_name,
        seconds=time.perf_counter() - start, uncalibrated=uncalibrated, notes=notes,
        order=order)


class _Updater:
    """Feeds forward-pass outputs to the activation calibrators.

    With ``workers > 1`` the updates of batch ``k`` run on a thread pool while the caller runs
    the model on batch ``k + 1`` (onnxruntime and numpy both release the GIL); the updates of one
    batch finish before those of the next are queued, so each calibrator sees its batches, and
    the tensors of a tied group, in order. Quantizers are spread over the workers by data size.
    """

    def __init__(self, quantizers: list[Quantizer], workers: int | None) -> None:
        self.quantizers = quantizers
        self.workers = _worker_count(workers, len(quantizers))
        self.pool: ThreadPoolExecutor | None = None
        self.pending: list[Future[None]] = []

    def __enter__(self) -> _Updater:
        if self.workers > 1:
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="quantspec-calib")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._wait()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, out: Mapping[str, np.ndarray]) -> None:
        if self.pool is None:
            _update(self.quantizers, out)
            return
        self._wait()
        shares: list[list[Quantizer]] = [[] for _ in range(self.workers)]
        load = [0] * self.workers
        sizes = {id(q): sum(out[n].size for n in q.tensors) for q in self.quantizers}
        for q in sorted(self.quantizers, key=lambda q: -sizes[id(q)]):
            i = load.index(min(load))
            shares[i].append(q)
            load[i] += sizes[id(q)]
        self.pending = [self.pool.submit(_update, share, out) for share in shares if share]

    def _wait(self) -> None:
        pending, self.pending = self.pending, []
        for f in pending:
            f.result()


def _worker_count(workers: int | None, quantizers: int) -> int:
    from .parallel import get_num_threads

    n = get_num_threads() if workers is None else max(1, int(workers))
    return min(n, quantizers)


def _update(quantizers: list[Quantizer], out: Mapping[str, np.ndarray]) -> None:
    for q in quantizers:
        assert q.calibrator is not None
        for n in q.tensors:
            arr = out[n]
            if arr.dtype.kind != "f":
                continue
            q.calibrator.update(arr)
            q.updates += 1


def _check_supported(entry: Entry) -> None:
    if entry.get("block_size"):
        raise _error(UNSUPPORTED, f"tensor '{entry.name}': blockwise quantization (block_size "
                     f"{entry.get('block_size')}) cannot be calibrated",
                     "use per-channel quantization for this tensor")
    if entry.get("dtype") == "float" and entry.get("bits") not in (16, 32):
        raise _error(UNSUPPORTED, f"tensor '{entry.name}': float{entry.get('bits')} is not "
                     "supported", "float tensors are float16 or float32")


def _check_channels(q: Quantizer, view: _ModelView) -> None:
    enc = q.encoding
    if enc is None or enc.axis is None:
        return
    for n in q.tensors:
        shape = view.value(n).shape
        ax = enc.axis + len(shape) if enc.axis < 0 else enc.axis
        if not 0 <= ax < len(shape) or shape[ax] != enc.channels:
            raise _error(BAD_FIXED, f"parameter '{n}' of shape {list(shape)} has no {enc.channels} "
                         f"channels along axis {enc.axis}",
                         "give one encoding per channel of the tensor (and the right axis)")


def _fixed_only(entry: Entry) -> bool:
    """The encoding needs no statistics (fixed per-channel encodings, a full fixed range)."""
    if entry.get("encodings") is not None:
        return True
    fr = entry.get("fixed_range")
    return fr is not None and fr[0] is not None and fr[1] is not None


def _finish(q: Quantizer, sem: Semantics) -> Encoding | None:
    """The quantizer's encoding from its statistics and fixed settings (None: no data)."""
    e = q.entry
    if e.get("dtype") == "float":
        return Encoding.float_cast(int(e.get("bits")))
    grid = _grid(e, sem)
    fixed_encs = e.get("encodings")
    if fixed_encs is not None:
        return _fixed_channels(e, fixed_encs, grid, sem)
    stats_enc = None
    if q.calibrator is not None:
        try:
            stats_enc = q.calibrator.encoding(**{k: v for k, v in grid.items()})
        except QuantspecError as exc:
            if exc.code != "E408":  # no data: the tensor stays uncalibrated
                raise
    fr = e.get("fixed_range")
    if fr is None:
        return stats_enc
    lo, hi = fr
    if (lo is None or hi is None) and stats_enc is None:
        return None
    lo_v = float(stats_enc.min[0]) if lo is None and stats_enc is not None else lo
    hi_v = float(stats_enc.max[0]) if hi is None and stats_enc is not None else hi
    return _fixed_range(lo_v, hi_v, grid, sem, e)


def _fixed_range(lo: float, hi: float, grid: dict[str, Any], sem: Semantics,
                 e: Entry) -> Encoding:
    if sem.fixed == "aimet":
        # aimet.md C.2: create_encoding_from_min_max(fixed or calibrated min/max, bw, sym,
        # strict); Python round (half to even), unsigned ignored.
        return encoding_from_range(lo, hi, grid["bits"], scheme="aimet_fixed",
                                   symmetric=grid["symmetric"], strict=grid["strict"])
    if sem.fixed == "exact":
        return _exact([lo], [hi], grid, None)
    scheme = "vitis_pof2" if e.get("scale_type") == "power_of_two" else sem.scheme
    return encoding_from_range(lo, hi, scheme=scheme, **grid)


def _fixed_channels(e: Entry, pairs: Sequence[Sequence[float]], grid: dict[str, Any],
                    sem: Semantics) -> Encoding:
    mins = [float(p[0]) for p in pairs]
    maxs = [float(p[1]) for p in pairs]
    axis = e.get("axis") if len(pairs) > 1 or e.get("per_channel") else None
    if len(pairs) > 1 and axis is None:
        axis = 0
    if sem.fixed in ("exact", "aimet"):
        return _exact(mins, maxs, grid, axis)
    scheme = "vitis_pof2" if e.get("scale_type") == "power_of_two" else sem.scheme
    return encoding_from_range(mins, maxs, scheme=scheme, axis=axis, **grid)


def _exact(mins: list[float], maxs: list[float], grid: dict[str, Any],
           axis: int | None) -> Encoding:
    """AIMET 2.x min-max grids of ranges read from a file, scale kept bit for bit."""
    from ..dialects.encodings_model import compute_encoding

    pairs = [compute_encoding(lo, hi, grid["bits"], symmetric=grid["symmetric"],
                              strict=grid["strict"], unsigned=grid["unsigned"])
             for lo, hi in zip(mins, maxs, strict=True)]
    return Encoding.from_scale_offset(
        [p[0] for p in pairs], [p[1] for p in pairs], grid["bits"],
        symmetric=grid["symmetric"], strict=grid["strict"], unsigned=grid["unsigned"],
        signed=grid.get("signed"), axis=axis)


def _stats(q: Quantizer) -> dict[str, Any]:
    st: dict[str, Any] = {"kind": q.kind, "tensors": list(q.tensors),
                          "method": q.method or ("fixed" if q.encoding is not None else ""),
                          "updates": q.updates}
    cal = q.calibrator
    if isinstance(cal, MinMaxCalibrator) and cal.min is not None and cal.max is not None:
        st["observed_min"] = [float(v) for v in cal.min]
        st["observed_max"] = [float(v) for v in cal.max]
    if cal is not None:
        st["state_bytes"] = cal.state_nbytes()
    if q.note:
        st["note"] = q.note
    return st


# ---------------------------------------------------------------------------------------------
# Derived bias encodings (calibration: input_x_weight)
# ---------------------------------------------------------------------------------------------


def _derive_bias_encodings(derived: list[Quantizer], quantizers: list[Quantizer],
                           view: _ModelView, sem: Semantics) -> None:
    """``scale = input scale x weight scale`` (per weight channel), zero offset, for biases.

    This is the int32 bias convention of integer kernels: onnxruntime's
    ``quantize_bias_static_impl`` (base_quantizer.py: ``bias_scale = input_scale *
    weight_scale``, float32 arrays), the TFLite quantization spec and QNN. The bias belongs to
    the op reading it at input 2 (Conv, ConvTranspose, Gemm, and the norms, whose "weight" is
    their scale) or, for a MatMul/Add pair, to the MatMul before the Add; the input and the
    weight are that op's inputs 0 and 1, which must have int encodings (an input may get its
    encoding from upstream through ops that keep the grid, as the tensor onnxruntime reads).
    """
    if not derived:
        return
    by_tensor = {n: q for q in quantizers for n in q.tensors}
    for q in derived:
        try:
            _derive_bias(q, by_tensor, view, sem)
        except QuantspecError as exc:
            if exc.span is not None:
                raise
            # point at the rule that asked for input_x_weight (the plan's why)
            why = q.entry.why.get("calibration")
            d = exc.diagnostic
            raise QuantspecError(d.code, d.message, why.span() if why else None,
                                 hint=d.hint) from None


def _derive_bias(q: Quantizer, by_tensor: dict[str, Quantizer], view: _ModelView,
                 sem: Semantics) -> None:
    """One derived quantizer: its encoding from its op's input and weight encodings."""
    if any(n not in view.static for n in q.tensors):
        raise _error(NO_DERIVATION, f"tensor '{q.entry.name}': calibration input_x_weight "
                     "applies to biases (stored tensors), not to activations",
                     "calibrate the activation with minmax or a histogram method")
    scales: list[np.ndarray] = []
    for name in q.tensors:
        node, x_name, w_name = _bias_owner(name, view)
        encs = []
        for role, t in (("input", x_name), ("weight", w_name)):
            wq = by_tensor.get(t)
            enc = wq.encoding if wq is not None else None
            if enc is None or enc.dtype != "int":
                raise _error(NO_DERIVATION,
                             f"bias '{name}': calibration input_x_weight needs an int "
                             f"encoding on the {role} '{t}' of node "
                             f"'{node.name or node.op_type}', which has none",
                             f"quantize the {role} of that node, or calibrate the bias "
                             "with minmax")
            encs.append(enc)
        x_enc, w_enc = encs
        if x_enc.axis is not None:
            raise _error(NO_DERIVATION, f"bias '{name}': the input '{x_name}' has a "
                         "per-channel encoding; input_x_weight needs a per-tensor input",
                         "quantize the input per tensor")
        # float32 product, as onnxruntime computes it from its float32 scale arrays
        scales.append(np.float32(x_enc.scale[0]) * w_enc.scale.astype(np.float32))
    first = scales[0]
    if any(s.shape != first.shape or not np.array_equal(s, first) for s in scales[1:]):
        raise _error(NO_DERIVATION, f"tensors {', '.join(q.tensors)} share one encoding but "
                     "their ops give different input x weight scales",
                     "untie the biases, or calibrate them with minmax")
    q.encoding = _zero_offset_encoding(first.astype(np.float64), q, view, sem)
    _check_channels(q, view)


def _bias_owner(bias: str, view: _ModelView) -> tuple[onnx.NodeProto, str, str]:
    """The op a bias belongs to and that op's (input, weight) tensor names."""
    for node in view.consumers.get(bias, []):
        if node.op_type in _BIAS_AT_2 and len(node.input) > 2 and node.input[2] == bias:
            return node, node.input[0], node.input[1]
        if node.op_type == "Add":  # MatMul + Add: the bias is the Add's other input
            other = node.input[1] if node.input[0] == bias else node.input[0]
            mm = view.producer.get(other)
            if mm is not None and mm.op_type == "MatMul" and len(mm.input) > 1:
                return mm, mm.input[0], mm.input[1]
    raise _error(NO_DERIVATION, f"bias '{bias}': calibration input_x_weight needs an op that "
                 "reads it as a bias (input 2 of a Conv, ConvTranspose, Gemm or normalization, "
                 "or the Add after a MatMul)", "calibrate this tensor with minmax")


def _zero_offset_encoding(scale: np.ndarray, q: Quantizer, view: _ModelView,
                          sem: Semantics) -> Encoding:
    grid = _grid(q.entry, sem)
    bits, strict = grid["bits"], grid["strict"]
    if not grid["symmetric"]:
        raise _error(NO_DERIVATION, f"bias '{q.entry.name}': input_x_weight gives a zero offset, "
                     "which needs a symmetric grid", "add `symmetric` to the bias rule")
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise _error(NO_DERIVATION, f"bias '{q.entry.name}': input x weight scale is not a "
                     "positive number", "check the input and weight encodings")
    steps = num_steps(bits, True, strict)
    offset = np.full(scale.shape, -float(1 << (bits - 1)) + (1 if strict else 0))
    axis = None
    if scale.size > 1:
        shape = view.value(q.tensors[0]).shape
        axis = 0 if len(shape) >= 1 and shape[0] == scale.size else None
        if axis is None:
            raise _error(NO_DERIVATION, f"bias '{q.entry.name}' of shape {list(shape)} does not "
                         f"have the weight's {scale.size} channels", "check the model")
    return Encoding(bits=bits, scale=scale, offset=offset, min=scale * offset,
                    max=scale * (offset + steps), symmetric=True, strict=strict,
                    signed=bool(grid.get("signed", True)), axis=axis)


# ---------------------------------------------------------------------------------------------
# AIMET weight re-encoding (aimet-onnx QuantizationSimModel._adjust_weight_scales_against_overflow)
# ---------------------------------------------------------------------------------------------


def _aimet_adjust_weights(quantizers: list[Quantizer], view: _ModelView,
                          roles: Mapping[str, str]) -> None:
    """Re-encode weights of Conv/ConvTranspose/Gemm/MatMul as aimet-onnx 2.x does after
    ``compute_encodings``.

    For an op whose first input has an enabled int encoding (looking upstream through
    grid-preserving ops, aimet.md B.7) and whose weight (input 1, a parameter) has one: the
    weight scale is raised so that the int32 bias fits (|b| <= (2^31 - 2^15) * s_in * s_w), so
    that the requantization scale s_in * s_w / s_out stays above 2^-23.5, and so that the
    accumulator bias ``round(b/(s_in s_w)) + round(o_out s_out/(s_in s_w))`` fits int32; then the
    encoding is re-loaded with the scale as float32 and ``min``/``max`` = float32
    ``scale*offset`` / ``scale*(offset+N)``. The conformance corpus README says this is what
    makes weight scales float32 while activation scales stay float64.
    """
    from ..dialects.aimet import GRID_PRESERVING

    by_tensor = {n: q for q in quantizers for n in q.tensors}

    def enabled(tensor: str, depth: int = 0) -> Encoding | None:
        q = by_tensor.get(tensor)
        if q is not None:
            return q.encoding
        node = view.producer.get(tensor)
        if node is None or node.op_type not in GRID_PRESERVING or not node.input or depth > 64:
            return None
        return enabled(node.input[0], depth + 1)

    done: set[int] = set()
    for node in view.model.graph.node:
        if node.op_type not in _AIMET_MATMUL_OPS or len(node.input) < 2:
            continue
        wq = by_tensor.get(node.input[1])
        if wq is None or wq.kind != "param" or wq.encoding is None or \
                wq.encoding.dtype != "int" or id(wq) in done:
            continue
        in_enc = enabled(node.input[0])
        if in_enc is None or in_enc.dtype != "int":
            continue
        bias_name, out_name = _bias_and_output(node, view, roles)
        out_enc = enabled(out_name) if out_name else None
        bias = view.value(bias_name).astype(np.float32) if bias_name in view.static else None
        wq.encoding = _adjusted(wq.encoding, in_enc, out_enc, bias)
        done.add(id(wq))


def _bias_and_output(node: onnx.NodeProto, view: _ModelView,
                     roles: Mapping[str, str]) -> tuple[str, str]:
    out = node.output[0] if node.output else ""
    if node.op_type != "MatMul":
        return (node.input[2] if len(node.input) > 2 else ""), out
    # aimet's MatmulAdd pass makes MatMul + Add(rank-1 constant) one Gemm whose bias is the
    # Add operand (conformance README, "MatmulAdd pass"); the plan gives that operand role bias.
    users = view.consumers.get(out, [])
    if len(users) == 1 and users[0].op_type == "Add" and users[0].output:
        other = [i for i in users[0].input if i != out]
        if len(other) == 1 and roles.get(other[0]) == "bias":
            return other[0], users[0].output[0]
    return "", out


def _adjusted(w: Encoding, s_in_enc: Encoding, out_enc: Encoding | None,
              bias: np.ndarray | None) -> Encoding:
    f32 = np.float32
    w_scale = w.scale.astype(f32)
    in_scale = s_in_enc.scale.astype(f32)
    b = bias if bias is not None else np.zeros_like(w_scale)
    adj = _against_bias_overflow(b, in_scale, w_scale)
    if out_enc is not None and out_enc.dtype == "int":
        out_scale = out_enc.scale.astype(f32)
        out_offset = out_enc.offset.astype(f32)
        with np.errstate(divide="ignore", over="ignore"):
            min_w = (f32(_MIN_REQUANT_SCALE) * out_scale) / in_scale
        adj = np.maximum(adj, min_w.astype(f32)).astype(f32)
        bias_scale = (in_scale * adj).astype(f32)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            acc = np.round(b / bias_scale) + np.round(out_offset * out_scale / bias_scale)
        adj = _against_bias_overflow((acc * bias_scale).astype(f32), in_scale, adj)
    offset = w.offset.astype(f32)
    n = f32(num_steps(w.bits, w.symmetric, w.strict))
    lo = (adj * offset).astype(f32)
    hi = (adj * (offset + n)).astype(f32)
    return w.replace(scale=adj.astype(np.float64), min=lo.astype(np.float64),
                     max=hi.astype(np.float64))


def _against_bias_overflow(bias: np.ndarray, in_scale: np.ndarray,
                           w_scale: np.ndarray) -> np.ndarray:
    """``_adjust_weight_scale_against_bias_overflow`` (float64 math, float32 result)."""
    w = w_scale.astype(np.float64).reshape(-1)
    i = in_scale.astype(np.float64).reshape(-1)
    b = np.asarray(bias, dtype=np.float64).reshape(-1)
    if b.shape != w.shape:
        if w.size != 1:
            return w_scale.astype(np.float32)
        b = np.array([np.abs(b).max() if b.size else 0.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.abs(b / (_BIAS_STEPS * i))
    need = np.where(np.isfinite(need), need, 0.0)
    return np.maximum(w, need).astype(np.float32).reshape(w_scale.shape)


def aimet_quantizer_args(profile: Profile, quant_scheme: str | None = None
                         ) -> dict[str, Any] | None:
    """The ``quantizer_args`` AIMET writes into 0.6.1 / 1.0.0 files (aimet.md D).

    ``is_symmetric`` = ``defaults.params.is_symmetric``; ``per_channel_quantization`` = the
    defaults' flag or any op type's; ``quant_scheme`` = the QuantScheme enum name. ``None`` for
    profiles that are not AIMET configs.
    """
    if getattr(profile, "dialect", "") != "aimet" and "aimet.version" not in profile.meta:
        return None
    meta = {k: s.value for k, s in profile.meta.items()}
    symmetry = dict(meta.get("aimet.weight_symmetry", ()))
    per_channel = any(
        r.settings["per_channel"].value is True for r in profile.rules
        if "per_channel" in r.settings and not r.origin and r.selector.slot == "param"
        and r.selector.scope in ("defaults", "op"))
    return {
        "activation_bitwidth": int(meta.get("aimet.act_bw", 8)),
        "dtype": "int",
        "is_symmetric": bool(symmetry.get("", False)),
        "param_bitwidth": int(meta.get("aimet.param_bw", 8)),
        "per_channel_quantization": per_channel,
        "quant_scheme": AIMET_SCHEME_NAMES[quant_scheme or "min_max"],
    }
