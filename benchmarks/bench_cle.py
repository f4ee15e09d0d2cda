"""What cross-layer equalization buys on a model whose channels are badly scaled.

Model: ``Conv(3->C) -> Relu -> Conv(C->C) -> Relu -> Conv(C->K)`` (3x3, padded, with biases). The
output channels of the first two convs are multiplied by factors spread log-uniformly over
1e-3..1e3 (shuffled) and the next conv's input channels by the inverse factors, so the float
function is that of an ordinary network while per-tensor weight grids are dominated by a few
huge channels (the situation of arXiv 1906.04721 section 3, e.g. depthwise MobileNet layers).

Measured before and after ``apply_transforms(model, {"cle": True})``, in one run:

* per layer: SQNR of the weights quantized per-tensor (int8 symmetric min-max, the tensor as a
  whole) and the mean over output channels of the per-channel SQNR (which shows the crushed
  channels the whole-tensor figure hides);
* end to end: SQNR of the model output with every weight quantized per-tensor (activations
  float) against the float output, and the same with per-channel weight grids as the reference
  CLE tries to make unnecessary;
* the float outputs before/after CLE (max difference relative to the largest output).

Run::

    PYTHONPATH=src python benchmarks/bench_cle.py [--channels 32] [--samples 16] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from quantspec.runtime import encoding_from_data, fake_quantize  # noqa: E402
from quantspec.transforms import apply_transforms  # noqa: E402

LAYERS = ("conv1", "conv2", "conv3")


def build(channels: int, outputs: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    shapes = [(channels, 3), (channels, channels), (outputs, channels)]
    ws = [rng.standard_normal((o, i, 3, 3)) * np.sqrt(2.0 / (9 * i)) for o, i in shapes]
    bs = [rng.standard_normal(o) * 0.1 for o, _ in shapes]
    for k in range(2):  # badly scale conv k's outputs, undo it on conv k+1's inputs
        s = rng.permutation(np.logspace(-3, 3, channels))
        ws[k] = ws[k] * s[:, None, None, None]
        bs[k] = bs[k] * s
        ws[k + 1] = ws[k + 1] / s[None, :, None, None]
    inits, nodes, x = [], [], "x"
    for k, name in enumerate(LAYERS):
        inits += [numpy_helper.from_array(ws[k].astype(np.float32), f"{name}.w"),
                  numpy_helper.from_array(bs[k].astype(np.float32), f"{name}.b")]
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [f"{name}.out"],
                                      name=name, pads=[1, 1, 1, 1]))
        x = f"{name}.out"
        if k < 2:
            nodes.append(helper.make_node("Relu", [x], [f"relu{k + 1}"], name=f"relu{k + 1}"))
            x = f"relu{k + 1}"
    graph = helper.make_graph(
        nodes, "badly_scaled",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["n", outputs, 16, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    ref64 = np.asarray(ref, np.float64)
    noise = float(np.sum((ref64 - got) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref64 ** 2) / noise))


def weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
            if t.name.endswith(".w")}


def quantize(w: np.ndarray, bits: int, per_channel: bool) -> np.ndarray:
    return fake_quantize(w, encoding_from_data(w, bits, symmetric=True,
                                               axis=0 if per_channel else None))


def weight_sqnr(w: np.ndarray, bits: int) -> tuple[float, float]:
    q = quantize(w, bits, per_channel=False)
    per_channel = [sqnr(w[c], q[c]) for c in range(w.shape[0])]
    # a channel quantized to all zeros has SQNR 0 dB; clip +inf (exact channels) for the mean
    return sqnr(w, q), float(np.mean(np.minimum(per_channel, 200.0)))


def with_quantized_weights(model: onnx.ModelProto, bits: int, per_channel: bool
                           ) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for t in out.graph.initializer:
        if t.name.endswith(".w"):
            q = quantize(numpy_helper.to_array(t), bits, per_channel)
            t.CopyFrom(numpy_helper.from_array(q, t.name))
    return out


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--outputs", type=int, default=8)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    model = build(args.channels, args.outputs, args.seed)
    equalized, report = apply_transforms(model, {"cle": True})
    x = np.random.default_rng(args.seed + 1).standard_normal(
        (args.samples, 3, 16, 16)).astype(np.float32)
    ref = run(model, x)
    drift = float(np.max(np.abs(run(equalized, x) - ref)) / np.max(np.abs(ref)))

    print(f"model: {args.channels} channels, scales 1e-3..1e3; int{args.bits} symmetric "
          f"min-max weights; {args.samples} samples of 3x16x16")
    print(f"float outputs after CLE: max |diff| / max |y| = {drift:.2e}")
    for e in report.equalized:
        sc = e["scales"]
        print(f"equalized {' -> '.join(e['layers'])}: scales {sc['min']:.3g}..{sc['max']:.3g}")
    print()
    print("| layer | whole-tensor SQNR before | after | mean per-channel SQNR before | after |")
    print("|---|---:|---:|---:|---:|")
    before_w, after_w = weights(model), weights(equalized)
    for name in LAYERS:
        t0, c0 = weight_sqnr(before_w[f"{name}.w"], args.bits)
        t1, c1 = weight_sqnr(after_w[f"{name}.w"], args.bits)
        print(f"| {name} | {t0:.1f} dB | {t1:.1f} dB | {c0:.1f} dB | {c1:.1f} dB |")
    print()
    print("| end-to-end output SQNR | before CLE | after CLE |")
    print("|---|---:|---:|")
    for label, per_channel in (("per-tensor weights", False), ("per-channel weights", True)):
        s0 = sqnr(ref, run(with_quantized_weights(model, args.bits, per_channel), x))
        s1 = sqnr(ref, run(with_quantized_weights(equalized, args.bits, per_channel), x))
        print(f"| {label} | {s0:.1f} dB | {s1:.1f} dB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
