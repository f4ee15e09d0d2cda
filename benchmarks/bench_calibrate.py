"""Calibration wall time and peak memory against onnxruntime's ``quantize_static``.

A ResNet-like CNN is built with ``onnx.helper`` (a stride-2 stem, residual blocks
``Conv -> Relu -> Conv -> Add(skip) -> Relu`` with stride-2 downsampling between stages, global
average pooling and a ``Gemm`` head; random weights) and calibrated on the same random samples by:

* ``quantspec``: load the model, compile the stdlib ``ort/qdq`` profile (uint8 asymmetric
  activations, int8 symmetric per-channel weights, ``semantics: ort``: onnxruntime's forward pass
  without graph optimizations and its scale/zero-point arithmetic), calibrate
  (``quantspec.runtime.calibrate``) and write the encodings file: what ``quantspec calibrate``
  does; for min-max the script also checks that every scale and zero point equals the one in
  ``quantize_static``'s model;
* ``quantspec-fast``: the same with ``calibrate { semantics: generic }`` (every onnxruntime graph
  optimization on; ranges may differ from onnxruntime's in the last bits where fused kernels
  round differently);
* ``ort``: ``onnxruntime.quantization.quantize_static`` (QDQ, per-channel, the same method),
  which calibrates and then writes the quantized model;
* ``ort-calib``: only the calibration half of it (``create_calibrator``, ``collect_data``,
  ``compute_data``), a stricter baseline.

Each run happens in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own; runs of the
four are interleaved and each is repeated ``--repeat`` times; the best wall times are compared
as ratios (quantspec / ort) measured in the same invocation.

Run (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_calibrate.py [--convs 50] [--size 224] [--samples 64]
        [--method minmax|percentile|entropy] [--repeat 3]
    # the floor: bare forward passes, then the activation data and calibrator update cost
    # per method, and the lower bound on a run they give
    PYTHONPATH=src python benchmarks/bench_calibrate.py --forward-floor --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ORT_METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


def build_model(convs: int, size: int, width: int = 32, seed: int = 0):  # -> onnx.ModelProto
    """A ResNet-like CNN with about ``convs`` Conv nodes on a ``size`` x ``size`` input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def conv(x: str, cin: int, cout: int, k: int, stride: int, name: str) -> str:
        w = (rng.standard_normal([cout, cin, k, k]) * np.sqrt(2.0 / (cin * k * k)))
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"{name}_w"))
        inits.append(numpy_helper.from_array(
            (rng.standard_normal(cout) * 0.01).astype(np.float32), f"{name}_b"))
        nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_out"],
                                      name=name, kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4))
        return f"{name}_out"

    def relu(x: str, name: str) -> str:
        nodes.append(helper.make_node("Relu", [x], [f"{name}_out"], name=name))
        return f"{name}_out"

    x = relu(conv("input", 3, width, 3, 2, "stem"), "stem_relu")
    c, n, stage = width, 1, 0
    blocks = max(1, (convs - 1) // 2)
    per_stage = max(1, blocks // 4)
    for b in range(blocks):
        cout, stride = c, 1
        if b and b % per_stage == 0 and stage < 3:
            cout, stride, stage = c * 2, 2, stage + 1
        h = relu(conv(x, c, cout, 3, stride, f"b{b}_c1"), f"b{b}_r1")
        h = conv(h, cout, cout, 3, 1, f"b{b}_c2")
        skip = x if stride == 1 and cout == c else conv(x, c, cout, 1, stride, f"b{b}_proj")
        nodes.append(helper.make_node("Add", [h, skip], [f"b{b}_add"], name=f"b{b}_add"))
        x = relu(f"b{b}_add", f"b{b}_r2")
        c = cout
        n += 2
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"))
    inits.append(numpy_helper.from_array(
        (rng.standard_normal([10, c]) * 0.05).astype(np.float32), "fc_w"))
    inits.append(numpy_helper.from_array(np.zeros(10, np.float32), "fc_b"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc",
                                  transB=1))
    graph = helper.make_graph(
        nodes, "resnet_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# -- workers (one per subprocess) ---------------------------------------------------------------


def work_quantspec(model_path: str, data_path: str, out_dir: str, method: str,
                   semantics: str | None = None) -> None:
    from quantspec.compiler import compile_profile
    from quantspec.fileio import write_atomic
    from quantspec.graph import Graph
    from quantspec.lang.load import loads
    from quantspec.onnx_io import load_model
    from quantspec.runtime.calibrate import calibrate
    from quantspec.runtime.data import open_data
    from quantspec.runtime.execute import input_specs

    text = 'profile "bench" extends "ort/qdq"\n'
    if method != "minmax":
        text += f"calibrate {{ method: {method} }}\n"
    if semantics:
        text += f"calibrate {{ semantics: {semantics} }}\n"
    model = load_model(model_path)
    plan = compile_profile(loads(text, "bench.qspec"), Graph.from_model(model, model_path))
    result = calibrate(plan, model, open_data(data_path, input_specs(model)))
    write_atomic(Path(out_dir) / "model.encodings", result.encodings_text("1.0.0"))


class _Reader:
    def __init__(self, data_path: str) -> None:
        self.x = np.load(data_path)["input"]
        self.i = 0

    def get_next(self):  # noqa: ANN201 - onnxruntime's CalibrationDataReader protocol
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {"input": self.x[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0


def work_ort(model_path: str, data_path: str, out_dir: str, method: str) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    reader = type("Reader", (_Reader, CalibrationDataReader), {})(data_path)
    quantize_static(model_path, str(Path(out_dir) / "model.qdq.onnx"), reader,
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, ORT_METHODS[method]))


def work_ort_calib(model_path: str, data_path: str, out_dir: str, method: str) -> None:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    reader = type("Reader", (_Reader, CalibrationDataReader), {})(data_path)
    cal = create_calibrator(model_path, augmented_model_path=str(Path(out_dir) / "aug.onnx"),
                            calibrate_method=getattr(CalibrationMethod, ORT_METHODS[method]))
    cal.collect_data(reader)
    cal.compute_data()


def work_quantspec_fast(model_path: str, data_path: str, out_dir: str, method: str) -> None:
    work_quantspec(model_path, data_path, out_dir, method, semantics="generic")


WORKERS = {"quantspec": work_quantspec, "quantspec-fast": work_quantspec_fast, "ort": work_ort,
           "ort-calib": work_ort_calib}


def worker_main(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    WORKERS[args.worker](args.model_path, args.data_path, args.out_dir, args.method)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    print(json.dumps({"wall": wall, "rss_mib": rss}))
    return 0


def spawn(kind: str, model_path: str, data_path: str, method: str,
          out_dir: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--model-path", model_path,
         "--data-path", data_path, "--method", method, "--out-dir", out_dir],
        capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare_scales(encodings_path: Path, qdq_path: Path) -> tuple[int, int]:
    """(tensors whose float32 scale and zero point equal onnxruntime's, tensors both quantized)."""
    import onnx
    from onnx import numpy_helper

    from quantspec.runtime.encoding import offset_to_zero_point

    doc = json.loads(encodings_path.read_text("utf-8"))
    ours = {}
    for e in [*doc["activation_encodings"], *doc["param_encodings"]]:
        scale = np.asarray(e["scale"], np.float64)
        signed = e["dtype"] == "INT" and e.get("is_sym", False) or e["bw"] == 32
        strict = e["bw"] == 8 and e.get("is_sym", False) and min(e["offset"]) == -127
        zp = offset_to_zero_point(np.asarray(e["offset"], np.float64), e["bw"], signed, strict)
        ours[e["name"]] = (scale.astype(np.float32), zp)
    q = onnx.load(str(qdq_path))
    inits = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    theirs = {}
    for n in q.graph.node:
        if n.op_type != "DequantizeLinear":
            continue
        name = n.input[0].removesuffix("_quantized").removesuffix("_QuantizeLinear_Output")
        theirs[name] = (inits[n.input[1]].reshape(-1), inits[n.input[2]].reshape(-1))
    common = sorted(set(ours) & set(theirs))
    same = sum(1 for k in common
               if np.array_equal(ours[k][0], theirs[k][0])
               and np.array_equal(ours[k][1], theirs[k][1].astype(np.int64)))
    return same, len(common)


def forward_floor(convs: int, size: int, samples: int, repeat: int) -> None:
    """The cost no calibrator can avoid: ``samples`` bare forward passes of the model in
    onnxruntime (nothing exposed, no statistics), with every graph optimization and with none,
    and with the samples fed in batches (the batch axis made symbolic); then the statistics
    work: how much activation data one sample gives the calibrators, and the CPU time each
    method's calibrators take to update on it. The forward pass keeps every core busy, so a
    run of ``samples`` samples needs at least (forward CPU + samples x update CPU) / cores of
    wall time, before loading anything."""
    import onnxruntime as ort

    model = build_model(convs, size)
    for vi in (*model.graph.input, *model.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "N"
    x = np.random.default_rng(1).standard_normal([samples, 3, size, size]).astype(np.float32)
    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
    print(f"bare forward passes of {samples} samples, best of {repeat}")
    print("| graph optimizations | batch | best wall s | CPU s |")
    print("|---|---:|---:|---:|")
    forward_cpu = 0.0
    for label, level in levels.items():
        opts = ort.SessionOptions()
        opts.graph_optimization_level = level
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        for batch in (1, 2, 4, 8, 16) if label == "all" else (1,):
            sess.run(None, {"input": x[:batch]})  # warm-up
            times = []
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                for i in range(0, samples, batch):
                    sess.run(None, {"input": x[i:i + batch]})
                times.append((time.perf_counter() - t0, time.process_time() - c0))
            wall, cpu = min(times)
            if label == "all" and batch == 1:
                forward_cpu = cpu
            print(f"| {label} | {batch} | {wall:.2f} | {cpu:.2f} |")
    _update_floor(model, x, forward_cpu, samples, repeat)


def _update_floor(model, x: np.ndarray, forward_cpu: float, samples: int,  # noqa: ANN001
                  repeat: int) -> None:
    """Per sample: the activation data the ``ort/qdq`` plan calibrates, and the CPU time of
    one calibrator update per quantized activation for each method (one thread)."""
    import onnx
    import onnxruntime as ort

    from quantspec.compiler import compile_profile
    from quantspec.graph import Graph
    from quantspec.lang.load import loads
    from quantspec.runtime import calibrate as cal

    cores = os.cpu_count() or 1
    probe = 4
    print(f"\ncalibrator updates (one thread), median of {probe} samples x {repeat}; lower "
          f"bound of a {samples}-sample run on {cores} cores = (forward CPU {forward_cpu:.2f} s "
          f"+ {samples} x update CPU) / {cores}")
    print("| method | activations | MB per sample | update CPU s per sample | lower bound s |")
    print("|---|---:|---:|---:|---:|")
    for method in ORT_METHODS:
        text = 'profile "floor" extends "ort/qdq"\ncalibrate { semantics: generic }\n'
        if method != "minmax":
            text += f"calibrate {{ method: {method} }}\n"
        plan = compile_profile(loads(text, "floor.qspec"), Graph.from_model(model))
        sem = cal.resolve_semantics(None, plan)
        quantizers = [q for q in cal._groups(plan, cal._ModelView(model))
                      if q.kind == "activation"]
        names = list(dict.fromkeys(n for q in quantizers for n in q.tensors))
        exposed = onnx.ModelProto()
        exposed.CopyFrom(model)
        have = {o.name for o in exposed.graph.output}
        exposed.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n)
                                    for n in names if n not in have)
        sess = ort.InferenceSession(exposed.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        outs = [dict(zip(names, sess.run(names, {"input": x[i:i + 1]}), strict=True))
                for i in range(probe)]
        mb = sum(a.nbytes for a in outs[0].values()) / 1e6
        per_sample = []
        for _ in range(repeat):
            cals = []
            for q in quantizers:
                m = cal._method(q.entry, plan.calibrate.get("method"), None, None, False, sem)
                cals.append((q, cal.make_calibrator(q.entry, m, sem, q.axis)[0]))
            for out in outs:
                c0 = time.process_time()
                for q, c in cals:
                    for n in q.tensors:
                        c.update(out[n])
                per_sample.append(time.process_time() - c0)
        upd = float(np.median(per_sample))
        print(f"| {method} | {len(names)} | {mb:.1f} | {upd:.3f} | "
              f"{(forward_cpu + samples * upd) / cores:.2f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--convs", type=int, default=50)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--method", choices=tuple(ORT_METHODS), default="minmax")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--forward-floor", action="store_true",
                    help="time only bare forward passes (the floor of any calibration run)")
    ap.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--model-path", help=argparse.SUPPRESS)
    ap.add_argument("--data-path", help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main(args)
    if args.forward_floor:
        forward_floor(args.convs, args.size, args.samples, args.repeat)
        return 0

    import onnx
    import onnxruntime

    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(args.convs, args.size)
        model_path = str(Path(tmp) / "resnet_like.onnx")
        onnx.save(model, model_path)
        data_path = str(Path(tmp) / "data.npz")
        rng = np.random.default_rng(1)
        np.savez(data_path, input=rng.standard_normal(
            [args.samples, 1, 3, args.size, args.size]).astype(np.float32))
        n_conv = sum(1 for n in model.graph.node if n.op_type == "Conv")
        print(f"model: {n_conv} Conv, {len(model.graph.node)} nodes, input 1x3x{args.size}x"
              f"{args.size}; {args.samples} samples; method {args.method}")
        print(f"python {platform.python_version()}, numpy {np.__version__}, onnxruntime "
              f"{onnxruntime.__version__}, {os.cpu_count()} CPUs")
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in WORKERS}
        outs = {k: Path(tmp) / k for k in WORKERS}
        for _ in range(args.repeat):
            for kind in WORKERS:
                outs[kind].mkdir(exist_ok=True)
                runs[kind].append(spawn(kind, model_path, data_path, args.method,
                                        str(outs[kind])))
        if args.method == "minmax":
            same, total = compare_scales(outs["quantspec"] / "model.encodings",
                                         outs["ort"] / "model.qdq.onnx")
            print(f"quantspec (ort semantics) scales and zero points equal to quantize_static's: "
                  f"{same} of {total} tensors")
    best = {k: min(r["wall"] for r in v) for k, v in runs.items()}
    rss = {k: max(r["rss_mib"] for r in v) for k, v in runs.items()}
    print("| run | best wall s | peak RSS MiB | quantspec / run |")
    print("|---|---:|---:|---:|")
    for k in WORKERS:
        ratio = best["quantspec"] / best[k]
        print(f"| {k} | {best[k]:.2f} | {rss[k]:.0f} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
