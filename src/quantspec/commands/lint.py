"""``quantspec lint FILES... [--model M.onnx] [--format text|json|sarif]``.

Exit 0 when there is no finding, 1 when there are findings, 2 on usage errors (a file or the
model missing or unreadable). Text goes to stdout, one finding per block, then a count on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import IO

from .common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

HELP = "check profiles in any dialect (optionally against a model)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="profiles: .qspec, AIMET/Vitis JSON, AMCT .cfg, encodings JSON")
    p.add_argument("--model", help="also check the rules against this ONNX model")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                   help="output format (sarif: SARIF 2.1.0 for code scanning)")
    p.add_argument("--from", dest="dialect", help="dialect of every FILE (default: detect)")
    p.add_argument("--param-bw", type=int, default=8, help="AIMET default_param_bw")
    p.add_argument("--act-bw", type=int, default=8, help="AIMET default_activation_bw")
    p.add_argument("--aimet-version", default="2", choices=("1", "2"),
                   help="AIMET semantics (supergroup matching, implicit rules)")
    p.add_argument("--allow-outside", action="store_true",
                   help="let extends read files outside the profile's directory")
    p.add_argument("--ignore", action="append", default=[], metavar="CODES",
                   help="comma-separated codes or prefixes to leave out (e.g. L020,W14)")
    p.add_argument("--skip-unknown", action="store_true",
                   help="skip files that no dialect recognises (for hooks on every *.json)")


def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .. import __version__, dialects
    from ..errors import QuantspecError
    from ..lint import LintOptions, lint_files
    from .common import render

    if args.dialect is not None and args.dialect not in dialects.DIALECTS:
        err.write(f"quantspec lint: unknown dialect '{args.dialect}' (choose from "
                  f"{', '.join(dialects.DIALECTS)})\n")
        return EXIT_USAGE
    missing = [f for f in [*args.files, *([args.model] if args.model else [])]
               if not os.path.exists(f)]
    if missing:
        err.write(f"quantspec lint: no such file: {missing[0]}\n")
        return EXIT_USAGE
    ignore = tuple(c.strip() for group in args.ignore for c in group.split(",") if c.strip())
    opts = LintOptions(args.dialect, args.param_bw, args.act_bw, args.aimet_version,
                       args.allow_outside, args.skip_unknown, ignore)
    try:
        diags = lint_files(args.files, args.model, opts)
    except QuantspecError as exc:  # the model could not be read: not a finding in FILES
        for d in exc.diagnostics:
            err.write(render(d) + "\n")
        return EXIT_USAGE
    if args.format == "json":
        out.write(json.dumps([d.to_json() for d in diags], indent=1) + "\n")
    elif args.format == "sarif":
        from ..lint.sarif import to_sarif

        out.write(json.dumps(to_sarif(diags, __version__), indent=1) + "\n")
    else:
        for d in diags:
            out.write(render(d) + "\n")
        if diags:
            errors = sum(1 for d in diags if d.severity == "error")
            files = len({d.span.file for d in diags if d.span is not None})
            err.write(f"{len(diags)} finding{'s' if len(diags) != 1 else ''} "
                      f"({errors} error{'s' if errors != 1 else ''}) in {files} "
                      f"file{'s' if files != 1 else ''}\n")
    return EXIT_FINDINGS if diags else EXIT_OK
