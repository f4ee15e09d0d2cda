"""The Encoding type: conventions and conversions between AIMET offsets and ONNX zero points."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quantspec.errors import QuantspecError
from quantspec.runtime import Encoding, encoding_from_range, offset_to_zero_point
from quantspec.runtime.encoding import stack_channels, zero_point_to_offset


@pytest.mark.parametrize(
    ("offset", "bits", "signed", "strict", "zp"),
    [(-128, 8, False, False, 128), (-128, 8, True, False, 0), (0, 8, False, False, 0),
     (-127, 8, True, True, 0), (-200, 8, False, False, 200), (-3486, 16, False, False, 3486),
     (-32768, 16, True, False, 0), (-8, 4, True, False, 0)],
)
def test_offset_zero_point_round_trip(offset: int, bits: int, signed: bool, strict: bool,
                                      zp: int) -> None:
    assert offset_to_zero_point(offset, bits, signed, strict).tolist() == [zp]
    assert zero_point_to_offset(zp, bits, signed, strict).tolist() == [offset]


def test_storage_grids() -> None:
    asym = encoding_from_range(-1.0, 2.0, 8)
    assert (asym.qmin, asym.qmax, asym.storage_dtype) == (0, 255, np.dtype(np.uint8))
    sym = encoding_from_range(-1.0, 2.0, 8, symmetric=True)
    assert (sym.qmin, sym.qmax, sym.storage_dtype) == (-128, 127, np.dtype(np.int8))
    assert encoding_from_range(-1, 1, 16, symmetric=True).storage_dtype == np.dtype(np.int16)
    assert encoding_from_range(-1, 1, 32).storage_dtype == np.dtype(np.uint32)


def test_from_onnx_and_to_onnx() -> None:
    enc = Encoding.from_onnx(np.float32(0.05), np.uint8(131), 8)
    assert enc.offset.tolist() == [-131] and not enc.symmetric
    scale, zp = enc.to_onnx()
    assert scale.dtype == np.float32 and zp.dtype == np.uint8 and zp.shape == ()
    sym = Encoding.from_onnx([0.1, 0.2], np.zeros(2, np.int8), 8, signed=True, axis=0)
    assert sym.symmetric and sym.per_channel and sym.offset.tolist() == [-128, -128]


def test_min_max_follow_scale_offset() -> None:
    enc = Encoding.from_scale_offset([0.5], [-10], 4)
    assert (enc.min[0], enc.max[0]) == (-5.0, 2.5)


def test_channel_and_stack() -> None:
    pc = encoding_from_range([-1.0, -2.0], [1.0, 3.0], 8, axis=1)
    parts = [pc.channel(0), pc.channel(1)]
    assert all(p.axis is None for p in parts)
    assert stack_channels(parts, axis=1) == pc


def test_immutable_and_json() -> None:
    enc = encoding_from_range(-1.0, 1.0, 8, symmetric=True)
    with pytest.raises(ValueError):
        enc.scale[0] = 2.0
    d = json.loads(json.dumps(enc.to_dict()))
    assert d["offset"] == [-128.0] and d["symmetric"] is True
    assert "bits=8" in repr(enc)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"bits": 0, "scale": [1.0], "offset": [0], "min": [0], "max": [1]}, "E401"),
        ({"bits": 8, "scale": [0.0], "offset": [0], "min": [0], "max": [1]}, "E402"),
        ({"bits": 8, "scale": [1.0], "offset": [0.5], "min": [0], "max": [1]}, "E402"),
        ({"bits": 8, "scale": [1.0, 2.0], "offset": [0], "min": [0], "max": [1]}, "E402"),
        ({"bits": 8, "scale": [1.0, 2.0], "offset": [0, 0], "min": [0, 0], "max": [1, 1]},
         "E406"),
        ({"bits": 8, "dtype": "fp8"}, "E404"),
        ({"bits": 8, "dtype": "float"}, "E401"),
    ],
)
def test_bad_encoding(kwargs: dict, code: str) -> None:
    with pytest.raises(QuantspecError) as err:
        Encoding(**kwargs)
    assert err.value.code == code
