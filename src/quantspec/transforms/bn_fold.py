"""Fold BatchNormalization into the Conv / ConvTranspose / Gemm before it, or the one after it.

Inference-mode BN is a per-channel affine map ``y = a * x + b`` with
``a = gamma / sqrt(var + eps)`` and ``b = beta - mean * a``.

*Into the layer before* (AMCT ``do_fusion``, spec 001; Vitis always, vitis_amct.md 1.2): the
layer's output channel ``c`` is scaled by ``a[c]`` and its bias becomes ``a * bias + b``. Exact
for every padding and stride. ConvTranspose keeps output channels on weight axis 1, per group:
output channel ``(i // (Cin/g)) * (Cout/g) + j`` of weight ``[i, j]``.

*Into the layer after* (when nothing precedes the BN to fold into): the following layer's input
channel ``c`` is scaled by ``a[c]`` and ``W @ b`` joins its bias. That is exact only when every
output position of the layer sees every kernel tap of real input: a padded Conv sees padding
zeros at the borders where the original graph saw ``b`` after the BN, so it is refused unless
``b`` is zero (to rounding: a pure-scale BN). Gemm has no padding and is always exact (when
``transA`` is 0). ConvTranspose is not folded forward: its border outputs sum fewer taps.

Only a BN that is the sole reader of the layer's output (and whose output is the sole input of
the following layer) is folded, only with static parameters, only in inference mode.
"""

from __future__ import annotations

import numpy as np
import onnx

from .context import Context
from .editor import (
    ModelEditor,
    attr,
    display_name,
    iter_nodes,
    layer_bias,
    set_attr,
    set_layer_bias,
)
from .report import W_FOLD_PADDING, W_FOLD_REFUSED
from .spec import TransformOptions

PRECEDING = ("Conv", "ConvTranspose", "Gemm")
FOLLOWING = ("Conv", "Gemm")
NAME = "fold_batchnorm"


class Refused(Exception):
    """A fold that is not possible or not exact; ``code`` is the report's warning code."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


def fold_batchnorms(ctx: Context, opts: TransformOptions) -> None:
    """Fold every BatchNormalization the options allow; record folds and refusals."""
    ed = ctx.editor
    for bn in list(iter_nodes(ed, ("BatchNormalization",))):
        name = display_name(bn)
        prod = ed.producer.get(bn.input[0])
        names = [name] + ([display_name(prod)] if prod is not None else [])
        if opts.skips(*names):
            ctx.report.notes.append(f"{NAME}: {name} left alone (skip list)")
            continue
        try:
            fold_bn(ctx, bn, following=bool(opts.get("following")), by=NAME)
        except Refused as r:
            ctx.report.refuse(NAME, r.code, r.message, names, r.hint)


def fold_bn(ctx: Context, bn: onnx.NodeProto, *, following: bool, by: str) -> onnx.NodeProto:
    """Fold ``bn`` into its producer (or, with ``following``, its consumer); return the layer it
    was folded into. Raises :class:`Refused` when neither is possible."""
    ed = ctx.editor
    a, b, gamma, beta = bn_affine(ed, bn)
    prod = ed.producer.get(bn.input[0])
    why_not_before = _before_problem(ed, bn, prod, len(a))
    if why_not_before is None:
        assert prod is not None
        _fold_into_producer(ed, prod, a, b)
        out = prod.output[0]
        _record(ctx, bn, prod, "preceding", len(a), by)
        params = list(bn.input[1:])
        ed.bypass(bn, out)
        ed.prune(params)
        ctx.bn_stats[prod.output[0]] = (gamma, beta)
        return prod
    if following:
        nxt = ed.sole_user(bn.output[0])
        if nxt is not None and nxt.op_type in FOLLOWING and nxt.domain in ("", "ai.onnx"):
            # beta - mean * a rounds to ~1e-8 when the BN is a pure scale: that is zero here
            zero_shift = bool(np.all(np.abs(b) <= 1e-6 * (np.abs(beta) + np.abs(beta - b))))
            _check_following(ed, bn, nxt, zero_shift, len(a))
            _fold_into_consumer(ed, nxt, a, b)
            _record(ctx, bn, nxt, "following", len(a), by)
            src, out, params = bn.input[0], bn.output[0], list(bn.input[1:])
            ed.remove_nodes([bn])
            ed.set_input(nxt, 0, src)
            ed.drop_value_info([out])
            ed.prune(params)
            return nxt
    raise Refused(W_FOLD_REFUSED, why_not_before,
                  "fold only applies to a BatchNormalization right after (or before) a "
                  "Conv/ConvTranspose/Gemm whose output it alone reads")


def bn_affine(ed: ModelEditor, bn: onnx.NodeProto
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, gamma, beta)`` of an inference-mode BN in float64, or raise :class:`Refused`."""
    if attr(bn, "training_mode", 0) or any(o for o in bn.output[1:]):
        raise Refused(W_FOLD_REFUSED, "BatchNormalization in training mode (running statistics "
                      "are outputs)", "export the model in inference mode")
    if ed.opset < 9 and attr(bn, "spatial", 1) == 0:
        raise Refused(W_FOLD_REFUSED, "BatchNormalization with spatial=0 normalizes per "
                      "element, not per channel")
    if len(bn.input) < 5:
        raise Refused(W_FOLD_REFUSED, "BatchNormalization with fewer than 5 inputs")
    params = [p for p in (ed.float_param(n) for n in bn.input[1:5]) if p is not None]
    if len(params) != 4:
        raise Refused(W_FOLD_REFUSED, "BatchNormalization parameters are not static float "
                      "initializers", "fold needs scale, B, mean and var as initializers")
    gamma, beta, mean, var = (np.asarray(p, np.float64).reshape(-1) for p in params)
    if not (len(gamma) == len(beta) == len(mean) == len(var)):
        raise Refused(W_FOLD_REFUSED, "BatchNormalization parameters differ in length")
    eps = float(attr(bn, "epsilon", 1e-5))
    a = gamma / np.sqrt(var + eps)
    return a, beta - mean * a, gamma, beta


def _before_problem(ed: ModelEditor, bn: onnx.NodeProto, prod: onnx.NodeProto | None,
                    channels: int) -> str | None:
    """Why ``bn`` cannot fold into its producer, or None when it can."""
    if prod is None or prod.op_type not in PRECEDING or prod.domain not in ("", "ai.onnx"):
        what = "a graph input" if prod is None else f"a {prod.op_type}"
        return f"the BatchNormalization reads {what}, not a Conv/ConvTranspose/Gemm"
    if len([o for o in prod.output if o]) != 1 or ed.sole_user(prod.output[0]) is not bn:
        return (f"the output of {display_name(prod)} is also read elsewhere (or is a graph "
                "output): folding would change the other readers")
    w = ed.float_param(prod.input[1]) if len(prod.input) > 1 else None
    bias = prod.input[2] if len(prod.input) > 2 else ""
    if w is None or (bias and ed.float_param(bias) is None):
        return f"{display_name(prod)} has weights or bias that are not static initializers"
    if _out_channels(prod, w) != channels:
        return (f"{display_name(prod)} has {_out_channels(prod, w)} output channels, the "
                f"BatchNormalization {channels}")
    c = ed.float_param(bias) if bias else None
    if prod.op_type == "Gemm" and c is not None and c.ndim > 2:
        return f"{display_name(prod)} has a bias of rank > 2"
    return None


def _out_channels(node: onnx.NodeProto, w: np.ndarray) -> int:
    if node.op_type == "Conv":
        return int(w.shape[0])
    if node.op_type == "ConvTranspose":
        return int(w.shape[1]) * int(attr(node, "group", 1))
    return int(w.shape[0] if attr(node, "transB", 0) else w.shape[1])


def _expand(v: np.ndarray, ndim: int) -> np.ndarray:
    """``v`` shaped to broadcast along axis 0 of an ``ndim``-dimensional weight."""
    return v.reshape((-1,) + (1,) * (ndim - 1))


def _fold_into_producer(ed: ModelEditor, node: onnx.NodeProto, a: np.ndarray,
                        b: np.ndarray) -> None:
    wname = ed.own_param(node, 1)
    w = np.asarray(ed.float_param(wname), np.float64)
    bias = layer_bias(ed, node)
    if node.op_type == "Conv":
        w = w * _expand(a, w.ndim)
        set_layer_bias(ed, node, bias * a + b if bias is not None else b)
    elif node.op_type == "ConvTranspose":
        g = int(attr(node, "group", 1))
        cin_g, cout_g = w.shape[0] // g, w.shape[1]
        out_ch = (np.arange(w.shape[0])[:, None] // cin_g) * cout_g + np.arange(cout_g)[None, :]
        w = w * a[out_ch].reshape(out_ch.shape + (1,) * (w.ndim - 2))
        set_layer_bias(ed, node, bias * a + b if bias is not None else b)
    else:  # Gemm: Y = alpha * A @ B + beta * C, output channel = column of Y
        w = w * (a[:, None] if attr(node, "transB", 0) else a[None, :])
        beta = float(attr(node, "beta", 1.0))
        if bias is not None and beta != 0.0:
            c = np.broadcast_to(bias, np.broadcast_shapes(bias.shape, a.shape))
            set_layer_bias(ed, node, c * a + b / beta, as_is=True)
        else:
            set_layer_bias(ed, node, b)
            set_attr(node, "beta", 1.0)
    ed.set_param(wname, w)


def _check_following(ed: ModelEditor, bn: onnx.NodeProto, nxt: onnx.NodeProto,
                     zero_shift: bool, channels: int) -> None:
    where = f"{display_name(bn)} -> {display_name(nxt)}"
    if list(nxt.input).index(bn.output[0]) != 0:
        raise Refused(W_FOLD_REFUSED, f"{where}: the BatchNormalization feeds a weight input")
    w = ed.float_param(nxt.input[1]) if len(nxt.input) > 1 else None
    bias = nxt.input[2] if len(nxt.input) > 2 else ""
    if w is None or (bias and ed.float_param(bias) is None):
        raise Refused(W_FOLD_REFUSED, f"{where}: weights or bias are not static initializers")
    if nxt.op_type == "Gemm":
        if attr(nxt, "transA", 0):
            raise Refused(W_FOLD_REFUSED, f"{where}: Gemm with transA=1 reads the BN's channels "
                          "as rows")
        k = w.shape[1] if attr(nxt, "transB", 0) else w.shape[0]
        if k != channels:
            raise Refused(W_FOLD_REFUSED, f"{where}: {k} inputs vs {channels} BN channels")
        return
    if w.shape[1] * int(attr(nxt, "group", 1)) != channels:
        raise Refused(W_FOLD_REFUSED, f"{where}: the Conv reads {w.shape[1]} channels per group, "
                      f"the BatchNormalization has {channels}")
    pads = list(attr(nxt, "pads", []) or [])
    auto_pad = attr(nxt, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    padded = any(p != 0 for p in pads) or auto_pad in ("SAME_UPPER", "SAME_LOWER")
    if padded and not zero_shift:
        raise Refused(W_FOLD_PADDING, f"{where}: the Conv pads its input, and the padding zeros "
                      "would stand for BN outputs that are not zero; folding forward is not "
                      "equivalent", "fold into a preceding layer, or keep the BatchNormalization")


def _fold_into_consumer(ed: ModelEditor, node: onnx.NodeProto, a: np.ndarray,
                        b: np.ndarray) -> None:
    wname = ed.own_param(node, 1)
    w = np.asarray(ed.float_param(wname), np.float64)
    bias = layer_bias(ed, node)
    if node.op_type == "Gemm":
        trans_b = bool(attr(node, "transB", 0))
        alpha, beta = float(attr(node, "alpha", 1.0)), float(attr(node, "beta", 1.0))
        shift = alpha * (w @ b if trans_b else b @ w)  # (M,)
        w = w * (a[None, :] if trans_b else a[:, None])
        if bias is not None and beta != 0.0:
            c = np.broadcast_to(bias, np.broadcast_shapes(bias.shape, shift.shape))
            set_layer_bias(ed, node, c + shift / beta, as_is=True)
        else:
            set_layer_bias(ed, node, shift)
            set_attr(node, "beta", 1.0)
    else:  # Conv, input channel = group * (C/g) + j for weight [m, j]
        g = int(attr(node, "group", 1))
        cin_g, mg = w.shape[1], w.shape[0] // g
        in_ch = (np.arange(w.shape[0])[:, None] // mg) * cin_g + np.arange(cin_g)[None, :]
        shape = in_ch.shape + (1,) * (w.ndim - 2)
        shift = (w * b[in_ch].reshape(shape)).reshape(w.shape[0], -1).sum(axis=1)
        w = w * a[in_ch].reshape(shape)
        set_layer_bias(ed, node, (bias if bias is not None else 0.0) + shift)
    ed.set_param(wname, w)


def _record(ctx: Context, bn: onnx.NodeProto, into: onnx.NodeProto, position: str,
            channels: int, by: str) -> None:
    ctx.report.folded.append({"batchnorm": display_name(bn), "into": display_name(into),
                              "op_type": into.op_type, "position": position,
                              "channels": channels, "by": by})
