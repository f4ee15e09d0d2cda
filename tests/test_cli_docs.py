"""docs/cli.md is generated from the parser; this fails when a command or option changes
without regenerating it (python tools/gen_cli_docs.py)."""

from __future__ import annotations

import importlib.util

from qs_paths import REPO


def test_cli_reference_is_current() -> None:
    script = REPO / "tools" / "gen_cli_docs.py"
    spec = importlib.util.spec_from_file_location("gen_cli_docs", script)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    current = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == mod.render(), "docs/cli.md is stale: run python tools/gen_cli_docs.py"
