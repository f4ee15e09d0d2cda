"""Calibrate a small CNN with a portable profile, simulate it, and export for two runtimes.

Steps: write the model and 32 calibration samples (.npz), compile the profile, calibrate
(encodings JSON + plan), simulate (QDQ ONNX in onnxruntime, per-tensor SQNR against the float
model), and export the QDQ model and a 1.0.0 encodings file.

Run: python examples/calibrate_cnn/run.py [OUTDIR]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

from quantspec.cli import main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "quickstart"))
from model import build  # noqa: E402


def run(outdir: Path) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    model = outdir / "small_cnn.onnx"
    onnx.save(build(), model)
    data = outdir / "calib.npz"
    rng = np.random.default_rng(0)
    np.savez(data, input=rng.standard_normal((32, 1, 3, 8, 8)).astype(np.float32))
    profile = HERE / "portable.qspec"
    m, d, p = str(model), str(data), str(profile)
    steps = [
        ["explain", p, "--model", m, "--tensor", "logits"],
        ["calibrate", p, "--model", m, "--data", d, "-o", str(outdir / "calibrated"),
         "--no-progress"],
        ["simulate", p, "--model", m, "--data", d, "-o", str(outdir / "simulated")],
        ["export", p, "--model", m, "--encodings",
         str(outdir / "calibrated" / "small_cnn.encodings"), "-o", str(outdir / "export"),
         "--version", "1.0.0"],
    ]
    for argv in steps:
        print("$ quantspec " + " ".join(argv), flush=True)
        if code := main(argv):
            return code
    summary = json.loads((outdir / "simulated" / "small_cnn.sqnr.json").read_text())["summary"]
    print(f"output SQNR {summary['outputs_sqnr_db']} dB; numpy/ONNX checks "
          f"{summary['checked'] - summary['check_mismatches']}/{summary['checked']} agree",
          flush=True)
    return 1 if summary["check_mismatches"] else 0


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="qs_"))
    sys.exit(run(target))
