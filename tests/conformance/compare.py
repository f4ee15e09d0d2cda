"""Compare a quantspec plan with an AIMET conformance plan (format aimet-conformance-plan/1)."""

from __future__ import annotations

import math
from typing import Any

FIELDS = ("bitwidth", "dtype", "symmetric", "strict_symmetric", "unsigned_symmetric",
          "per_channel", "axis", "fixed_range", "shared_with")


def ours_as_aimet(entry: dict[str, Any]) -> dict[str, Any]:
    fr = entry["fixed_range"]
    return {
        "enabled": entry["quantized"],
        "bitwidth": entry["bits"],
        "dtype": entry["dtype"],
        "symmetric": entry["symmetric"],
        "strict_symmetric": entry["strict_symmetric"],
        "unsigned_symmetric": entry["unsigned_symmetric"],
        "per_channel": entry["per_channel"],
        "axis": entry["axis"] if entry["per_channel"] else None,
        "fixed_range": list(fr) if fr is not None else None,
        "shared_with": sorted(entry["shared_with"]),
    }


def _eq(field: str, a: Any, b: Any) -> bool:
    if field == "fixed_range":
        if a is None or b is None:
            return a is None and b is None
        return all((x is None and y is None) or (x is not None and y is not None and
                   math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12))
                   for x, y in zip(a, b, strict=True))
    if field == "shared_with":
        return set(a) == set(b)
    return bool(a == b)


def compare(golden: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """Mismatches: a disabled or absent quantizer means "not quantized"; quantized tensors
    must agree on every compared field."""
    by_name = {t["name"]: t for t in ours["tensors"]}
    out = []
    for q in golden["quantizers"]:
        e = by_name.get(q["tensor"])
        mine = ours_as_aimet(e) if e else None
        enabled = bool(mine and mine["enabled"])
        if enabled != q["enabled"]:
            out.append(f"{q['tensor']}: enabled golden={q['enabled']} ours={enabled}")
            continue
        if not q["enabled"]:
            continue
        for f in FIELDS:
            g = q[f] if f != "axis" or q["per_channel"] else None
            if not _eq(f, g, mine[f]):  # type: ignore[index]
                out.append(f"{q['tensor']}: {f} golden={g} ours={mine[f]}")  # type: ignore[index]
    listed = {q["tensor"] for q in golden["quantizers"]}
    for t in ours["tensors"]:
        if t["quantized"] and t["name"] not in listed:
            out.append(f"{t['name']}: quantized by us, AIMET has no quantizer")
    return out
