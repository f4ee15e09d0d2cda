"""Every AIMET golden vector, bit for bit (aimet-onnx 2.42.0 compiled library, aimet.md C).

The vectors were produced by AIMET's own ``_libpymo`` on float32 inputs; the comparisons below are
exact float equality of scale, offset, min and max (and of every quantize-dequantize output).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from runtime_support import GOLDEN, golden_cases, shared_path

from quantspec.runtime import (
    Encoding,
    PercentileCalibrator,
    TfEnhancedCalibrator,
    encoding_from_range,
    fake_quantize,
)

pytestmark = pytest.mark.corpus
SECTIONS = ("min_max", "encoding_constraints_fixed_range", "tf_enhanced", "percentile",
            "quantize_dequantize")


def test_every_golden_section_is_covered() -> None:
    data = json.loads(shared_path(GOLDEN).read_text())
    assert set(data) - {"_about"} == set(SECTIONS)
    assert sum(len(data[s]) for s in SECTIONS) == 467


def assert_encoding(enc: Encoding, expected: dict[str, float]) -> None:
    got = {"min": enc.min[0], "max": enc.max[0], "scale": enc.scale[0], "offset": enc.offset[0]}
    assert got == expected, {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}


@pytest.mark.parametrize("case", golden_cases("min_max"))
def test_min_max(case: dict[str, Any]) -> None:
    # aimet.md C.1: the encoding depends only on the float32 min/max of the data.
    enc = encoding_from_range(
        case["data_min"], case["data_max"], case["bw"], scheme="aimet2",
        symmetric=case["is_symmetric"], strict=case["strict_symmetric"],
        unsigned=case["unsigned_symmetric"],
    )
    assert_encoding(enc, case["expected"])


@pytest.mark.parametrize("case", golden_cases("encoding_constraints_fixed_range"))
def test_fixed_range(case: dict[str, Any]) -> None:
    # aimet.md C.2: the Python path (half-even rounding, MIN_RANGE 0.01).
    enc = encoding_from_range(
        case["fixed_min"], case["fixed_max"], case["bw"], scheme="aimet_fixed",
        symmetric=case["is_symmetric"], strict=case["strict_symmetric"],
    )
    assert_encoding(enc, case["expected"])


def _calibrate(cal: TfEnhancedCalibrator, case: dict[str, Any]) -> Encoding:
    for batch in case["batches"]:
        cal.update(np.array(batch, dtype=np.float32))
    return cal.encoding(case["bw"], symmetric=case["is_symmetric"],
                        strict=case["strict_symmetric"], unsigned=case["unsigned_symmetric"])


@pytest.mark.parametrize("case", golden_cases("tf_enhanced"))
def test_tf_enhanced(case: dict[str, Any]) -> None:
    # aimet.md C.3: float32 emulation of the SQNR search, one update() per batch.
    assert_encoding(_calibrate(TfEnhancedCalibrator(), case), case["expected"])


@pytest.mark.parametrize("case", golden_cases("percentile"))
def test_percentile(case: dict[str, Any]) -> None:
    # aimet.md C.4
    cal = PercentileCalibrator(percentile=case["percentile"])
    assert_encoding(_calibrate(cal, case), case["expected"])


@pytest.mark.parametrize("case", golden_cases("quantize_dequantize"))
def test_quantize_dequantize(case: dict[str, Any]) -> None:
    # aimet.md C.5: clamp to [min, max], round half away from zero of x/scale - offset, float32.
    enc = Encoding(case["bw"], [case["scale"]], [case["offset"]], [case["min"]], [case["max"]])
    got = fake_quantize(np.array(case["input"], dtype=np.float32), enc, semantics="aimet")
    np.testing.assert_array_equal(got, np.array(case["expected"], dtype=np.float32))
