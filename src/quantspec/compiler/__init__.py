"""The compiler: a profile + an ONNX graph -> a flat, deterministic per-tensor plan.

Passes, in order (each one small and named for what it does):

1. graph passes named by the profile fuse subgraphs (:mod:`.passes`);
2. the candidate tensors are listed (float tensors that are read or are graph outputs);
3. every rule and every fusion-pattern match selects tensors (:mod:`.select`,
   :mod:`.patterns`); the cascade keeps, per tensor and field, the rule with the highest
   ``(final, level, order)`` and remembers the ones it shadowed (:mod:`.resolve`);
4. ``like output`` references and ``min_bits`` are applied, then the profile's post hooks
   (vendor rules that live in dialects), then ties (shared encodings, :mod:`.ties`);
5. per-channel axes are fixed and the :class:`Plan` is built.
"""

from __future__ import annotations

from .plan import Entry, Plan, Why
from .resolve import compile_profile

__all__ = ["Entry", "Plan", "Why", "compile_profile"]
