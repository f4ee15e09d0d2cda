"""Argument groups and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import Diagnostic

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
# "auto" plus runtime.calibrate.SEMANTICS, written out so building the parser imports no numpy
# (a test keeps the two equal)
SEMANTICS_CHOICES = ("auto", "aimet", "aimet1", "qnn", "vitis", "amct", "ort", "generic")


def profile_args(sp: argparse.ArgumentParser) -> None:
    """PROFILE plus the options every dialect reader takes."""
    sp.add_argument("profile", help="profile: .qspec, AIMET/Vitis JSON, AMCT .cfg, encodings, "
                    "or a stdlib profile name (quantspec profiles)")
    sp.add_argument("--from", dest="dialect", help="dialect of PROFILE (default: detect)")
    sp.add_argument("--param-bw", type=int, default=8, help="AIMET default_param_bw")
    sp.add_argument("--act-bw", type=int, default=8, help="AIMET default_activation_bw")
    sp.add_argument("--aimet-version", default="2", choices=("1", "2"),
                    help="AIMET semantics (supergroup matching, implicit rules)")
    sp.add_argument("--allow-outside", action="store_true",
                    help="let extends read files outside the profile's directory")


def load_profile(args: argparse.Namespace) -> Any:
    from ..lang.load import load

    return load(args.profile, args.dialect, args.allow_outside, param_bw=args.param_bw,
                act_bw=args.act_bw, version=args.aimet_version)


def compile_args(args: argparse.Namespace) -> Any:
    """Load PROFILE and compile it against ``args.model`` into a Plan."""
    from ..compiler import compile_profile
    from ..graph import Graph

    prof = load_profile(args)
    graph = Graph.load(args.model)
    return compile_profile(prof, graph, os.path.basename(args.model))


def render(d: Diagnostic) -> str:
    """A diagnostic with the source line and caret when its file is readable."""
    text = None
    if d.span is not None and d.span.line and os.path.isfile(d.span.file):
        try:
            with open(d.span.file, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            text = None
    return d.render(text)
