"""``quantspec export``: encodings (+ the plan) -> QDQ ONNX model and an encodings file.

``quantspec export PROFILE --model M [--encodings E] -o OUTDIR [--version V]`` compiles PROFILE
against M, reads the encodings (E, or PROFILE itself when it is an encodings file), and writes
``OUTDIR/<stem>.qdq.onnx`` and ``OUTDIR/<stem>.encodings`` in version V (a version conversion
when E was another version). No data is needed: nothing is calibrated or run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO

from .common import EXIT_OK, compile_args, profile_args
from .simulate import OVERWRITE, WRITE_VERSIONS, exported, read_encodings

HELP = "write the QDQ ONNX model and an encodings file (any version) for given encodings"

NOT_ENCODINGS = "E465"


def add_arguments(p: argparse.ArgumentParser) -> None:
    profile_args(p)
    p.add_argument("--model", required=True, help="ONNX model (float)")
    p.add_argument("--encodings",
                   help="encodings file (default: PROFILE, when it is an encodings file)")
    p.add_argument("-o", "--output-dir", dest="outdir", required=True,
                   help="write <stem>.qdq.onnx and <stem>.encodings here")
    p.add_argument("--version", default="1.0.0", choices=WRITE_VERSIONS,
                   help="version of the encodings file written (default 1.0.0)")
    p.add_argument("--opset", type=int, help="opset of the QDQ model (default: chosen)")
    p.add_argument("--no-qdq", action="store_true", help="write only the encodings file")
    p.add_argument("--no-encodings", action="store_true", help="write only the QDQ model")


def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    import os

    from ..errors import QuantspecError
    from ..fileio import read_text, write_atomic
    from ..onnx_io import load_model, save_model
    from ..runtime.export import encodings_text
    from ..runtime.qdq import build_qdq

    source = args.encodings
    if source is None:
        from ..dialects import encodings as enc_dialect

        if args.dialect not in (None, "encodings") or \
                not enc_dialect.detect(read_text(args.profile)):
            raise QuantspecError(NOT_ENCODINGS, f"{args.profile} is not an encodings file and "
                                 "no --encodings was given",
                                 hint="pass --encodings FILE (or run quantspec simulate to "
                                 "calibrate)")
        source = args.profile
    plan = compile_args(args)
    encodings = read_encodings(source, plan, err)
    outdir = Path(args.outdir)
    stem = Path(args.model).stem
    targets = []
    if not args.no_qdq:
        targets.append(outdir / f"{stem}.qdq.onnx")
    if not args.no_encodings:
        targets.append(outdir / f"{stem}.encodings")
    inputs = {os.path.abspath(p) for p in (args.model, args.profile, source)}
    for t in targets:
        if os.path.abspath(t) in inputs:
            raise QuantspecError(OVERWRITE, f"refusing to overwrite the input {t}",
                                 hint="choose another -o directory")
    model = load_model(args.model, allow_outside=args.allow_outside)
    qdq = build_qdq(model, plan, encodings, opset=args.opset)
    for name, why in qdq.skipped.items():
        err.write(f"skipped '{name}': {why}\n")
    for note in qdq.notes:
        err.write(f"note: {note}\n")
    for t in targets:
        if t.name.endswith(".qdq.onnx"):
            save_model(qdq.model, t)
        else:
            write_atomic(t, encodings_text(exported(encodings, qdq), plan, args.version))
        err.write(f"wrote {t}\n")
    out.write(f"{len(qdq.storage)} tensor(s) quantized, {len(qdq.skipped)} skipped; "
              f"QDQ opset {qdq.opset}\n")
    return EXIT_OK
