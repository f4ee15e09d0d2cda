"""The stdlib profiles (src/quantspec/stdlib_profiles, docs/profiles.md).

Where a vendor ships a config, the stdlib profile compiles to the same plan as the vendor file:
every field of every tensor, the graph passes, the fused op chains, transforms and calibration
(only the provenance differs). The AIMET/QNN configs come from ../shared (skipped without it);
the models are the conformance corpus plus the graphs built here, so the stdlib's own
properties (and the Vitis/AMCT built-in defaults, read from a minimal config) run everywhere.
"""

from __future__ import annotations

import io
import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from qs_paths import REPO, SHARED

from quantspec.cli import main
from quantspec.compiler import compile_profile
from quantspec.dialects import aimet, amct, vitis
from quantspec.errors import QuantspecError
from quantspec.graph import Graph
from quantspec.ir import Profile
from quantspec.lang.format import format_text
from quantspec.lang.load import load, loads, stdlib_names, stdlib_text

STDLIB = REPO / "src" / "quantspec" / "stdlib_profiles"
CONFIGS = SHARED / "corpus" / "aimet" / "conformance" / "configs"
CORPUS_MODELS = SHARED / "corpus" / "aimet" / "conformance" / "models"

# stdlib profile -> the vendor config it reproduces (AIMET 2.42.0 / QNN quantsim configs)
AIMET_PAIRS = {
    "aimet/default": "default_config",
    "aimet/default-per-channel": "default_config_per_channel",
    "qnn/dsp": "dsp_quantsim_config",
    "qnn/enpu-v6": "enpu_quantsim_config_v6",
    "qnn/enpu-v7": "enpu_quantsim_config_v7",
    "qnn/enpu-v7-per-channel": "enpu_quantsim_config_v7_per_channel",
    **{f"qnn/htp-v{v}": f"htp_quantsim_config_v{v}" for v in (66, 68, 69, 73, 75, 79, 81, 85)},
    **{f"qnn/htp-v{v}-per-channel-linear": f"htp_quantsim_config_v{v}_per_channel_linear"
       for v in (69, 73, 75, 79, 81)},
}
# stdlib profile -> the minimal vendor config whose reader defaults it reproduces
BUILTIN_PAIRS = [
    ("vitis/dpu", "vitis", '{"target_device": "DPU"}'),
    ("vitis/cpu-gpu", "vitis", '{"target_device": "CPU"}'),
    ("vitis/cpu-gpu", "vitis", '{"target_device": "GPU"}'),
    ("amct/default", "amct", ""),
]
BITWIDTHS = [(8, 8), (4, 16)]  # (param, activation): AIMET's defaults and the corpus' w4a16


# ---------------------------------------------------------------------------------------------
# Models built here (opset 17 unless an op needs more)
# ---------------------------------------------------------------------------------------------


def _w(name: str, *shape: int, seed: int = 0) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _c(name: str, value: Any, dtype: Any = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int]],
           outputs: dict[str, list[int] | None], inits: list[onnx.TensorProto],
           opset: int = 17) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "stdlib",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _n(op: str, ins: list[str], outs: list[str], **attrs: Any) -> onnx.NodeProto:
    return helper.make_node(op, ins, outs, name=outs[0] + "_" + op.lower(), **attrs)


def _bn(x: str, y: str, c: int, tag: str) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    names = [f"{tag}_{k}" for k in ("scale", "b", "mean", "var")]
    inits = [_w(names[0], c, seed=3), _w(names[1], c, seed=4), _w(names[2], c, seed=5),
             _c(names[3], np.ones(c))]
    return _n("BatchNormalization", [x, *names], [y]), inits


def cnn() -> onnx.ModelProto:
    """Convolutions with every activation the configs fuse, depthwise and grouped ones, pools,
    a residual Add, a Concat of two branches, Resize and a classifier head."""
    c = 4
    inits = [_w("w0", c, 3, 3, 3), _w("b0", c), _w("wd", c, 1, 3, 3, seed=1), _w("bd", c),
             _w("w2", c, c, 1, 1, seed=2), _w("w3", c, c, 1, 1, seed=3), _w("b3", c),
             _w("w4", c, c, 1, 1, seed=4), _c("slope", np.full((c, 1, 1), 0.1)),
             _w("wt", c, c // 2, 2, 2, seed=5), _w("w5", c, c, 1, 1, seed=6),
             _w("w6", c, c, 3, 3, seed=7), _w("b6", c), _c("lo", 0.0), _c("hi", 6.0),
             _c("scales", [1.0, 1.0, 2.0, 2.0]), _w("fc1", 2 * c, 8, seed=8), _w("fb1", 8),
             _w("fc2", 8, 5, seed=9), _w("fb2", 5), _c("half", 0.5)]
    bn0, i0 = _bn("c0", "n0", c, "bn0")
    bn1, i1 = _bn("p0", "n1", c, "bn1")
    bn2, i2 = _bn("c2", "n2", c, "bn2")
    nodes = [
        _n("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]), bn0,
        _n("Relu", ["n0"], ["r0"]),
        _n("Conv", ["r0", "wd", "bd"], ["d0"], group=c, pads=[1, 1, 1, 1]),
        _n("Clip", ["d0", "lo", "hi"], ["k0"]),
        _n("MaxPool", ["k0"], ["p0"], kernel_shape=[1, 1]), bn1,
        _n("Relu", ["n1"], ["r1"]),
        _n("Conv", ["r1", "w2"], ["c2"]), bn2,
        _n("LeakyRelu", ["n2"], ["l2"]),
        _n("Conv", ["l2", "w3", "b3"], ["c3"]),
        _n("PRelu", ["c3", "slope"], ["q3"]),
        _n("ConvTranspose", ["q3", "wt"], ["t0"], group=2, strides=[2, 2]),
        _n("Relu", ["t0"], ["r2"]),
        _n("AveragePool", ["r2"], ["a0"], kernel_shape=[2, 2], strides=[2, 2]),
        _n("Conv", ["a0", "w4"], ["c4"]),
        _n("Transpose", ["c4"], ["tp"], perm=[0, 1, 3, 2]),
        _n("Relu", ["tp"], ["r3"]),
        _n("Add", ["r3", "q3"], ["s0"]),
        _n("Relu", ["s0"], ["r4"]),
        _n("Conv", ["r4", "w5"], ["c5"]),
        _n("HardSwish", ["c5"], ["h5"]),
        _n("Conv", ["h5", "w6", "b6"], ["c6"], pads=[1, 1, 1, 1]),
        _n("Sigmoid", ["c6"], ["g6"]),
        _n("Mul", ["g6", "half"], ["m6"]),
        _n("Concat", ["m6", "r4"], ["cat"], axis=1),
        _n("Resize", ["cat", "", "scales"], ["up"], mode="nearest"),
        _n("GlobalAveragePool", ["up"], ["gap"]),
        _n("Flatten", ["gap"], ["flat"]),
        _n("Gemm", ["flat", "fc1", "fb1"], ["f1"]),
        _n("Relu", ["f1"], ["fr"]),
        _n("Gemm", ["fr", "fc2", "fb2"], ["f2"]),
        _n("Softmax", ["f2"], ["y"]),
    ]
    return _model(nodes, {"x": [1, 3, 8, 8]}, {"y": [1, 5]}, inits + i0 + i1 + i2)


def transformer() -> onnx.ModelProto:
    """An attention block: LayerNorm, MatMul+Add (the matmul_add pass), dynamic MatMuls with a
    Softmax, a decomposed LayerNorm (the layer_norm pass), an embedding Gather, Split/Concat,
    Cast, Tanh/Sin/Cos/Erf and two graph outputs of which one also feeds an op."""
    d, t = 8, 6
    inits = [_w("emb", 10, d), _w("ln_g", d), _w("ln_b", d), _w("wq", d, d, seed=1),
             _w("bq", d), _w("wk", d, d, seed=2), _w("wv", d, d, seed=3), _w("bv", d),
             _c("shape", [1, t, 2, d // 2], np.int64), _c("flat", [1, t, d], np.int64),
             _w("wo", d, d, seed=4), _w("bo", d), _c("two", 2.0), _c("eps", 1e-5),
             _c("axes", [-1], np.int64), _w("g2", d, seed=5), _w("b2", d, seed=6),
             _c("split", [4, 4], np.int64), _c("sq2", 1.4142135), _c("one", 1.0),
             _c("ids", [[1, 2, 3, 4, 5, 6]], np.int64)]
    nodes = [
        _n("Gather", ["emb", "ids"], ["e"]),
        _n("Add", ["e", "x"], ["h0"]),
        _n("LayerNormalization", ["h0", "ln_g", "ln_b"], ["ln"], axis=-1),
        _n("MatMul", ["ln", "wq"], ["q0"]), _n("Add", ["q0", "bq"], ["q"]),
        _n("MatMul", ["ln", "wk"], ["k"]),
        _n("MatMul", ["ln", "wv"], ["v0"]), _n("Add", ["v0", "bv"], ["v"]),
        _n("Reshape", ["q", "shape"], ["qh"]), _n("Transpose", ["qh"], ["qt"], perm=[0, 2, 1, 3]),
        _n("Reshape", ["k", "shape"], ["kh"]), _n("Transpose", ["kh"], ["kt"], perm=[0, 2, 3, 1]),
        _n("Reshape", ["v", "shape"], ["vh"]), _n("Transpose", ["vh"], ["vt"], perm=[0, 2, 1, 3]),
        _n("MatMul", ["qt", "kt"], ["s"]),
        _n("Softmax", ["s"], ["p"], axis=-1),
        _n("MatMul", ["p", "vt"], ["o"]),
        _n("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
        _n("Reshape", ["ot", "flat"], ["of"]),
        _n("MatMul", ["of", "wo"], ["a0"]), _n("Add", ["a0", "bo"], ["a"]),
        _n("Add", ["a", "h0"], ["r"]),
        # decomposed LayerNorm
        _n("ReduceMean", ["r"], ["mu"], axes=[-1]), _n("Sub", ["r", "mu"], ["dv"]),
        _n("Pow", ["dv", "two"], ["sq"]), _n("ReduceMean", ["sq"], ["var"], axes=[-1]),
        _n("Add", ["var", "eps"], ["ve"]), _n("Sqrt", ["ve"], ["sd"]),
        _n("Div", ["dv", "sd"], ["nz"]), _n("Mul", ["nz", "g2"], ["ng"]),
        _n("Add", ["ng", "b2"], ["n2"]),
        # GELU (erf form), Tanh/Sin/Cos, Split/Concat, a Cast round trip
        _n("Div", ["n2", "sq2"], ["gd"]), _n("Erf", ["gd"], ["ge"]),
        _n("Add", ["ge", "one"], ["g1"]), _n("Mul", ["n2", "g1"], ["gm"]),
        _n("Split", ["gm", "split"], ["s1", "s2"], axis=-1),
        _n("Tanh", ["s1"], ["th"]), _n("Sin", ["s2"], ["sn"]), _n("Cos", ["s2"], ["cs"]),
        _n("Add", ["sn", "cs"], ["sc"]),
        _n("Concat", ["th", "sc"], ["cc"], axis=-1),
        _n("Cast", ["cc"], ["c16"], to=TensorProto.FLOAT16),
        _n("Cast", ["c16"], ["c32"], to=TensorProto.FLOAT),
        _n("Sub", ["c32", "r"], ["y"]),
    ]
    # "r" is a graph output that also feeds ops: not a terminal output
    return _model(nodes, {"x": [1, t, d]}, {"y": [1, t, d], "r": [1, t, d]}, inits)


def misc() -> onnx.ModelProto:
    """Norm layers, a GRU, Gemm -> BatchNorm -> Relu (only a BatchNorm-first supergroup
    matches), MaxPool -> BatchNorm -> PRelu and a branching Conv (no supergroup may start
    there), Mean and the rest of the activations the eNPU configs fuse."""
    c = 4
    bn0, i0 = _bn("g0", "gb", 6, "bn0")
    bn1, i1 = _bn("mp", "mb", c, "bn1")
    inits = [_w("wg", 6, 3 * 5, seed=1), _w("rg", 1, 3 * 5, 5, seed=2), _w("bg", 1, 6 * 5),
             _w("fc", 5, 6, seed=3), _w("fb", 6), _w("in_s", c), _w("in_b", c),
             _w("gn_s", 2), _w("gn_b", 2), _w("wc", c, c, 1, 1, seed=4), _w("bc", c),
             _c("slope", [0.2]), _w("wx", c, c, 1, 1, seed=5)]
    nodes = [
        _n("GRU", ["seq", "wg", "rg", "bg"], ["gy", "gh"], hidden_size=5),
        _n("Squeeze", ["gh"], ["h"]),
        _n("Gemm", ["h", "fc", "fb"], ["g0"]), bn0, _n("Relu", ["gb"], ["z"]),
        _n("InstanceNormalization", ["img", "in_s", "in_b"], ["in"]),
        _n("GroupNormalization", ["in", "gn_s", "gn_b"], ["gn"], num_groups=2),
        _n("MaxPool", ["gn"], ["mp"], kernel_shape=[1, 1]), bn1,
        _n("PRelu", ["mb", "slope"], ["pr"]),
        _n("Conv", ["pr", "wc", "bc"], ["cv"]),
        _n("Relu", ["cv"], ["cr"]),
        _n("Sigmoid", ["cv"], ["cg"]),
        _n("Mul", ["cr", "cg"], ["cm"]),
        _n("Conv", ["cm", "wx"], ["cx"]),
        _n("Tanh", ["cx"], ["ct"]),
        _n("ReduceMean", ["ct"], ["y"], axes=[2, 3], keepdims=0),
        _n("Mean", ["y", "y"], ["y2"]),
    ]
    return _model(nodes, {"seq": [3, 1, 6], "img": [1, c, 4, 4]},
                  {"z": [1, 6], "y2": [1, c]}, inits + i0 + i1, opset=18)


def overlap() -> onnx.ModelProto:
    """Two equally long supergroups that share an op (a PRelu whose slope is an activation): the
    one listed first in the config wins (aimet.md B.3), so the order of `fuse` lines matters."""
    inits = [_w("wa", 4, 4, 1, 1), _w("wb", 4, 4, 1, 1, seed=1)]
    nodes = [
        _n("AveragePool", ["x"], ["b"], kernel_shape=[1, 1]),
        _n("Conv", ["x", "wa"], ["a"]),
        _n("PRelu", ["a", "b"], ["p"]),
        _n("Conv", ["p", "wb"], ["y"]),
    ]
    return _model(nodes, {"x": [1, 4, 4, 4]}, {"y": [1, 4, 4, 4]}, inits)


BUILT = {"cnn": cnn, "transformer": transformer, "misc": misc, "overlap": overlap}


@cache
def built_graph(name: str) -> Graph:
    return Graph.from_model(BUILT[name](), f"{name}.onnx")


@cache
def corpus_graph(name: str) -> Graph:
    return Graph.load(CORPUS_MODELS / name)


CORPUS = sorted(p.name for p in CORPUS_MODELS.glob("*.onnx")) if CORPUS_MODELS.exists() else []
MODELS = [("built", n) for n in BUILT] + [("corpus", n) for n in CORPUS]


def graph(kind: str, name: str) -> Graph:
    return built_graph(name) if kind == "built" else corpus_graph(name)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def std(name: str, extra: str = "") -> Profile:
    """A user profile that extends stdlib profile ``name`` (plus ``extra`` rules)."""
    return loads(f'profile "user" extends "{name}"\n{extra}', "<user>.qspec")


def plan_of(profile: Profile, g: Graph) -> dict[str, Any] | tuple[str, str]:
    """The comparable content of a plan: everything but provenance. A fused chain is its ops
    (the pattern text differs when a profile writes alternatives). An error is its code."""
    try:
        d = compile_profile(profile, g).to_json()
    except QuantspecError as exc:
        return ("error", exc.code)
    for t in d["tensors"]:
        del t["why"]
    del d["profile"]
    d["fusions"] = sorted(tuple(m["nodes"]) for m in d["fusions"])
    return d


def differences(a: Any, b: Any) -> list[str]:
    if isinstance(a, tuple) or isinstance(b, tuple):
        return [] if a == b else [f"vendor {a!r:.60}, stdlib {b!r:.60}"]
    out = [f"{k}: vendor {a[k]!r:.80} stdlib {b[k]!r:.80}" for k in a
           if k != "tensors" and a[k] != b[k]]
    ours = {t["name"]: t for t in b["tensors"]}
    for t in a["tensors"]:
        o = ours.get(t["name"], {})
        out += [f"{t['name']}.{k}: vendor {v!r} stdlib {o.get(k)!r}"
                for k, v in t.items() if o.get(k) != v]
    return out


def entries(profile: Profile, g: Graph) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in compile_profile(profile, g).to_json()["tensors"]}


# ---------------------------------------------------------------------------------------------
# Every stdlib profile
# ---------------------------------------------------------------------------------------------

NAMES = stdlib_names()


def test_the_stdlib_has_the_documented_profiles() -> None:
    expected = {*AIMET_PAIRS, *(n for n, _, _ in BUILTIN_PAIRS), "aimet/implicit",
                "qnn/htp-base", "qnn/enpu-base", "vitis/base", "ort/qdq", "tensorrt/int8",
                "tflite/int8"}
    assert set(NAMES) == expected
    doc = (REPO / "docs" / "profiles.md").read_text("utf-8")
    assert [n for n in NAMES if f"`{n}`" not in doc] == []


@pytest.mark.parametrize("name", NAMES)
def test_profile_file_is_canonical_and_named_after_its_path(name: str) -> None:
    text = stdlib_text(name)
    assert text is not None
    first = text.splitlines()[0]
    assert first.startswith("# ") and len(first) > 20  # the description `profiles` prints
    assert format_text(text, f"{name}.qspec") == text
    header = re.search(r'^profile "([^"]+)"', text, re.M)
    assert header is not None and header.group(1) == name
    assert len(f"{name:30s}  {first[2:]}") <= 100


@pytest.mark.parametrize("name", NAMES)
def test_profile_compiles_on_the_built_models(name: str) -> None:
    prof = std(name)
    for model in BUILT:
        if name == "amct/default" and model == "misc":
            continue  # AMCT's GRU weights are per-channel: see test_amct_default_gru below
        plan = compile_profile(prof, built_graph(model))
        # aimet/implicit alone turns nothing on: the configs that extend it do
        assert (plan.summary()["quantized"] > 0) == (name != "aimet/implicit")


def test_profiles_command_lists_every_profile_with_its_description() -> None:
    out = io.StringIO()
    assert main(["profiles"], stdout=out) == 0
    lines = out.getvalue().splitlines()
    assert [ln.split()[0] for ln in lines] == sorted(NAMES)
    for ln in lines:
        name, desc = ln[:30].strip(), ln[32:]
        assert ln[30:32] == "  " and desc == (stdlib_text(name) or "").splitlines()[0][2:]


def test_extends_chains_share_structure() -> None:
    """Versions extend their predecessors, variants their version (docs/profiles.md)."""
    def parents(name: str) -> list[str]:
        m = re.search(r'^profile "[^"]+" extends (.+)$', stdlib_text(name) or "", re.M)
        return re.findall(r'"([^"]+)"', m.group(1)) if m else []

    assert parents("qnn/htp-v73") == ["qnn/htp-v69"]
    assert parents("qnn/htp-v69") == ["qnn/htp-v68"]
    for v in (75, 79, 81, 85):
        assert parents(f"qnn/htp-v{v}") == ["qnn/htp-v73"]
    for v in (69, 73, 75, 79, 81):
        assert parents(f"qnn/htp-v{v}-per-channel-linear") == [f"qnn/htp-v{v}"]
    assert parents("qnn/enpu-v7") == ["qnn/enpu-v6"]
    assert parents("aimet/default-per-channel") == ["aimet/default"]
    for name in ("qnn/htp-base", "qnn/enpu-base", "qnn/dsp", "aimet/default"):
        assert parents(name) == ["aimet/implicit"]


# ---------------------------------------------------------------------------------------------
# Same plan as the vendor file
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", BITWIDTHS, ids=lambda b: f"w{b[0]}a{b[1]}")
@pytest.mark.parametrize("name", sorted(AIMET_PAIRS))
def test_aimet_profile_compiles_like_the_vendor_config(name: str, bits: tuple[int, int]) -> None:
    cfg = CONFIGS / f"{AIMET_PAIRS[name]}.json"
    if not cfg.exists():
        pytest.skip(f"{cfg} not present (../shared is optional)")
    param_bw, act_bw = bits
    vendor = aimet.read(cfg.read_text("utf-8"), str(cfg), param_bw=param_bw, act_bw=act_bw)
    # AIMET's bit widths are QuantizationSimModel arguments; a stdlib profile states them
    extra = "" if bits == (8, 8) else f"defaults {{ int{act_bw}  param {{ int{param_bw} }} }}\n"
    ours = std(name, extra)
    failures = {}
    for kind, model in MODELS:
        g = graph(kind, model)
        diff = differences(plan_of(vendor, g), plan_of(ours, g))
        if diff:
            failures[model] = diff[:4]
    assert not failures


@pytest.mark.parametrize(("name", "dialect", "text"), BUILTIN_PAIRS,
                         ids=[f"{n}-{t[16:19] or 'empty'}" for n, _, t in BUILTIN_PAIRS])
def test_builtin_profile_compiles_like_the_reader_defaults(name: str, dialect: str,
                                                            text: str) -> None:
    mod = {"vitis": vitis, "amct": amct}[dialect]
    vendor = mod.read(text, f"minimal.{'json' if dialect == 'vitis' else 'cfg'}")
    ours = std(name)
    for kind, model in MODELS:
        g = graph(kind, model)
        assert differences(plan_of(vendor, g), plan_of(ours, g)) == [], model


WRITERS = [*((n, "aimet") for n in sorted(AIMET_PAIRS)), ("vitis/dpu", "vitis"),
           ("vitis/cpu-gpu", "vitis"), ("amct/default", "amct")]


@pytest.mark.parametrize(("name", "dialect"), WRITERS, ids=[n for n, _ in WRITERS])
def test_profile_written_in_its_vendor_format_reads_back_to_the_same_plan(name: str,
                                                                          dialect: str) -> None:
    """`translate` of a stdlib-based profile: AIMET re-derives what aimet/implicit states (the
    writer reports those rules as not held), the other readers their built-in defaults."""
    from quantspec.errors import Report

    mod = {"aimet": aimet, "vitis": vitis, "amct": amct}[dialect]
    ours = std(name)
    back = mod.read(mod.write(ours, Report()), f"written.{'cfg' if dialect == 'amct' else 'json'}")
    for kind, model in MODELS:
        g = graph(kind, model)
        assert differences(plan_of(ours, g), plan_of(back, g)) == [], model


def test_amct_default_gru_weights_fail_like_the_reader() -> None:
    """AMCT makes GRU weights per-channel; quantspec finds no channel axis for them (E205), with
    the reader's defaults as with the stdlib profile."""
    g = built_graph("misc")
    assert plan_of(amct.read("", "empty.cfg"), g) == plan_of(std("amct/default"), g) \
        == ("error", "E205")


def test_supergroup_order_decides_an_overlap() -> None:
    """eNPU V6 lists Conv -> PRelu before AveragePool -> PRelu: the Conv output is fused."""
    e = entries(std("qnn/enpu-v6"), built_graph("overlap"))
    assert not e["a"]["quantized"] and e["b"]["quantized"]
    swapped = std("aimet/implicit", "defaults { output { on } }\n"
                  "fuse AveragePool -> PRelu\nfuse Conv -> PRelu\n")
    e = entries(swapped, built_graph("overlap"))
    assert e["a"]["quantized"] and not e["b"]["quantized"]


def test_stdlib_pair_differs_from_a_different_vendor_config() -> None:
    """The comparison can fail: V66 and V73 plans differ on the attention model."""
    g = built_graph("transformer")
    assert differences(plan_of(std("qnn/htp-v66"), g), plan_of(std("qnn/htp-v73"), g))


# ---------------------------------------------------------------------------------------------
# AIMET specifics expressed as rules
# ---------------------------------------------------------------------------------------------


def test_bit_widths_are_overridable_by_an_extending_profile() -> None:
    g = built_graph("cnn")
    e = entries(std("qnn/htp-v73", "defaults { int16  param { int4 } }"), g)
    assert e["w0"]["bits"] == 4 and e["r0"]["bits"] == 16
    e = entries(std("qnn/htp-v73"), g)
    assert e["w0"]["bits"] == 8 and e["r0"]["bits"] == 8


def test_implicit_rules_show_in_explain() -> None:
    from quantspec.explain import explain

    plan = compile_profile(std("qnn/htp-v73"), built_graph("transformer"))
    # a Reshape output never gets a quantizer: decided by a `final` rule of aimet/implicit
    text = explain(plan.entry("qh"))  # type: ignore[arg-type]
    assert "std/aimet/implicit.qspec" in text


def test_a_user_file_extends_a_stdlib_profile(tmp_path: Path) -> None:
    model = tmp_path / "cnn.onnx"
    onnx.save(cnn(), model)
    prof = tmp_path / "mine.qspec"
    prof.write_text('profile "mine" extends "qnn/htp-v73"\nop Conv { output { int16 } }\n')
    out = io.StringIO()
    assert main(["compile", str(prof), "--model", str(model)], stdout=out) == 0
    e = entries(load(str(prof)), built_graph("cnn"))
    assert e["c4"]["bits"] == 16 and e["w4"]["per_channel"] and e["w4"]["axis"] == 0


# ---------------------------------------------------------------------------------------------
# Profiles written from vendor documentation: properties of their plans
# ---------------------------------------------------------------------------------------------


def test_ort_qdq() -> None:
    e = entries(std("ort/qdq"), built_graph("cnn"))
    # activations uint8 asymmetric, weights int8 symmetric [-127, 127] per output channel
    assert (e["x"]["quantized"], e["x"]["bits"], e["x"]["signed"], e["x"]["symmetric"]) == \
        (True, 8, False, False)
    w = e["w0"]
    assert (w["bits"], w["symmetric"], w["signed"], w["narrow_range"], w["per_channel"],
            w["axis"]) == (8, True, True, True, True, 0)
    assert e["wt"]["axis"] == 1 and e["fc1"]["axis"] == 1  # ConvTranspose; Gemm without transB
    assert (e["b0"]["quantized"], e["b0"]["bits"], e["b0"]["symmetric"]) == (True, 32, True)
    # Relu/Clip after a single-consumer producer are removed: one quantizer, after the activation
    assert not e["d0"]["quantized"] and e["k0"]["quantized"]
    # a MaxPool output shares its input's encoding; a Relu after a Transpose is removed too
    # (onnxruntime 1.32.0 does so: tests/conformance/test_ort_qdq.py)
    assert "k0" in e["p0"]["shared_with"]
    assert not e["tp"]["quantized"] and e["r3"]["quantized"]
    # Clip bounds and Resize scales are not quantized; Add/Mul constants are (activation type)
    assert not e["lo"]["quantized"] and not e["scales"]["quantized"]
    assert e["half"]["quantized"] and not e["half"]["signed"]
    # HardSwish is not an ORT-quantized op, but its input and output touch Conv: quantized
    assert e["h5"]["quantized"]


def test_ort_qdq_leaves_unsupported_ops_in_float() -> None:
    e = entries(std("ort/qdq"), built_graph("transformer"))
    # Div, Erf, Sub, Pow, Sqrt are not quantized ops: tensors between them stay float ...
    assert not e["gd"]["quantized"] and not e["sd"]["quantized"] and not e["dv"]["quantized"]
    # ... a tensor an Add reads is quantized, whoever produced it
    assert e["ge"]["quantized"] and e["nz"]["quantized"]
    # a Reshape/Transpose output is quantized when its input is, with the input's encoding
    assert e["qh"]["quantized"] and set(e["qt"]["shared_with"]) == {"q", "qh"}
    assert not e["c16"]["quantized"]  # Cast is not quantized (and its output is float16)
    # LayerNormalization: data input, output, int8 scale per-tensor, int32 bias
    assert e["ln"]["quantized"] and not e["ln_g"]["per_channel"]
    assert e["ln_b"]["bits"] == 32


def test_tensorrt_int8() -> None:
    e = entries(std("tensorrt/int8"), built_graph("cnn"))
    x = e["x"]
    assert (x["quantized"], x["bits"], x["symmetric"], x["signed"], x["narrow_range"]) == \
        (True, 8, True, True, False)
    w = e["w0"]
    assert (w["symmetric"], w["narrow_range"], w["per_channel"], w["axis"]) == (True, True, True, 0)
    assert not e["b0"]["quantized"]
    # outputs of weighted ops are not quantized unless a weighted op reads them
    assert not e["c0"]["quantized"] and not e["y"]["quantized"] and not e["c6"]["quantized"]
    # a Relu output that feeds a convolution is quantized (the conv's input)
    assert e["r0"]["quantized"] and e["flat"]["quantized"]
    # weights: absolute max; activations: the profile-wide calibration method
    assert e["w0"]["calibration"]["method"] == "minmax" and "calibration" not in e["x"]["why"]
    plan = compile_profile(std("tensorrt/int8"), built_graph("cnn")).to_json()
    assert plan["calibrate"]["method"]["method"] == "entropy"


def test_tflite_int8() -> None:
    e = entries(std("tflite/int8"), built_graph("cnn"))
    x = e["x"]
    assert (x["quantized"], x["bits"], x["symmetric"], x["signed"]) == (True, 8, False, True)
    w = e["wd"]  # depthwise: still per output channel
    assert (w["symmetric"], w["narrow_range"], w["per_channel"], w["axis"]) == (True, True, True, 0)
    assert (e["b0"]["bits"], e["b0"]["symmetric"]) == (32, True)
    # fixed output encodings: LOGISTIC (1/256, -128), SOFTMAX likewise
    assert e["g6"]["fixed_range"] == [0.0, 0.99609375] and e["y"]["fixed_range"] == \
        [0.0, 0.99609375]
    # a fused activation: no quantizer between the depthwise conv and its Relu6 (Clip)
    assert not e["d0"]["quantized"] and e["k0"]["quantized"]
    # same scale/zero point: MaxPool output and input; Concat inputs and output
    assert "k0" in e["p0"]["shared_with"]
    assert "cat" in e["m6"]["shared_with"]


def test_tflite_tanh_range() -> None:
    e = entries(std("tflite/int8"), built_graph("misc"))
    assert e["ct"]["fixed_range"] == [-1.0, 0.9921875]


def test_the_examples_in_docs_profiles_compile() -> None:
    doc = (REPO / "docs" / "profiles.md").read_text("utf-8")
    blocks = [b for b in re.findall(r"```\n(.*?)```", doc, re.S) if b.startswith("profile ")]
    assert len(blocks) >= 3
    for block in blocks:
        compile_profile(loads(block, "<doc>.qspec"), built_graph("cnn"))


def test_stdlib_lints_clean() -> None:
    from quantspec.lint import lint_files

    root = REPO / "src" / "quantspec" / "stdlib_profiles"
    files = sorted(str(p) for p in root.rglob("*.qspec"))
    assert files
    assert [d.render() for d in lint_files(files)] == []
