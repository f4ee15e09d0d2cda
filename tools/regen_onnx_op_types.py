"""Regenerate ``src/quantspec/lint/data/onnx_op_types.json``: the op type names lint accepts.

``quantspec lint`` checks op types without importing onnx (importing ``onnx.defs`` costs more
than the whole lint run), so the names are shipped as package data. Run after upgrading onnx
or onnxruntime:

    python tools/regen_onnx_op_types.py

Sources: every schema ``onnx.defs`` registers (all domains, all opsets), and the contrib
schemas of onnxruntime (``com.microsoft`` and friends) when onnxruntime is installed, since
models quantized for onnxruntime carry those ops.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "quantspec" / "lint" / "data" / \
    "onnx_op_types.json"


def collect() -> dict[str, object]:
    import onnx
    import onnx.defs

    domains: dict[str, set[str]] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        domains.setdefault(schema.domain or "ai.onnx", set()).add(schema.name)
    sources = [f"onnx {onnx.__version__}"]
    try:
        import onnxruntime
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        for schema in ort_state.get_all_operator_schema():
            domain = schema.domain or "ai.onnx"
            if domain.startswith("com.microsoft"):
                domains.setdefault(domain, set()).add(schema.name)
        sources.append(f"onnxruntime {onnxruntime.__version__}")
    except ImportError:
        pass
    return {
        "generated_by": "tools/regen_onnx_op_types.py",
        "sources": sources,
        "domains": {d: sorted(names) for d, names in sorted(domains.items())},
    }


def main() -> None:
    data = collect()
    from quantspec.fileio import write_atomic

    write_atomic(OUT, json.dumps(data, indent=1) + "\n")
    total = sum(len(v) for v in data["domains"].values())  # type: ignore[union-attr]
    print(f"wrote {OUT} ({total} names)")


if __name__ == "__main__":
    main()
