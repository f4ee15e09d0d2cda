"""Helpers shared by the runtime tests: the ../shared corpus and small ONNX QDQ models."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT / ".." / "shared"
GOLDEN = "corpus/aimet/golden/encoding_math_aimet_onnx_2.42.0.json"


def shared_path(relative: str) -> Path:
    """A file under ``../shared`` next to the repository root, or skip the test."""
    path = (SHARED / relative).resolve()
    if not path.exists():
        pytest.skip(f"needs ../shared/{relative}")
    return path


@lru_cache(maxsize=1)
def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def golden_cases(section: str) -> list[Any]:
    """``pytest.param`` per case of one golden section; one skipping param if the file is absent."""
    path = (SHARED / GOLDEN).resolve()
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"needs ../shared/{GOLDEN}"))]
    cases = _load(str(path))[section]
    return [pytest.param(c, id=f"{section}-{i}") for i, c in enumerate(cases)]


def onnx_qdq(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Run QuantizeLinear -> DequantizeLinear with onnx's reference evaluator."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    attrs = {} if axis is None else {"axis": axis}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], **attrs),
        helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], **attrs),
    ]
    zp_type = helper.np_dtype_to_tensor_dtype(zero_point.dtype)
    graph = helper.make_graph(
        nodes, "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("q", zp_type, list(x.shape)),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x.shape))],
        initializer=[numpy_helper.from_array(scale, "s"),
                     numpy_helper.from_array(zero_point, "zp")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    q, y = ReferenceEvaluator(model).run(None, {"x": x})
    return q, y
