"""Empirical bias correction: remove the mean output shift that weight quantization causes.

For every Conv / ConvTranspose / Gemm with a static bias, the layer is run twice on the same
input (the float model's activation at that point, over the calibration data): once with its
float weights, once with its weights fake-quantized. The per-channel difference of the output
means is the bias the quantized weights add; it is subtracted from the layer's bias
(Nagel et al., arXiv 1906.04721 section 4.2, "empirical bias correction"; Vitis
``include_bias_corr``, spec 003).

One onnxruntime session holds the whole model plus, per layer, a copy of the node reading the
quantized weights and two ReduceMean nodes, so the data is read once and only per-channel means
leave the session.

Weight encoding: the plan's entry for the weight tensor when a plan is given (bits, symmetric,
per-channel axis, strict/narrow, power-of-two scales, fixed ranges, rounding); otherwise int8
symmetric per-channel. Min-max statistics are used for every weight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import QuantspecError, did_you_mean
from ..runtime import Encoding, encoding_from_data, encoding_from_range, fake_quantize
from .context import Context
from .editor import ModelEditor, attr, display_name, iter_nodes, layer_bias, set_layer_bias
from .report import BAD_DATA, RUNTIME, W_BC_LAYER
from .spec import TransformOptions

NAME = "bias_correction"
LAYERS = ("Conv", "ConvTranspose", "Gemm")
DEFAULT_BATCH = 32
_PREFIX = "__quantspec_bc"


WeightQuantizer = Callable[[str, np.ndarray], "np.ndarray | None"]


def correct_biases(ctx: Context, opts: TransformOptions, data: Any, plan: Any,
                   weight_quantizer: WeightQuantizer | None = None) -> None:
    ed = ctx.editor
    targets: list[tuple[onnx.NodeProto, np.ndarray, str]] = []
    no_bias, not_quantized = [], []
    for node in list(iter_nodes(ed, LAYERS)):
        name = display_name(node)
        if opts.skips(name):
            ctx.report.notes.append(f"{NAME}: {name} left alone (skip list)")
            continue
        w = ed.float_param(node.input[1]) if len(node.input) > 1 else None
        if w is None:
            continue
        if layer_bias(ed, node) is None:
            no_bias.append(name)
            continue
        if node.op_type == "Gemm" and float(attr(node, "beta", 1.0)) == 0.0:
            no_bias.append(name)
            continue
        q = quantize_weight(ctx, node, w, plan, weight_quantizer)
        if q is None:
            not_quantized.append(name)
            continue
        targets.append((node, q[0], q[1]))
    if no_bias:
        ctx.report.refuse(NAME, W_BC_LAYER, f"{len(no_bias)} layer(s) have no bias to correct",
                          no_bias, "fold_batchnorm gives folded layers a bias")
    if not_quantized:
        ctx.report.refuse(NAME, W_BC_LAYER, f"{len(not_quantized)} layer(s) keep float weights "
                          "in the plan: nothing to correct", not_quantized)
    if not targets:
        return
    means_f, means_q, samples = _measure(ed, targets, data, ctx.report.notes)
    for (node, _, desc), mf, mq in zip(targets, means_f, means_q, strict=True):
        shift = mq - mf
        bias = layer_bias(ed, node)
        assert bias is not None
        if node.op_type == "Gemm":
            beta = float(attr(node, "beta", 1.0))
            c = np.broadcast_to(bias, np.broadcast_shapes(bias.shape, shift.shape))
            set_layer_bias(ed, node, c - shift / beta, as_is=True)
        else:
            set_layer_bias(ed, node, bias - shift)
        ctx.report.corrected.append({
            "layer": display_name(node), "bias": node.input[2], "channels": int(shift.size),
            "shift_norm": float(np.linalg.norm(shift)), "shift_max": float(np.abs(shift).max()),
            "weight_encoding": desc, "samples": samples})


# -- weight quantization -------------------------------------------------------------------------
def _default_axis(node: onnx.NodeProto) -> int:
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        return 0 if attr(node, "transB", 0) else 1
    return 0


def _plan_values(plan: Any, tensor: str) -> dict[str, Any] | None:
    """The resolved fields of ``tensor`` in a Plan object or a plan JSON dict; None if absent."""
    if plan is None:
        return None
    if hasattr(plan, "entry"):
        e = plan.entry(tensor)
        if e is None:
            return None
        from ..compiler.plan import PLAN_FIELDS

        return {f: e.get(f) for f in PLAN_FIELDS}
    for t in plan.get("tensors", ()):
        if t.get("name") == tensor:
            return dict(t)
    return None


def quantize_weight(ctx: Context, node: onnx.NodeProto, w: np.ndarray, plan: Any,
                    weight_quantizer: WeightQuantizer | None = None
                    ) -> tuple[np.ndarray, str] | None:
    """``(fake-quantized weight, description)``, or None when the weight stays float.

    ``weight_quantizer(name, w)`` decides when given (a caller with its own calibration
    semantics); else the plan entry; else int8 symmetric per-channel.
    """
    wname = node.input[1]
    if weight_quantizer is not None:
        q = weight_quantizer(wname, w)
        return None if q is None else (np.asarray(q, w.dtype).reshape(w.shape), "weight_quantizer")
    vals = _plan_values(plan, wname)
    if plan is not None and vals is None:
        ctx.report.notes.append(f"{NAME}: weight '{wname}' is not in the plan; int8 symmetric "
                                "per-channel used")
    if vals is None:
        vals = {"quantized": True, "bits": 8, "symmetric": True, "per_channel": True}
    if not vals.get("quantized"):
        return None
    bits = int(vals.get("bits") or 8)
    if vals.get("dtype") == "float":
        enc = Encoding.float_cast(bits)
        return fake_quantize(w, enc), f"float{bits}"
    axis = vals.get("axis")
    axis = _default_axis(node) if axis is None else int(axis)
    per_channel = bool(vals.get("per_channel"))
    # the grid flags as calibration reads them (runtime/calibrate.py): narrow_range is the
    # strict symmetric grid, and strict excludes the unsigned one
    sym = bool(vals.get("symmetric"))
    strict = bool(vals.get("strict_symmetric")) or (sym and bool(vals.get("narrow_range")))
    grid: dict[str, Any] = {
        "symmetric": sym, "strict": strict,
        "unsigned": bool(vals.get("unsigned_symmetric")) and sym and not strict,
        "scheme": "vitis_pof2" if vals.get("scale_type") == "power_of_two" else "aimet2"}
    fixed = _fixed_encoding(vals, bits, axis, grid)
    enc = fixed if fixed is not None else encoding_from_data(
        w, bits, axis=axis if per_channel else None, **grid)
    rounding = vals.get("rounding") or None
    desc = (f"int{bits} {'symmetric' if grid['symmetric'] else 'asymmetric'} "
            f"{'per-channel' if enc.per_channel else 'per-tensor'}"
            + (" power-of-two" if grid["scheme"] == "vitis_pof2" else ""))
    return fake_quantize(w, enc, rounding=rounding), desc


def _fixed_encoding(vals: Mapping[str, Any], bits: int, axis: int,
                    grid: Mapping[str, Any]) -> Encoding | None:
    per_ch = vals.get("encodings")
    if per_ch:
        mins = [float(p[0]) for p in per_ch]
        maxs = [float(p[1]) for p in per_ch]
        return encoding_from_range(mins, maxs, bits, axis=axis, **grid)
    fixed = vals.get("fixed_range")
    if fixed and fixed[1] is not None:
        return encoding_from_range(float(fixed[0]), float(fixed[1]), bits, **grid)
    return None


# -- statistics ----------------------------------------------------------------------------------
def _measure(ed: ModelEditor, targets: list[tuple[onnx.NodeProto, np.ndarray, str]],
             data: Any, notes: list[str]) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Per-channel output means of every target layer, float and quantized weights."""
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(ed.model)
    g = model.graph
    names: list[str] = []
    for k, (node, wq, _) in enumerate(targets):
        init = numpy_helper.from_array(wq.astype(np.asarray(ed.float_param(node.input[1])).dtype),
                                       f"{_PREFIX}{k}_w")
        g.initializer.append(init)
        dup = onnx.NodeProto()
        dup.CopyFrom(node)
        dup.name = f"{_PREFIX}{k}_node"
        dup.input[1] = init.name
        del dup.output[:]
        dup.output.append(f"{_PREFIX}{k}_q")
        g.node.append(dup)
        rank = 2 if node.op_type == "Gemm" else np.asarray(wq).ndim
        for tag, src in (("f", node.output[0]), ("q", dup.output[0])):
            out = f"{_PREFIX}{k}_m{tag}"
            g.node.extend(_reduce_mean(ed.opset, src, out, rank, g, f"{_PREFIX}{k}_{tag}"))
            g.output.append(helper.make_tensor_value_info(
                out, ed.inits[node.input[1]].data_type, None))
            names.append(out)
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise QuantspecError(RUNTIME, f"onnxruntime cannot load the model for bias correction: "
                             f"{exc}", hint="check the model with onnx.checker") from None
    sums: list[np.ndarray | None] = [None] * len(names)
    total = 0
    for feed, n in iter_batches(ed, data, notes):
        try:
            res = sess.run(names, feed)
        except Exception as exc:
            raise QuantspecError(RUNTIME, f"onnxruntime failed on the calibration data: {exc}",
                                 hint="check the data's shapes and dtypes against the model "
                                 "inputs") from None
        sums = [np.asarray(r, np.float64) * n + (0.0 if s is None else s)
                for s, r in zip(sums, res, strict=True)]
        total += n
    if total == 0:
        raise QuantspecError(BAD_DATA, "the calibration data holds no samples",
                             hint="bias correction needs at least one sample per input")
    means = [np.asarray(s) / total for s in sums]
    return means[0::2], means[1::2], total


def _reduce_mean(opset: int, src: str, out: str, rank: int, g: onnx.GraphProto,
                 prefix: str) -> list[onnx.NodeProto]:
    axes = [0] + list(range(2, rank))
    if opset >= 18:  # axes became an input in opset 18
        g.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), f"{prefix}_axes"))
        return [helper.make_node("ReduceMean", [src, f"{prefix}_axes"], [out], keepdims=0)]
    return [helper.make_node("ReduceMean", [src], [out], axes=axes, keepdims=0)]


# -- calibration data ----------------------------------------------------------------------------
def _model_inputs(ed: ModelEditor) -> list[onnx.ValueInfoProto]:
    return [i for i in ed.graph.input if i.name not in ed.inits]


def iter_batches(ed: ModelEditor, data: Any, notes: list[str] | None = None
                 ) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """``(feed, samples)`` pairs from ``data``: a mapping input name -> array (samples on axis
    0, cut into batches the model accepts), or an iterable of such feeds (used as they are)."""
    inputs = _model_inputs(ed)
    if isinstance(data, Mapping):
        yield from _split(inputs, data, notes if notes is not None else [])
        return
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, np.ndarray)):
        for feed in data:
            if not isinstance(feed, Mapping):
                raise QuantspecError(BAD_DATA, "calibration batches must be mappings from "
                                     f"input name to array, got {type(feed).__name__}")
            checked = _check_feed(inputs, feed)
            yield checked, _samples(checked)
        return
    raise QuantspecError(BAD_DATA, f"cannot read calibration data from {type(data).__name__}",
                         hint="pass {input name: array} or an iterable of such feeds")


def _check_feed(inputs: list[onnx.ValueInfoProto], feed: Mapping[str, Any]
                ) -> dict[str, np.ndarray]:
    names = [i.name for i in inputs]
    for key in feed:
        if key not in names:
            raise QuantspecError(BAD_DATA, f"calibration data has an array '{key}' that is not "
                                 "a model input", hint=did_you_mean(key, names)
                                 or f"model inputs: {', '.join(names)}")
    out = {}
    for vi in inputs:
        if vi.name not in feed:
            raise QuantspecError(BAD_DATA, f"calibration data lacks model input '{vi.name}'",
                                 hint=f"model inputs: {', '.join(names)}")
        arr = np.asarray(feed[vi.name])
        want = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        if arr.dtype.kind not in "fiub" or (arr.dtype.kind == "f") != (want.kind == "f"):
            raise QuantspecError(BAD_DATA, f"input '{vi.name}': data of dtype {arr.dtype} for "
                                 f"an input of type {want}")
        out[vi.name] = arr.astype(want, copy=False)
    return out


def _samples(feed: Mapping[str, np.ndarray]) -> int:
    first = next(iter(feed.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


def _split(inputs: list[onnx.ValueInfoProto], data: Mapping[str, Any], notes: list[str]
           ) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    arrays = _check_feed(inputs, data)
    counts = {k: (v.shape[0] if v.ndim else 0) for k, v in arrays.items()}
    if len(set(counts.values())) > 1:
        raise QuantspecError(BAD_DATA, "calibration arrays hold different numbers of samples: "
                             + ", ".join(f"{k}: {n}" for k, n in counts.items()),
                             hint="the first axis of every array counts samples")
    n = next(iter(counts.values()), 0)
    fixed = _fixed_batch(inputs)
    batch = fixed or DEFAULT_BATCH
    if fixed and n < fixed:
        raise QuantspecError(BAD_DATA, f"the model takes batches of exactly {fixed} samples; "
                             f"the calibration data has {n}",
                             hint="provide at least one full batch")
    full = n // batch * batch
    for start in range(0, full, batch):
        yield {k: v[start:start + batch] for k, v in arrays.items()}, batch
    if n > full:
        if fixed:  # a model with a fixed batch size cannot take the remainder
            notes.append(f"{NAME}: last {n - full} sample(s) dropped (the model's batch size "
                         f"is fixed at {fixed})")
        else:
            yield {k: v[full:] for k, v in arrays.items()}, n - full


def _fixed_batch(inputs: list[onnx.ValueInfoProto]) -> int | None:
    """The batch size the model fixes on the first axis of its inputs, or None."""
    for vi in inputs:
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            return int(dims[0].dim_value)
    return None
