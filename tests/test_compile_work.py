"""Compiling is linear in the graph: the work per node does not grow with the graph.

Wall time per node does grow once a graph leaves the caches (benchmarks/RESULTS.md,
"Compile"), which a timed test on a shared machine could not tell from a slower algorithm.
This counts the work instead, with the benchmark's own models and profiles
(``bench_compile.measure_work``): bytecode instructions, calls and peak memory of
``Graph.from_model`` + ``compile_profile`` per node, for a graph and one four times as large.
Anything quadratic in Python (a scan of the tensors per tensor, a list rebuilt per node)
makes the larger graph's count per node about four times the smaller one's.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_compile.py"
SMALL, LARGE = 12, 48  # residual blocks: ~145 and ~577 nodes


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_compile", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _per_node(bench: ModuleType, blocks: int, profile: object) -> dict[str, float]:
    model = bench.build_model(blocks)
    n = len(model.graph.node)
    return {k: v / n for k, v in bench.measure_work(model, profile).items()}


@pytest.mark.parametrize("name", ["qspec", "aimet"])
def test_work_per_node_is_constant(bench: ModuleType, name: str) -> None:
    profile = bench.bench_profiles()[name]
    small = _per_node(bench, SMALL, profile)
    large = _per_node(bench, LARGE, profile)
    # fixed costs (the profile's rules, the plan's header) weigh more on the small graph, so
    # the ratios sit a little below 1; quadratic work would put them near 4
    for key, limit in (("opcodes", 1.05), ("calls", 1.05), ("peak_bytes", 1.10)):
        assert large[key] / small[key] <= limit, (key, small[key], large[key])
    assert small["opcodes"] > 100 and small["calls"] > 10  # the counters saw the compile


def test_quadratic_work_is_caught(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The measure itself: a stage made quadratic (each tensor scans every tensor) shows."""
    from quantspec.compiler import resolve

    order = resolve._tensor_order

    def quadratic(g: object) -> object:
        got = order(g)
        for _name in got[0]:
            for _other in got[0]:
                pass
        return got

    monkeypatch.setattr(resolve, "_tensor_order", quadratic)
    profile = bench.bench_profiles()["qspec"]
    small = _per_node(bench, SMALL, profile)
    large = _per_node(bench, LARGE, profile)
    assert large["opcodes"] / small["opcodes"] > 2
