"""Compile time against graph size: generated models of 1k, 10k and 100k nodes.

Target (issue 2): compiling a 100k-node graph takes <= 3 s on a 2-core machine, and the time
grows linearly with the node count. ``onnx.load`` is excluded: the models are built in memory.
"Compiling" is what ``quantspec compile PROFILE --model M -o plan.json`` does after loading the
model:

* ``graph``: ``Graph.from_model`` (ONNX shape inference, tensor kinds, producers/consumers);
* ``compile``: ``compile_profile(profile, graph)`` (graph passes, selection, the cascade,
  fusion patterns, post hooks, ties, per-channel axes; the Plan);
* ``dumps``: ``Plan.dumps()``, the text written to plan.json.

The target is checked on graph + compile, the time until the plan exists (writing it is
reported next to it). Each repeat builds a fresh graph view for each profile and compiles it,
so nothing computed for one compile is reused by the next; each column is the best of
``--repeat`` runs (5x as many below 50k nodes; wall time, and the CPU time of this process:
on a shared machine the wall time adds waiting for a core).

Linearity is shown as microseconds per node and as each size's per-node time over the
smallest size's (measured in the same run). Wall time per node grows on any linear pass once
the graph outgrows the caches, so the same workers also time two linear workloads that hold
nothing of quantspec on the same models (onnx's C++ shape inference, and one Python pass
over the nodes): their growth is the machine's. ``--work`` counts what the compile does
instead (bytecode instructions, calls, peak memory per node), which does not depend on the
machine; tests/test_compile_work.py checks that it stays constant. With ``--baseline-src DIR``
the same workers also run another source tree (e.g. the last commit, to measure a change),
interleaved with this one size by size, and the table shows the speed-ups.

Models: residual blocks ``Conv -> Relu -> Conv -> Add(skip) -> Relu``, a MatMul with a
static weight and a bias Add on a side branch through a Sigmoid gate, a Concat of the two
branches and a 1x1 Conv back to the block width (12 nodes per block, three branch points).
Profiles: a self-contained ``.qspec`` profile (op, layer-glob, tensor and fusion rules, a
``like output`` reference, ties) and an AIMET HTP-style config (supergroups, the MatmulAdd
pass, per-channel weights, an encoding constraint; AIMET's derived rules, ties, post hooks).

Run (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_compile.py [--sizes 1000 10000 100000] [--repeat 3]
    # against the last commit:
    mkdir -p /tmp/qs_head && git archive HEAD src | tar -x -C /tmp/qs_head
    PYTHONPATH=src python benchmarks/bench_compile.py --baseline-src /tmp/qs_head/src
    # where the time goes (cProfile of one graph view + compile + dumps of the largest model):
    PYTHONPATH=src python benchmarks/bench_compile.py --sizes 100000 --repeat 1 --profile-top 25
    # Graph.from_model with inference in the process and in a forked child (quantspec.infer):
    PYTHONPATH=src python benchmarks/bench_compile.py --inference --sizes 1000 10000 100000
    # the work per node, counted (slow: minutes at 100k nodes):
    PYTHONPATH=src python benchmarks/bench_compile.py --work --sizes 1000 10000 100000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"
NODES_PER_BLOCK = 12
CH, HW = 4, 8  # block width (channels) and spatial size: small tensors, many nodes
TARGET_S, TARGET_NODES = 3.0, 100_000

QSPEC = """\
profile "bench"
defaults {
  output { on  uint8  asymmetric }
  input { uint8  asymmetric }
  weight { on  int8  symmetric  per_channel }
  bias { off }
}
op Conv | Gemm | MatMul { weight { per_channel } }
op Add { output { int16 } }
op Concat { input { bits: like output } }
layer "blk1*" { output { calibration: percentile(percentile=99.99) } }
layer "blk*_proj" { weight { int4 } }
tensor "blk0_cat" { range: [-4.0, 4.0] }
fuse Conv -> Relu
fuse Add -> Relu
tie output_to_input: Relu
tie inputs_to_output: Concat
"""

AIMET = """\
{
    "defaults": {
        "hw_version": "V73",
        "ops": {"is_output_quantized": "True"},
        "params": {"is_quantized": "True", "is_symmetric": "True"},
        "per_channel_quantization": "False",
        "strict_symmetric": "False",
        "unsigned_symmetric": "False"
    },
    "params": {"bias": {"is_quantized": "False"}},
    "op_type": {
        "Conv": {"per_channel_quantization": "True"},
        "Gemm": {"per_channel_quantization": "True"},
        "MatMul": {"per_channel_quantization": "True"},
        "Sigmoid": {"encoding_constraints": {"min": 0.0, "max": 1.0}}
    },
    "supergroups": [
        {"op_list": ["Conv", "Relu"]},
        {"op_list": ["Add", "Relu"]},
        {"op_list": ["Gemm", "Relu"]}
    ],
    "supergroup_pass_list": ["MatmulAdd"],
    "model_input": {"is_input_quantized": "True"},
    "model_output": {"is_output_quantized": "True"}
}
"""


def build_model(blocks: int, seed: int = 0) -> Any:
    """``blocks`` residual blocks of NODES_PER_BLOCK nodes, then a Sigmoid."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def init(name: str, *shape: int) -> Any:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes, inits = [], []
    x = "input"
    for i in range(blocks):
        p = f"blk{i}"
        inits += [init(f"{p}_w1", CH, CH, 1, 1), init(f"{p}_b1", CH),
                  init(f"{p}_w2", CH, CH, 1, 1), init(f"{p}_b2", CH),
                  init(f"{p}_wm", HW, HW), init(f"{p}_bm", HW),
                  init(f"{p}_wp", CH, 2 * CH, 1, 1), init(f"{p}_bp", CH)]
        nodes += [
            helper.make_node("Conv", [x, f"{p}_w1", f"{p}_b1"], [f"{p}_c1"], name=f"{p}_conv1"),
            helper.make_node("Relu", [f"{p}_c1"], [f"{p}_r1"], name=f"{p}_relu1"),
            helper.make_node("Conv", [f"{p}_r1", f"{p}_w2", f"{p}_b2"], [f"{p}_c2"],
                             name=f"{p}_conv2"),
            helper.make_node("Add", [f"{p}_c2", x], [f"{p}_a"], name=f"{p}_add"),
            helper.make_node("Relu", [f"{p}_a"], [f"{p}_r2"], name=f"{p}_relu2"),
            helper.make_node("MatMul", [f"{p}_r1", f"{p}_wm"], [f"{p}_mm"], name=f"{p}_matmul"),
            helper.make_node("Add", [f"{p}_mm", f"{p}_bm"], [f"{p}_mb"], name=f"{p}_bias"),
            helper.make_node("Sigmoid", [f"{p}_mb"], [f"{p}_s"], name=f"{p}_sigmoid"),
            helper.make_node("Mul", [f"{p}_s", f"{p}_r2"], [f"{p}_g"], name=f"{p}_gate"),
            helper.make_node("Concat", [f"{p}_g", f"{p}_r2"], [f"{p}_cat"], name=f"{p}_concat",
                             axis=1),
            helper.make_node("Conv", [f"{p}_cat", f"{p}_wp", f"{p}_bp"], [f"{p}_pc"],
                             name=f"{p}_proj"),
            helper.make_node("Relu", [f"{p}_pc"], [f"{p}_out"], name=f"{p}_relu3"),
        ]
        x = f"{p}_out"
    nodes.append(helper.make_node("Sigmoid", [x], ["output"], name="head"))
    graph = helper.make_graph(
        nodes, "bench",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, CH, HW, HW])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, CH, HW, HW])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def bench_profiles() -> dict[str, Any]:
    """The two profiles, parsed by the quantspec on ``sys.path``: {"qspec": ..., "aimet": ...}."""
    from quantspec.dialects import aimet
    from quantspec.lang.parse import parse

    return {"qspec": parse(QSPEC, "bench.qspec"), "aimet": aimet.read(AIMET, "bench.json")}


# ---------------------------------------------------------------------------------------------
# worker: one source tree, one model size
# ---------------------------------------------------------------------------------------------


def worker(src: str, size: int, repeat: int, profile_top: int) -> dict[str, Any]:
    sys.path.insert(0, src)
    import quantspec

    if not Path(quantspec.__file__).resolve().is_relative_to(Path(src).resolve()):
        raise SystemExit(f"quantspec imported from {quantspec.__file__}, not from {src}")
    from quantspec.compiler import compile_profile
    from quantspec.graph import Graph

    model = build_model(max(1, size // NODES_PER_BLOCK))
    out: dict[str, Any] = {"nodes": len(model.graph.node), "profiles": {}}
    profiles = bench_profiles()
    times: dict[str, dict[str, list[float]]] = {name: {} for name in profiles}
    quantized: dict[str, int] = {}
    # small graphs take milliseconds, where a scheduler hiccup is a large fraction: more runs
    for _ in range(repeat if size >= 50_000 else repeat * 5):
        for name, prof in profiles.items():
            got = times[name]
            t_graph, c_graph, graph = timed(lambda: Graph.from_model(model, "bench.onnx"))
            t_comp, c_comp, plan = timed(partial(compile_profile, prof, graph, "bench.onnx"))
            t_dumps, _, text = timed(plan.dumps)
            for key, value in (("graph_s", t_graph), ("compile_s", t_comp),
                               ("total_s", t_graph + t_comp), ("dumps_s", t_dumps),
                               ("total_cpu_s", c_graph + c_comp)):
                got.setdefault(key, []).append(value)
            quantized[name] = plan.summary()["quantized"]
            out.setdefault("plan_mb", {})[name] = round(len(text) / 1e6, 1)
            del graph, plan, text
    out["references"] = reference_times(model, repeat if size >= 50_000 else repeat * 5)
    for name, got in times.items():
        out["profiles"][name] = {k: min(v) for k, v in got.items()}
        out["profiles"][name]["quantized"] = quantized[name]
        if profile_top:
            import cProfile
            import io
            import pstats

            prof = profiles[name]
            pr = cProfile.Profile()
            pr.enable()
            compile_profile(prof, Graph.from_model(model, "bench.onnx"), "bench.onnx").dumps()
            pr.disable()
            buf = io.StringIO()
            pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(profile_top)
            out["profiles"][name]["cprofile"] = buf.getvalue()
    return out


REFERENCES = {
    "onnx shape inference": "onnx's C++ infer_shapes on the serialized model, bytes to bytes",
    "node dict": "one Python pass over the model's nodes: {name: (op_type, inputs, outputs)}",
}


def reference_times(model: Any, repeat: int) -> dict[str, float]:
    """Best wall time of two linear workloads on the same model, with nothing of quantspec:
    how much the time per node of a linear pass grows with the graph on this machine."""
    from onnx.onnx_cpp2py_export import shape_inference as cpp

    data = model.SerializeToString()
    nodes = model.graph.node
    work = {
        "onnx shape inference": lambda: cpp.infer_shapes(data, False, False, False),
        "node dict": lambda: {n.name: (n.op_type, list(n.input), list(n.output))
                              for n in nodes},
    }
    return {name: min(timed(fn)[0] for _ in range(repeat)) for name, fn in work.items()}


def inference_crossover(sizes: list[int], repeat: int) -> int:
    """Median Graph.from_model time with inference in the process and in a forked child,
    interleaved, at each size: where the fork starts to pay (quantspec.infer.FORK_MIN_NODES)."""
    sys.path.insert(0, str(SRC))
    from quantspec import infer
    from quantspec.graph import Graph

    print("| nodes | in process ms | forked ms | forked / in process |")
    print("|---:|---:|---:|---:|")
    for size in sizes:
        model = build_model(max(1, size // NODES_PER_BLOCK))
        got: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(max(3, repeat)):
            for fork in (False, True):
                infer.FORK_MIN_NODES = 0 if fork else sys.maxsize
                got[fork].append(timed(partial(Graph.from_model, model))[0])
        mid = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in got.items()}
        print(f"| {len(model.graph.node)} | {mid[False]:.1f} | {mid[True]:.1f} | "
              f"{mid[True] / mid[False]:.2f} |")
    return 0


def measure_work(model: Any, profile: Any) -> dict[str, int]:
    """What ``Graph.from_model`` + ``compile_profile`` do, counted instead of timed, so that
    the count does not depend on the machine: the bytecode instructions and the calls
    (Python functions, and C functions called from Python) run in this process, and the peak
    of the memory allocated (tracemalloc). Shape inference runs in the process (its Python
    side is counted; onnx's C++ is one call). Far slower than a timed run: for small graphs.

    Time per node grows with the graph once it leaves the caches; this work per node does
    not, and tests/test_compile_work.py checks that it stays constant."""
    import tracemalloc

    from quantspec import infer
    from quantspec.compiler import compile_profile
    from quantspec.graph import Graph

    calls = opcodes = 0

    def local(frame: Any, event: str, arg: Any) -> Any:
        nonlocal opcodes
        if event == "opcode":
            opcodes += 1
        return local

    def trace(frame: Any, event: str, arg: Any) -> Any:  # a Python function is called
        frame.f_trace_opcodes = True
        return local

    def hook(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    saved = infer.FORK_MIN_NODES
    infer.FORK_MIN_NODES = sys.maxsize
    gc.collect()
    tracemalloc.start()
    sys.setprofile(hook)
    sys.settrace(trace)
    try:
        compile_profile(profile, Graph.from_model(model, "bench.onnx"), "bench.onnx")
    finally:
        sys.settrace(None)
        sys.setprofile(None)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        infer.FORK_MIN_NODES = saved
    return {"calls": calls, "opcodes": opcodes, "peak_bytes": peak}


def work_table(sizes: list[int]) -> int:
    """--work: measure_work per node at each size, and against the smallest size."""
    sys.path.insert(0, str(SRC))
    profiles = bench_profiles()
    print("| profile | nodes | calls / node | opcodes / node | peak KB / node "
          "| calls vs smallest | opcodes vs smallest | peak vs smallest |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    models = [build_model(max(1, size // NODES_PER_BLOCK)) for size in sizes]
    for name, prof in profiles.items():
        first: dict[str, float] = {}
        for model in models:
            n = len(model.graph.node)
            per = {k: v / n for k, v in measure_work(model, prof).items()}
            first = first or per
            print(f"| {name} | {n} | {per['calls']:.1f} | {per['opcodes']:.1f} | "
                  f"{per['peak_bytes'] / 1024:.2f} | {per['calls'] / first['calls']:.3f}x | "
                  f"{per['opcodes'] / first['opcodes']:.3f}x | "
                  f"{per['peak_bytes'] / first['peak_bytes']:.3f}x |")
    return 0


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU time (this process) of one call, after a full collection, and its result."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


def run_worker(src: Path, size: int, repeat: int, profile_top: int) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE), "--worker", "--src", str(src), "--sizes", str(size),
           "--repeat", str(repeat), "--profile-top", str(profile_top)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"worker for {src} failed:\n{proc.stderr}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000],
                    help="approximate node counts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-src", type=Path, help="another quantspec src/ to compare with")
    ap.add_argument("--profile-top", type=int, default=0,
                    help="print the N most expensive functions of one compile per profile")
    ap.add_argument("--inference", action="store_true",
                    help="time Graph.from_model with shape inference in the process and in a "
                    "forked child (quantspec.infer.FORK_MIN_NODES) at each size")
    ap.add_argument("--work", action="store_true",
                    help="count the calls, bytecode instructions and peak memory of one graph "
                    "view + compile per node at each size, instead of timing them")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", default=str(SRC), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.inference:
        return inference_crossover(args.sizes, args.repeat)
    if args.work:
        return work_table(args.sizes)
    if args.worker:
        print(json.dumps(worker(args.src, args.sizes[0], args.repeat, args.profile_top)))
        return 0

    import onnx

    load0 = os.getloadavg()[0]
    print(f"# Python {platform.python_version()}, onnx {onnx.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, best of {args.repeat}; load average at start {load0:.1f}")
    runs: dict[int, dict[str, Any]] = {}
    base: dict[int, dict[str, Any]] = {}
    for size in args.sizes:  # baseline and current interleaved, size by size
        if args.baseline_src:
            base[size] = run_worker(args.baseline_src, size, args.repeat, 0)
        runs[size] = run_worker(SRC, size, args.repeat, args.profile_top)
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")

    head = ("| profile | nodes | Graph.from_model s | compile_profile s | sum s | sum CPU s "
            "| us/node | vs smallest | Plan.dumps s | plan MB |")
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if args.baseline_src:
        head += (" baseline from_model s | baseline compile s | baseline sum s | speed-up "
                 "| baseline dumps s | dumps speed-up |")
        rule += "---:|---:|---:|---:|---:|---:|"
    print("\n" + head + "\n" + rule)
    first = args.sizes[0]
    for name in ("qspec", "aimet"):
        per0 = runs[first]["profiles"][name]["total_s"] / runs[first]["nodes"]
        for size in args.sizes:
            r = runs[size]
            p = r["profiles"][name]
            per = p["total_s"] / r["nodes"]
            row = (f"| {name} | {r['nodes']} | {p['graph_s']:.3f} | {p['compile_s']:.3f} | "
                   f"{p['total_s']:.3f} | {p['total_cpu_s']:.3f} | {per * 1e6:.1f} | "
                   f"{per / per0:.2f}x | {p['dumps_s']:.3f} | {r['plan_mb'][name]} |")
            if args.baseline_src:
                b = base[size]["profiles"][name]
                row += (f" {b['graph_s']:.3f} | {b['compile_s']:.3f} | {b['total_s']:.3f} | "
                        f"{b['total_s'] / p['total_s']:.1f}x | {b['dumps_s']:.3f} | "
                        f"{b['dumps_s'] / p['dumps_s']:.1f}x |")
            print(row)
    print("\nThe same growth for linear workloads on the same models, in the same workers "
          "(nothing of quantspec):\n")
    print("| workload | " + " | ".join(f"{runs[s]['nodes']} nodes us/node (vs smallest)"
                                      for s in args.sizes) + " |")
    print("|---|" + "---:|" * len(args.sizes))
    rows = {f"quantspec {name}": {s: runs[s]["profiles"][name]["total_s"] for s in args.sizes}
            for name in ("qspec", "aimet")}
    rows |= {ref: {s: runs[s]["references"][ref] for s in args.sizes} for ref in REFERENCES}
    for label, by_size in rows.items():
        per = {s: t / runs[s]["nodes"] for s, t in by_size.items()}
        print(f"| {label} | " + " | ".join(f"{per[s] * 1e6:.2f} ({per[s] / per[first]:.2f}x)"
                                          for s in args.sizes) + " |")
    print("\n" + "\n".join(f"- {ref}: {what}" for ref, what in REFERENCES.items()))
    big = [s for s in args.sizes  # the target is stated for 100k nodes only
           if abs(runs[s]["nodes"] - TARGET_NODES) <= NODES_PER_BLOCK]
    for size in big:
        worst = max(p["total_s"] for p in runs[size]["profiles"].values())
        worst_cpu = max(p["total_cpu_s"] for p in runs[size]["profiles"].values())
        verdict = "met" if worst <= TARGET_S else "MISSED"
        print(f"\ntarget: Graph.from_model + compile_profile of {runs[size]['nodes']} nodes <= "
              f"{TARGET_S:.0f} s: {verdict} (slowest profile {worst:.2f} s wall, "
              f"{worst_cpu:.2f} s CPU)")
    if len(args.sizes) > 1:  # growth per node, largest against smallest size, from the table
        last = args.sizes[-1]
        growth = {label: (t[last] / runs[last]["nodes"]) / (t[first] / runs[first]["nodes"])
                  for label, t in rows.items()}
        ours = max(g for label, g in growth.items() if label.startswith("quantspec "))
        refs = min(growth[ref] for ref in REFERENCES)
        verdict = "no more than" if ours <= refs else "MORE than"
        print(f"\ngrowth: time per node at {runs[last]['nodes']} nodes is {ours:.2f}x that at "
              f"{runs[first]['nodes']} (slowest-growing profile), {verdict} the linear "
              f"workloads' {refs:.2f}x (least-growing)")
    if args.profile_top:
        for size in args.sizes:
            for name, p in runs[size]["profiles"].items():
                print(f"\n## cProfile: {name}, {runs[size]['nodes']} nodes\n{p['cprofile']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
