"""ReLU6 -> ReLU: ``Clip(x, 0, 6)`` becomes ``Relu(x)``.

Vitis ``convert_relu6_to_relu`` (spec 003; vitis_amct.md 1.2) and QNN's CLE, which "only supports
Relu activations. Any Relu6 activations will be automatically changed to Relu" (spec 004,
"Enhanced Quantization Techniques: Limitations"). This changes the function: outputs above 6
are no longer clipped. That is the point (an unbounded activation lets CLE rescale channels).

ONNX writes ReLU6 as Clip with bounds as attributes ``min``/``max`` up to opset 10, and as
optional inputs 1 and 2 (initializers or Constant nodes) from opset 11. Only a Clip whose bounds
are statically 0 and 6 is converted.
"""

from __future__ import annotations

import numpy as np
import onnx

from .context import Context
from .editor import ModelEditor, attr, display_name, iter_nodes
from .report import W_RELU6_DYNAMIC
from .spec import TransformOptions

NAME = "relu6_to_relu"


def relu6_bounds(ed: ModelEditor, node: onnx.NodeProto) -> tuple[float, float] | None:
    """``(min, max)`` of a Clip when both are static (missing = unbounded), else None."""
    if ed.opset < 11:
        lo = float(attr(node, "min", -np.inf))
        hi = float(attr(node, "max", np.inf))
        return lo, hi
    bounds = []
    for i, default in ((1, -np.inf), (2, np.inf)):
        name = node.input[i] if len(node.input) > i else ""
        if not name:
            bounds.append(default)
            continue
        v = ed.array(name)
        if v is None or v.size != 1:
            return None
        bounds.append(float(v.reshape(-1)[0]))
    return bounds[0], bounds[1]


def is_relu6(ed: ModelEditor, node: onnx.NodeProto) -> bool:
    return node.op_type == "Clip" and relu6_bounds(ed, node) == (0.0, 6.0)


def convert_relu6(ctx: Context, opts: TransformOptions) -> None:
    ed = ctx.editor
    unused: list[str] = []
    for node in list(iter_nodes(ed, ("Clip",))):
        name = display_name(node)
        bounds = relu6_bounds(ed, node)
        if bounds is None:
            ctx.report.refuse(NAME, W_RELU6_DYNAMIC, "Clip bounds are computed at run time; "
                              "cannot tell whether it is a ReLU6", [name])
            continue
        if bounds != (0.0, 6.0):
            continue
        if opts.skips(name):
            ctx.report.notes.append(f"{NAME}: {name} left alone (skip list)")
            continue
        unused += [i for i in node.input[1:] if i]
        relu = onnx.helper.make_node("Relu", [node.input[0]], list(node.output), name=node.name)
        ed.replace_node(node, relu)
        ctx.report.converted.append({"node": name, "from": "Clip(0, 6)", "to": "Relu"})
    ed.prune(unused)
