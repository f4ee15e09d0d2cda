"""quantspec: one rule language for quantization configs.

Heavy parts (compiler, runtime) are imported on use, so ``quantspec lint`` starts fast.
"""

from __future__ import annotations

from .errors import Diagnostic, QuantspecError

__version__ = "0.1.0"
__all__ = ["Diagnostic", "QuantspecError", "__version__", "compile", "load", "loads", "translate"]

_API = ("compile", "load", "loads", "translate")


def __getattr__(name: str) -> object:  # PEP 562: the API module is imported on first use
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'quantspec' has no attribute {name!r}")
