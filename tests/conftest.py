"""Suite-wide settings: property tests draw the same examples on every run (CI must be
deterministic); set QS_HYPOTHESIS_RANDOM=1 to explore new examples locally."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("quantspec", derandomize=not os.environ.get("QS_HYPOTHESIS_RANDOM"),
                          database=None)
settings.load_profile("quantspec")
