"""Write docs/cli.md from the argument parser, so the reference cannot drift from the CLI.

Run: python tools/gen_cli_docs.py        (tests/test_cli_docs.py checks the file is current)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

INTRO = """# Command-line reference

Generated from the argument parser by `python tools/gen_cli_docs.py`; do not edit by hand.

Every command reads profiles in any dialect (`.qspec`, AIMET quantsim JSON, Vitis AI JSON, AMCT
prototext, encodings JSON; detected from the content, or `--from`). Exit codes: **0** ok,
**1** findings or an error in the input (printed as `file:line:col: CODE message` with a hint),
**2** usage, **3** internal error (`--debug` shows the traceback). Outputs are written
atomically; no command overwrites its input.
"""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def render() -> str:
    from quantspec.cli import _parser

    root = _parser()
    helps = _helps(root)
    out = [INTRO]
    out.append("| command | what it does |\n|---|---|")
    subs = _subparsers(root)
    for name in subs:
        out.append(f"| [`{name}`](#quantspec-{name}) | {helps.get(name, '')} |")
    out.append("")
    for name, sp in subs.items():
        sp.prog = f"quantspec {name}"
        sp.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=96)
        out.append(f"## quantspec {name}\n")
        out.append(helps.get(name, "") + "\n")
        out.append("```text\n" + sp.format_help().rstrip() + "\n```\n")
    return "\n".join(out)


def main() -> int:
    path = REPO / "docs" / "cli.md"
    path.write_text(render(), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
