"""``quantspec diff A B --model M [--format text|json] [--fields F,...]``.

Compiles both profiles (any dialects, each detected unless ``--from-a``/``--from-b`` say) against
one model and prints, per tensor, the fields that differ with the rule that decided each side.
Exit 0 when the plans agree, 1 when they differ, 2 when they cannot be compared.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import IO, Any

from .common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

HELP = "per tensor, what differs between the plans of two profiles"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="first profile (any dialect)")
    p.add_argument("b", metavar="B", help="second profile (any dialect)")
    p.add_argument("--model", required=True, help="ONNX model both are compiled against")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--fields", action="append", default=[], metavar="F,...",
                   help="compare only these plan fields (e.g. bits,symmetric)")
    p.add_argument("--all-fields", action="store_true",
                   help="also compare fields that take no effect (of tensors neither side "
                        "quantizes)")
    p.add_argument("--from-a", dest="dialect_a", help="dialect of A (default: detect)")
    p.add_argument("--from-b", dest="dialect_b", help="dialect of B (default: detect)")
    p.add_argument("--param-bw", type=int, default=8, help="AIMET default_param_bw (both)")
    p.add_argument("--act-bw", type=int, default=8, help="AIMET default_activation_bw (both)")
    p.add_argument("--aimet-version", default="2", choices=("1", "2"),
                   help="AIMET semantics (both)")
    p.add_argument("--allow-outside", action="store_true",
                   help="let extends read files outside each profile's directory")


def run(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from ..compiler import compile_profile
    from ..diff import check_fields, diff_plans, summarize
    from ..errors import QuantspecError
    from ..graph import Graph
    from ..lang.load import load
    from .common import render

    fields = [f.strip() for group in args.fields for f in group.split(",") if f.strip()]
    try:
        wanted = check_fields(fields)
        graph = Graph.load(args.model)
        plans = []
        for path, dialect in ((args.a, args.dialect_a), (args.b, args.dialect_b)):
            prof = load(path, dialect, args.allow_outside, param_bw=args.param_bw,
                        act_bw=args.act_bw, version=args.aimet_version)
            plans.append(compile_profile(prof, graph, os.path.basename(args.model)))
        diffs = diff_plans(plans[0], plans[1], wanted or None, not args.all_fields)
    except QuantspecError as exc:
        for d in exc.diagnostics:
            err.write(render(d) + "\n")
        return EXIT_USAGE
    summary = summarize(plans[0], plans[1], diffs)
    if args.format == "json":
        doc = {"a": args.a, "b": args.b, "model": args.model,
               "tensors": [d.to_json() for d in diffs],
               "summary": {"tensors": summary.tensors, "differ": summary.differ,
                           "fields": summary.by_field}}
        out.write(json.dumps(doc, indent=1) + "\n")
    else:
        for d in diffs:
            out.write(_text(d, args.a, args.b))
        counts = ", ".join(f"{f} {n}" for f, n in summary.by_field.items())
        out.write(f"{summary.differ} of {summary.tensors} tensors differ"
                  + (f" ({counts})" if counts else "") + "\n")
    return EXIT_FINDINGS if diffs else EXIT_OK


def _text(d: Any, a: str, b: str) -> str:
    if d.only_in:
        side = a if d.only_in == "a" else b
        return f"{d.name} ({d.kind}): only in the plan of {side} (graph passes differ)\n"
    lines = [f"{d.name} ({d.kind})"]
    width = max(len(f.field) for f in d.fields)
    for f in d.fields:
        lines.append(f"  {f.field:<{width}}  {_show(f.a)} -> {_show(f.b)}")
        lines.append(f"  {'':<{width}}    A: {f.why_a}")
        lines.append(f"  {'':<{width}}    B: {f.why_b}")
    return "\n".join(lines) + "\n"


def _show(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, dict) and "method" in v:
        params = ", ".join(f"{k}={_show(x)}" for k, x in v.get("params", {}).items())
        return f"{v['method']}({params})" if params else str(v["method"])
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    return str(v)
