"""Histogram calibrator hot spots against their reference forms, in one process.

* KL threshold search (entropy): ``kl_threshold_bin`` (prefix-sum scores, then the near-best
  candidates scored again exactly) against the reference loop that scores every candidate with
  ``kl_divergence_at`` (TensorRT's search, what the calibrator ran before);
* power-of-two histogram update: float32 data binned in float32 (``Pow2Histogram``'s fast path)
  against the same values as float64 (the float64 path);
* AIMET PDF bucket counts (percentile / TF-enhanced): ``_bucket_counts`` (clamped indices, one
  ``bincount``) against the masked count (a boolean mask and a compressed copy).

Each pair is timed ``--repeat`` times, interleaved; best times and their ratio are printed.

Run (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_calibrators.py [--elements 400000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from quantspec.runtime.calibrators import Pow2Histogram  # noqa: E402
from quantspec.runtime.calibrators.aimet_pdf import F32, _bucket_counts  # noqa: E402
from quantspec.runtime.calibrators.entropy import (  # noqa: E402
    kl_divergence_at,
    kl_threshold_bin,
)


def reference_search(bins: np.ndarray, bits: int, start_bin: int, stride: int) -> int:
    b = np.asarray(bins, dtype=np.float64).copy()
    b[0] = b[1]
    nquant = 1 << (bits - 1)
    cands = list(range(min(max(start_bin, 1), len(b)), len(b) + 1, stride))
    div = np.array([kl_divergence_at(b, i, nquant) for i in cands])
    return cands[len(div) - 1 - int(np.argmin(div[::-1]))]


def masked_counts(idx: np.ndarray, size: int) -> np.ndarray:
    ok = (idx >= 0) & (idx < size)
    flat = (np.arange(len(idx))[:, None] * size + np.where(ok, idx, 0).astype(np.int64))
    return np.bincount(flat[ok], minlength=len(idx) * size).reshape(len(idx), size)


def timed(fn: Callable[[], object], runs: list[float]) -> None:
    t0 = time.perf_counter()
    fn()
    runs.append(time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=int, default=400_000, help="tensor size")
    ap.add_argument("--bins", type=int, default=2048, help="KL search histogram size")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal(args.elements).astype(np.float32)
    x64 = x32.astype(np.float64)
    hist = np.histogram(np.abs(rng.standard_normal(200_000)), args.bins)[0]
    idx = np.floor(x32 * F32(200) + F32(768)).reshape(1, -1)

    assert kl_threshold_bin(hist, 8, False, 128, 1) == reference_search(hist, 8, 128, 1)
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        f"KL threshold search ({args.bins} bins, stride 1)": (
            lambda: kl_threshold_bin(hist, 8, False, 128, 1),
            lambda: reference_search(hist, 8, 128, 1)),
        f"Pow2Histogram.update of abs(x) ({args.elements} values)": (
            lambda: Pow2Histogram(absolute=True).update(x32),
            lambda: Pow2Histogram(absolute=True).update(x64)),
        f"AIMET PDF bucket counts (1536 buckets, {args.elements} values)": (
            lambda: _bucket_counts(idx.copy(), 1536),
            lambda: masked_counts(idx.copy(), 1536)),
    }
    print(f"python {platform.python_version()}, numpy {np.__version__}; best of --repeat runs "
          "(KL search: 3)")
    print("| case | fast ms | reference ms | reference / fast |")
    print("|---|---:|---:|---:|")
    for name, (fast, ref) in cases.items():
        tf: list[float] = []
        tr: list[float] = []
        for _ in range(3 if name.startswith("KL") else args.repeat):  # the reference is slow
            timed(fast, tf)
            timed(ref, tr)
        print(f"| {name} | {min(tf) * 1e3:.1f} | {min(tr) * 1e3:.1f} | "
              f"{min(tr) / min(tf):.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
