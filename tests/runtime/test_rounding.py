"""Rounding modes: the tie tables of vitis_amct.md 1.11 and aimet.md C, in place and not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantspec.errors import QuantspecError
from quantspec.runtime import ROUNDING_MODES, round_array
from quantspec.runtime.rounding import round_scalar

X = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -2.4, 2.6, 0.49999997, -0.49999997, 0.0]
TABLE = {
    "half_even": [-2, -2, -0, 0, 2, 2, -2, 3, 0, -0, 0],
    "half_away": [-3, -2, -1, 1, 2, 3, -2, 3, 0, -0, 0],
    "std_round": [-3, -2, -1, 1, 2, 3, -2, 3, 0, -0, 0],
    "half_up": [-2, -1, -0, 1, 2, 3, -2, 3, 0, -0, 0],
    "half_down": [-2, -1, -0, 0, 1, 2, -2, 3, 0, -0, 0],
    "floor": [-3, -2, -1, 0, 1, 2, -3, 2, 0, -1, 0],
    "ceil": [-2, -1, -0, 1, 2, 3, -2, 3, 1, -0, 0],
    "trunc": [-2, -1, -0, 0, 1, 2, -2, 2, 0, -0, 0],
}


def test_table_covers_every_mode() -> None:
    assert set(TABLE) == set(ROUNDING_MODES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_tie_table(mode: str, dtype: type) -> None:
    x = np.array(X, dtype=dtype)
    assert round_array(x, mode).tolist() == TABLE[mode]
    assert [round_scalar(float(v), mode) for v in x] == TABLE[mode]


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_in_place(mode: str) -> None:
    x = np.array(X, dtype=np.float32)
    out = round_array(x, mode, out=x)
    assert out is x and x.tolist() == TABLE[mode]


def test_0_49999997_is_not_a_tie() -> None:
    # floor(x + 0.5) would give 1 here (0.49999997 + 0.5 rounds to 1.0 in float32).
    assert round_array(np.array([np.float32(0.49999997)]), "half_up").tolist() == [0.0]


def test_unknown_mode() -> None:
    with pytest.raises(QuantspecError) as err:
        round_array(np.zeros(1), "half_odd")
    assert err.value.code == "E404"


@settings(max_examples=300, deadline=None, database=None)
@given(v=st.floats(-1e6, 1e6, allow_nan=False, width=32) | st.integers(-1000, 1000).map(
    lambda k: k + 0.5), mode=st.sampled_from(ROUNDING_MODES))
def test_array_matches_scalar_and_stays_within_half(v: float, mode: str) -> None:
    got = round_array(np.array([v]), mode)[0]
    assert got == round_scalar(v, mode)
    assert got == int(got)
    if mode not in ("floor", "ceil", "trunc"):
        assert abs(got - v) <= 0.5
