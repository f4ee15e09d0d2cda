"""AIMET's post-configuration rules (aimet.md B.8): what QuantizationSimModel changes after the
config file has been applied. Registered as compiler post hooks; an AIMET profile names them
(``post "aimet.exception_rules"``) so a translated .qspec keeps them.
"""

from __future__ import annotations

from ..compiler.resolve import Context, hook
from ..errors import QuantspecError
from ..graph import Node

NORM_OPS = ("BatchNormalization", "LayerNormalization", "GroupNormalization",
            "RMSNormalization", "InstanceNormalization")
OLD_HTP = ("V66", "V68", "V69")
WHERE = "<aimet B.8>"


def _meta(ctx: Context, key: str, default: object = None) -> object:
    s = ctx.profile.meta.get(key)
    return default if s is None else s.value


def _upstream_quantizer(ctx: Context, name: str) -> str | None:
    """The nearest quantized tensor feeding ``name`` (walking back through unquantized ops)."""
    g = ctx.graph
    seen = 0
    while name and seen < 1000:
        if ctx.quantized(name):
            return name
        t = g.tensors[name]
        if t.producer is None:
            return None
        node = g.nodes[t.producer]
        if not node.inputs:
            return None
        name = node.inputs[0]
        seen += 1
    return None


def _dynamic_weight(ctx: Context, node: Node) -> bool:
    return len(node.inputs) > 1 and bool(node.inputs[1]) and \
        not ctx.graph.tensors[node.inputs[1]].is_param


@hook("aimet.param_symmetry_to_inputs")
def param_symmetry_to_inputs(ctx: Context) -> None:
    """Conv/ConvTranspose/Gemm/MatMul with an activation as weight: the quantizer feeding that
    input takes the weight symmetry of the config (``_apply_param_symmetry_to_inputs``)."""
    sym = dict(_meta(ctx, "aimet.weight_symmetry", ()) or ())  # type: ignore[arg-type]
    for node in ctx.graph.nodes:
        if node.op_type not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            continue
        if not _dynamic_weight(ctx, node):
            continue
        q = _upstream_quantizer(ctx, node.inputs[1])
        if q is None:
            continue
        value = sym.get(node.op_type, sym.get("", False))
        ctx.set(q, "symmetric", bool(value), WHERE,
                f"weight input of {node.op_type} '{node.name}' takes the weight symmetry")


@hook("aimet.exception_rules")
def exception_rules(ctx: Context) -> None:
    """``_apply_exception_rules``: norm-layer params, dynamic MatMul, grouped ConvTranspose."""
    g = ctx.graph
    hw = _meta(ctx, "aimet.hw_version")
    for node in g.nodes:
        if node.op_type in NORM_OPS:
            _norm_params(ctx, node, hw)
        elif node.op_type == "MatMul" and hw is not None and _dynamic_weight(ctx, node):
            _dynamic_matmul(ctx, node, str(hw))
        elif node.op_type == "ConvTranspose" and _grouped(node):
            w = g.static_source(node.inputs[1]) if len(node.inputs) > 1 else None
            if w is not None and ctx.entries[w].get("per_channel"):
                ctx.set(w, "per_channel", False, WHERE, "grouped ConvTranspose: per-tensor")


def _grouped(node: Node) -> bool:
    """``group`` not in {None, 1} (aimet.md B.6). A malformed attribute (a list, a string: a
    damaged model) is not grouped, as in ``Graph.is_depthwise_or_3d``; int() raised on it."""
    group = node.attrs.get("group", 1) or 1
    return isinstance(group, int) and group != 1


def _norm_params(ctx: Context, node: Node, hw: object) -> None:
    g = ctx.graph
    out = node.outputs[0] if node.outputs else ""
    oe = ctx.entries.get(out)
    for name in node.inputs[1:]:
        src = g.static_source(name) if name else None
        if src is None or not g.tensors[src].is_param:
            continue
        e = ctx.entries[src]
        if not e.get("quantized") or e.get("dtype") != "int":
            continue
        bits = max(int(e.get("bits")), 8)
        if node.op_type in ("GroupNormalization", "InstanceNormalization", "RMSNormalization"):
            if oe is not None:
                ctx.set(src, "symmetric", oe.get("symmetric"), WHERE,
                        f"{node.op_type} params copy the output quantizer's symmetry")
                bits = int(oe.get("bits"))
        else:
            if hw in OLD_HTP:
                bits = 8
            ctx.set(src, "symmetric", bits >= 16, WHERE,
                    f"{node.op_type} params are symmetric only at 16 bits or more")
        if bits != e.get("bits"):
            ctx.set(src, "bits", bits, WHERE, f"{node.op_type} param bit width")


def _dynamic_matmul(ctx: Context, node: Node, hw: str) -> None:
    in0 = _upstream_quantizer(ctx, node.inputs[0])
    in1 = _upstream_quantizer(ctx, node.inputs[1])
    if in0 is None or in1 is None:
        return
    e0, e1 = ctx.entries[in0], ctx.entries[in1]
    if e0.get("dtype") != "int" or e1.get("dtype") != "int":
        return
    if hw in OLD_HTP:
        ctx.set(in1, "symmetric", True, WHERE, f"dynamic MatMul second input on {hw}")
        ctx.set(in1, "bits", 8, WHERE, f"dynamic MatMul second input on {hw}")
    elif e1.get("bits") == 16:
        ctx.set(in1, "symmetric", True, WHERE, "16-bit dynamic MatMul second input")
        ctx.set(in0, "bits", 16, WHERE, "16-bit dynamic MatMul first input")


@hook("aimet.model_input_required")
def model_input_required(ctx: Context) -> None:
    """AIMET indexes model_input['is_input_quantized'] for non-parameter constants: without the
    key, a graph with such constants makes it raise (aimet.md B.5)."""
    g = ctx.graph
    for name, e in ctx.entries.items():
        if e.kind != "constant" or e.reason:
            continue
        # Resize roi/scales and a MaskedSoftmax mask are never input quantizers (aimet.md B.1)
        uses = [(g.nodes[i].op_type, slot) for i, slot in g.tensors[name].consumers]
        if all((t == "Resize" and s >= 1) or (t == "MaskedSoftmax" and s == 1) for t, s in uses):
            continue
        if True:
            raise QuantspecError(
                "E210", f"model_input has no 'is_input_quantized', but the graph has the "
                f"non-parameter constant '{name}' that AIMET governs with it",
                ctx.profile.meta.get("aimet.version").span if ctx.profile.meta.get(
                    "aimet.version") else None,
                hint='add "is_input_quantized": "True" to model_input (AIMET raises KeyError)')
