"""quantspec: one rule language for quantization configs.

Heavy parts (compiler, runtime) are imported on use, so ``quantspec lint`` starts fast.
"""

from __future__ import annotations

from .errors import Diagnostic, QuantspecError

__version__ = "0.1.0"
__all__ = ["Diagnostic", "QuantspecError", "__version__"]
