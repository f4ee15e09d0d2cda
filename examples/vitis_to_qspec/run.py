"""A Vitis AI (vai_q_pytorch) CPU config turned into a portable .qspec profile.

Steps: translate the Vitis JSON to .qspec, compile both against a small CNN and check that the
plans agree field by field, then translate the .qspec on to AIMET and AMCT and show what each
target cannot hold (reported, never dropped silently).

Run: python examples/vitis_to_qspec/run.py [OUTDIR]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import onnx

from quantspec.cli import main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "quickstart"))
from model import build  # noqa: E402

# fields compared between the two plans (provenance differs by design: it names each file)
FIELDS = ("quantized", "dtype", "bits", "symmetric", "signed", "narrow_range", "per_channel",
          "axis", "scale_type", "rounding", "calibration", "fixed_range", "shared_with")


def run(outdir: Path) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    model = outdir / "small_cnn.onnx"
    onnx.save(build(), model)
    cfg = HERE / "vitis_cpu.json"
    qspec = outdir / "vitis_cpu.qspec"
    steps = [
        ["translate", str(cfg), "--to", "qspec", "-o", str(qspec)],
        ["compile", str(cfg), "--model", str(model), "-o", str(outdir / "plan_vitis.json")],
        ["compile", str(qspec), "--model", str(model), "-o", str(outdir / "plan_qspec.json")],
        ["explain", str(qspec), "--model", str(model), "--tensor", "w1"],
    ]
    for argv in steps:
        print("$ quantspec " + " ".join(argv), flush=True)
        if code := main(argv):
            return code
    a = json.loads((outdir / "plan_vitis.json").read_text())["tensors"]
    b = json.loads((outdir / "plan_qspec.json").read_text())["tensors"]
    diff = [x["name"] for x, y in zip(a, b, strict=True) if any(x[k] != y[k] for k in FIELDS)]
    print(f"plans agree on {len(a) - len(diff)}/{len(a)} tensors", flush=True)
    for target in ("aimet", "amct"):
        out = outdir / f"vitis_cpu.{target}.{'json' if target == 'aimet' else 'cfg'}"
        argv = ["translate", str(qspec), "--to", target, "-o", str(out)]
        print("$ quantspec " + " ".join(argv), flush=True)
        if code := main(argv):  # losses are printed as warnings; the file is still written
            return code
    return 1 if diff else 0


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="qs_"))
    sys.exit(run(target))
