"""``quantspec simulate``: calibrate (or read encodings), build the QDQ model, report SQNR.

Writes, with ``-o OUTDIR``: ``<stem>.qdq.onnx`` (the QDQ model), ``<stem>.sqnr.json`` (the
report) and, when it calibrated, ``<stem>.encodings``. Prints the report (text table or JSON).
Exit 1 when a numpy/ONNX check disagrees (E462).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import IO, Any

from .common import EXIT_FINDINGS, EXIT_OK, SEMANTICS_CHOICES, profile_args

HELP = "build the QDQ model of a plan and report per-tensor SQNR against the float model"

CHECK_MISMATCH = "E462"
OVERWRITE = "E463"
BAD_ENCODINGS = "E464"

WRITE_VERSIONS = ("0.6.1", "1.0.0", "2.0.0", "2.1.0")


def add_arguments(p: argparse.ArgumentParser) -> None:
    profile_args(p)
    p.add_argument("--model", required=True, help="ONNX model (float)")
    p.add_argument("--data", required=True,
                   help="samples: .npz, .npy, a directory of .npy, or a QNN input_list")
    p.add_argument("--encodings",
                   help="use this encodings file (any version) instead of calibrating")
    p.add_argument("-o", "--output-dir", dest="outdir",
                   help="write <stem>.qdq.onnx, <stem>.sqnr.json (and <stem>.encodings) here")
    p.add_argument("--report", choices=("text", "json"), default="text",
                   help="what to print (default: text table)")
    p.add_argument("--encodings-version", default="1.0.0", choices=WRITE_VERSIONS,
                   help="version of the encodings file written after calibration")
    p.add_argument("--quant-scheme", choices=("min_max", "tf_enhanced", "percentile"),
                   help="calibration method of every activation (AIMET's quant_scheme)")
    p.add_argument("--percentile", type=float,
                   help="percentile of the percentile method (AIMET default 100)")
    p.add_argument("--semantics", default="auto",
                   choices=SEMANTICS_CHOICES,
                   help="calibration arithmetic (default: from the profile's dialect)")
    p.add_argument("--batch-size", type=int, default=1, help="samples per run")
    p.add_argument("--max-batches", type=int, help="stop after this many batches")
    p.add_argument("--opset", type=int, help="opset of the QDQ model (default: chosen)")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from ..compiler import compile_profile
    from ..graph import Graph
    from ..onnx_io import load_model
    from ..runtime.qdq import build_qdq
    from ..runtime.simulate import simulate
    from .common import load_profile

    outdir = _outdir(args)
    profile = load_profile(args)
    model = load_model(args.model, allow_outside=args.allow_outside)
    plan = compile_profile(profile, Graph.from_model(model, args.model),
                           os.path.basename(args.model))
    calibration = None
    if args.encodings is None:
        calibration = _calibrate(profile, plan, model, args)
        encodings = dict(calibration.encodings)
        for note in calibration.notes:
            err.write(f"note: {note}\n")
    else:
        encodings = read_encodings(args.encodings, plan, err)
    qdq = build_qdq(model, plan, encodings, opset=args.opset)
    report = simulate(model, plan, None, args.data, qdq=qdq, batch_size=args.batch_size,
                      max_batches=args.max_batches, threads=args.threads,
                      progress=args.progress)
    if outdir is not None:
        from ..fileio import write_atomic
        from ..onnx_io import save_model

        stem = Path(args.model).stem
        written = []
        path = outdir / f"{stem}.qdq.onnx"
        save_model(qdq.model, path)
        written.append(path)
        path = outdir / f"{stem}.sqnr.json"
        write_atomic(path, report.dumps())
        written.append(path)
        if calibration is not None:
            path = outdir / f"{stem}.encodings"
            write_atomic(path, calibration.encodings_text(
                args.encodings_version, quantizer_args=_quantizer_args(profile, args)))
            written.append(path)
        for p in written:
            err.write(f"wrote {p}\n")
    out.write(report.dumps() if args.report == "json" else report.to_text())
    if not report.ok:
        bad = [t.name for t in report.tensors if t.check == "mismatch"]
        err.write(f"{CHECK_MISMATCH} numpy fake-quant and the QDQ graph disagree on "
                  f"{len(bad)} tensor(s): {', '.join(bad[:5])}\n"
                  "  hint: please report this with the model and the encodings\n")
        return EXIT_FINDINGS
    return EXIT_OK


def _outdir(args: argparse.Namespace) -> Path | None:
    """OUTDIR, checked so that no output lands on an input (E463)."""
    from ..errors import QuantspecError

    if not args.outdir:
        return None
    outdir = Path(args.outdir)
    stem = Path(args.model).stem
    inputs = {os.path.abspath(p) for p in (args.model, args.profile, args.data,
                                           getattr(args, "encodings", None)) if p}
    for name in (f"{stem}.qdq.onnx", f"{stem}.sqnr.json", f"{stem}.encodings"):
        if os.path.abspath(outdir / name) in inputs:
            raise QuantspecError(OVERWRITE, f"refusing to overwrite the input {outdir / name}",
                                 hint="choose another -o directory")
    return outdir


def read_encodings(path: str, plan: Any, err: IO[str]) -> dict[str, Any]:
    """Runtime encodings from an encodings file; unusable entries are listed on ``err``."""
    from ..errors import QuantspecError
    from ..fileio import read_text
    from ..runtime.export import encodings_from_file

    encodings, skipped = encodings_from_file(read_text(path), plan, file=path)
    for name, why in skipped.items():
        err.write(f"{path}: skipped '{name}': {why}\n")
    if not encodings:
        raise QuantspecError(BAD_ENCODINGS, f"{path} holds no encoding the runtime can use",
                             hint="int entries need scale and offset (or min and max)")
    return encodings


def exported(encodings: dict[str, Any], qdq: Any) -> dict[str, Any]:
    """The encodings to write: as stored in the QDQ graph where it holds them (signedness)."""
    return {n: qdq.storage[n].encoding if n in qdq.storage else e for n, e in encodings.items()}


def _semantics(profile: Any, args: argparse.Namespace) -> str:
    from ..runtime.calibrate import semantics_for_profile

    return semantics_for_profile(profile) if args.semantics == "auto" else str(args.semantics)


def _calibrate(profile: Any, plan: Any, model: Any, args: argparse.Namespace) -> Any:
    """Calibrate as ``quantspec calibrate`` does (semantics from the profile's dialect)."""
    from ..runtime.calibrate import calibrate

    return calibrate(plan, model, args.data, batch_size=args.batch_size,
                     semantics=_semantics(profile, args), quant_scheme=args.quant_scheme,
                     percentile=args.percentile, max_batches=args.max_batches,
                     threads=args.threads, progress=args.progress)


def _quantizer_args(profile: Any, args: argparse.Namespace) -> Any:
    from ..runtime.calibrate import aimet_quantizer_args

    if _semantics(profile, args) != "aimet":
        return None
    return aimet_quantizer_args(profile, args.quant_scheme)
