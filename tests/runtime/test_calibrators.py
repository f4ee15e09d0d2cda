"""Calibrators: vendor behaviour, merge semantics and bounded memory."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantspec.errors import QuantspecError
from quantspec.runtime import (
    CALIBRATORS,
    HfmgCalibrator,
    IfmrCalibrator,
    MinMaxCalibrator,
    PercentileCalibrator,
    TfEnhancedCalibrator,
    VitisCalibrator,
    encoding_from_data,
    encoding_from_range,
    fake_quantize,
    make_calibrator,
)
from quantspec.runtime.calibrators import Calibrator, Pow2Histogram, ifmr_reference
from quantspec.runtime.calibrators.amct import hfmg_losses, hfmg_search_ranges
from quantspec.runtime.calibrators.histogram import torch_histc as histc
from quantspec.runtime.calibrators.statistics import BatchStatistic
from quantspec.runtime.calibrators.vitis import diffs_fix_pos

RNG = np.random.default_rng(7)


def batches(n: int = 6, size: int = 4000, shape: tuple[int, ...] | None = None) -> list:
    out = []
    for i in range(n):
        x = RNG.standard_normal(shape or (size,)).astype(np.float32) * (1 + 0.3 * i)
        x.reshape(-1)[:3] = [6.0 + i, -5.0 - i, 0.0]  # outliers to clip
        out.append(x)
    return out


def feed(cal: Calibrator, data: list) -> Calibrator:
    for b in data:
        cal.update(b)
    return cal


# Every registered calibrator with options that keep the test fast.
FAST = {
    "minmax": {},
    "tf_enhanced": {},
    "percentile": {"percentile": 99.9},
    "entropy": {"num_bins": 256, "start_bin": 16, "stride": 2},
    "mse": {"num_bins": 1024},
    "vitis": {},
    "ifmr": {"num_bins": 4096},
    "hfmg": {"num_of_bins": 1024},
}


def test_registry_is_covered() -> None:
    assert set(FAST) == set(CALIBRATORS)


@pytest.mark.parametrize("name", sorted(FAST))
def test_every_calibrator_produces_a_valid_encoding(name: str) -> None:
    cal = feed(make_calibrator(name, **FAST[name]), batches(3))
    enc = cal.result()
    assert enc.channels == 1 and enc.scale[0] > 0
    assert enc.min[0] <= 0.0 <= enc.max[0]
    assert cal.batches == 3


@pytest.mark.parametrize("name", sorted(FAST))
def test_state_size_does_not_grow_with_batches(name: str) -> None:
    cal = make_calibrator(name, **FAST[name])
    cal.update(batches(1)[0])
    first = cal.state_nbytes()
    data = batches(40, size=500)
    for b in data:
        cal.update(b)
    assert cal.state_nbytes() == first or name == "vitis"
    if name == "vitis":  # one entry per distinct power-of-two fix position, a handful at most
        assert cal.state_nbytes() <= 16 * 16


@pytest.mark.parametrize("name", ["minmax", "entropy", "mse", "ifmr", "vitis"])
def test_merge_of_halves_equals_one_calibrator(name: str) -> None:
    data = batches(8)
    whole = feed(make_calibrator(name, **FAST[name]), data)
    left = feed(make_calibrator(name, **FAST[name]), data[:3])
    right = feed(make_calibrator(name, **FAST[name]), data[3:])
    merged = left.merge(right)
    assert merged.result() == whole.result()
    assert merged.batches == whole.batches


@pytest.mark.parametrize("cls", [TfEnhancedCalibrator, PercentileCalibrator])
def test_aimet_pdf_merge_with_shared_grid(cls: type) -> None:
    data = batches(7)
    whole = feed(cls(), data)
    first = feed(cls(), data[:1])
    shards = [feed(first.empty_like(), data[1:4]), feed(first.empty_like(), data[4:])]
    for s in shards:
        first.merge(s)
    assert first.stats is not None and whole.stats is not None
    # Weighted average of running means = the running mean, up to float rounding.
    np.testing.assert_allclose(first.stats.pdf, whole.stats.pdf, rtol=1e-12, atol=1e-15)
    for sym in (False, True):
        assert first.encoding(symmetric=sym) == whole.encoding(symmetric=sym)


def test_aimet_pdf_merge_with_different_grids_rebins() -> None:
    data = batches(4)
    whole = feed(TfEnhancedCalibrator(), data)
    merged = feed(TfEnhancedCalibrator(), data[:2]).merge(feed(TfEnhancedCalibrator(), data[2:]))
    assert merged.stats is not None
    assert merged.stats.pdf.sum() == pytest.approx(1.0, abs=1e-9)
    a, b = merged.result(), whole.result()
    assert a.scale[0] == pytest.approx(b.scale[0], rel=0.1)


def test_hfmg_merge_with_equal_ranges_is_exact() -> None:
    data = batches(4)
    for b in data:  # every batch holds the same extremes, so no bins are redistributed
        b[:2] = [10.0, -10.0]
    whole = feed(HfmgCalibrator(1024), data)
    merged = feed(HfmgCalibrator(1024), data[:2]).merge(feed(HfmgCalibrator(1024), data[2:]))
    np.testing.assert_array_equal(merged.counts, whole.counts)
    assert merged.result() == whole.result()


def test_hfmg_merge_keeps_every_count() -> None:
    data = batches(5)
    merged = feed(HfmgCalibrator(2048), data[:2]).merge(feed(HfmgCalibrator(2048), data[2:]))
    whole = feed(HfmgCalibrator(2048), data)
    assert merged.counts.sum() == whole.counts.sum() == sum(b.size for b in data)
    assert (merged.lo, merged.hi) == (whole.lo, whole.hi)
    assert merged.result().scale[0] == pytest.approx(whole.result().scale[0], rel=0.02)


class TestMinMax:
    def test_matches_encoding_from_data_per_channel(self) -> None:
        data = batches(3, shape=(4, 6, 5))
        cal = feed(MinMaxCalibrator(axis=1), data)
        assert cal.encoding(symmetric=True) == encoding_from_data(
            np.concatenate(data, axis=0), 8, axis=1, symmetric=True)

    def test_nan_is_ignored(self) -> None:
        cal = MinMaxCalibrator().update(np.array([np.nan, -1.0, 2.0], np.float32))
        assert cal.encoding() == encoding_from_range(-1.0, 2.0, 8)

    def test_channel_count_must_not_change(self) -> None:
        cal = MinMaxCalibrator(axis=0).update(np.zeros((3, 2), np.float32))
        with pytest.raises(QuantspecError) as err:
            cal.update(np.zeros((4, 2), np.float32))
        assert err.value.code == "E406"


class TestTfEnhanced:
    def test_per_channel_is_one_analyzer_per_channel(self) -> None:
        data = batches(2, shape=(3, 500))
        pc = feed(TfEnhancedCalibrator(axis=0), data).encoding(symmetric=True)
        for c in range(3):
            pt = feed(TfEnhancedCalibrator(), [b[c] for b in data]).encoding(symmetric=True)
            assert pc.channel(c) == pt

    def test_all_zero_data_gives_aimet_default(self) -> None:
        enc = TfEnhancedCalibrator().update(np.zeros(10, np.float32)).result()
        assert (enc.min[0], enc.offset[0]) == pytest.approx((-128 * 2 / 255, -128))

    def test_version_1x_uses_512_buckets(self) -> None:
        cal = feed(TfEnhancedCalibrator(version="1.x"), batches(2))
        assert cal.stats is not None and cal.stats.pdf.shape == (1, 512)
        assert cal.result().scale[0] > 0


class TestVitis:
    def test_diffs_picks_the_least_squared_error(self) -> None:
        x = batches(1)[0]
        fp0 = int(np.floor(np.log2(1 / max(x.min() / -128.5, x.max() / 127.5))))
        errs = []
        for fp in range(fp0, fp0 + 5):
            q = np.clip(np.rint(x * 2.0**fp), -128, 127) / 2.0**fp
            errs.append(np.sum((x - q) ** 2))
        assert diffs_fix_pos(x, 8, 5, "half_even") == fp0 + int(np.argmin(errs))
        assert diffs_fix_pos(x, 8, 1, "half_even") == fp0

    def test_statistic_methods(self) -> None:
        s = BatchStatistic()
        for v in [3.0, 1.0, 2.0, 2.0, 9.0, 1.0]:
            s.add(v)
        assert s.reduce("max") == 9.0
        assert s.reduce("mean") == pytest.approx(3.0)
        assert s.reduce("median") == 2.0
        assert s.reduce("modal") == 1.0  # scipy mode: the smallest of the most frequent

    @pytest.mark.parametrize("stat", ["modal", "max", "mean", "median"])
    def test_pof2_result_is_a_power_of_two(self, stat: str) -> None:
        cal = feed(VitisCalibrator(calib_statistic_method=stat), batches(5))
        scale = cal.result().scale[0]
        assert scale == 2.0 ** np.round(np.log2(scale))
        assert cal.result().scale_type == "power_of_two"

    @pytest.mark.parametrize("method", ["maxmin", "percentile", "mse", "entropy"])
    def test_float_methods(self, method: str) -> None:
        cal = feed(VitisCalibrator(method, "mean", scale_type="float"), batches(3))
        enc = cal.result()
        assert enc.offset[0] == -128 and 0 < enc.scale[0] < 12 / 127

    def test_asymmetric_maxmin_zero_point(self) -> None:
        x = np.linspace(-1.0, 3.0, 101, dtype=np.float32)
        enc = VitisCalibrator("maxmin", scale_type="float", symmetric=False).update(x).result()
        assert enc.scale[0] == pytest.approx(4.0 / 255)
        assert enc.zero_point[0] == round(1.0 / (4.0 / 255))

    def test_unsigned_rejects_negative_data(self) -> None:
        cal = VitisCalibrator("maxmin", scale_type="float", unsigned=True)
        with pytest.raises(QuantspecError) as err:
            cal.update(np.array([-1.0, 1.0], np.float32))
        assert err.value.code == "E405"

    def test_per_channel_diffs(self) -> None:
        x = np.stack([np.linspace(-a, a, 50, dtype=np.float32) for a in (0.1, 1.0, 10.0)])
        enc = VitisCalibrator(axis=0).update(x).result()
        assert enc.per_channel and np.all(np.diff(enc.scale) > 0)  # wider channel, coarser

    def test_results_are_for_the_constructed_grid(self) -> None:
        cal = VitisCalibrator().update(batches(1)[0])
        with pytest.raises(QuantspecError) as err:
            cal.encoding(bits=4)
        assert err.value.code == "E403"


class TestAmct:
    @pytest.mark.parametrize("symmetric", [False, True])
    def test_ifmr_exact_percentiles_match_reference(self, symmetric: bool) -> None:
        data = batches(3)
        ref = ifmr_reference(np.concatenate(data), symmetric=symmetric, max_percentile=1.0,
                             min_percentile=1.0)
        got = feed(IfmrCalibrator(1.0, 1.0, num_bins=1 << 15, symmetric=symmetric), data)
        assert got.result().scale[0] == pytest.approx(ref.scale[0], rel=0.01)

    def test_ifmr_percentile_close_to_reference(self) -> None:
        data = batches(3)
        ref = ifmr_reference(np.concatenate(data), max_percentile=0.999, min_percentile=0.999)
        got = feed(IfmrCalibrator(0.999, 0.999), data).result()
        assert got.scale[0] == pytest.approx(ref.scale[0], rel=0.02)

    def test_ifmr_single_candidate_is_min_max(self) -> None:
        # vitis_amct.md 2.5: percentiles 1.0 and search [1.0, 1.01) step 0.01 = exact min-max.
        x = batches(1)[0]
        got = IfmrCalibrator(1.0, 1.0, 1.0, 1.01, 0.01).update(x).result()
        want = encoding_from_range(float(x.min()), float(x.max()), 8, scheme="amct")
        assert got.scale[0] == pytest.approx(want.scale[0], rel=1e-6)
        assert got.offset[0] == want.offset[0]

    def test_ifmr_rejects_non_finite(self) -> None:
        with pytest.raises(QuantspecError) as err:
            IfmrCalibrator().update(np.array([np.inf], np.float32))
        assert err.value.code == "E409"

    def test_hfmg_loss_matches_amct_formula(self) -> None:
        x = batches(1)[0]
        counts = histc(x, 256, float(x.min()), float(x.max()))
        ranges = hfmg_search_ranges(counts)
        got = hfmg_losses(counts, float(x.min()), float(x.max()), ranges, 16)
        want = _amct_l2_loss(counts, float(x.min()), float(x.max()), ranges, 16)
        np.testing.assert_allclose(got, want, rtol=1e-6)

    def test_hfmg_search_ranges_match_amct_loops(self) -> None:
        counts = histc(batches(1)[0], 512, -5.0, 6.0)
        assert hfmg_search_ranges(counts) == _amct_search_range(list(counts))

    def test_hfmg_bins_must_be_documented_value(self) -> None:
        with pytest.raises(QuantspecError) as err:
            HfmgCalibrator(1000)
        assert err.value.code == "E411"


def _amct_search_range(counts: list[int]) -> list[tuple[int, int]]:
    """hfmg_get_search_range as AMCT writes it (loops)."""
    ranges: list[tuple[int, int]] = []
    left, right = 0, len(counts) - 1
    step = max(-(-sum(counts) // 100000), 1)
    min_bins = -(-len(counts) // 4)
    while right - left > min_bins:
        tl, tr, ls, rs = left, right, 0, 0
        while tl < tr and ls < step:
            ls += counts[tl]
            tl += 1
        while tl < tr and rs < step:
            rs += counts[tr]
            tr -= 1
        if (right - tr) >= (tl - left):
            right = tr
        else:
            left = tl
        ranges.append((left, right))
    return ranges


def _amct_l2_loss(counts: np.ndarray, lo: float, hi: float, ranges: list, dst: int
                  ) -> np.ndarray:
    """hfmg_calculate_loss as AMCT writes it (dense bins x ranges matrices)."""
    n = len(counts)
    w = (hi - lo) / n
    dens = (counts / w).reshape(-1, 1)
    r = np.array(ranges, dtype=np.float64)
    dw = w * (r[:, 1] - r[:, 0] + 1) / dst
    begin = (np.arange(n).reshape(-1, 1) - r[:, 0]) * w
    end = begin + w
    bi = np.minimum(dst - 1, np.maximum(begin // dw, 0))
    ei = np.minimum(dst - 1, np.maximum(end // dw, 0))
    half = np.broadcast_to(dw / 2, begin.shape)

    def norm(a: Any, b: Any, d: Any) -> Any:
        return (b**3 - a**3) / 3 * d

    same, diff = bi == ei, bi != ei
    c = bi * dw + half
    loss = norm((begin - c) * same, (end - c) * same, dens * same).sum(0)
    loss += norm((begin - c) * diff, half * diff, dens * diff).sum(0)
    loss += (((ei - bi) * diff - 1) * norm(-half * diff, half * diff, dens * diff)).sum(0)
    loss += norm(-half * diff, (end - ei * dw - half) * diff, dens * diff).sum(0)
    return loss


class TestPow2Histogram:
    @settings(max_examples=60, deadline=None, database=None)
    @given(values=st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=300),
           cuts=st.lists(st.integers(0, 300), max_size=4), absolute=st.booleans())
    def test_any_split_and_order_gives_the_same_histogram(self, values: list[float],
                                                          cuts: list[int],
                                                          absolute: bool) -> None:
        x = np.array(values, np.float32)
        whole = Pow2Histogram(64, absolute)
        whole.update(x)
        parts = np.split(x, sorted(c % (len(x) + 1) for c in cuts))
        seq = Pow2Histogram(64, absolute)
        for p in parts:
            seq.update(p)
        merged = Pow2Histogram(64, absolute)
        for p in reversed(parts):
            h = Pow2Histogram(64, absolute)
            h.update(p)
            merged.merge(h)
        for h in (seq, merged):
            assert (h.exp, h.start, h.total) == (whole.exp, whole.start, whole.total)
            np.testing.assert_array_equal(h.counts, whole.counts)

    def test_quantile(self) -> None:
        h = Pow2Histogram(4096)
        h.update(np.arange(1001, dtype=np.float32))
        assert h.quantile(0.5) == pytest.approx(500, abs=1)
        assert (h.quantile(0.0), h.quantile(1.0)) == (0.0, 1000.0)


class TestErrors:
    def test_unknown_calibrator(self) -> None:
        with pytest.raises(QuantspecError) as err:
            make_calibrator("tf_enhance")
        assert err.value.code == "E404" and "tf_enhanced" in err.value.diagnostic.hint

    def test_unknown_option(self) -> None:
        with pytest.raises(QuantspecError) as err:
            make_calibrator("minmax", symetric=True)
        assert err.value.code == "E404" and "symmetric" in err.value.diagnostic.hint

    def test_merge_mismatch(self) -> None:
        with pytest.raises(QuantspecError) as err:
            MinMaxCalibrator().merge(MinMaxCalibrator(axis=0))
        assert err.value.code == "E407"
        with pytest.raises(QuantspecError):
            MinMaxCalibrator().merge(TfEnhancedCalibrator())

    @pytest.mark.parametrize("name", sorted(FAST))
    def test_no_data(self, name: str) -> None:
        with pytest.raises(QuantspecError) as err:
            make_calibrator(name, **FAST[name]).result()
        assert err.value.code == "E408"

    @pytest.mark.parametrize(
        ("name", "options"),
        [("percentile", {"percentile": 0}), ("percentile", {"percentile": 101}),
         ("ifmr", {"max_percentile": 1.5}), ("ifmr", {"search_step": 0}),
         ("entropy", {"stride": 0}), ("mse", {"num_candidates": 0}),
         ("vitis", {"percentage": 200})],
    )
    def test_bad_parameters(self, name: str, options: dict) -> None:
        with pytest.raises(QuantspecError) as err:
            make_calibrator(name, **options)
        assert err.value.code == "E411"

    def test_bad_data(self) -> None:
        with pytest.raises(QuantspecError) as err:
            MinMaxCalibrator().update(np.array(["x"]))
        assert err.value.code == "E409"


EDGE_DATA = {
    "zeros": np.zeros(64, np.float32),
    "constant": np.full(64, 3.0, np.float32),
    "negative": -np.abs(RNG.standard_normal(64)).astype(np.float32),
    "single": np.array([2.5], np.float32),
    "huge": np.array([1e30, -1e30, 0.0], np.float32),
    "tiny": np.array([1e-30, -1e-32], np.float32),
}


@pytest.mark.parametrize("data", EDGE_DATA.values(), ids=list(EDGE_DATA))
@pytest.mark.parametrize("name", sorted(FAST))
def test_degenerate_data_gives_a_valid_grid(name: str, data: np.ndarray) -> None:
    options = dict(FAST[name])
    if name == "entropy":
        options.update(num_bins=64, start_bin=8)
    cal = make_calibrator(name, **options).update(data).update(data * 0.5)
    enc = cal.result()
    assert np.all(np.isfinite(enc.scale)) and np.all(enc.scale > 0)
    assert np.all(np.isfinite(fake_quantize(data, enc)))


def test_all_nan_channel_waits_for_data() -> None:
    x = np.array([[np.nan, np.nan], [1.0, -2.0]], np.float32)
    enc = TfEnhancedCalibrator(axis=0).update(x).result()
    assert enc.offset[0] == -128 and enc.min[0] == pytest.approx(-128 * 2 / 255)


def test_aimet_pdf_rejects_a_range_below_float_resolution() -> None:
    with pytest.raises(QuantspecError) as err:
        TfEnhancedCalibrator().update(np.full(4, 1e30, np.float32))
    assert err.value.code == "E409"


@pytest.mark.parametrize("name", ["vitis", "ifmr", "hfmg"])
def test_infinite_data_is_rejected_where_the_vendor_cannot_use_it(name: str) -> None:
    with pytest.raises(QuantspecError) as err:
        make_calibrator(name).update(np.array([np.inf, 1.0], np.float32))
    assert err.value.code == "E409"
