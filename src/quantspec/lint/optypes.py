"""ONNX op type names, from package data (``data/onnx_op_types.json``) so lint never imports onnx.

The list is generated from ``onnx.defs`` and onnxruntime's contrib schemas by
``tools/regen_onnx_op_types.py``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from ..errors import did_you_mean

# Op types quantspec's own graph passes create (compiler/passes.py) that no ONNX domain defines.
QUANTSPEC_OP_TYPES = ("MaskedSoftmax",)


@lru_cache(maxsize=1)
def _domains() -> dict[str, tuple[str, ...]]:
    text = resources.files(__package__).joinpath("data/onnx_op_types.json").read_text("utf-8")
    raw = json.loads(text)
    return {d: tuple(names) for d, names in raw["domains"].items()}


@lru_cache(maxsize=1)
def known_op_types() -> frozenset[str]:
    names = {n for names in _domains().values() for n in names}
    return frozenset(names | set(QUANTSPEC_OP_TYPES))


@lru_cache(maxsize=1)
def _ordered() -> tuple[str, ...]:
    # standard ops first so a near miss suggests 'Gelu' before a contrib op
    dom = _domains()
    first = dom.get("ai.onnx", ())
    rest = sorted({n for d, names in dom.items() if d != "ai.onnx" for n in names} - set(first))
    return (*first, *QUANTSPEC_OP_TYPES, *rest)


def is_known(op_type: str) -> bool:
    return op_type in known_op_types()


def suggest(op_type: str) -> str:
    """``"did you mean 'Gelu'?"`` (case-insensitive match first: AIMET HTP configs say GELU)."""
    lowered = {n.lower(): n for n in _ordered()}
    if op_type.lower() in lowered:
        return f"did you mean '{lowered[op_type.lower()]}'?"
    return did_you_mean(op_type, _ordered())
