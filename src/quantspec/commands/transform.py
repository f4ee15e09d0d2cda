"""``quantspec transform``: run a profile's graph transforms alone and write the new model.

The transforms the profile asks for (``transform { ... }`` in .qspec, Vitis ``include_cle`` /
``include_bias_corr`` / ``convert_relu6_to_relu``, AMCT ``do_fusion`` / ``skip_fusion_layers``)
run in the order of :data:`quantspec.transforms.ORDER`; ``--only`` picks the transforms
instead, keeping the profile's options for them (skip lists). Bias correction needs ``--data``
(any format :mod:`quantspec.runtime.data` reads; e.g. an ``.npz`` with one array per graph
input, samples on the first axis).
"""

from __future__ import annotations

import argparse
import os
from typing import IO, Any

from ..errors import QuantspecError
from ..source import Span
from .common import EXIT_OK, load_profile, profile_args, render

HELP = "run the graph transforms a profile asks for (BN folding, ReLU6->ReLU, CLE, bias " \
       "correction) and write the new model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    profile_args(p)
    p.add_argument("--model", required=True, help="the float ONNX model")
    p.add_argument("-o", "--output", required=True, help="write the transformed model here")
    p.add_argument("--data", help="calibration data for bias correction (.npz with one array "
                   "per graph input and samples on axis 0, .npy, a directory of .npy files, or "
                   "a QNN input_list)")
    p.add_argument("--report", help="also write the JSON report here")
    p.add_argument("--only", help="comma-separated transforms to run instead of the profile's "
                   "(fold, relu6, cle, bias_correction)")


def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from ..onnx_io import load_model, save_model
    from ..transforms import apply_transforms, normalize, restrict
    from ..transforms.report import OVERWRITE

    inputs = [p for p in (args.model, args.profile, args.data) if p]
    for target in (args.output, args.report):
        if target and any(_same(target, p) for p in inputs):
            raise QuantspecError(OVERWRITE, f"refusing to overwrite the input file {target}",
                                 Span(target), hint="choose another output path")
    if args.report and _same(args.report, args.output):
        raise QuantspecError(OVERWRITE, "--report and -o name the same file", Span(args.report))
    prof = load_profile(args)
    requested = normalize(prof)
    if args.only is not None:
        requested = restrict(requested, [n for n in args.only.split(",") if n.strip()])
    model = load_model(args.model)
    plan = data = None
    bc = requested.get("bias_correction")
    if bc is not None and bc.enabled and args.data:
        from ..compiler import compile_profile
        from ..graph import Graph

        # the weight encodings bias correction simulates; weight names survive the transforms
        plan = compile_profile(prof, Graph.from_model(model, args.model),
                               os.path.basename(args.model))
        data = calibration_feeds(args.data, model)
    new, report = apply_transforms(model, requested, data=data, plan=plan,
                                   model_name=args.model)
    save_model(new, args.output)
    if args.report:
        from ..fileio import write_atomic

        write_atomic(args.report, report.dumps())
    for d in report.diagnostics():
        err.write(render(d) + "\n")
    err.write(report.render(refusals=False) + "\n")
    err.write(f"wrote {args.output}\n")
    return EXIT_OK


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def calibration_feeds(path: str, model: Any) -> Any:
    """Feeds for bias correction from ``path``, read by :mod:`quantspec.runtime.data` (``.npz``,
    ``.npy``, a directory of ``.npy`` files or a QNN input list), batched by 32 when every
    graph input has a free batch axis; without that module, an ``.npz`` read directly."""
    try:
        from ..runtime.data import batch_axis_free, batches, open_data
        from ..runtime.execute import input_specs
    except ImportError:
        return load_npz(path)
    specs = input_specs(model)
    source = open_data(path, specs)
    return batches(source, 32 if all(batch_axis_free(s) for s in specs) else 1)


def load_npz(path: str) -> dict[str, Any]:
    """``{input name: array}`` from an ``.npz`` (no pickled objects)."""
    import zipfile

    import numpy as np

    from ..transforms.report import DATA_FILE

    if not os.path.isfile(path):
        raise QuantspecError(DATA_FILE, f"calibration data not found: {path}", Span(path))
    try:
        obj = np.load(path, allow_pickle=False)
        if not isinstance(obj, np.lib.npyio.NpzFile):
            raise QuantspecError(DATA_FILE, f"{path} is a single .npy array, not an .npz",
                                 Span(path), hint="save one array per graph input with "
                                 "np.savez(path, input_name=array, ...)")
        with obj:
            return {k: obj[k] for k in obj.files}
    except QuantspecError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # ValueError includes object arrays refused by allow_pickle=False
        raise QuantspecError(DATA_FILE, f"cannot read calibration data {path}: {exc}",
                             Span(path), hint="an .npz of numeric arrays, written by np.savez"
                             ) from None
