"""The ``quantspec`` command line. Each subcommand is one library call plus formatting.

Exit codes: 0 ok, 1 findings or errors in the input, 2 usage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import IO

from .commands.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_USAGE,
    compile_args,
    load_profile,
    profile_args,
    render,
)
from .errors import QuantspecError, Report

# Subcommands defined in their own module (see quantspec.commands): name -> module.
COMMAND_MODULES: dict[str, str] = {
    "lint": "quantspec.commands.lint",
    "diff": "quantspec.commands.diff",
    "simulate": "quantspec.commands.simulate",
    "export": "quantspec.commands.export",
    "transform": "quantspec.commands.transform",
    "calibrate": "quantspec.commands.calibrate",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 2 with a short message
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="quantspec", description="One rule language for quantization configs.")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    c = sub.add_parser("compile", help="resolve a profile against an ONNX model into a plan")
    profile_args(c)
    c.add_argument("--model", required=True, help="ONNX model")
    c.add_argument("-o", "--output", help="write the plan here (default: stdout)")

    e = sub.add_parser("explain", help="which rule decided each field of a tensor")
    profile_args(e)
    e.add_argument("--model", required=True)
    e.add_argument("--tensor", required=True, action="append", help="tensor name (repeatable)")

    f = sub.add_parser("fmt", help="print a .qspec file in canonical form")
    f.add_argument("files", nargs="+")
    f.add_argument("--check", action="store_true", help="exit 1 if a file is not canonical")
    f.add_argument("--write", action="store_true", help="rewrite files in place (atomically)")

    t = sub.add_parser("translate", help="translate a profile between dialects")
    profile_args(t)
    t.add_argument("--to", required=True,
                   choices=("qspec", "aimet", "vitis", "amct", "encodings"))
    t.add_argument("-o", "--output", help="output file (default: stdout)")
    t.add_argument("--strict", action="store_true", help="fail when anything would be lost")

    sub.add_parser("profiles", help="list the stdlib profiles")
    for name, modname in COMMAND_MODULES.items():
        mod = importlib.import_module(modname)
        mod.add_arguments(sub.add_parser(name, help=mod.HELP))
    return p


def main(argv: Sequence[str] | None = None, stdout: IO[str] | None = None,
         stderr: IO[str] | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if args.cmd in COMMAND_MODULES:
            return int(importlib.import_module(COMMAND_MODULES[args.cmd]).run(args, out, err))
        return int(COMMANDS[args.cmd](args, out, err))
    except QuantspecError as exc:
        _print_error(exc, err)
        if args.debug:
            raise
        return EXIT_FINDINGS
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130
    except Exception as exc:  # a bug, not bad input: say so without a traceback by default
        if args.debug:
            raise
        err.write(f"quantspec: internal error: {type(exc).__name__}: {exc}\n"
                  "  run again with --debug for a traceback\n")
        return 3


def _print_error(exc: QuantspecError, err: IO[str]) -> None:
    for d in exc.diagnostics:
        err.write(render(d) + "\n")








def cmd_compile(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    plan = compile_args(args)
    text = plan.dumps()
    if args.output:
        from .fileio import write_atomic

        if any(os.path.abspath(args.output) == os.path.abspath(p)
               for p in (args.profile, args.model)):
            raise QuantspecError("E501", f"refusing to overwrite the input file {args.output}",
                                 hint="choose another -o path")
        write_atomic(args.output, text)
        s = plan.summary()
        err.write(f"wrote {args.output}: {s['tensors']} tensors, {s['quantized']} quantized\n")
    else:
        out.write(text)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .explain import explain

    plan = compile_args(args)
    status = EXIT_OK
    for name in args.tensor:
        entry = plan.entry(name)
        if entry is None:
            from .errors import did_you_mean

            hint = did_you_mean(name, [e.name for e in plan.entries])
            err.write(f"{args.model}: E207 no tensor '{name}' in the model"
                      + (f"\n  hint: {hint}" if hint else "") + "\n")
            status = EXIT_FINDINGS
            continue
        out.write(explain(entry) + "\n")
    return status


def cmd_fmt(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from .fileio import read_text, write_atomic
    from .lang.format import format_text

    status = EXIT_OK
    for path in args.files:
        text = read_text(path)
        formatted = format_text(text, path)
        if args.check:
            if formatted != text:
                err.write(f"{path}: not in canonical form (run quantspec fmt --write)\n")
                status = EXIT_FINDINGS
        elif args.write:
            if formatted != text:
                write_atomic(path, formatted)
                err.write(f"reformatted {path}\n")
        else:
            out.write(formatted)
    return status


def cmd_translate(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from . import dialects
    from .lang.load import profile_source, read_profile

    if args.to == "qspec":
        # .qspec can say `extends`: keep the bases as references instead of inlining them
        text, file = profile_source(args.profile)
        prof = read_profile(text, file, args.dialect, param_bw=args.param_bw,
                            act_bw=args.act_bw, version=args.aimet_version)
    else:  # other dialects have no extends: write the merged profile
        prof = load_profile(args)
    report = Report()
    result = dialects.get(args.to).write(prof, report)
    for d in report.diagnostics:
        err.write(render(d) + "\n")
    if args.strict and report.diagnostics:
        err.write(f"translate --strict: {len(report.diagnostics)} item(s) cannot be held by "
                  f"{args.to}; nothing written\n")
        return EXIT_FINDINGS
    if args.output:
        from .fileio import write_atomic

        if os.path.abspath(args.output) == os.path.abspath(args.profile):
            raise QuantspecError("E501", "refusing to overwrite the input file",
                                 hint="choose another -o path")
        write_atomic(args.output, result)
    else:
        out.write(result)
    return EXIT_OK


def cmd_profiles(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """One line per stdlib profile: its name (what `extends` takes) and the description that is
    the first line of its file (docs/profiles.md). Sorted by name, so the listing is stable."""
    from .lang.load import stdlib_names, stdlib_text

    for name in sorted(stdlib_names()):
        lines = (stdlib_text(name) or "").splitlines()
        first = lines[0][1:].strip() if lines and lines[0].startswith("#") else ""
        out.write(f"{name:30s}  {first}".rstrip() + "\n")
    return EXIT_OK


COMMANDS = {
    "compile": cmd_compile,
    "explain": cmd_explain,
    "fmt": cmd_fmt,
    "translate": cmd_translate,
    "profiles": cmd_profiles,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
