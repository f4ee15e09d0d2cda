"""Runtime tests: make ``quantspec`` importable from a source checkout."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("quantspec") is None:  # running from a checkout without install
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
