"""Quickstart: translate an AIMET config to .qspec, compile both against a small CNN, show that
the plans agree, explain one tensor, then calibrate on random data and simulate the quantized
model (per-tensor SQNR). Run: python examples/quickstart/run.py [OUTDIR]"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

from quantspec.cli import main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import build  # noqa: E402


def run(outdir: Path) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    model = outdir / "small_cnn.onnx"
    onnx.save(build(), model)
    cfg = HERE / "htp_like.json"
    qspec = outdir / "htp_like.qspec"
    steps = [
        ["translate", str(cfg), "--to", "qspec", "-o", str(qspec)],
        ["compile", str(cfg), "--model", str(model), "-o", str(outdir / "plan_aimet.json")],
        ["compile", str(qspec), "--model", str(model), "-o", str(outdir / "plan_qspec.json")],
        ["explain", str(cfg), "--model", str(model), "--tensor", "prob"],
    ]
    for argv in steps:
        print("$ quantspec " + " ".join(argv), flush=True)
        code = main(argv)
        if code:
            return code
    a = json.loads((outdir / "plan_aimet.json").read_text())["tensors"]
    b = json.loads((outdir / "plan_qspec.json").read_text())["tensors"]
    keys = ("quantized", "bits", "symmetric", "per_channel", "axis", "fixed_range", "shared_with")
    diff = [x["name"] for x, y in zip(a, b, strict=True) if any(x[k] != y[k] for k in keys)]
    print(f"plans agree on {len(a) - len(diff)}/{len(a)} tensors", flush=True)
    if diff:
        return 1
    data = outdir / "calib.npz"  # one array per graph input, first axis = samples
    rng = np.random.default_rng(0)
    np.savez(data, input=rng.standard_normal((16, 1, 3, 8, 8)).astype(np.float32))
    for argv in (
        ["calibrate", str(qspec), "--model", str(model), "--data", str(data),
         "-o", str(outdir / "calibrated"), "--no-progress"],
        ["simulate", str(qspec), "--model", str(model), "--data", str(data),
         "-o", str(outdir / "simulated")],
    ):
        print("$ quantspec " + " ".join(argv), flush=True)
        if code := main(argv):
            return code
    return 0


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="qs_"))
    sys.exit(run(target))
