"""Simulated forward throughput: quantspec's QDQ model against the float model and ORT's QDQ.

The ResNet-like CNN of ``bench_calibrate.py`` (``onnx.helper``, random weights) is calibrated on
random samples with the stdlib ``ort/qdq`` profile (``quantspec.runtime.calibrate``); quantspec
builds its QDQ model (``build_qdq``) and onnxruntime's ``quantize_static`` builds one from the
same model and samples (QDQ format, per-channel, uint8 activations, int8 weights, MinMax). Then
every model runs the same samples, one ``run`` per sample, in onnxruntime on the CPU:

* ``float``: the float model, default session options (all graph optimizations);
* ``quantspec sim``: quantspec's QDQ model as ``quantspec simulate`` runs it
  (``simulation_executor``: every graph optimization except onnxruntime's QDQ transformers, which
  would rewrite the arithmetic);
* ``quantspec deploy``: the same model with all optimizations (onnxruntime fuses Q/DQ into
  integer kernels): what a QDQ consumer makes of it;
* ``ort sim`` / ``ort deploy``: ``quantize_static``'s model, in the same two sessions.

The runners take turns on every sample, ``--repeat`` times; each runner's time is the sum over
samples of its best time per sample, compared with ``float``'s from the same invocation. The
output SQNR (logits against the float model's) of both QDQ models is printed too, as a sanity
check that they quantize alike.

Target (issue 4): simulated forward <= 1.5x the float forward.

Run (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_simulate.py [--convs 50] [--size 224] [--samples 16]
        [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_calibrate import build_model  # noqa: E402


def ort_qdq(model_path: str, out_path: str, samples: np.ndarray) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.i = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.i >= len(samples):
                return None
            self.i += 1
            return {"input": samples[self.i - 1]}

    quantize_static(model_path, out_path, Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--convs", type=int, default=50)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import onnx
    import onnxruntime

    from quantspec.compiler import compile_profile
    from quantspec.graph import Graph
    from quantspec.lang.load import loads
    from quantspec.runtime.calibrate import calibrate
    from quantspec.runtime.execute import Executor
    from quantspec.runtime.qdq import build_qdq
    from quantspec.runtime.simulate import simulation_executor
    from quantspec.runtime.sqnr import Sqnr

    rng = np.random.default_rng(1)
    samples = rng.standard_normal([args.samples, 1, 3, args.size, args.size]).astype(np.float32)
    model = build_model(args.convs, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = str(Path(tmp) / "resnet_like.onnx")
        onnx.save(model, model_path)
        plan = compile_profile(loads('profile "bench" extends "ort/qdq"\n', "bench.qspec"),
                               Graph.from_model(model, model_path))
        t0 = time.perf_counter()
        result = calibrate(plan, model, [{"input": s} for s in samples])
        t1 = time.perf_counter()
        ours = build_qdq(model, plan, result.encodings).model
        t2 = time.perf_counter()
        ort_path = str(Path(tmp) / "ort.qdq.onnx")
        ort_qdq(model_path, ort_path, samples)
        t3 = time.perf_counter()
        theirs = onnx.load(ort_path)

    def count(m: onnx.ModelProto, op: str) -> int:
        return sum(1 for n in m.graph.node if n.op_type == op)

    print(f"model: {count(model, 'Conv')} Conv, {len(model.graph.node)} nodes, input "
          f"1x3x{args.size}x{args.size}; {args.samples} samples")
    print(f"python {platform.python_version()}, numpy {np.__version__}, onnxruntime "
          f"{onnxruntime.__version__}, {os.cpu_count()} CPUs")
    print(f"quantspec: calibrate {t1 - t0:.2f} s, build_qdq {t2 - t1:.2f} s "
          f"({count(ours, 'QuantizeLinear')} Q, {count(ours, 'DequantizeLinear')} DQ); "
          f"ort quantize_static {t3 - t2:.2f} s ({count(theirs, 'QuantizeLinear')} Q, "
          f"{count(theirs, 'DequantizeLinear')} DQ)")

    runners: dict[str, Executor] = {
        "float": Executor(model, optimization="all"),
        "quantspec sim": simulation_executor(ours),
        "quantspec deploy": Executor(ours, optimization="all"),
        "ort sim": simulation_executor(theirs),
        "ort deploy": Executor(theirs, optimization="all"),
    }
    feeds = [{"input": s} for s in samples]

    for ex in runners.values():  # warm-up: first runs allocate
        ex.run(feeds[0])
    # Interleaved per sample (the runners take turns on each sample) and the best of --repeat
    # per (runner, sample): on a shared machine, load bursts then hit every runner alike.
    per_sample = {name: [float("inf")] * len(feeds) for name in runners}
    for _ in range(args.repeat):
        for i, f in enumerate(feeds):
            for name, ex in runners.items():
                t = time.perf_counter()
                ex.run(f)
                per_sample[name][i] = min(per_sample[name][i], time.perf_counter() - t)
    best = {name: sum(times) for name, times in per_sample.items()}

    reference = [runners["float"].run(f)["logits"] for f in feeds]
    sqnr: dict[str, float] = {}
    for name in ("quantspec sim", "ort sim"):
        acc = Sqnr()
        for f, ref in zip(feeds, reference, strict=True):
            acc.update(ref, runners[name].run(f)["logits"])
        sqnr[name] = acc.db

    base = best["float"]
    print("| run | best ms / sample | vs float | vs ort (same mode) | logits SQNR dB |")
    print("|---|---:|---:|---:|---:|")
    for name, t in best.items():
        mode = name.split()[-1]
        peer = best.get(f"ort {mode}") if name.startswith("quantspec") else None
        vs_ort = f"{t / peer:.2f}x" if peer else "-"
        db = f"{sqnr[name]:.1f}" if name in sqnr else "-"
        print(f"| {name} | {1000 * t / len(feeds):.1f} | {t / base:.2f}x | {vs_ort} | {db} |")
    ratio = best["quantspec sim"] / base
    print(f"simulated forward / float forward = {ratio:.2f}x (target <= 1.5x: "
          f"{'ok' if ratio <= 1.5 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
