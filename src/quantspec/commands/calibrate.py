"""``quantspec calibrate``: compile a profile, calibrate it on data, write plan + encodings.

Writes into ``-o OUTDIR``: ``plan.json`` (the compiled plan), ``<model stem>.encodings`` (the
calibrated encodings through the encodings writer) and ``<model stem>.calibration.json`` (a short
report: tensors calibrated, samples, batches, backend, time). Every file is written atomically;
an output that would land on an input is refused (E445). A one-line summary goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, Any

from .common import EXIT_OK, SEMANTICS_CHOICES, profile_args, render

HELP = "calibrate a profile on an ONNX model with data; write the plan and the encodings"

OVERWRITE = "E445"
WRITE_VERSIONS = ("0.6.1", "1.0.0", "2.0.0", "2.1.0")
REPORT_FORMAT = "quantspec-calibration/1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    profile_args(p)
    p.add_argument("--model", required=True, help="ONNX model (float, with its weights)")
    p.add_argument("--data", required=True,
                   help="samples: .npz, .npy, a directory of .npy files, or a QNN input_list")
    p.add_argument("-o", "--output-dir", dest="outdir", required=True,
                   help="write plan.json, <stem>.encodings and <stem>.calibration.json here")
    p.add_argument("--quant-scheme", choices=("min_max", "tf_enhanced", "percentile"),
                   help="AIMET QuantizationSimModel quant_scheme: the calibration method of "
                   "every activation (and, for AIMET configs, parameter)")
    p.add_argument("--percentile", type=float,
                   help="percentile of the percentile method (AIMET default 100)")
    p.add_argument("--semantics", default="auto",
                   choices=SEMANTICS_CHOICES,
                   help="whose arithmetic to reproduce (default: from the profile's dialect)")
    p.add_argument("--batch-size", type=int, default=1,
                   help="samples per forward pass (needs a dynamic batch axis when > 1)")
    p.add_argument("--max-batches", type=int, help="stop after this many batches")
    p.add_argument("--encodings-version", default="1.0.0", choices=WRITE_VERSIONS,
                   help="version of the encodings file (default 1.0.0, AIMET's)")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    p.add_argument("--transforms", action=argparse.BooleanOptionalAction, default=True,
                   help="run the graph transforms the profile asks for (BN folding, CLE, ...) "
                   "before calibrating (default: on); the transformed model is kept as "
                   "<stem>.transformed.onnx")
    p.add_argument("--qdq", action="store_true",
                   help="also write the QDQ ONNX model <stem>.qdq.onnx")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal; needs "
                   "tqdm)")


def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .. import __version__
    from ..compiler import compile_profile
    from ..fileio import write_atomic
    from ..graph import Graph
    from ..onnx_io import load_model
    from ..runtime.calibrate import aimet_quantizer_args, calibrate, semantics_for_profile
    from ..runtime.data import count_batches, open_data
    from ..runtime.execute import input_specs
    from .common import load_profile

    outdir = Path(args.outdir)
    stem = Path(args.model).stem
    files = {"plan": outdir / "plan.json", "encodings": outdir / f"{stem}.encodings",
             "report": outdir / f"{stem}.calibration.json"}
    _refuse_overwrite(args, files.values())

    profile = load_profile(args)
    model = load_model(args.model, allow_outside=args.allow_outside)
    plan = compile_profile(profile, Graph.from_model(model, args.model),
                           os.path.basename(args.model))
    transformed = None
    if args.transforms:
        model, plan, transformed = _transform(profile, model, plan, args, err)
    source = open_data(args.data, input_specs(model))
    semantics = semantics_for_profile(profile) if args.semantics == "auto" else args.semantics
    show = args.progress if args.progress is not None else _isatty(err)
    result = calibrate(plan, model, source, batch_size=args.batch_size, semantics=semantics,
                       quant_scheme=args.quant_scheme, percentile=args.percentile,
                       progress=show, total=count_batches(source, args.batch_size),
                       threads=args.threads, max_batches=args.max_batches)

    qargs = aimet_quantizer_args(profile, args.quant_scheme) if semantics == "aimet" else None
    text = result.encodings_text(args.encodings_version, quantizer_args=qargs)
    write_atomic(files["plan"], plan.dumps())
    write_atomic(files["encodings"], text)
    extra = write_extra_outputs(args, model, plan, result, outdir)
    if transformed is not None:
        from ..onnx_io import save_model

        extra["transformed_model"] = outdir / f"{stem}.transformed.onnx"
        save_model(model, extra["transformed_model"])
        extra["transform_report"] = outdir / f"{stem}.transforms.json"
        write_atomic(extra["transform_report"], _dumps(transformed.to_json()))
    samples = min(len(source), args.max_batches * args.batch_size) \
        if args.max_batches is not None else len(source)
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "producer": {"package": "quantspec", "version": __version__},
        "profile": args.profile,
        "model": args.model,
        "data": source.describe(),
        "samples": samples,
        "batch_size": args.batch_size,
        **result.report(),
        "encodings_version": args.encodings_version,
        "files": {k: str(v) for k, v in files.items()} | {k: str(v) for k, v in extra.items()},
    }
    write_atomic(files["report"], _dumps(report))
    if result.uncalibrated:
        shown = ", ".join(result.uncalibrated[:5])
        more = f" (+{len(result.uncalibrated) - 5} more)" if len(result.uncalibrated) > 5 else ""
        err.write(f"warning: {len(result.uncalibrated)} quantized tensor(s) saw no data and "
                  f"have no encoding: {shown}{more}\n")
    for note in result.notes:
        err.write(f"note: {note}\n")
    r = result.report()
    err.write(f"calibrated {r['tensors_calibrated']} tensors ({r['quantizers']} quantizers) on "
              f"{samples} samples in {result.batches} batches, {result.seconds:.2f} s "
              f"[{result.backend or 'no forward pass'}, {result.semantics}"
              f"{', ' + args.quant_scheme if args.quant_scheme else ''}] -> {outdir}\n")
    return EXIT_OK


def write_extra_outputs(args: argparse.Namespace, model: Any, plan: Any, result: Any,
                        outdir: Path) -> dict[str, Path]:
    """Further artifacts of a calibration run (``--qdq``); returns ``{report key: path}``."""
    out: dict[str, Path] = {}
    if args.qdq:
        from ..onnx_io import save_model
        from ..runtime.qdq import build_qdq_model

        out["qdq_model"] = outdir / f"{Path(args.model).stem}.qdq.onnx"
        save_model(build_qdq_model(model, plan, result.encodings), out["qdq_model"])
    return out


def _transform(profile: Any, model: Any, plan: Any, args: argparse.Namespace,
               err: IO[str]) -> tuple[Any, Any, Any]:
    """Run the transforms the plan asks for, then recompile the plan on the new model (BN
    nodes are gone and biases may be new, so tensor names change; docs/transforms.md)."""
    from ..compiler import compile_profile
    from ..graph import Graph
    from ..transforms import apply_transforms
    from ..transforms.spec import normalize

    requested = normalize(plan)
    if not any(t.enabled for t in requested.values()):
        return model, plan, None
    data = None
    bias = requested.get("bias_correction")
    if bias is not None and bias.enabled:
        from ..runtime.data import batches, open_data
        from ..runtime.execute import input_specs

        data = list(batches(open_data(args.data, input_specs(model)), 1))
    new, report = apply_transforms(model, plan, data=data, plan=plan,
                                   model_name=os.path.basename(args.model))
    for d in report.diagnostics():
        err.write(render(d) + "\n")
    done = {k: v for k, v in report.to_json()["summary"].items() if v}
    err.write("transformed: " + (", ".join(f"{k} {v}" for k, v in done.items()) or "nothing")
              + "\n")
    plan = compile_profile(profile, Graph.from_model(new, args.model),
                           os.path.basename(args.model))
    return new, plan, report


def _refuse_overwrite(args: argparse.Namespace, outputs: Any) -> None:
    from ..errors import QuantspecError

    inputs = {os.path.realpath(p) for p in (args.model, args.profile, args.data) if p}
    for path in outputs:
        if os.path.realpath(path) in inputs:
            raise QuantspecError(OVERWRITE, f"refusing to overwrite the input {path}",
                                 hint="choose another -o directory")


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=1, allow_nan=False) + "\n"


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty() and stream is sys.stderr
    except (AttributeError, ValueError):
        return False
