"""Range -> encoding schemes: spec 004's worked examples and each vendor's documented rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantspec.errors import QuantspecError
from quantspec.runtime import (
    SCHEMES,
    dequantize,
    encoding_from_data,
    encoding_from_range,
    fake_quantize,
    quantize,
)


class TestQnnSpecExamples:
    """spec 004, "Quantization Example" / "Dequantization Example" / "Cases - Handling 0"."""

    def test_quantization_example(self) -> None:
        x = np.array([-1.8, -1.0, 0.0, 0.5], dtype=np.float32)
        enc = encoding_from_data(x, 8, scheme="qnn_tf")
        assert enc.zero_point.tolist() == [200]  # "offset is 200"
        assert round(float(enc.min[0]), 6) == -1.803922
        assert round(float(enc.max[0]), 6) == 0.496078
        assert round(float(enc.scale[0]), 6) == 0.009020  # "step size is 0.009020"
        assert quantize(x, enc).tolist() == [0, 89, 200, 255]

    def test_dequantization_example(self) -> None:
        enc = encoding_from_range(-1.8, 0.5, 8, scheme="qnn_tf")
        got = dequantize(np.array([0, 89, 200, 255], dtype=np.uint8), enc)
        np.testing.assert_allclose(got, [-1.8039, -1.0011, 0.0, 0.4961], atol=1e-4)
        assert got[2] == 0.0  # zero is exactly representable

    def test_straddling_range_is_shifted(self) -> None:
        # [-5.1, 5.1]: step 0.04, min/max shifted by -0.02 to -5.12 / 5.08, zero at 128.
        enc = encoding_from_range(-5.1, 5.1, 8, scheme="qnn_tf")
        assert enc.zero_point.tolist() == [128]
        np.testing.assert_allclose([enc.min[0], enc.max[0]], [-5.12, 5.08], rtol=1e-12)

    @pytest.mark.parametrize(
        ("lo", "hi", "want"), [(5.0, 10.0, (0.0, 10.0)), (-20.0, -6.0, (-20.0, 0.0))]
    )
    def test_one_sided_ranges_include_zero(self, lo: float, hi: float,
                                            want: tuple[float, float]) -> None:
        enc = encoding_from_range(lo, hi, 8, scheme="qnn_tf")
        np.testing.assert_allclose([enc.min[0], enc.max[0]], want, atol=1e-12)

    def test_minimum_range(self) -> None:
        enc = encoding_from_range(0.0, 0.0, 8, scheme="qnn_tf")
        assert enc.max[0] - enc.min[0] == pytest.approx(0.0001)

    def test_symmetric_mode_uses_absmax(self) -> None:
        enc = encoding_from_range(-1.0, 0.5, 8, scheme="qnn_tf", symmetric=True)
        # (-1, 1) then the TF zero shift: offset = round(127.5) = 128 = 2^(bw-1).
        assert enc.zero_point.tolist() == [0] and enc.offset.tolist() == [-128]
        assert enc.scale[0] == pytest.approx(2 / 255)


class TestAimet:
    def test_symmetric_int8_example(self) -> None:
        # aimet.md C.1: [-1, 0.5] symmetric -> delta 1/128, min -1, max 127/128.
        enc = encoding_from_range(-1.0, 0.5, 8, symmetric=True)
        assert (enc.scale[0], enc.min[0], enc.max[0]) == (1 / 128, -1.0, 127 / 128)

    def test_all_zero_uses_min_scale(self) -> None:
        enc = encoding_from_range(0.0, 0.0, 8)
        assert enc.scale[0] == 2.0**-23  # issue qualcomm/aimet#4054's dead channels

    @pytest.mark.parametrize(
        ("strict", "unsigned", "offset"), [(False, False, -128), (True, False, -127),
                                           (False, True, 0)]
    )
    def test_b9_grids(self, strict: bool, unsigned: bool, offset: int) -> None:
        enc = encoding_from_range(0.0, 1.0, 8, symmetric=True, strict=strict, unsigned=unsigned)
        assert enc.offset[0] == offset
        assert enc.num_steps == (254 if strict else 255)

    def test_unsigned_falls_back_with_negative_data(self) -> None:
        enc = encoding_from_range(-0.1, 1.0, 8, symmetric=True, unsigned=True)
        assert enc.offset[0] == -128

    def test_fixed_range_examples(self) -> None:
        # aimet.md C.2 examples.
        e = encoding_from_range(-1, 1, 8, scheme="aimet_fixed", symmetric=True, strict=True)
        assert (e.scale[0], e.offset[0], e.min[0], e.max[0]) == (1 / 127, -127, -1.0, 1.0)
        e = encoding_from_range(-1, 1, 8, scheme="aimet_fixed", symmetric=True)
        assert e.offset[0] == -128 and e.min[0] == pytest.approx(-1.00787, abs=1e-5)
        e = encoding_from_range(0, 1, 8, scheme="aimet_fixed")
        assert (e.scale[0], e.offset[0]) == (1 / 255, 0)

    def test_aimet1_min_range(self) -> None:
        enc = encoding_from_range(0.0, 0.0, 8, scheme="aimet1")
        assert enc.max[0] - enc.min[0] == pytest.approx(0.01)


class TestVitisAndAmct:
    def test_pof2_fix_position(self) -> None:
        # step = max(-1.8/-128.5, 0.5/127.5) = 0.014; floor(log2(1/step)) = 6.
        enc = encoding_from_range(-1.8, 0.5, 8, scheme="vitis_pof2", symmetric=True)
        assert enc.scale[0] == 2.0**-6 and enc.scale_type == "power_of_two"
        assert enc.offset[0] == -128

    def test_pof2_fix_position_is_capped(self) -> None:
        enc = encoding_from_range(0.0, 0.0, 8, scheme="vitis_pof2", symmetric=True)
        assert enc.scale[0] == 2.0**-12  # 18 capped to nndct_max_fix_position

    def test_vitis_asymmetric_keeps_range(self) -> None:
        enc = encoding_from_range(5.0, 10.0, 8, scheme="vitis_float")
        assert enc.min[0] == pytest.approx(5.0) and enc.max[0] == pytest.approx(10.0)

    def test_vitis_unsigned_rejects_negative_data(self) -> None:
        with pytest.raises(QuantspecError) as err:
            encoding_from_range(-1.0, 1.0, 8, scheme="vitis_float", symmetric=True, unsigned=True)
        assert err.value.code == "E405"

    def test_vitis_unsigned_per_channel_switches_to_signed(self) -> None:
        enc = encoding_from_range([-1.0, 0.0], [1.0, 2.0], 8, scheme="vitis_float",
                                  symmetric=True, unsigned=True, axis=0)
        assert enc.offset.tolist() == [-128, -128]

    def test_amct_symmetric_divides_by_128_when_negative_dominates(self) -> None:
        enc = encoding_from_range(-2.0, 1.0, 8, scheme="amct", symmetric=True)
        assert enc.scale[0] == pytest.approx(2.0 / 128)
        enc = encoding_from_range(-1.0, 2.0, 8, scheme="amct", symmetric=True)
        assert enc.scale[0] == pytest.approx(2.0 / 127)

    def test_amct_asymmetric_offset(self) -> None:
        enc = encoding_from_range(0.0, 2.55, 8, scheme="amct")
        assert enc.zero_point.tolist() == [-128]  # int8 storage, x_q = x/scale - 128


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_per_channel_matches_per_tensor(scheme: str) -> None:
    mins = np.array([-1.0, -0.5, 0.0, -3.0])
    maxs = np.array([1.0, 2.0, 0.5, 0.1])
    sym = scheme == "vitis_pof2"
    pc = encoding_from_range(mins, maxs, 8, scheme=scheme, symmetric=sym, axis=0)
    for c in range(4):
        pt = encoding_from_range(mins[c], maxs[c], 8, scheme=scheme, symmetric=sym)
        assert pc.channel(c) == pt


finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None, database=None)
@given(a=finite, b=finite, bits=st.sampled_from([4, 8, 16]),
       scheme=st.sampled_from(["aimet2", "aimet1", "aimet_fixed", "qnn_tf", "amct"]),
       symmetric=st.booleans())
def test_zero_is_exactly_representable(a: float, b: float, bits: int, scheme: str,
                                       symmetric: bool) -> None:
    lo, hi = min(a, b), max(a, b)
    enc = encoding_from_range(lo, hi, bits, scheme=scheme, symmetric=symmetric)
    assert enc.offset[0] == round(enc.offset[0])  # integral offset: 0 is the grid point -offset
    assert fake_quantize(np.zeros(3, np.float32), enc).tolist() == [0.0, 0.0, 0.0]
    assert enc.min[0] <= 0.0 <= enc.max[0]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"min": 0.0, "max": 1.0, "bits": 0}, "E401"),
        ({"min": 0.0, "max": 1.0, "bits": 33}, "E401"),
        ({"min": 1.0, "max": 0.0}, "E402"),
        ({"min": float("nan"), "max": 0.0}, "E402"),
        ({"min": 0.0, "max": 1.0, "symmetric": True, "strict": True, "unsigned": True}, "E403"),
        ({"min": 0.0, "max": 1.0, "scheme": "aimet3"}, "E404"),
        ({"min": [0.0, 1.0], "max": [1.0, 2.0]}, "E406"),
        ({"min": 0.0, "max": 1.0, "scheme": "vitis_pof2"}, "E403"),
        ({"min": 0.0, "max": float("inf"), "scheme": "qnn_tf"}, "E402"),
        ({"min": 0.0, "max": 1.0, "scheme": "amct", "symmetric": True, "strict": True}, "E403"),
    ],
)
def test_bad_input(kwargs: dict, code: str) -> None:
    with pytest.raises(QuantspecError) as err:
        encoding_from_range(**kwargs)
    assert err.value.code == code


def test_unknown_scheme_suggests_near_miss() -> None:
    with pytest.raises(QuantspecError) as err:
        encoding_from_range(0.0, 1.0, scheme="qnn_fT")
    assert "qnn_tf" in err.value.diagnostic.hint


def test_aimet2_clamps_infinite_ranges() -> None:
    enc = encoding_from_range(-np.inf, np.inf, 8)
    assert np.isfinite(enc.min[0]) and np.isfinite(enc.max[0])
