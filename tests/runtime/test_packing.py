"""Packed 4-bit storage (spec 004, "Packed 4-bit Quantization")."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from quantspec.errors import QuantspecError
from quantspec.runtime import encoding_from_data, pack_int4, quantize, unpack_int4


def test_spec_example() -> None:
    # Unpacked (0000 1010, 0000 0100) -> packed (0100 1010): first value in the low nibble.
    assert pack_int4(np.array([10, 4], np.uint8)).tolist() == [0b0100_1010]
    assert unpack_int4(np.array([0b0100_1010], np.uint8), (2,)).tolist() == [10, 4]


def test_per_channel_spec_example() -> None:
    # (3, 3, 3, 32) with 32 output channels: 27 values per channel -> ceil(27/2) = 14 bytes.
    q = np.random.default_rng(0).integers(0, 16, (3, 3, 3, 32)).astype(np.uint8)
    packed = pack_int4(q, axis=-1)
    assert packed.shape == (32, 14)
    np.testing.assert_array_equal(unpack_int4(packed, q.shape, axis=-1), q)
    # Channel 5's first two values share its first byte.
    flat = np.moveaxis(q, -1, 0).reshape(32, -1)
    assert packed[5, 0] == flat[5, 0] | (flat[5, 1] << 4)


def test_signed_nibbles() -> None:
    q = np.array([-8, 7, -1, 0, 3], np.int8)
    packed = pack_int4(q)
    assert packed.tolist() == [0x78, 0x0F, 0x03]
    assert unpack_int4(packed, (5,), signed=True).tolist() == q.tolist()


def test_quantized_4bit_tensor_round_trip() -> None:
    x = np.random.default_rng(1).standard_normal((8, 9)).astype(np.float32)
    enc = encoding_from_data(x, 4, axis=0, symmetric=True)
    q = quantize(x, enc)
    np.testing.assert_array_equal(unpack_int4(pack_int4(q, axis=0), q.shape, axis=0,
                                              signed=True), q)


@settings(max_examples=100, deadline=None, database=None)
@given(q=hnp.arrays(np.int8, hnp.array_shapes(min_dims=1, max_dims=3, max_side=7),
                    elements=st.integers(-8, 7)),
       data=st.data())
def test_round_trip(q: np.ndarray, data: st.DataObject) -> None:
    axis = data.draw(st.sampled_from([None, *range(-q.ndim, q.ndim)]))
    packed = pack_int4(q, axis=axis, signed=True)
    assert packed.dtype == np.uint8
    np.testing.assert_array_equal(unpack_int4(packed, q.shape, axis=axis, signed=True), q)
    unsigned = (q.astype(np.int16) + 8).astype(np.uint8)
    np.testing.assert_array_equal(
        unpack_int4(pack_int4(unsigned, axis=axis), q.shape, axis=axis), unsigned)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: pack_int4(np.array([16])), "E410"),
        (lambda: pack_int4(np.array([-9])), "E410"),
        (lambda: pack_int4(np.array([0.5])), "E410"),
        (lambda: unpack_int4(np.array([1, 2, 3], np.uint8), (2,)), "E410"),
        (lambda: pack_int4(np.zeros((2, 2), np.int8), axis=2), "E406"),
    ],
)
def test_bad_input(call: object, code: str) -> None:
    with pytest.raises(QuantspecError) as err:
        call()  # type: ignore[operator]
    assert err.value.code == code
