"""Quantize / dequantize / fake-quantize kernels against ONNX's reference QDQ and each other."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from runtime_support import onnx_qdq

from quantspec.errors import QuantspecError
from quantspec.runtime import (
    Encoding,
    dequantize,
    encoding_from_data,
    encoding_from_range,
    fake_quantize,
    quantize,
    set_num_threads,
)
from quantspec.runtime.parallel import get_num_threads

RNG = np.random.default_rng(1234)


def data(shape: tuple[int, ...], spread: float = 3.0) -> np.ndarray:
    x = (RNG.standard_normal(shape) * spread).astype(np.float32)
    # Exact ties of x/scale for the scales below exercise the rounding rule.
    ties = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 100.0, -100.0]) * 0.0625
    flat = x.reshape(-1)
    flat[: len(ties)] = ties[: flat.size]
    return x


def channel_encoding(x: np.ndarray, axis: int, signed: bool) -> Encoding:
    enc = encoding_from_data(x, 8, axis=axis, symmetric=signed)
    if signed:
        return enc
    # Random uint8 zero points exercise per-channel offsets.
    zp = RNG.integers(0, 256, enc.channels)
    return Encoding.from_onnx(enc.scale, zp.astype(np.uint8), 8, signed=False, axis=axis)


class TestAgainstOnnxReference:
    """QuantizeLinear -> DequantizeLinear on onnx.reference (half-even rounding)."""

    @pytest.mark.parametrize("signed", [True, False])
    @pytest.mark.parametrize("scale", [0.0625, 0.013, 1.7])
    def test_per_tensor(self, signed: bool, scale: float) -> None:
        x = data((7, 33, 5))
        zp = 0 if signed else 131
        enc = Encoding.from_onnx(np.float32(scale), zp, 8, signed=signed)
        s, z = enc.to_onnx()
        q_ref, y_ref = onnx_qdq(x, s, z, None)
        np.testing.assert_array_equal(quantize(x, enc), q_ref)
        np.testing.assert_array_equal(fake_quantize(x, enc), y_ref)
        np.testing.assert_array_equal(dequantize(q_ref, enc), y_ref)

    @pytest.mark.parametrize("signed", [True, False])
    @pytest.mark.parametrize(
        ("shape", "axis"),
        [((16, 3, 3, 3), 0), ((2, 8, 5, 5), 1), ((40, 24), -1), ((3, 4, 70000), 1),
         ((2, 600, 128), 1), ((2, 100, 1000), 1), ((5,), 0)],
    )
    def test_per_channel(self, signed: bool, shape: tuple[int, ...], axis: int) -> None:
        x = data(shape)
        enc = channel_encoding(x, axis, signed)
        s, z = enc.to_onnx()
        q_ref, y_ref = onnx_qdq(x, s, z, axis)
        np.testing.assert_array_equal(quantize(x, enc), q_ref)
        np.testing.assert_array_equal(fake_quantize(x, enc), y_ref)
        np.testing.assert_array_equal(dequantize(q_ref, enc), y_ref)

    def test_threaded_large_tensor(self) -> None:
        before = get_num_threads()
        set_num_threads(2)
        try:
            x = data((1 << 20) + 12345, spread=10.0)
            enc = encoding_from_range(-4.0, 4.0, 8, symmetric=True)
            s, z = enc.to_onnx()
            _, y_ref = onnx_qdq(x, s, z, None)
            np.testing.assert_array_equal(fake_quantize(x, enc), y_ref)
        finally:
            set_num_threads(before)


class TestSemantics:
    def test_aimet_rounds_ties_up_onnx_to_even(self) -> None:
        enc = Encoding.from_scale_offset([1.0], [-128], 8, symmetric=True)
        x = np.array([0.5, 1.5, 2.5, -0.5, -2.5], dtype=np.float32)
        assert fake_quantize(x, enc).tolist() == [0, 2, 2, -0.0, -2]
        # aimet.md C.5: round() sees x/scale - offset >= 0, so every tie rounds up.
        assert fake_quantize(x, enc, semantics="aimet").tolist() == [1, 2, 3, 0, -2]

    @pytest.mark.parametrize("mode", ["half_even", "half_up", "half_down", "std_round"])
    def test_vitis_equals_onnx_for_power_of_two_scales(self, mode: str) -> None:
        x = data((1000,))
        enc = encoding_from_range(-2.0, 2.0, 8, scheme="vitis_pof2", symmetric=True)
        np.testing.assert_array_equal(
            fake_quantize(x, enc, semantics="vitis", rounding=mode),
            fake_quantize(x, enc, rounding=mode),
        )

    @pytest.mark.parametrize("semantics", ["onnx", "aimet", "vitis"])
    def test_nan_maps_to_grid_minimum(self, semantics: str) -> None:
        enc = encoding_from_range(-1.0, 2.0, 8)
        y = fake_quantize(np.array([np.nan, np.inf, -np.inf], np.float32), enc,
                          semantics=semantics)
        lo, hi = np.float32(enc.min[0]), np.float32(enc.max[0])
        np.testing.assert_allclose(y, [lo, hi, lo], rtol=1e-6)

    def test_strict_grid_is_narrow(self) -> None:
        enc = encoding_from_range(-1.0, 1.0, 8, symmetric=True, strict=True)
        assert (enc.qmin, enc.qmax, enc.zero_point.tolist()) == (-127, 127, [0])
        assert quantize(np.array([-5.0, 5.0], np.float32), enc).tolist() == [-127, 127]

    def test_float_encoding_casts(self) -> None:
        x = np.array([1.0001, 3.14159], np.float32)
        y = fake_quantize(x, Encoding.float_cast(16))
        np.testing.assert_array_equal(y, x.astype(np.float16).astype(np.float32))

    def test_sixteen_and_four_bits(self) -> None:
        x = data((100,))
        for bits in (4, 16):
            enc = encoding_from_data(x, bits, symmetric=True)
            q = quantize(x, enc)
            assert q.dtype == (np.int8 if bits == 4 else np.int16)
            assert q.min() >= enc.qmin and q.max() <= enc.qmax
            np.testing.assert_array_equal(dequantize(q, enc), fake_quantize(x, enc))


class TestKernelArguments:
    def test_in_place(self) -> None:
        x = data((3, 100))
        want = fake_quantize(x, encoding_from_data(x, 8))
        got = fake_quantize(x, encoding_from_data(x, 8), out=x)
        assert got is x
        np.testing.assert_array_equal(x, want)

    def test_accepts_lists_and_float64(self) -> None:
        enc = encoding_from_range(-1, 1, 8, symmetric=True)
        assert fake_quantize([0.5], enc).dtype == np.float32
        assert fake_quantize(np.array([0.5]), enc).tolist() == fake_quantize([0.5], enc).tolist()

    @pytest.mark.parametrize(
        ("call", "code"),
        [
            (lambda e: fake_quantize(np.zeros((3, 4), np.float32), e), "E406"),
            (lambda e: fake_quantize(np.zeros((4,), np.float32), e.replace(axis=3)), "E406"),
            (lambda e: fake_quantize(np.array(["a"]), e), "E409"),
            (lambda e: fake_quantize(np.zeros((4, 2), np.float32), e, semantics="qnn"), "E404"),
            (lambda e: fake_quantize(np.zeros((4, 2), np.float32), e, rounding="up"), "E404"),
            (lambda e: fake_quantize(np.zeros((4, 2), np.float32), e,
                                     out=np.zeros((4, 2), np.float64)), "E409"),
            (lambda e: quantize(np.zeros(4, np.float32), Encoding.float_cast()), "E409"),
        ],
    )
    def test_bad_arguments(self, call: object, code: str) -> None:
        enc = encoding_from_range([-1.0] * 4, [1.0] * 4, 8, axis=0)
        with pytest.raises(QuantspecError) as err:
            call(enc)  # type: ignore[operator]
        assert err.value.code == code


arrays = hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                    elements=st.floats(-50, 50, width=32))
grids = st.tuples(st.floats(-20, 0, width=32), st.floats(0, 20, width=32),
                  st.sampled_from([2, 4, 8, 16]), st.booleans(),
                  st.sampled_from(["aimet2", "qnn_tf", "aimet_fixed", "amct"]))
modes = st.sampled_from(["half_even", "half_away", "half_up", "half_down"])
semantics = st.sampled_from(["onnx", "aimet", "vitis"])


@settings(max_examples=150, deadline=None, database=None)
@given(x=arrays, grid=grids, mode=modes, sem=semantics)
@example(x=np.array([19.0], dtype=np.float32), grid=(0.0, 18.6875, 16, False, "aimet2"),
         mode="half_even", sem="vitis")
def test_fake_quant_is_idempotent_and_on_grid(x: np.ndarray, grid: tuple, mode: str,
                                               sem: str) -> None:
    lo, hi, bits, symmetric, scheme = grid
    enc = encoding_from_range(lo, hi, bits, scheme=scheme, symmetric=symmetric)
    y = fake_quantize(x, enc, rounding=mode, semantics=sem)
    np.testing.assert_array_equal(fake_quantize(y, enc, rounding=mode, semantics=sem), y)
    steps = y.astype(np.float64) / np.float32(enc.scale[0])
    # y is float32: a 16-bit grid point near 2^16 steps carries ~2^-24 relative rounding
    err = np.abs(steps - np.round(steps))
    assert np.all(err <= 1e-3 + np.abs(steps) * 2.0**-21), err.max()
    assert np.all(np.round(steps) >= enc.offset[0]) and np.all(
        np.round(steps) <= enc.offset[0] + enc.num_steps)


@settings(max_examples=100, deadline=None, database=None)
@given(x=arrays, grid=grids, mode=modes)
def test_dequantize_of_quantize_is_fake_quantize(x: np.ndarray, grid: tuple, mode: str) -> None:
    lo, hi, bits, symmetric, scheme = grid
    enc = encoding_from_range(lo, hi, bits, scheme=scheme, symmetric=symmetric)
    np.testing.assert_array_equal(dequantize(quantize(x, enc, rounding=mode), enc),
                                  fake_quantize(x, enc, rounding=mode))


@settings(max_examples=80, deadline=None, database=None)
@given(x=hnp.arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 4),
                                          st.integers(1, 7)),
                    elements=st.floats(-10, 10, width=32)),
       axis=st.sampled_from([0, 1, 2, -1]), sem=semantics, symmetric=st.booleans())
def test_per_channel_equals_per_tensor_slices(x: np.ndarray, axis: int, sem: str,
                                              symmetric: bool) -> None:
    enc = encoding_from_data(x, 8, axis=axis, symmetric=symmetric)
    y = fake_quantize(x, enc, semantics=sem)
    moved_x, moved_y = np.moveaxis(x, axis, 0), np.moveaxis(y, axis, 0)
    for c in range(enc.channels):
        np.testing.assert_array_equal(
            moved_y[c], fake_quantize(moved_x[c], enc.channel(c), semantics=sem))


def test_thread_setting_is_validated() -> None:
    with pytest.raises(QuantspecError) as err:
        set_num_threads(0)
    assert err.value.code == "E411"


def test_empty_and_scalar_inputs() -> None:
    enc = encoding_from_range(-1.0, 1.0, 8, symmetric=True)
    assert fake_quantize(np.zeros((0, 3), np.float32), enc).shape == (0, 3)
    assert fake_quantize(np.float32(0.3), enc).shape == ()
    with pytest.raises(QuantspecError) as err:
        encoding_from_data(np.zeros(0, np.float32))
    assert err.value.code == "E409"
