"""Every example runs: ``examples/<name>/run.py OUTDIR`` exits 0 (examples added later are
picked up by the glob). Each runs in its own process, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from qs_paths import REPO

EXAMPLES = sorted((REPO / "examples").glob("*/run.py"))


def test_quickstart_is_among_the_examples() -> None:
    assert REPO / "examples" / "quickstart" / "run.py" in EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = sorted(p.name for p in script.parent.iterdir())
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{script.parent.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert out.is_dir() and any(out.iterdir()), "the example wrote nothing into OUTDIR"
    # outputs go to OUTDIR, never next to the example
    assert sorted(p.name for p in script.parent.iterdir() if p.name != "__pycache__") == \
        [n for n in before if n != "__pycache__"]
