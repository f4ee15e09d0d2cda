"""Fake-quantization throughput against ``np.copyto`` of the same array.

Targets: per-tensor int8 fake-quant <= 2x the time of ``np.copyto``; per-channel <= 3x.
Every case is timed in the same process, interleaved with ``np.copyto(out, x)`` runs, and the
best (minimum) of ``--repeat`` runs of each is compared, which filters out scheduling noise.

* ``out-of-place``: ``fake_quantize(x, enc, out=y)`` with ``y`` preallocated (read x, write y).
* ``in-place``: ``fake_quantize(y, enc, out=y)``; ``y`` is refilled from ``x`` (untimed) before
  every run, so each run quantizes fresh data.

Run::

    PYTHONPATH=src python benchmarks/bench_kernels.py [--elements 67108864] [--repeat 11]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from quantspec.runtime import (  # noqa: E402
    encoding_from_data,
    encoding_from_range,
    fake_quantize,
    get_num_threads,
    set_num_threads,
)


def timed(fn: Callable[[], object], before: Callable[[], object] | None = None) -> float:
    if before is not None:
        before()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=int, default=64 * 1024 * 1024)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--threads", type=int, nargs="*", default=None,
                    help="thread counts to measure (default: 1 and the default count)")
    args = ap.parse_args(argv)

    n = args.elements
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    out = np.empty_like(x)
    np.copyto(out, x)  # fault the pages in before timing
    per_tensor = encoding_from_data(x, 8, symmetric=True)
    clipping = encoding_from_range(-2.5, 2.5, 8, symmetric=True)  # clips ~1.2% of N(0, 1)
    rows, cols = 1024, n // 1024
    x_oc, out_oc = x[: rows * cols].reshape(rows, cols), out[: rows * cols].reshape(rows, cols)
    per_out_channel = encoding_from_data(x_oc, 8, axis=0, symmetric=True)
    nchw = (16, 64, -1, 256)
    x_act, out_act = x.reshape(nchw), out.reshape(nchw)
    per_act_channel = encoding_from_data(x_act, 8, axis=1, symmetric=True)

    cases = [
        ("per-tensor int8", "out-of-place", per_tensor, x, out, 2.0),
        ("per-tensor int8", "in-place", per_tensor, x, out, 2.0),
        ("per-tensor int8, 1.2% clipped", "out-of-place", clipping, x, out, 2.0),
        ("per-tensor int8, 1.2% clipped", "in-place", clipping, x, out, 2.0),
        ("per-channel int8 (1024, 65536) axis 0", "out-of-place", per_out_channel, x_oc, out_oc,
         3.0),
        ("per-channel int8 (1024, 65536) axis 0", "in-place", per_out_channel, x_oc, out_oc, 3.0),
        ("per-channel int8 (16, 64, 256, 256) axis 1", "out-of-place", per_act_channel, x_act,
         out_act, 3.0),
        ("per-channel int8 (16, 64, 256, 256) axis 1", "in-place", per_act_channel, x_act,
         out_act, 3.0),
    ]
    default_threads = get_num_threads()
    thread_counts = args.threads or sorted({1, default_threads})
    print(f"# {n} float32 elements ({n * 4 / 2**20:.0f} MiB), best of {args.repeat} "
          f"(cases interleaved), numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print()
    print("| case | mode | threads | copyto ms | fake-quant ms | ratio (best) | ratio (median) "
          "| target |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for threads in thread_counts:
        set_num_threads(threads)
        copies: list[list[float]] = [[] for _ in cases]
        runs: list[list[float]] = [[] for _ in cases]
        # Round-robin over the cases, so slow phases of a shared machine hit all of them alike.
        for _ in range(args.repeat):
            for i, (_, mode, enc, xv, ov, _) in enumerate(cases):
                copies[i].append(timed(lambda: np.copyto(out, x)))
                if mode == "in-place":
                    runs[i].append(timed(lambda e=enc, o=ov: fake_quantize(o, e, out=o),
                                         lambda: np.copyto(out, x)))
                else:
                    runs[i].append(timed(lambda e=enc, xi=xv, o=ov: fake_quantize(xi, e, out=o)))
        for (name, mode, _, _, _, target), cs, rs in zip(cases, copies, runs, strict=True):
            c, r = min(cs), min(rs)
            med = float(np.median(np.array(rs) / np.array(cs)))
            verdict = "ok" if r / c <= target else "MISSED"
            print(f"| {name} | {mode} | {threads} | {c * 1e3:.1f} | {r * 1e3:.1f} | "
                  f"{r / c:.2f}x | {med:.2f}x | <= {target:g}x {verdict} |")
    set_num_threads(default_threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
