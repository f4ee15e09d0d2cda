"""The Python code blocks of docs/api.md run as written."""

from __future__ import annotations

import re

from qs_paths import REPO


def test_api_doc_example_runs(capsys) -> None:
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "docs/api.md", "exec"), {"__name__": "docs_api"})  # noqa: S102
    out = capsys.readouterr().out
    assert "('y', True)" in out and "dB" in out
