"""Cross-layer equalization with high-bias absorption (Nagel et al., arXiv 1906.04721).

Patterns (spec 004, "Enhanced Quantization Techniques: Limitations"; r = required, o = optional):
``Conv(r) -> BN(o) -> Relu(o) -> Conv(r)`` and
``Conv(r) -> BN(o) -> Relu(o) -> DepthwiseConv(r) -> BN(o) -> Relu(o) -> Conv(r)``, each on a
single branch: every tensor between two layers has exactly one reader and is not a graph output.
Longer chains are cut into such sets the way AIMET does (a depthwise conv in the middle makes a
triplet, otherwise consecutive pairs), and each set is scaled once.

*Scaling* (paper section 4.1). ReLU is positively homogeneous, ``relu(x / s) = relu(x) / s``, so
output channel ``c`` of the first layer can be divided by ``s[c] > 0`` and input channel ``c`` of
the next multiplied by it without changing the function. With ``r1[c]``, ``r2[c]`` the channel's
weight ranges (max |w|) in both layers, ``s = sqrt(r1 * r2) / r2`` leaves both at
``sqrt(r1 * r2)``. For a triplet, ``R = cbrt(r1 r2 r3)``, ``s1 = r1 / R``, ``s2 = R / r3`` give
all three ``R``.

*High-bias absorption* (section 4.2). After a ReLU, the part ``c = max(0, beta - 3 |gamma|)`` of
a channel's bias almost never reaches zero (BN output ~ N(beta, gamma^2)): it moves into the
next layer's bias as ``W2 @ c``. It needs the batch-norm ``gamma, beta`` of the first layer; when
the model has none ("Invalid model for HBA quantization algorithm", spec 004) it is skipped with
a warning. Like the paper and AIMET, the next layer's zero padding is not corrected for.

CLE supports ReLU only: a ReLU6 (Clip 0..6) between two layers refuses the set unless
``relu6_to_relu`` ran first; any other op between them refuses it too. Batch norms inside a
pattern are folded first (AIMET's ``equalize_model`` does the same), recorded ``by: cle``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from .bn_fold import Refused, fold_bn
from .context import Context
from .editor import ModelEditor, attr, display_name, iter_nodes, layer_bias, set_layer_bias
from .relu6 import is_relu6
from .report import W_CLE_BRANCHED, W_CLE_LAYER, W_CLE_NO_BN, W_CLE_OP
from .spec import TransformOptions

NAME = "cle"


@dataclass
class Link:
    """Two layers joined by an optional BN and an optional Relu on one branch."""

    src: onnx.NodeProto
    dst: onnx.NodeProto
    bn: onnx.NodeProto | None
    act: onnx.NodeProto | None


def equalize(ctx: Context, opts: TransformOptions, fold_opts: TransformOptions | None) -> None:
    ed = ctx.editor
    links = _find_links(ctx, opts)
    links = [lk for lk in links if _fold_link_bn(ctx, lk, fold_opts)]
    for chain in _chains(links):
        for group in _cls_sets(ed, chain):
            _scale_set(ctx, group, bool(opts.get("high_bias_absorption")))


# -- finding the patterns ------------------------------------------------------------------------
def _is_depthwise(ed: ModelEditor, node: onnx.NodeProto) -> bool:
    w = ed.float_param(node.input[1])
    g = int(attr(node, "group", 1))
    return w is not None and g > 1 and w.shape[1] == 1 and w.shape[0] == g


def _layer_problem(ed: ModelEditor, node: onnx.NodeProto) -> str | None:
    """Why CLE cannot rescale this Conv's channels, or None."""
    if len(node.input) < 2 or ed.float_param(node.input[1]) is None:
        return "its weights are not a static float initializer"
    if len(node.input) > 2 and node.input[2] and ed.float_param(node.input[2]) is None:
        return "its bias is not a static float initializer"
    if int(attr(node, "group", 1)) != 1 and not _is_depthwise(ed, node):
        return (f"it is a grouped convolution (group={attr(node, 'group', 1)}); only "
                "group=1 and depthwise (one filter per channel) are supported")
    return None


def _find_links(ctx: Context, opts: TransformOptions) -> list[Link]:
    ed, links = ctx.editor, []
    for conv in list(iter_nodes(ed, ("Conv",))):
        link = _follow(ctx, conv)
        if link is None:
            continue
        pair = [display_name(link.src), display_name(link.dst)]
        if opts.skips(*pair):
            ctx.report.notes.append(f"{NAME}: {' -> '.join(pair)} left alone (skip list)")
            continue
        bad = [(n, p) for n in (link.src, link.dst) if (p := _layer_problem(ed, n))]
        if bad:
            node, why = bad[0]
            ctx.report.refuse(NAME, W_CLE_LAYER, f"{display_name(node)} cannot be rescaled: "
                              f"{why}", pair)
            continue
        links.append(link)
    return links


def _follow(ctx: Context, conv: onnx.NodeProto) -> Link | None:
    """The pattern starting at ``conv``, or None (refusals reported where a pattern was near)."""
    ed = ctx.editor
    t, bn, act = conv.output[0], None, None
    path = [display_name(conv)]
    while True:
        users = ed.users(t)
        if len(users) != 1 or t in ed.outputs or list(users[0].input).count(t) != 1:
            if any(u.op_type == "Conv" for u in users) and len(path) > 0:
                where = "is a graph output" if t in ed.outputs else f"is read by {len(users)} ops"
                ctx.report.refuse(NAME, W_CLE_BRANCHED, f"tensor '{t}' after "
                                  f"{' -> '.join(path)} {where}; CLE needs a single branch "
                                  "(spec 004)", path + [display_name(u) for u in users])
            return None
        node = users[0]
        if node.domain not in ("", "ai.onnx") or node.input[0] != t:
            return None
        if node.op_type == "BatchNormalization" and bn is None and act is None:
            bn = node
        elif node.op_type == "Relu" and act is None:
            act = node
        elif node.op_type == "Conv":
            return Link(conv, node, bn, act)
        else:
            _refuse_between(ctx, node, path)
            return None
        path.append(display_name(node))
        t = node.output[0]


def _refuse_between(ctx: Context, node: onnx.NodeProto, path: list[str]) -> None:
    """Report an op CLE cannot pass when a Conv reads its output (a near-pattern)."""
    ed = ctx.editor
    out = node.output[0] if node.output else ""
    convs = [u for u in ed.users(out) if u.op_type == "Conv" and u.input[0] == out]
    if not convs:
        return
    nxt = convs[0]
    nodes = path + [display_name(node)] + [display_name(c) for c in convs]
    if is_relu6(ed, node):
        ctx.report.refuse(NAME, W_CLE_OP, f"ReLU6 ({display_name(node)}) between "
                          f"{path[0]} and {display_name(nxt)}: CLE supports ReLU only",
                          nodes, "enable relu6_to_relu (Vitis convert_relu6_to_relu); QNN "
                          "converts ReLU6 to ReLU for CLE (spec 004)")
    else:
        ctx.report.refuse(NAME, W_CLE_OP, f"{node.op_type} ({display_name(node)}) between "
                          f"{path[0]} and {display_name(nxt)} is not supported: CLE handles "
                          "Conv[-BatchNormalization][-Relu]-Conv (spec 004)", nodes)


def _fold_link_bn(ctx: Context, link: Link, fold_opts: TransformOptions | None) -> bool:
    """Fold the link's batch norm into its first layer; False (reported) when not possible."""
    if link.bn is None:
        return True
    names = [display_name(link.bn), display_name(link.src)]
    if fold_opts is not None and fold_opts.skips(*names):
        ctx.report.refuse(NAME, W_CLE_LAYER, f"{names[0]} is in the fold_batchnorm skip list; "
                          "CLE needs it folded into " + names[1], names)
        return False
    try:
        fold_bn(ctx, link.bn, following=False, by=NAME)
    except Refused as r:
        ctx.report.refuse(NAME, r.code, f"cannot fold {names[0]}: {r.message}", names, r.hint)
        return False
    link.bn = None
    return True


def _chains(links: list[Link]) -> list[list[tuple[onnx.NodeProto, onnx.NodeProto | None]]]:
    """Maximal chains ``[(layer, act after it), ..., (last layer, None)]``."""
    nxt = {id(lk.src): lk for lk in links}
    has_pred = {id(lk.dst) for lk in links}
    out = []
    for lk in links:
        if id(lk.src) in has_pred:
            continue
        chain: list[tuple[onnx.NodeProto, onnx.NodeProto | None]] = []
        cur: Link | None = lk
        while cur is not None:
            chain.append((cur.src, cur.act))
            last = cur.dst
            cur = nxt.get(id(cur.dst))
        chain.append((last, None))
        out.append(chain)
    return out


def _cls_sets(ed: ModelEditor, chain: list[tuple[onnx.NodeProto, onnx.NodeProto | None]]
              ) -> list[list[tuple[onnx.NodeProto, onnx.NodeProto | None]]]:
    """AIMET's cut of a chain: a depthwise layer with a layer after it makes a triplet."""
    sets, i = [], 0
    while i < len(chain) - 1:
        if i + 2 < len(chain) and _is_depthwise(ed, chain[i + 1][0]):
            sets.append(chain[i:i + 3])
            i += 2
        else:
            sets.append(chain[i:i + 2])
            i += 1
    return sets


# -- scaling -------------------------------------------------------------------------------------
def _out_ranges(w: np.ndarray) -> np.ndarray:
    return np.abs(w).reshape(w.shape[0], -1).max(axis=1)


def _in_ranges(ed: ModelEditor, node: onnx.NodeProto, w: np.ndarray) -> np.ndarray:
    if _is_depthwise(ed, node):
        return _out_ranges(w)
    return np.abs(np.moveaxis(w, 1, 0)).reshape(w.shape[1], -1).max(axis=1)


def _spread(r: np.ndarray) -> float:
    nz = r[r > 0]
    return float(nz.max() / nz.min()) if nz.size else 1.0


def _safe(s: np.ndarray) -> np.ndarray:
    """Scale factors with dead channels (zero range) left at 1."""
    return np.where(np.isfinite(s) & (s > 0), s, 1.0)


def _scale_set(ctx: Context, group: list[tuple[onnx.NodeProto, onnx.NodeProto | None]],
               hba: bool) -> None:
    ed = ctx.editor
    layers = [n for n, _ in group]
    names = [display_name(n) for n in layers]
    ws = [np.asarray(ed.float_param(ed.own_param(n, 1)), np.float64) for n in layers]
    if any(ws[i].shape[0] != (ws[i + 1].shape[0] if _is_depthwise(ed, layers[i + 1])
                              else ws[i + 1].shape[1]) for i in range(len(ws) - 1)):
        ctx.report.refuse(NAME, W_CLE_LAYER, "channel counts of the layers do not match", names)
        return
    r_out = _out_ranges(ws[0])
    r_in = _in_ranges(ed, layers[-1], ws[-1])
    if len(layers) == 2:
        scales = [_safe(np.sqrt(r_out / r_in))]
    else:
        r_mid = _out_ranges(ws[1])
        cube = np.cbrt(r_out * r_mid * r_in)
        scales = [_safe(r_out / cube), _safe(cube / r_in)]
    before = {names[0]: _spread(r_out), names[-1]: _spread(r_in)}
    if len(layers) == 3:
        before[names[1]] = _spread(_out_ranges(ws[1]))
    # layer i's output channels are divided by scales[i]; layer i+1's inputs multiplied by it
    for i, s in enumerate(scales):
        src, dst = layers[i], layers[i + 1]
        _divide_outputs(ctx, src, s)
        _multiply_inputs(ed, dst, s)
    after = _ranges_after(ed, layers)
    entry: dict[str, object] = {
        "layers": names,
        "kind": "triplet" if len(layers) == 3 else "pair",
        "scales": _summary(np.concatenate(scales)),
        "links": [{"between": [names[i], names[i + 1]], **_summary(s)}
                  for i, s in enumerate(scales)],
        "range_spread": {n: {"before": before[n], "after": after[n]} for n in names},
    }
    if hba:
        absorbed = [a for i in range(len(layers) - 1)
                    if (a := _absorb(ctx, group[i][0], group[i][1], layers[i + 1]))]
        if absorbed:
            entry["absorbed"] = absorbed
    ctx.report.equalized.append(entry)


def _divide_outputs(ctx: Context, node: onnx.NodeProto, s: np.ndarray) -> None:
    ed = ctx.editor
    w = np.asarray(ed.float_param(node.input[1]), np.float64)
    ed.set_param(node.input[1], w / s.reshape((-1,) + (1,) * (w.ndim - 1)))
    bias = layer_bias(ed, node)
    if bias is not None:
        set_layer_bias(ed, node, bias / s)
    stats = ctx.bn_stats.get(node.output[0])
    if stats is not None:
        ctx.bn_stats[node.output[0]] = (stats[0] / s, stats[1] / s)


def _multiply_inputs(ed: ModelEditor, node: onnx.NodeProto, s: np.ndarray) -> None:
    """Input channel ``c`` of ``node`` times ``s[c]`` (for a depthwise layer: its channel ``c``,
    whose output the caller divides again when the layer is the middle of a triplet)."""
    w = np.asarray(ed.float_param(node.input[1]), np.float64)
    if _is_depthwise(ed, node):
        w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
    else:
        w = w * s.reshape((1, -1) + (1,) * (w.ndim - 2))
    ed.set_param(node.input[1], w)


def _ranges_after(ed: ModelEditor, layers: list[onnx.NodeProto]) -> dict[str, float]:
    ws = [np.asarray(ed.float_param(n.input[1]), np.float64) for n in layers]
    out = {display_name(layers[0]): _spread(_out_ranges(ws[0])),
           display_name(layers[-1]): _spread(_in_ranges(ed, layers[-1], ws[-1]))}
    if len(layers) == 3:
        out[display_name(layers[1])] = _spread(_out_ranges(ws[1]))
    return out


def _summary(s: np.ndarray) -> dict[str, float | int]:
    return {"channels": int(s.size), "min": float(s.min()), "max": float(s.max()),
            "geomean": float(np.exp(np.mean(np.log(s))))}


# -- high-bias absorption ------------------------------------------------------------------------
def _absorb(ctx: Context, src: onnx.NodeProto, act: onnx.NodeProto | None,
            dst: onnx.NodeProto) -> dict[str, object] | None:
    """Move the always-positive part of ``src``'s output into ``dst``'s bias (ReLU links only,
    as AIMET: without a ReLU there is nothing to gain from the shift)."""
    if act is None:
        return None
    ed = ctx.editor
    stats = ctx.bn_stats.get(src.output[0])
    if stats is None:
        ctx.report.refuse(NAME, W_CLE_NO_BN, f"no BatchNormalization statistics for "
                          f"{display_name(src)}: high-bias absorption into {display_name(dst)} "
                          "skipped (QNN: 'Invalid model for HBA quantization algorithm')",
                          [display_name(src), display_name(dst)],
                          "keep the batch norms in the model (fold_batchnorm records them)")
        return None
    gamma, beta = stats
    c = np.maximum(0.0, beta - 3.0 * np.abs(gamma))
    if not np.any(c > 0):
        return None
    bias = layer_bias(ed, src)
    set_layer_bias(ed, src, (bias if bias is not None else 0.0) - c)
    w = np.asarray(ed.float_param(dst.input[1]), np.float64)
    if _is_depthwise(ed, dst):
        shift = w.reshape(w.shape[0], -1).sum(axis=1) * c
    else:
        shift = np.moveaxis(w, 1, -1).reshape(w.shape[0], -1, w.shape[1]).sum(axis=1) @ c
    dbias = layer_bias(ed, dst)
    set_layer_bias(ed, dst, (dbias if dbias is not None else 0.0) + shift)
    ctx.bn_stats[src.output[0]] = (gamma, beta - c)
    return {"from": display_name(src), "into": display_name(dst),
            "channels": int(np.count_nonzero(c)), "norm": float(np.linalg.norm(c))}
